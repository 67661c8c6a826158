#include "experiments/build_info.hpp"
#include "experiments/experiment.hpp"

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/global_control.h>
#include <tbb/info.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/formula.hpp"

namespace ratelab {

namespace {

// "file.ini:12: " for a line of the file, "--set: " (the override's origin) for what an override wrote.
std::string where(const std::string& source, int line, const std::string& origin = "") {
  if (!origin.empty()) return origin + ": ";
  return line > 0 ? source + ":" + std::to_string(line) + ": " : std::string("--set: ");
}
std::string where(const std::string& source, const IniEntry& e) { return where(source, e.line, e.origin); }
std::string where(const std::string& source, const IniSection& s) { return where(source, s.line, s.origin); }

const std::vector<std::string> kSectionKinds{"experiment", "problem", "optimizer", "schedule"};

// The experiment's name becomes a file name (out/NAME.h5, a Slurm script's NAME.h5, verify's temporary
// file): it must be one plain file name, so `../escape` cannot write outside out/ and an empty name cannot
// write out/.h5. A leading '.' would make a hidden file (or '.', '..'); 200 bytes leave room for the
// suffixes (.h5.partial, .h5.journal.tmp) within the 255 bytes a file name may have.
std::optional<std::string> experiment_name_problem(const std::string& name) {
  const std::string fix = "; the name becomes the output file out/NAME.h5: use letters, digits, '_', '-' or '.'";
  if (name.empty()) return std::string("experiment.name is empty") + fix;
  if (name.find('/') != std::string::npos) return "experiment.name = '" + name + "' contains '/'" + fix;
  if (name.front() == '.') return "experiment.name = '" + name + "' starts with '.'" + fix;
  if (name.size() > 200) return "experiment.name is " + std::to_string(name.size()) + " bytes long, more than 200" + fix;
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return "experiment.name = '" + name + "' contains a control character" + fix;
  return std::nullopt;
}

struct SectionName {
  std::string kind, label;
};
SectionName split_section(const std::string& name) {
  auto colon = name.find(':');
  if (colon == std::string::npos) return {name, ""};
  return {name.substr(0, colon), name.substr(colon + 1)};
}

}  // namespace

IniDocument parse_ini(const std::string& text, const std::string& source) {
  IniDocument doc{source, {}};
  std::istringstream in(text);
  std::string raw;
  int line = 0;
  std::vector<std::string> problems;
  while (std::getline(in, raw)) {
    ++line;
    // '#' starts a comment to the end of the line, anywhere on it; '\#' is a '#' of the value.
    std::string s;
    for (std::size_t i = 0; i < raw.size() && raw[i] != '#'; ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == '#') ++i;
      s += raw[i];
    }
    s = trim(s);
    if (s.empty()) continue;
    if (s.front() == '[') {
      if (s.back() != ']') {
        problems.push_back(where(source, line) + "malformed section header '" + s + "': expected [name]");
        continue;
      }
      std::string name = trim(s.substr(1, s.size() - 2));
      for (const auto& existing : doc.sections)
        if (existing.name == name)
          problems.push_back(where(source, line) + "section [" + name + "] repeats the one at line " +
                             std::to_string(existing.line));
      doc.sections.push_back({name, line, {}});
      continue;
    }
    auto eq = s.find('=');
    if (eq == std::string::npos) {
      problems.push_back(where(source, line) + "expected 'key = value', found '" + s + "'");
      continue;
    }
    if (doc.sections.empty()) {
      problems.push_back(where(source, line) + "'" + s + "' comes before any [section]");
      continue;
    }
    IniEntry entry{trim(s.substr(0, eq)), trim(s.substr(eq + 1)), line};
    auto& section = doc.sections.back();
    for (const auto& e : section.entries)
      if (e.key == entry.key)
        problems.push_back(where(source, line) + "key '" + entry.key + "' repeats line " + std::to_string(e.line));
    section.entries.push_back(entry);
  }
  if (!problems.empty()) throw ConfigError(problems);
  return doc;
}

IniDocument read_ini_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot read experiment file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_ini(ss.str(), path);
}

std::vector<long> checkpoint_steps(const ExperimentOptions& options, std::vector<std::string>& problems) {
  const long T = options.run.steps;
  if (options.checkpoint_steps.empty())
    return options.checkpoint_spacing == ExperimentOptions::Spacing::linear ? linear_checkpoints(T, options.checkpoints)
                                                                           : log_checkpoints(T, options.checkpoints);
  std::vector<long> out{0};
  double previous = -1;
  for (double t : options.checkpoint_steps) {
    const std::string at = "experiment.checkpoint_steps: " + format_value(ParamValue(t));
    if (!(t >= 0 && t <= double(T)) || t != std::floor(t))
      problems.push_back(at + " is not a whole step in [0, T = " + std::to_string(T) + "]");
    else if (t <= previous)
      problems.push_back(at + " does not come after " + format_value(ParamValue(previous)) +
                         ": list the steps increasing, each once");
    else if (long(t) > out.back())
      out.push_back(long(t));
    previous = std::max(previous, t);
  }
  if (out.back() != T) out.push_back(T);
  return out;
}

ParamTable<ExperimentOptions> ExperimentOptions::params() {
  using O = ExperimentOptions;
  std::vector<std::string> views = all_view_names(), metrics = all_metric_names();
  Constraint view_choices = one_of(views), metric_choices = one_of(metrics);
  std::vector<Field<O>> fields =
      ParamTable<O>{param(&O::name, "name", unconstrained(), "experiment name (recorded in the output)"),
                    param(&O::description, "description", unconstrained(),
                          "one line saying what the experiment shows")}
          .with(&O::run, RunOptions::params())
          .fields();
  fields.insert(fields.end(), {
      param(&O::replicates, "replicates", at_least(1), "independent runs per configuration"),
      param(&O::seed, "seed", nonnegative(), "master seed of every random stream"),
      param(&O::checkpoints, "checkpoints", at_least(3),
            "number of checkpoints, t = 0 and t = T included, spread by checkpoint_spacing"),
      choice(&O::checkpoint_spacing, "checkpoint_spacing", {{"log", Spacing::log}, {"linear", Spacing::linear}},
             "log: t = 0, 1, then geometric up to T (sublinear rates); linear: t = round(k T / (checkpoints - 1)) "
             "(linear convergence, drawn on a linear t axis)"),
      param(&O::checkpoint_steps, "checkpoint_steps", unconstrained(),
            "explicit checkpoint steps, whole numbers increasing in [0, T] (0 and T are always recorded); "
            "given, it replaces checkpoints and checkpoint_spacing"),
      param(&O::views, "views", view_choices, "iterate views to record: last, uniform, suffix, polydecay, best"),
      param(&O::metrics, "metrics", metric_choices,
            "metrics to record (value, subopt, dist2, gradnorm2); empty: all the problem provides"),
      param(&O::common_random_numbers, "common_random_numbers", unconstrained(),
            "replicate r of every configuration sees the same instance and random inputs (paired comparisons)"),
      choice(&O::instance, "instance", {{"shared", Instance::shared}, {"per_replicate", Instance::per_replicate}},
             "one problem instance for all replicates, or a fresh instance per replicate"),
      param(&O::data_directory, "data_directory", unconstrained(),
            "where named data sets are looked up; empty: $RATELAB_DATA_DIR, else the source tree's data/ "
            "(filled by scripts/setup.sh), else ./data"),
      param(&O::skip_invalid, "skip_invalid", unconstrained(),
            "skip configurations a component refuses (recorded) instead of rejecting the experiment"),
  });
  return fields;
}

namespace {
// How F* was obtained, from the problem's account of it: "closed form" (and a teacher's zero loss) is exact
// by construction, "given" comes with the data, anything else names the numerical method that solved it.
PreparedExperiment::FStar f_star_record(const ProblemFacts& facts, bool per_replicate) {
  PreparedExperiment::FStar out;
  out.method = facts.f_star ? facts.f_star_method : "unknown";
  const auto starts = [&](const char* prefix) { return facts.f_star_method.rfind(prefix, 0) == 0; };
  const bool exact = starts("closed form") || starts("teacher");
  if (!facts.f_star) out.source = "unknown";
  else if (exact) out.source = "closed form";
  else if (starts("given")) out.source = "given";
  else out.source = "solved";
  if (facts.f_star && (exact || !per_replicate)) out.value = facts.f_star;
  if (facts.f_star && !exact && per_replicate) {
    out.source = "unknown";
    out.method = "solved per replicate instance (" + facts.f_star_method + "); differs between replicates";
  }
  return out;
}
}  // namespace

results::ConfigurationRecord configuration_record(const Configuration& c) {
  results::ConfigurationRecord record;
  record.id = c.id;
  record.label = c.label;
  for (const auto& [kind, part] : {std::pair<std::string, const ComponentChoice*>{"problem", &c.problem},
                                   {"optimizer", &c.optimizer},
                                   {"schedule", &c.schedule}}) {
    if (part->key.empty()) continue;  // a schedule the optimizer does not use
    record.parameters.emplace_back(kind, part->key);
    for (const auto& [k, v] : part->params.entries())
      if (std::find(part->inactive.begin(), part->inactive.end(), k) == part->inactive.end())
        record.parameters.emplace_back(kind + "." + k, v);
  }
  if (c.horizon_varies) record.parameters.emplace_back("experiment.steps", std::int64_t(c.steps));
  record.parameters.emplace_back("stream_salt", std::to_string(c.salt));
  return record;
}

const char* experiment_file_syntax() {
  return "values and sections:\n"
         "  axis         any scalar parameter: 0.01, 0.1, 1 | logspace(a, b, k) | linspace(a, b, k) | range(a, b[, step]);\n"
         "               joined by commas, in order: x0 = linspace(3.0, 3.1, 11), linspace(3.4, 3.5, 11)\n"
         "  zip          zip = mu, L in a section: its listed axes vary together (equal lengths)\n"
         "  formula      a real or integer value may be a formula of the configuration's parameters:\n"
         "               eta = 1/problem.L, t0 = 2*problem.L/problem.mu, steps = problem.T, every = round(T/4)\n"
         "               (T = experiment.steps, R = replicates; unqualified names where one component has them);\n"
         "               evaluated per configuration, validated like numbers, labelled eta=0.1 (= 1/problem.L)\n"
         "  horizons     steps = 100, 1000, 10000 (or a formula such as problem.T): a configuration per horizon,\n"
         "               each with its own T, the checkpoints up to it and the same random numbers\n"
         "  sections     [problem], [optimizer], [schedule], labelled: [optimizer:hb] with its [schedule:hb] or\n"
         "               the shared [schedule]; every problem runs with every optimizer, unless:\n"
         "  [pair:NAME]  problem = LABEL and optimizer = LABEL (a section's label, or its name: problem) name one\n"
         "               combination to run; with pairings only the named ones run and every problem and\n"
         "               optimizer section must be in one. zip = problem.T, schedule.c varies axes of the pair's\n"
         "               sections (problem., optimizer., schedule.) together\n";
}

std::string stable_id(const std::string& canonical) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : canonical) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {
// The items of a comma-separated list, split only at commas outside parentheses: `min(1, 2/L), 3` is two
// items, `linspace(0, 1, 5), linspace(2, 3, 5)` two ranges.
std::vector<std::string> split_top_level(const std::string& text) {
  std::vector<std::string> out;
  std::string current;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      out.push_back(trim(current));
      current.clear();
    } else {
      current += c;
    }
  }
  out.push_back(trim(current));
  return out;
}
}  // namespace

std::vector<std::string> expand_axis(const std::string& text, const std::string& where_text, long max_items) {
  const std::string t = trim(text);
  auto fail = [&](const std::string& why) { return ConfigError(where_text + why); };
  // Several items: each a value, a formula or a range, joined in order (`linspace(3.0, 3.1, 11),
  // linspace(3.4, 3.5, 11)`), the count capped over all of them.
  if (const auto items = split_top_level(t); items.size() > 1) {
    std::vector<std::string> out;
    for (const auto& item : items) {
      if (item.empty()) throw fail("empty item in the list '" + t + "'");
      auto part = expand_axis(item, where_text, max_items);
      if (long(out.size() + part.size()) > max_items)
        throw fail(t + " has more than the " + std::to_string(max_items) +
                   " configurations allowed: sweep fewer values, or raise the cap with --max-configurations N");
      out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
    }
    return out;
  }
  auto args_of = [&](const std::string& fn) {
    std::string inner = trim(t.substr(fn.size() + 1, t.size() - fn.size() - 2));
    std::vector<double> args;
    std::stringstream ss(inner);
    std::string item;
    while (std::getline(ss, item, ',')) {
      char* end = nullptr;
      std::string it = trim(item);
      double v = std::strtod(it.c_str(), &end);
      if (it.empty() || end != it.c_str() + it.size()) throw fail("malformed argument '" + it + "' in " + t);
      if (!std::isfinite(v)) throw fail(t + ": argument '" + it + "' is not a finite number");
      args.push_back(v);
    }
    return args;
  };
  // Checked before a single value is made: the count alone may not fit in memory.
  auto check_count = [&](double count) {
    if (count > double(max_items))
      throw fail(t + " has " + format_value(ParamValue(count)) + " values, more than the " + std::to_string(max_items) +
                 " configurations allowed: sweep fewer values, or raise the cap with --max-configurations N");
  };
  auto fmt = [](double v) { return format_value(ParamValue(v)); };
  std::vector<std::string> out;
  auto is_call = [&](const std::string& fn) { return t.rfind(fn + "(", 0) == 0 && t.back() == ')'; };
  if (is_call("logspace") || is_call("linspace")) {
    const bool log = is_call("logspace");
    auto a = args_of(log ? "logspace" : "linspace");
    if (a.size() != 3 || a[2] < 1 || std::floor(a[2]) != a[2])
      throw fail(t + ": expected " + (log ? "logspace" : "linspace") +
                 "(start, stop, count) with count a finite integer >= 1");
    if (log && (a[0] <= 0 || a[1] <= 0))
      throw fail(t + ": logspace takes the endpoint values themselves (like numpy.geomspace), both > 0; for "
                     "10^-3 .. 10^0 write logspace(1e-3, 1, 4)");
    check_count(a[2]);
    const long k = long(a[2]);
    AllocationContext context("expanding " + t + " into " + std::to_string(k) + " values");
    out.reserve(std::size_t(k));
    for (long i = 0; i < k; ++i) {
      // Endpoints exact: the first and last items are the given values.
      const double s = k == 1 ? 0.0 : double(i) / double(k - 1);
      double v = log ? a[0] * std::pow(a[1] / a[0], s) : a[0] + (a[1] - a[0]) * s;
      if (i == 0) v = a[0];
      if (i == k - 1) v = a[1];
      out.push_back(fmt(v));
    }
    return out;
  }
  if (is_call("range")) {
    auto a = args_of("range");
    if (a.size() < 2 || a.size() > 3) throw fail(t + ": expected range(start, stop[, step])");
    for (double v : a)
      if (std::floor(v) != v) throw fail(t + ": range takes integers");
    // Every integer up to 2^53 is a double; beyond it v + step may equal v, and the values are not the
    // integers written.
    constexpr double kExact = 9007199254740992.0;  // 2^53
    for (double v : a)
      if (std::fabs(v) > kExact)
        throw fail(t + ": range takes integers of magnitude at most 2^53 = 9007199254740992 (beyond it "
                       "consecutive integers are not distinct floating-point values); give the values as a list");
    const long long start = static_cast<long long>(a[0]), stop = static_cast<long long>(a[1]),
                    step = a.size() == 3 ? static_cast<long long>(a[2]) : 1;
    if (step <= 0) throw fail(t + ": range step must be positive");
    if (start > stop) throw fail(t + " is empty (start > stop)");
    const long long count = (stop - start) / step + 1;
    check_count(double(count));
    AllocationContext context("expanding " + t + " into " + std::to_string(count) + " values");
    out.reserve(std::size_t(count));
    for (long long i = 0; i < count; ++i) out.push_back(fmt(double(start + i * step)));
    return out;
  }
  if (t.empty()) throw fail("empty value");
  out.push_back(t);
  return out;
}

namespace {

long saturating_product(long a, long b) {
  long product = 0;
  return __builtin_mul_overflow(a, b, &product) ? std::numeric_limits<long>::max() : product;
}

// One component section, parsed: its registry key and the axes of its parameters.
struct Axis {
  std::string key;
  std::vector<ParamValue> values;
  std::vector<std::string> texts;
};
struct ParsedSection {
  SectionName name;
  std::string registry_key;
  const ComponentInfo* info = nullptr;
  ParamSet base;             // defaults + single values
  std::vector<Axis> axes;    // swept keys, file order
  std::vector<std::vector<std::size_t>> groups;  // axes varied together (zip), each group one factor
  std::map<std::string, std::string> texts;      // key -> text as resolved (for resolved_text)
  std::map<std::string, std::string> formula_at;  // key -> "file:line: " of a value that holds a formula
};

// ---- parameter values that are formulas of other parameters ------------------------------------------
//
// `schedule.eta = 1/problem.L`: a real or integer value that is not a number is a formula (core/formula.hpp).
// Until it is evaluated for one configuration the parameter holds the formula's text (a real or integer
// parameter never holds text otherwise); resolve_formulas evaluates them after the grid is expanded, each
// once the names it refers to are resolved, and validates the result like a literal value.

bool is_numeric(const ParamSpec& spec) { return spec.type == ParamType::real || spec.type == ParamType::integer; }
bool holds_formula(const ParamSpec& spec, const ParamValue& value) {
  return is_numeric(spec) && std::holds_alternative<std::string>(value);
}

// The names a formula of `doc` may use, known before anything is expanded: T, R, every [experiment] key and
// every parameter of the components the file names, qualified by section kind ("problem.L") and not ("L").
std::set<std::string> formula_names(const Registry& registry, const IniDocument& doc) {
  std::set<std::string> out{"T", "R"};
  for (const auto& spec : ExperimentOptions::params().specs()) out.insert({spec.key, "experiment." + spec.key});
  for (const auto& s : doc.sections) {
    const std::string kind = split_section(s.name).kind;
    if (kind != "problem" && kind != "optimizer" && kind != "schedule") continue;
    const ComponentKind ck = kind == "problem"     ? ComponentKind::problem
                             : kind == "optimizer" ? ComponentKind::optimizer
                                                   : ComponentKind::schedule;
    auto name = std::find_if(s.entries.begin(), s.entries.end(), [](auto& e) { return e.key == "name"; });
    if (name == s.entries.end() || !registry.contains(ck, name->value)) continue;
    for (const auto& spec : registry.info(ck, name->value).params) out.insert({spec.key, kind + "." + spec.key});
  }
  return out;
}

// A value item `item` of parameter `spec` that parse_value refused (`refusal`): a formula's text, or the
// refusal with what a formula would have needed. A formula naming nothing in `known` (formula_names) is
// refused here, with the file's other mistakes; `d = ten` stays a malformed value.
ParamValue formula_value(const ParamSpec& spec, const std::string& item, const std::string& qualified,
                         const ConfigError& refusal, const std::set<std::string>& known) {
  if (!is_numeric(spec)) throw refusal;
  const std::string as_formula = std::string(refusal.what()) + ", or a formula of other parameters such as 1/problem.L";
  Formula formula;
  try {
    formula = Formula::parse(item, qualified);
  } catch (const ConfigError& error) {
    throw ConfigError(as_formula + " (" + error.what() + ")");
  }
  for (const auto& name : formula.names())
    if (!known.count(name)) {
      if (name == formula.text()) throw ConfigError(as_formula + " ('" + name + "' names no parameter)");
      throw ConfigError(qualified + " = " + formula.text() + ": unknown name '" + name +
                        "' (T = experiment.steps, R = experiment.replicates, experiment.KEY, or a parameter of "
                        "this file's components, qualified as problem.L or unqualified as L)");
    }
  return formula.text();
}

// The parameters of one configuration by section kind: "experiment", "problem", "optimizer" and, when the
// optimizer uses one, "schedule".
struct FormulaScope {
  std::string kind;
  ParamSet* params;
  const std::vector<ParamSpec>* specs;
  const std::map<std::string, std::string>* formula_at;
};

struct FormulaProblem {
  std::string key;      // "file:line: schedule.eta": one per formula, whatever the configuration
  std::string message;
};

// Evaluates every formula of one configuration (in dependency order) and validates each value; a formula of a
// parameter that does not apply is left at the default. `formulas` receives "kind.key" -> formula text of
// each evaluated one. Returns the problems (empty: every formula resolved).
std::vector<FormulaProblem> resolve_formulas(const std::vector<FormulaScope>& scopes,
                                             std::map<std::string, std::string>& formulas) {
  struct Pending {
    const FormulaScope* scope;
    const ParamSpec* spec;
    std::string text;
  };
  std::vector<FormulaProblem> problems;
  std::map<std::string, Pending> pending;  // by "kind.key"
  for (const auto& scope : scopes)
    for (const auto& spec : *scope.specs) {
      const ParamValue* v = scope.params->find(spec.key);
      if (!v || !holds_formula(spec, *v)) continue;
      if (!applies(spec, *scope.params)) {  // does nothing in this configuration: its default, as a literal's
        scope.params->set(spec.key, spec.default_value);
        continue;
      }
      pending.emplace(scope.kind + "." + spec.key, Pending{&scope, &spec, std::get<std::string>(*v)});
    }
  if (pending.empty()) return problems;

  struct Unresolved {};  // the name's own formula is not evaluated yet
  struct ReadsFailed {};  // the name's own formula failed: said once, for that one
  std::set<std::string> failed;
  std::vector<std::pair<std::string, double>> used;  // the names a formula read, with their values
  const Formula::Lookup lookup = [&](const std::string& name) -> double {
    const std::string qualified_name = name == "T" ? "experiment.steps" : name == "R" ? "experiment.replicates" : name;
    const bool qualified = qualified_name.find('.') != std::string::npos;
    std::vector<std::pair<const FormulaScope*, const ParamSpec*>> found;
    for (const auto& scope : scopes)
      for (const auto& spec : *scope.specs)
        if (qualified ? qualified_name == scope.kind + "." + spec.key : qualified_name == spec.key)
          found.emplace_back(&scope, &spec);
    if (found.empty()) {
      std::string names;
      for (const auto& scope : scopes)
        if (scope.kind != "experiment")
          for (const auto& spec : *scope.specs)
            if (is_numeric(spec)) names += (names.empty() ? "" : ", ") + scope.kind + "." + spec.key;
      throw ConfigError("unknown name '" + name + "' (T = experiment.steps, R = experiment.replicates, " + names +
                        ", or experiment.KEY)");
    }
    if (found.size() > 1)
      throw ConfigError("name '" + name + "' is ambiguous: qualify it (" + found[0].first->kind + "." + name + " or " +
                        found[1].first->kind + "." + name + ")");
    const auto& [scope, spec] = found.front();
    const std::string key = scope->kind + "." + spec->key;
    if (pending.count(key)) throw Unresolved{};
    if (failed.count(key)) throw ReadsFailed{};
    const ParamValue& v = scope->params->at(spec->key);
    double x = 0;
    if (auto* d = std::get_if<double>(&v)) x = *d;
    else if (auto* i = std::get_if<std::int64_t>(&v)) x = double(*i);
    else if (auto* b = std::get_if<bool>(&v)) x = *b ? 1.0 : 0.0;
    else throw ConfigError("parameter '" + key + "' is not a number (" + format_value(v) + ")");
    if (std::none_of(used.begin(), used.end(), [&](auto& u) { return u.first == name; })) used.emplace_back(name, x);
    return x;
  };
  auto fail = [&](const std::string& key, const Pending& f, const std::string& message) {
    const std::string at = f.scope->formula_at->count(f.spec->key) ? f.scope->formula_at->at(f.spec->key) : "";
    problems.push_back({at + key, at + key + " = " + f.text + message});
    f.scope->params->set(f.spec->key, f.spec->default_value);
    failed.insert(key);
  };
  for (bool progress = true; progress && !pending.empty();) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      const auto& [key, f] = *it;
      used.clear();
      double x = 0;
      try {
        x = Formula::parse(f.text, key).evaluate(lookup);
      } catch (const Unresolved&) {
        ++it;
        continue;
      } catch (const ReadsFailed&) {
        failed.insert(key);
        f.scope->params->set(f.spec->key, f.spec->default_value);
        it = pending.erase(it);
        progress = true;
        continue;
      } catch (const ConfigError& e) {
        fail(key, f, std::string(": ") + e.what());
        it = pending.erase(it);
        progress = true;
        continue;
      }
      std::string with;
      for (const auto& [n, v] : used) with += (with.empty() ? " (" : ", ") + n + " = " + format_value(ParamValue(v));
      if (!with.empty()) with += ")";
      ParamValue value = x;
      if (f.spec->type == ParamType::integer) {
        constexpr double kExact = 9007199254740992.0;  // 2^53: every integer up to it is a double
        if (!(std::floor(x) == x && std::fabs(x) <= kExact)) {
          fail(key, f, " gives " + format_value(value) + with + ", not a whole number: round it (round(...), "
                       "floor(...) or ceil(...))");
          it = pending.erase(it);
          progress = true;
          continue;
        }
        value = std::int64_t(x);
      }
      if (auto bad = violation(*f.spec, value, key)) fail(key, f, " gives " + format_value(value) + with + "; " + *bad);
      else {
        f.scope->params->set(f.spec->key, value);
        formulas[key] = f.text;
      }
      it = pending.erase(it);
      progress = true;
    }
  }
  if (!pending.empty()) {
    std::string cycle;
    for (const auto& [key, f] : pending) cycle += (cycle.empty() ? "" : ", ") + key + " = " + f.text;
    for (const auto& [key, f] : pending)
      fail(key, f, " cannot be evaluated: the formulas " + cycle + " refer to each other; give one of them a value");
  }
  return problems;
}

// Where else in `doc` an unknown key of [in_section] is a parameter, as a sentence to append to the
// unknown-key message ("" when nowhere): a key typed in the wrong section is named with its section, and the
// step-size names of other libraries (lr, learning_rate, ...) point to the schedule, which owns the step.
std::string elsewhere_hint(const Registry& registry, const IniDocument& doc, const std::string& in_section,
                           const std::string& key) {
  std::vector<std::string> homes;
  auto has = [&](const std::vector<ParamSpec>& specs, const std::string& k) {
    return std::any_of(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == k; });
  };
  if (in_section != "experiment" && has(ExperimentOptions::params().specs(), key)) homes.push_back("experiment." + key);
  std::vector<std::string> schedules;      // "[schedule] is 'inv_mu_t': eta_t = c / ..."
  std::vector<std::string> schedule_etas;  // "schedule.eta" of the schedules that have one
  for (const auto& s : doc.sections) {
    const std::string kind = split_section(s.name).kind;
    const ComponentKind ck = kind == "problem" ? ComponentKind::problem
                             : kind == "optimizer" ? ComponentKind::optimizer
                                                   : ComponentKind::schedule;
    if (kind != "problem" && kind != "optimizer" && kind != "schedule") continue;
    auto name = std::find_if(s.entries.begin(), s.entries.end(), [](auto& e) { return e.key == "name"; });
    if (name == s.entries.end() || !registry.contains(ck, name->value)) continue;
    const ComponentInfo& info = registry.info(ck, name->value);
    if (ck == ComponentKind::schedule) {
      schedules.push_back("[" + s.name + "] is '" + info.key + "': " + info.summary);
      if (has(info.params, "eta")) schedule_etas.push_back(s.name + ".eta");
    }
    if (s.name != in_section && has(info.params, key)) homes.push_back(s.name + "." + key);
  }
  if (!homes.empty()) {
    std::string h = " '" + key + "' is a parameter of another section: write ";
    for (std::size_t i = 0; i < homes.size(); ++i) h += (i ? " or " : "") + homes[i];
    return h;
  }
  static const std::vector<std::string> step_size_names{"lr", "learning_rate", "step_size", "stepsize", "eta",
                                                        "gamma", "step"};
  if (split_section(in_section).kind != "schedule" &&
      std::find(step_size_names.begin(), step_size_names.end(), key) != step_size_names.end()) {
    if (!schedule_etas.empty()) {
      std::string h = " The step size is set by the schedule: write ";
      for (std::size_t i = 0; i < schedule_etas.size(); ++i) h += (i ? " or " : "") + schedule_etas[i];
      return h;
    }
    std::string h = " The step size is set by the schedule: schedule.eta of a constant schedule "
                    "(--set schedule=constant --set schedule.eta=0.1)";
    for (const auto& s : schedules) h += "; this experiment's " + s;
    return h;
  }
  return "";
}

ParsedSection parse_component(const Registry& registry, const IniDocument& doc, ComponentKind kind,
                              const IniSection& section, const PlanLimits& limits,
                              const std::set<std::string>& known_names, std::vector<std::string>& problems) {
  const std::string& source = doc.source;
  ParsedSection out;
  out.name = split_section(section.name);
  const IniEntry* name_entry = nullptr;
  for (const auto& e : section.entries)
    if (e.key == "name") name_entry = &e;
  if (!name_entry) {
    problems.push_back(where(source, section) + "section [" + section.name + "] needs 'name = <" +
                       kind_name(kind) + ">'; available: " + [&] {
                         std::string s;
                         for (const auto& k : registry.keys(kind)) s += (s.empty() ? "" : ", ") + k;
                         return s;
                       }());
    return out;
  }
  try {
    out.info = &registry.info(kind, name_entry->value);
  } catch (const ConfigError& e) {
    problems.push_back(where(source, *name_entry) + e.what());
    return out;
  }
  out.registry_key = name_entry->value;
  const auto& specs = out.info->params;
  std::vector<std::string> known;
  for (const auto& s : specs) known.push_back(s.key);
  for (const auto& s : specs) out.base.set(s.key, s.default_value);
  std::vector<std::string> zip_keys;
  for (const auto& e : section.entries) {
    if (e.key == "name") continue;
    if (e.key == "zip") {
      std::stringstream ss(e.value);
      std::string k;
      while (std::getline(ss, k, ',')) zip_keys.push_back(trim(k));
      continue;
    }
    auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == e.key; });
    if (spec == specs.end()) {
      std::string message =
          where(source, e) +
          unknown_key_message(std::string(kind_name(kind)) + " '" + out.registry_key + "' parameter", e.key, known) +
          "." + elsewhere_hint(registry, doc, section.name, e.key);
      // The file's key met a name an override changed: the section was written for another component.
      if (e.origin.empty() && !name_entry->origin.empty())
        message += " ([" + section.name + "] of the file was written for another " + kind_name(kind) + "; " +
                   name_entry->origin + " " + section.name + "=" + out.registry_key +
                   " replaces the whole section, every other key back to its default)";
      problems.push_back(message);
      continue;
    }
    const std::string qualified = section.name + "." + e.key;
    const bool is_list = spec->type == ParamType::real_list || spec->type == ParamType::choice_list;
    std::vector<std::string> items;
    try {
      items = is_list ? std::vector<std::string>{e.value} : expand_axis(e.value, where(source, e) + qualified + ": ",
                                                                              limits.max_configurations);
    } catch (const ConfigError& err) {
      problems.push_back(err.what());
      continue;
    }
    Axis axis{e.key, {}, {}};
    for (const auto& item : items) {
      try {
        ParamValue v;
        try {
          v = parse_value(*spec, item, qualified);
        } catch (const ConfigError& refusal) {
          axis.values.push_back(formula_value(*spec, item, qualified, refusal, known_names));  // validated once evaluated
          axis.texts.push_back(item);
          out.formula_at[e.key] = where(source, e);
          continue;
        }
        if (auto bad = violation(*spec, v, qualified)) {
          problems.push_back(where(source, e) + *bad);
          continue;
        }
        axis.values.push_back(v);
        axis.texts.push_back(item);
      } catch (const ConfigError& err) {
        problems.push_back(where(source, e) + err.what());
      }
    }
    out.texts[e.key] = e.value;
    if (axis.values.size() == 1) out.base.set(e.key, axis.values.front());
    else if (axis.values.size() > 1) out.axes.push_back(std::move(axis));
  }
  // Zip groups: listed axes vary together and must have equal lengths.
  std::vector<bool> grouped(out.axes.size(), false);
  if (!zip_keys.empty()) {
    std::vector<std::size_t> group;
    for (const auto& k : zip_keys) {
      auto it = std::find_if(out.axes.begin(), out.axes.end(), [&](const Axis& a) { return a.key == k; });
      if (it == out.axes.end()) {
        problems.push_back(where(source, section) + "[" + section.name + "] zip names '" + k +
                           "', which is not an axis (a parameter with several values) of this section");
        continue;
      }
      group.push_back(std::size_t(it - out.axes.begin()));
    }
    for (std::size_t i = 1; i < group.size(); ++i)
      if (out.axes[group[i]].values.size() != out.axes[group[0]].values.size())
        problems.push_back(where(source, section) + "[" + section.name + "] zip axes '" +
                           out.axes[group[0]].key + "' and '" + out.axes[group[i]].key +
                           "' have different lengths (" + std::to_string(out.axes[group[0]].values.size()) +
                           " and " + std::to_string(out.axes[group[i]].values.size()) + ")");
    for (auto g : group) grouped[g] = true;
    if (!group.empty()) out.groups.push_back(group);
  }
  for (std::size_t a = 0; a < out.axes.size(); ++a)
    if (!grouped[a]) out.groups.push_back({a});
  std::sort(out.groups.begin(), out.groups.end());
  return out;
}

// How many combinations expand_section makes (saturating at LONG_MAX).
long section_size(const ParsedSection& s) {
  long n = 1;
  for (const auto& group : s.groups) n = saturating_product(n, long(s.axes[group.front()].values.size()));
  return n;
}

// Every combination of a section's axis groups (last group fastest).
std::vector<ParamSet> expand_section(const ParsedSection& s) {
  std::vector<ParamSet> out{s.base};
  for (const auto& group : s.groups) {
    std::vector<ParamSet> next;
    const std::size_t n = s.axes[group.front()].values.size();
    for (const auto& base : out)
      for (std::size_t i = 0; i < n; ++i) {
        ParamSet p = base;
        for (auto a : group) p.set(s.axes[a].key, s.axes[a].values[i]);
        next.push_back(std::move(p));
      }
    out = std::move(next);
  }
  return out;
}

// The combinations of a problem, an optimizer and its schedule (nullptr: none) when some axes of different
// sections vary together (a pairing's zip: `zip = problem.T, schedule.c`). `tied` lists those axes as
// (section: 0 problem, 1 optimizer, 2 schedule; axis index); every group of the sections' own that holds one
// of them joins one factor, placed where the first of them was, so the order is expand_section's otherwise
// (problem groups outermost, the schedule's last group fastest).
struct Combination {
  ParamSet problem, optimizer, schedule;
};
using AxisRef = std::pair<int, std::size_t>;
std::vector<std::vector<AxisRef>> joint_factors(const ParsedSection& p, const ParsedSection& o, const ParsedSection* s,
                                                const std::vector<AxisRef>& tied) {
  std::vector<std::vector<AxisRef>> factors;
  std::optional<std::size_t> joined;  // the factor the tied axes went to
  const ParsedSection* sections[3] = {&p, &o, s};
  for (int k = 0; k < 3; ++k) {
    if (!sections[k]) continue;
    for (const auto& group : sections[k]->groups) {
      std::vector<AxisRef> factor;
      for (auto a : group) factor.emplace_back(k, a);
      const bool is_tied = std::any_of(factor.begin(), factor.end(), [&](const AxisRef& r) {
        return std::find(tied.begin(), tied.end(), r) != tied.end();
      });
      if (!is_tied) factors.push_back(std::move(factor));
      else if (joined) factors[*joined].insert(factors[*joined].end(), factor.begin(), factor.end());
      else {
        joined = factors.size();
        factors.push_back(std::move(factor));
      }
    }
  }
  return factors;
}
std::size_t axis_length(const ParsedSection* const sections[3], const AxisRef& r) {
  return sections[r.first]->axes[r.second].values.size();
}
std::vector<Combination> expand_jointly(const ParsedSection& p, const ParsedSection& o, const ParsedSection* s,
                                        const std::vector<std::vector<AxisRef>>& factors) {
  const ParsedSection* sections[3] = {&p, &o, s};
  std::vector<Combination> out{{p.base, o.base, s ? s->base : ParamSet{}}};
  for (const auto& factor : factors) {
    std::vector<Combination> next;
    const std::size_t n = axis_length(sections, factor.front());
    for (const auto& base : out)
      for (std::size_t i = 0; i < n; ++i) {
        Combination c = base;
        for (const auto& [k, a] : factor) {
          ParamSet& target = k == 0 ? c.problem : k == 1 ? c.optimizer : c.schedule;
          target.set(sections[k]->axes[a].key, sections[k]->axes[a].values[i]);
        }
        next.push_back(std::move(c));
      }
    out = std::move(next);
  }
  return out;
}

// Sets every parameter of `params` that does not apply (ParamSpec::applies) back to its default, so it
// cannot change the fingerprint; returns their keys (left out of the record and the label).
std::vector<std::string> reset_inactive(const ComponentInfo& info, ParamSet& params) {
  std::vector<std::string> inactive;
  const ParamSet as_given = params;  // conditions read the values given, not ones reset here
  for (const auto& spec : info.params)
    if (!applies(spec, as_given)) {
      params.set(spec.key, spec.default_value);
      inactive.push_back(spec.key);
    }
  return inactive;
}

// A component's choice in one configuration: its parameters with those that do not apply at their defaults.
ComponentChoice resolved_choice(const ParsedSection& section, ParamSet params) {
  ComponentChoice choice{section.registry_key, std::move(params), {}};
  choice.inactive = reset_inactive(*section.info, choice.params);
  return choice;
}

bool uses_schedule(const ComponentInfo& optimizer, const ParamSet& params) {
  return !optimizer.schedule_applies || optimizer.schedule_applies->holds(params);
}

// A key the section sets that applies to none of its configurations does nothing: that is a mistake.
void check_set_keys_apply(const ParsedSection& section, const std::vector<ParamSet>& expanded, const std::string& source,
                          const IniSection& raw, std::vector<std::string>& problems) {
  if (!section.info) return;
  for (const auto& spec : section.info->params) {
    if (!spec.applies || !section.texts.count(spec.key)) continue;
    if (std::any_of(expanded.begin(), expanded.end(), [&](const ParamSet& p) { return spec.applies->holds(p); }))
      continue;
    auto entry = std::find_if(raw.entries.begin(), raw.entries.end(), [&](auto& e) { return e.key == spec.key; });
    problems.push_back(where(source, *entry) + raw.name + "." + spec.key + " does nothing here: it applies when " +
                       spec.applies->describe() + "; remove it (or set " + raw.name + "." + spec.applies->key + ")");
  }
}

}  // namespace

IniDocument apply_overrides(IniDocument doc, const std::vector<std::string>& overrides, const std::string& origin) {
  std::vector<std::string> problems;
  for (const auto& o : overrides) {
    const std::string what = origin + ": '" + o + "'";
    const auto eq = o.find('=');
    if (eq == std::string::npos) {
      problems.push_back(what + " is malformed: expected section.key=value (e.g. optimizer.batch=4) or "
                                "section=NAME (e.g. schedule=constant: a fresh [schedule] of that name)");
      continue;
    }
    const std::string target = trim(o.substr(0, eq)), value = trim(o.substr(eq + 1));
    const auto dot = target.rfind('.');
    const std::string section = trim(target.substr(0, dot)),
                      key = dot == std::string::npos ? "" : trim(target.substr(dot + 1));
    auto it = std::find_if(doc.sections.begin(), doc.sections.end(), [&](auto& s) { return s.name == section; });
    if (dot == std::string::npos) {  // section=NAME: a fresh component section
      const std::string kind = split_section(section).kind;
      if (kind != "problem" && kind != "optimizer" && kind != "schedule") {
        problems.push_back(what + ": only a component section ([problem], [optimizer], [schedule], labelled too) "
                                  "is replaced by name; set one key with " +
                           (section.empty() ? std::string("section") : section) + ".key=value");
        continue;
      }
      if (value.empty()) {
        problems.push_back(what + " names no " + kind + ": expected " + section + "=NAME, e.g. schedule=constant");
        continue;
      }
      IniSection fresh{section, 0, {{"name", value, 0, origin}}, origin};
      if (it == doc.sections.end()) doc.sections.push_back(std::move(fresh));
      else *it = std::move(fresh);
      continue;
    }
    if (section.empty() || key.empty()) {
      problems.push_back(what + " is malformed: expected section.key=value (e.g. optimizer.batch=4)");
      continue;
    }
    if (it == doc.sections.end()) {
      doc.sections.push_back({section, 0, {}, origin});
      it = doc.sections.end() - 1;
    }
    auto e = std::find_if(it->entries.begin(), it->entries.end(), [&](auto& x) { return x.key == key; });
    if (e == it->entries.end()) it->entries.push_back({key, value, 0, origin});
    else *e = {key, value, 0, origin};
  }
  if (!problems.empty()) throw ConfigError(problems);
  return doc;
}

ExperimentPlan plan_experiment(const Registry& registry, const IniDocument& original,
                               const std::vector<std::string>& overrides, const PlanLimits& limits) {
  std::vector<std::string> problems;
  const IniDocument doc = overrides.empty() ? original : apply_overrides(original, overrides);
  const std::string& source = doc.source;

  ExperimentPlan plan;
  std::vector<const IniSection*> problem_sections, optimizer_sections, schedule_sections, pair_sections;
  const IniSection* experiment_section = nullptr;
  for (const auto& s : doc.sections) {
    auto n = split_section(s.name);
    if (n.kind == "experiment" && n.label.empty()) experiment_section = &s;
    else if (n.kind == "problem") problem_sections.push_back(&s);
    else if (n.kind == "optimizer") optimizer_sections.push_back(&s);
    else if (n.kind == "schedule") schedule_sections.push_back(&s);
    else if (n.kind == "claims" || n.kind == "quick" || n.kind == "plot") continue;  // experiments/claims.hpp
    else if (n.kind == "pair") pair_sections.push_back(&s);
    else if (n.kind == "summary" && n.label.empty()) {  // `ratelab summary`'s defaults for this experiment's files
      for (const auto& e : s.entries)
        if (e.key != "fit")
          problems.push_back(where(source, e) + unknown_key_message("[summary] key", e.key, {"fit"}));
        else if (e.value != "power" && e.value != "contraction" && e.value != "auto" && e.value != "horizon")
          problems.push_back(where(source, e) + "[summary] fit = '" + e.value + "' is not one of power, contraction, auto, horizon");
    } else
      problems.push_back(where(source, s) + unknown_key_message("section", "[" + s.name + "]",
                                                                     {"[experiment]", "[problem]", "[optimizer]",
                                                                      "[schedule]", "[claims]", "[quick]", "[plot]",
                                                                      "[summary]", "[pair:NAME]"}));
  }

  // [experiment]; its formulas (`steps = problem.T`) are evaluated with each configuration's, below.
  std::map<std::string, std::string> experiment_formulas, experiment_formula_at;  // key -> text, "file:line: "
  std::vector<long> steps_axis;  // experiment.steps as an axis (increasing); empty: one value or a formula
  std::string steps_axis_text;
  const std::set<std::string> known_names = formula_names(registry, doc);
  {
    const auto specs = ExperimentOptions::params().specs();
    std::vector<std::string> known;
    for (const auto& s : specs) known.push_back(s.key);
    for (const auto& s : specs) plan.experiment_params.set(s.key, s.default_value);
    if (experiment_section) {
      for (const auto& e : experiment_section->entries) {
        auto spec = std::find_if(specs.begin(), specs.end(), [&](const ParamSpec& s) { return s.key == e.key; });
        if (spec == specs.end()) {
          problems.push_back(where(source, e) + unknown_key_message("experiment parameter", e.key, known) + "." +
                             elsewhere_hint(registry, doc, "experiment", e.key));
          continue;
        }
        if (e.key == "steps") {  // the horizon may be an axis: runs of several horizons in one file
          std::vector<std::string> items;
          try {
            items = expand_axis(e.value, where(source, e) + "experiment.steps", limits.max_configurations);
          } catch (const ConfigError&) {
            // not an axis: a number or a formula, read below
          }
          if (items.size() > 1) {
            for (const auto& item : items) {
              try {
                const ParamValue v = parse_value(*spec, item, "experiment.steps");
                if (auto bad = violation(*spec, v, "experiment.steps")) problems.push_back(where(source, e) + *bad);
                else steps_axis.push_back(long(std::get<std::int64_t>(v)));
              } catch (const ConfigError& err) {
                problems.push_back(where(source, e) + err.what() + " (an axis of experiment.steps holds whole numbers)");
              }
            }
            std::sort(steps_axis.begin(), steps_axis.end());
            if (std::adjacent_find(steps_axis.begin(), steps_axis.end()) != steps_axis.end())
              problems.push_back(where(source, e) + "experiment.steps = " + e.value + " repeats a horizon: list each once");
            steps_axis_text = e.value;
            if (!steps_axis.empty()) plan.experiment_params.set("steps", std::int64_t(steps_axis.back()));
            continue;
          }
        }
        try {
          ParamValue v;
          try {
            v = parse_value(*spec, e.value, "experiment." + e.key);
          } catch (const ConfigError& refusal) {
            experiment_formulas[e.key] =
                std::get<std::string>(formula_value(*spec, e.value, "experiment." + e.key, refusal, known_names));
            experiment_formula_at[e.key] = where(source, e);
            continue;
          }
          if (auto bad = violation(*spec, v, "experiment." + e.key)) problems.push_back(where(source, e) + *bad);
          else if (auto unusable = e.key == "name" ? experiment_name_problem(std::get<std::string>(v)) : std::nullopt)
            problems.push_back(where(source, e) + *unusable);
          else plan.experiment_params.set(e.key, v);
        } catch (const ConfigError& err) {
          problems.push_back(where(source, e) + err.what());
        }
      }
    }
    plan.options = ExperimentOptions::params().bind(plan.experiment_params);
    // With a formula among them (steps = problem.T) or several horizons, the checkpoints wait for the values.
    if (experiment_formulas.empty() && steps_axis.empty()) plan.run.checkpoints = checkpoint_steps(plan.options, problems);
  }
  if (problem_sections.empty()) problems.push_back(source + ": no [problem] section");
  if (optimizer_sections.empty()) problems.push_back(source + ": no [optimizer] section");

  std::vector<ParsedSection> parsed_problems, parsed_optimizers, parsed_schedules;
  for (auto* s : problem_sections)
    parsed_problems.push_back(parse_component(registry, doc, ComponentKind::problem, *s, limits, known_names, problems));
  for (auto* s : optimizer_sections)
    parsed_optimizers.push_back(parse_component(registry, doc, ComponentKind::optimizer, *s, limits, known_names, problems));
  for (auto* s : schedule_sections)
    parsed_schedules.push_back(parse_component(registry, doc, ComponentKind::schedule, *s, limits, known_names, problems));

  // Each optimizer's schedule: [schedule:<label>] if present, else the plain [schedule].
  auto schedule_for = [&](const ParsedSection& o) -> const ParsedSection* {
    const ParsedSection* plain = nullptr;
    for (const auto& s : parsed_schedules) {
      if (!o.name.label.empty() && s.name.label == o.name.label) return &s;
      if (s.name.label.empty()) plain = &s;
    }
    return plain;
  };
  for (std::size_t i = 0; i < parsed_optimizers.size(); ++i)
    if (!schedule_for(parsed_optimizers[i]) && parsed_optimizers[i].info &&
        [&] {
          for (const auto& o_params : expand_section(parsed_optimizers[i]))
            if (uses_schedule(*parsed_optimizers[i].info, o_params)) return true;
          return false;  // e.g. heavy_ball with tuning = polyak: its step comes from the problem
        }())
    {
      const ParsedSection& o = parsed_optimizers[i];
      std::string schedules;
      for (const auto& k : registry.keys(ComponentKind::schedule)) schedules += (schedules.empty() ? "" : ", ") + k;
      const std::string sections = o.name.label.empty()
                                       ? std::string("a [schedule] section")
                                       : "a [schedule:" + o.name.label + "] section (its own) or a [schedule] section "
                                                                         "(shared by the optimizers without their own)";
      // Said when the optimizer can do without one (heavy_ball with tuning = polyak).
      const std::string when = o.info->schedule_applies ? " (" + o.registry_key + " uses a schedule when " +
                                                              o.info->schedule_applies->describe() + ")"
                                                        : "";
      problems.push_back(where(source, *optimizer_sections[i]) + "optimizer section [" + optimizer_sections[i]->name +
                         "] (" + o.registry_key + ") needs a step-size schedule" + when + ": add " + sections +
                         " with name = one of " + schedules + " (e.g. name = constant and eta = 0.1)");
    }
  if (!problems.empty()) throw ConfigError(problems);

  // Pairings: [pair:NAME] sections name the (problem, optimizer) combinations to run, instead of every
  // problem with every optimizer; `zip` in one varies axes of its sections together.
  struct Pairing {
    std::size_t problem = 0, optimizer = 0;  // into parsed_problems, parsed_optimizers
    std::vector<std::vector<AxisRef>> factors;
  };
  std::vector<Pairing> pairings;
  {
    auto find_section = [&](const std::vector<ParsedSection>& parsed, const std::vector<const IniSection*>& raw,
                            const std::string& kind, const IniSection& pair, const IniEntry* value) -> std::optional<std::size_t> {
      std::string names;
      for (const auto* r : raw) names += (names.empty() ? "" : ", ") + std::string("[") + r->name + "]";
      if (!value) {
        problems.push_back(where(source, pair) + "[" + pair.name + "] needs '" + kind + " = LABEL' naming one of " + names);
        return std::nullopt;
      }
      for (std::size_t i = 0; i < parsed.size(); ++i)
        if (raw[i]->name == value->value || (!parsed[i].name.label.empty() && parsed[i].name.label == value->value))
          return i;
      problems.push_back(where(source, *value) + "[" + pair.name + "] " + kind + " = " + value->value + " names no " +
                         kind + " section; this file has " + names + " (write the label, or the section's name)");
      return std::nullopt;
    };
    std::vector<bool> problem_paired(parsed_problems.size()), optimizer_paired(parsed_optimizers.size());
    for (const IniSection* pair : pair_sections) {
      const IniEntry *problem_entry = nullptr, *optimizer_entry = nullptr, *zip_entry = nullptr;
      for (const auto& e : pair->entries) {
        if (e.key == "problem") problem_entry = &e;
        else if (e.key == "optimizer") optimizer_entry = &e;
        else if (e.key == "zip") zip_entry = &e;
        else problems.push_back(where(source, e) + unknown_key_message("[" + pair->name + "] key", e.key,
                                                                        {"problem", "optimizer", "zip"}));
      }
      const auto pi = find_section(parsed_problems, problem_sections, "problem", *pair, problem_entry);
      const auto oi = find_section(parsed_optimizers, optimizer_sections, "optimizer", *pair, optimizer_entry);
      if (!pi || !oi) continue;
      problem_paired[*pi] = optimizer_paired[*oi] = true;
      Pairing pairing{*pi, *oi, {}};
      const ParsedSection* sections[3] = {&parsed_problems[*pi], &parsed_optimizers[*oi],
                                          schedule_for(parsed_optimizers[*oi])};
      const std::string section_names[3] = {problem_sections[*pi]->name, optimizer_sections[*oi]->name,
                                            sections[2] ? schedule_sections[std::size_t(sections[2] - parsed_schedules.data())]->name
                                                        : std::string()};
      std::vector<AxisRef> tied;
      if (zip_entry)
        for (const auto& key : split_top_level(zip_entry->value)) {
          const auto dot = key.find('.');
          const std::string kind = key.substr(0, dot), k = dot == std::string::npos ? "" : key.substr(dot + 1);
          const int which = kind == "problem" ? 0 : kind == "optimizer" ? 1 : kind == "schedule" ? 2 : -1;
          const ParsedSection* section = which < 0 ? nullptr : sections[which];
          const auto axis = section ? std::find_if(section->axes.begin(), section->axes.end(),
                                                   [&](const Axis& a) { return a.key == k; })
                                    : std::vector<Axis>::const_iterator{};
          if (!section || axis == section->axes.end()) {
            problems.push_back(where(source, *zip_entry) + "[" + pair->name + "] zip names '" + key + "', which is not " +
                               (section ? "an axis (a parameter with several values) of [" + section_names[which] + "]"
                                        : std::string("problem.KEY, optimizer.KEY or schedule.KEY of the pair's sections")));
            continue;
          }
          tied.emplace_back(which, std::size_t(axis - section->axes.begin()));
        }
      for (const auto& r : tied)
        if (axis_length(sections, r) != axis_length(sections, tied.front()))
          problems.push_back(where(source, *zip_entry) + "[" + pair->name + "] zip axes '" +
                             sections[tied.front().first]->axes[tied.front().second].key + "' and '" +
                             sections[r.first]->axes[r.second].key + "' have different lengths (" +
                             std::to_string(axis_length(sections, tied.front())) + " and " +
                             std::to_string(axis_length(sections, r)) + ")");
      pairing.factors = joint_factors(*sections[0], *sections[1], sections[2], tied);
      pairings.push_back(std::move(pairing));
    }
    if (!pair_sections.empty()) {
      for (std::size_t i = 0; i < parsed_problems.size(); ++i)
        if (!problem_paired[i])
          problems.push_back(where(source, *problem_sections[i]) + "[" + problem_sections[i]->name +
                             "] is in no [pair:...] section: with pairings only the named combinations run; pair it "
                             "or remove it");
      for (std::size_t i = 0; i < parsed_optimizers.size(); ++i)
        if (!optimizer_paired[i])
          problems.push_back(where(source, *optimizer_sections[i]) + "[" + optimizer_sections[i]->name +
                             "] is in no [pair:...] section: with pairings only the named combinations run; pair it "
                             "or remove it");
    }
  }
  if (!problems.empty()) throw ConfigError(problems);

  // Counted before anything is expanded: a grid too large for memory is refused with its size.
  long configurations = 0;
  auto count = [&](long n) {
    n = saturating_product(n, std::max(1L, long(steps_axis.size())));  // each combination at every horizon
    configurations = n > std::numeric_limits<long>::max() - configurations ? std::numeric_limits<long>::max()
                                                                           : configurations + n;
  };
  if (pairings.empty()) {
    for (const auto& p : parsed_problems)
      for (const auto& o : parsed_optimizers)
        count(saturating_product(saturating_product(section_size(p), section_size(o)),
                                 schedule_for(o) ? section_size(*schedule_for(o)) : 1));
  } else {
    for (const auto& pairing : pairings) {
      const ParsedSection* sections[3] = {&parsed_problems[pairing.problem], &parsed_optimizers[pairing.optimizer],
                                          schedule_for(parsed_optimizers[pairing.optimizer])};
      long n = 1;
      for (const auto& factor : pairing.factors) n = saturating_product(n, long(axis_length(sections, factor.front())));
      count(n);
    }
  }
  auto count_text = [](long n) {
    return n == std::numeric_limits<long>::max() ? std::string("more than 9.2e18") : std::to_string(n);
  };
  if (configurations > limits.max_configurations)
    throw ConfigError(source + ": the grid has " + count_text(configurations) + " configurations, more than the " +
                      std::to_string(limits.max_configurations) +
                      " allowed: sweep fewer values, or raise the cap with --max-configurations N if you mean it");
  const long runs = saturating_product(configurations, plan.options.replicates);
  if (runs > limits.max_runs)
    throw ConfigError(source + ": the experiment has " + count_text(runs) + " runs (" + std::to_string(configurations) +
                      " configurations x " + std::to_string(plan.options.replicates) + " replicates), more than the " +
                      std::to_string(limits.max_runs) +
                      " allowed: use fewer replicates or configurations, or raise the cap with --max-runs N if you "
                      "mean it");

  // Parameters a section sets for none of its configurations (ParamSpec::applies).
  auto check_sections = [&](const std::vector<ParsedSection>& parsed, const std::vector<const IniSection*>& raw) {
    for (std::size_t i = 0; i < parsed.size(); ++i) check_set_keys_apply(parsed[i], expand_section(parsed[i]), source, *raw[i], problems);
  };
  check_sections(parsed_problems, problem_sections);
  check_sections(parsed_optimizers, optimizer_sections);
  check_sections(parsed_schedules, schedule_sections);
  if (!problems.empty()) throw ConfigError(problems);

  // Configurations: problems x optimizers (each with its schedule, where it uses one) x their axes. A
  // parameter that does not apply is reset to its default (reset_inactive), so the fingerprint of every
  // configuration where it applies, or where it was left at its default, is what it always was; axis values
  // that differ only in parameters that do not apply make one configuration.
  AllocationContext context("planning the grid: it has " + count_text(configurations) + " configurations (" +
                            count_text(runs) + " runs)");
  plan.configurations.reserve(std::size_t(configurations));
  struct Seen {
    std::size_t index;
    std::string as_given;  // the canonical text before inactive parameters were reset
  };
  std::unordered_map<std::string, Seen> seen_ids;  // repeated configurations, found in linear time
  // Formulas: the first problem of each (the same mistake in every configuration is said once, with a count),
  // and the value each experiment formula gave (one for all configurations).
  const bool any_formulas =
      !experiment_formulas.empty() ||
      std::any_of(parsed_problems.begin(), parsed_problems.end(), [](auto& x) { return !x.formula_at.empty(); }) ||
      std::any_of(parsed_optimizers.begin(), parsed_optimizers.end(), [](auto& x) { return !x.formula_at.empty(); }) ||
      std::any_of(parsed_schedules.begin(), parsed_schedules.end(), [](auto& x) { return !x.formula_at.empty(); });
  const std::vector<ParamSpec> experiment_specs = ExperimentOptions::params().specs();
  std::vector<std::string> formula_problem_order;
  std::map<std::string, std::pair<std::string, long>> formula_problems;  // key -> (first message, count)
  std::map<std::string, std::pair<ParamValue, std::size_t>> experiment_values;  // key -> (value, configuration)
  // Several horizons (an axis, or a formula for the steps): the horizon is part of what makes a configuration.
  const bool horizon_axis = steps_axis.size() > 1 || experiment_formulas.count("steps");
  auto add_one = [&](const ParsedSection& p, ParamSet p_params, const ParsedSection& o, ParamSet o_params,
                     const ParsedSection* s, ParamSet s_params, long horizon) {
    std::map<std::string, std::string> formulas;
    if (any_formulas) {
      ParamSet e_params = plan.experiment_params;
      e_params.set("steps", std::int64_t(horizon));
      for (const auto& [k, text] : experiment_formulas) e_params.set(k, text);
      std::vector<FormulaScope> scopes{{"experiment", &e_params, &experiment_specs, &experiment_formula_at},
                                       {"problem", &p_params, &p.info->params, &p.formula_at},
                                       {"optimizer", &o_params, &o.info->params, &o.formula_at}};
      if (s) scopes.push_back({"schedule", &s_params, &s->info->params, &s->formula_at});
      const auto failed = resolve_formulas(scopes, formulas);
      for (const auto& f : failed) {
        auto [it, fresh] = formula_problems.emplace(f.key, std::pair<std::string, long>{f.message, 0});
        if (fresh) formula_problem_order.push_back(f.key);
        ++it->second.second;
      }
      if (!failed.empty()) return;
      horizon = long(std::get<std::int64_t>(e_params.at("steps")));
      // [experiment] holds one value for every configuration, but for the horizon.
      for (const auto& [k, text] : experiment_formulas) {
        if (k == "steps") continue;
        const ParamValue& v = e_params.at(k);
        auto [it, fresh] = experiment_values.emplace(k, std::pair<ParamValue, std::size_t>{v, plan.configurations.size()});
        if (!fresh && it->second.first != v) {
          const std::string key = experiment_formula_at.at(k) + "experiment." + k;
          if (formula_problems.emplace(key, std::pair<std::string, long>{key + " = " + text + " is " +
                                          format_value(it->second.first) + " for configuration " +
                                          std::to_string(it->second.second) + " and " + format_value(v) +
                                          " for configuration " + std::to_string(plan.configurations.size()) +
                                          ": [experiment] holds one value for every configuration; make the "
                                          "formula give one value, or split the study into files",
                                      1}).second)
            formula_problem_order.push_back(key);
          return;
        }
      }
    }
    std::string as_given = p_params.canonical() + "|" + o_params.canonical() + "|" + s_params.canonical();
    Configuration c;
    c.formulas = std::move(formulas);
    c.index = plan.configurations.size();
    c.problem = resolved_choice(p, std::move(p_params));
    c.optimizer = resolved_choice(o, std::move(o_params));
    if (s) c.schedule = resolved_choice(*s, std::move(s_params));
    c.canonical = "problem=" + p.registry_key + ";" + c.problem.params.canonical() + "|optimizer=" + o.registry_key +
                  ";" + c.optimizer.params.canonical() + "|schedule=" +
                  (s ? s->registry_key + ";" + c.schedule.params.canonical() : "none");
    c.id = stable_id(c.canonical);
    c.salt = plan.options.common_random_numbers ? 0 : std::stoull(c.id, nullptr, 16);
    c.steps = horizon;
    const std::string horizon_tag = horizon_axis ? "|experiment.steps=" + std::to_string(horizon) : "";
    as_given += horizon_tag;
    if (auto [prev, fresh] = seen_ids.emplace(c.id + horizon_tag, Seen{c.index, as_given}); !fresh) {
      if (prev->second.as_given != as_given) return;  // differs only where nothing applies: the same run
      problems.push_back("configurations " + std::to_string(prev->second.index) + " and " + std::to_string(c.index) +
                         " are identical (" + c.canonical + "); remove the repeated section or value");
    }
    plan.configurations.push_back(std::move(c));
  };
  const std::vector<long> horizons = steps_axis.empty() ? std::vector<long>{plan.options.run.steps} : steps_axis;
  auto add = [&](const ParsedSection& p, const ParamSet& p_params, const ParsedSection& o, const ParamSet& o_params,
                 const ParsedSection* s, const ParamSet& s_params) {
    for (long horizon : horizons) add_one(p, p_params, o, o_params, s, s_params, horizon);
  };
  for (const auto& pairing : pairings) {
    const ParsedSection& p = parsed_problems[pairing.problem];
    const ParsedSection& o = parsed_optimizers[pairing.optimizer];
    const ParsedSection* s = schedule_for(o);
    std::set<std::string> without_schedule;  // (problem, optimizer) added once where the optimizer uses none
    for (const auto& c : expand_jointly(p, o, s, pairing.factors)) {
      if (!uses_schedule(*o.info, c.optimizer)) {
        if (without_schedule.insert(c.problem.canonical() + "|" + c.optimizer.canonical()).second)
          add(p, c.problem, o, c.optimizer, nullptr, {});
        continue;
      }
      add(p, c.problem, o, c.optimizer, s, c.schedule);
    }
  }
  if (pairings.empty()) {  // every problem with every optimizer
    for (const auto& p : parsed_problems)
      for (const auto& p_params : expand_section(p))
        for (const auto& o : parsed_optimizers) {
          const ParsedSection* s = schedule_for(o);
          for (const auto& o_params : expand_section(o)) {
            if (!uses_schedule(*o.info, o_params)) {
              add(p, p_params, o, o_params, nullptr, {});
              continue;
            }
            for (const auto& s_params : expand_section(*s)) add(p, p_params, o, o_params, s, s_params);
          }
        }
  }
  for (const auto& key : formula_problem_order) {
    const auto& [message, count] = formula_problems.at(key);
    problems.push_back(message + (count > 1 ? " (and in " + std::to_string(count - 1) + " more configurations)" : ""));
  }
  if (!problems.empty()) throw ConfigError(problems);
  // Several horizons: each configuration's T is a parameter of its own (recorded, in its id and label; the
  // stream salt stays that of the parameters alone), the plan's steps are the longest, and the checkpoints
  // the union of every horizon's, so that each configuration records at least what it would alone.
  std::set<long> distinct_horizons;
  for (const auto& c : plan.configurations) distinct_horizons.insert(c.steps);
  if (distinct_horizons.size() > 1)
    for (auto& c : plan.configurations) {
      c.horizon_varies = true;
      c.canonical += "|experiment.steps=" + std::to_string(c.steps);
      c.id = stable_id(c.canonical);
    }
  if (!distinct_horizons.empty() && (horizon_axis || !steps_axis.empty()))
    plan.experiment_params.set("steps", std::int64_t(*distinct_horizons.rbegin()));
  // The experiment's own formulas, evaluated: the options, the checkpoints and the run count they give.
  if (!experiment_formulas.empty() || !steps_axis.empty()) {
    for (const auto& [k, value] : experiment_values) plan.experiment_params.set(k, value.first);
    plan.options = ExperimentOptions::params().bind(plan.experiment_params);
    std::set<long> all;
    for (long horizon : distinct_horizons) {
      ExperimentOptions at = plan.options;
      at.run.steps = horizon;
      // An explicit list serves every horizon: each takes the steps up to its own T (and T itself).
      if (distinct_horizons.size() > 1)
        std::erase_if(at.checkpoint_steps, [&](double t) { return t > double(horizon) && t <= double(*distinct_horizons.rbegin()); });
      for (long t : checkpoint_steps(at, problems)) all.insert(t);
    }
    plan.run.checkpoints.assign(all.begin(), all.end());
    if (!problems.empty()) throw ConfigError(problems);
    const long resolved_runs = saturating_product(long(plan.configurations.size()), plan.options.replicates);
    if (resolved_runs > limits.max_runs)
      throw ConfigError(source + ": the experiment has " + count_text(resolved_runs) + " runs, more than the " +
                        std::to_string(limits.max_runs) + " allowed: raise the cap with --max-runs N if you mean it");
  }

  // Labels: the optimizer's key plus every other record entry that varies across configurations
  // (stream_salt aside: it varies with the id, not with anything the user set). An entry that is recorded
  // for some configurations of a component and not for others (ParamSpec::applies: heavy_ball's beta with
  // tuning = manual beside tuning = polyak, which has no beta and no schedule) varies too; among different
  // components (sgd beside heavy_ball) a missing parameter says nothing, so it does not.
  // Two passes over records made one at a time: a grid's records all held at once would double its memory.
  auto owner = [](const Configuration& c, const std::string& key) {  // the component a record entry belongs to
    if (key.rfind("problem", 0) == 0) return "problem=" + c.problem.key;
    if (key.rfind("schedule.", 0) == 0) return "schedule=" + c.schedule.key;
    return "optimizer=" + c.optimizer.key;  // its parameters, and whether it has a schedule
  };
  std::map<std::string, std::set<std::string>> seen;
  std::map<std::string, std::size_t> configurations_of;      // owner -> configurations
  std::map<std::pair<std::string, std::string>, std::size_t> recorded_in;  // (owner, key) -> configurations
  for (const auto& c : plan.configurations) {
    ++configurations_of[owner(c, "problem")];
    ++configurations_of[owner(c, "optimizer")];
    if (!c.schedule.key.empty()) ++configurations_of[owner(c, "schedule.")];
    for (const auto& [k, v] : configuration_record(c).parameters) {
      auto& values = seen[k];
      if (values.size() < 2) values.insert(format_value(v));  // only "varies or not" is asked below
      ++recorded_in[{owner(c, k), k}];
    }
  }
  for (auto& c : plan.configurations) {
    std::string label = c.optimizer.key;
    for (const auto& [k, v] : configuration_record(c).parameters) {
      if (k == "optimizer" || k == "stream_salt") continue;
      const std::string of = owner(c, k);
      if (seen[k].size() < 2 && recorded_in[{of, k}] == configurations_of[of]) continue;
      const bool component = k == "problem" || k == "schedule";
      label += " " + (component ? format_value(v) : k.substr(k.find('.') + 1) + "=" + format_value(v));
      if (auto f = c.formulas.find(k); f != c.formulas.end()) label += " (= " + f->second + ")";
    }
    c.label = label;
  }

  // Shared run plan.
  const auto& o = plan.options;
  static_cast<RunOptions&>(plan.run) = o.run;
  plan.run.views.clear();
  for (const auto& v : o.views) plan.run.views.push_back(view_from_name(v));
  if (plan.run.views.empty()) throw ConfigError(source + ": experiment.views is empty: record at least 'last'");
  plan.run.metrics.clear();
  for (const auto& m : o.metrics) plan.run.metrics.push_back(metric_from_name(m));

  // The resolved experiment file: every section with every parameter (axes as written), a '#' of a value
  // written '\#' so that parse_ini reads the value back.
  auto escaped = [](const std::string& value) {
    std::string out;
    for (char c : value) out += c == '#' ? std::string("\\#") : std::string(1, c);
    return out;
  };
  std::ostringstream text;
  text << "# resolved by ratelab from " << source << "\n[experiment]\n";
  for (const auto& [k, v] : plan.experiment_params.entries()) {
    // A formula as written, its value beside it (a comment: the text reads back as the same formula).
    if (k == "steps" && !steps_axis.empty())
      text << k << " = " << escaped(steps_axis_text) << "\n";
    else if (auto f = experiment_formulas.find(k); f != experiment_formulas.end())
      text << k << " = " << escaped(f->second) << "  # = "
           << (k == "steps" && distinct_horizons.size() > 1 ? std::string("per configuration, up to ") : std::string())
           << escaped(format_value(v)) << "\n";
    else
      text << k << " = " << escaped(format_value(v)) << "\n";
  }
  auto dump = [&](const std::vector<ParsedSection>& sections, const std::vector<const IniSection*>& raw) {
    for (std::size_t i = 0; i < sections.size(); ++i) {
      text << "\n[" << raw[i]->name << "]\nname = " << sections[i].registry_key << "\n";
      for (const auto& [k, v] : sections[i].base.entries()) {
        auto t = sections[i].texts.find(k);
        text << k << " = " << escaped(t != sections[i].texts.end() ? t->second : format_value(v)) << "\n";
      }
      for (const auto& e : raw[i]->entries)
        if (e.key == "zip") text << "zip = " << escaped(e.value) << "\n";
    }
  };
  dump(parsed_problems, problem_sections);
  dump(parsed_optimizers, optimizer_sections);
  dump(parsed_schedules, schedule_sections);
  for (const IniSection* pair : pair_sections) {
    text << "\n[" << pair->name << "]\n";
    for (const auto& e : pair->entries) text << e.key << " = " << escaped(e.value) << "\n";
  }
  for (const auto& s : doc.sections)
    if (s.name == "claims" || s.name == "summary") {
      text << "\n[" << s.name << "]\n";
      for (const auto& e : s.entries) text << e.key << " = " << escaped(e.value) << "\n";
    }
  plan.resolved_text = text.str();
  for (const auto& s : doc.sections)
    if (s.name == "plot")
      for (const auto& e : s.entries) plan.plot_text += e.key + " = " + e.value + "\n";
  return plan;
}

// ---- prepared experiment ---------------------------------------------------------------------------

std::string data_directory(const ExperimentOptions& options) {
  if (!options.data_directory.empty()) return options.data_directory;
  if (const char* env = std::getenv("RATELAB_DATA_DIR"); env && *env) return env;
  std::error_code ec;
  if (std::filesystem::is_directory(RATELAB_SOURCE_DATA_DIR, ec)) return RATELAB_SOURCE_DATA_DIR;
  return "data";
}

namespace {
// The build, for the solution cache (ProblemContext::solution_cache_build): what `run --reuse` compares.
const std::string& solution_cache_build() {
  static const std::string build = std::string(build_info::version) + " " + build_info::git_commit +
                                   (build_info::git_dirty ? " dirty " : " clean ") + build_info::compiler + " " +
                                   build_info::compile_flags;
  return build;
}
}  // namespace

std::shared_ptr<const Problem> PreparedExperiment::build_problem(const Configuration& c, long replicate,
                                                                 const ParallelFor& parallel_for) const {
  ProblemContext ctx{RandomStream(std::uint64_t(plan_.options.seed), std::uint64_t(replicate),
                                  StreamPurpose::instance, c.salt),
                     data_directory(plan_.options), parallel_for, solution_cache_build()};
  return registry_->make_problem(c.problem.key, c.problem.params, ctx);
}

int resolve_threads(int requested) {
  const int allowed = int(tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));
  return requested > 0 ? std::min(requested, std::max(1, allowed)) : tbb::info::default_concurrency();
}

PreparedExperiment::PreparedExperiment(const Registry& registry, const ExperimentPlan& input, int threads)
    : registry_(&registry), plan_(input) {
  ExperimentPlan& plan = plan_;  // what is kept: refused configurations leave it, the metrics are resolved
  // The shared instances are built here, before the sweep, so their set-up may use the sweep's threads.
  tbb::task_arena arena(resolve_threads(threads));
  const ParallelFor parallel_for = [&arena](long count, const std::function<void(long, long)>& body) {
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<long>(0, count, 1L << 14),
                        [&](const tbb::blocked_range<long>& piece) { body(piece.begin(), piece.end()); });
    });
  };
  std::vector<std::string> problems;
  std::map<std::string, std::shared_ptr<const Problem>> instances;  // by problem canonical (+ salt)
  std::vector<Configuration> kept;
  std::set<Metric> available_union;
  bool first = true;
  std::set<Metric> available_intersection;
  for (auto& c : plan.configurations) {
    std::string refusal;
    try {
      const std::string cache_key = c.problem.key + ";" + c.problem.params.canonical() + ";" + std::to_string(c.salt);
      auto it = instances.find(cache_key);
      std::shared_ptr<const Problem> problem =
          it != instances.end() ? it->second : (instances[cache_key] = build_problem(c, 0, parallel_for));
      RunStats schedule_constants;
      ScheduleContext sctx{c.steps, problem->facts().mu, &schedule_constants};
      // No schedule where the optimizer uses none: its step argument is ignored (a fixed placeholder).
      Schedule schedule = c.schedule.key.empty() ? Schedule{} : registry.make_schedule(c.schedule.key, c.schedule.params, sctx);
      auto optimizer = registry.make_optimizer(c.optimizer.key, c.optimizer.params);
      optimizer->prepare(*problem);
      auto avail = available_metrics(*problem);
      std::set<Metric> a(avail.begin(), avail.end());
      available_union.insert(a.begin(), a.end());
      if (first) available_intersection = a;
      else {
        std::set<Metric> inter;
        std::set_intersection(available_intersection.begin(), available_intersection.end(), a.begin(), a.end(),
                              std::inserter(inter, inter.begin()));
        available_intersection = inter;
      }
      first = false;
      const auto provided = [&] {
        std::string s;
        for (Metric x : avail) s += (s.empty() ? "" : ", ") + std::string(metric_name(x));
        return s;
      };
      for (Metric m : plan.run.metrics)
        if (!a.count(m))
          throw ConfigError(std::string("metric '") + metric_name(m) + "' is not available for problem '" +
                            c.problem.key + "' (it provides: " + provided() + ")");
      if (!plan.run.targets.empty() && !a.count(plan.run.target_metric))
        throw ConfigError(std::string("experiment.target_metric = ") + metric_name(plan.run.target_metric) +
                          " is not available for problem '" + c.problem.key + "' (it provides: " + provided() +
                          "): set experiment.target_metric to one of these, or drop experiment.targets");
      problems_.push_back(plan.options.instance == ExperimentOptions::Instance::shared ? problem : nullptr);
      schedules_.push_back(schedule);
      instance_stats_.push_back(problem->instance_stats());
      instance_stats_.back().emplace_back("f_star_known", problem->facts().f_star ? 1.0 : 0.0);
      f_stars_.push_back(f_star_record(problem->facts(), plan.options.instance == ExperimentOptions::Instance::per_replicate));
      instance_stats_.back().insert(instance_stats_.back().end(), schedule_constants.begin(),
                                    schedule_constants.end());
      kept.push_back(c);
    } catch (const ConfigError& e) {
      refusal = e.what();
    } catch (const std::exception& e) {
      refusal = std::string("set-up failed: ") + e.what();
    }
    if (!refusal.empty()) {
      std::string msg = "configuration " + std::to_string(c.index) + " (" + c.label + "): " + refusal;
      if (plan.options.skip_invalid) plan.skipped.push_back(msg);
      else problems.push_back(msg);
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
  if (kept.empty()) throw ConfigError("every configuration was refused; nothing to run");
  for (std::size_t i = 0; i < kept.size(); ++i) kept[i].index = i;
  plan.configurations = std::move(kept);
  if (plan.run.metrics.empty()) {
    // Default: every metric available for all configurations (a metric one problem lacks would be NaN).
    plan.run.metrics.assign(available_intersection.begin(), available_intersection.end());
  }
  for (Metric m : plan.run.metrics) metric_names_.push_back(metric_name(m));
  // A run plan per horizon: the plan's, stopping at the configuration's T (checkpoints beyond it are never
  // reached, so they stay NaN, and the ones before it are those of every other horizon's runs).
  std::map<long, std::size_t> by_horizon;
  for (const auto& c : plan.configurations) {
    auto [it, fresh] = by_horizon.try_emplace(c.steps, horizon_plans_.size());
    if (fresh) {
      horizon_plans_.push_back(plan.run);
      horizon_plans_.back().steps = c.steps;
    }
    horizon_plan_.push_back(it->second);
  }
}

std::shared_ptr<const Problem> PreparedExperiment::problem(std::size_t configuration, long replicate) const {
  if (problems_[configuration]) return problems_[configuration];
  return build_problem(plan_.configurations[configuration], replicate);
}

std::unique_ptr<Optimizer> PreparedExperiment::optimizer(std::size_t configuration) const {
  const auto& c = plan_.configurations[configuration];
  return registry_->make_optimizer(c.optimizer.key, c.optimizer.params);
}

RunResult PreparedExperiment::run(std::size_t configuration, long replicate, const std::atomic<bool>* cancel) const {
  const long replicates[1] = {replicate};
  return std::move(run_lockstep(configuration, replicates, cancel).front());
}

std::vector<RunResult> PreparedExperiment::run_lockstep(std::size_t configuration, std::span<const long> replicates,
                                                        const std::atomic<bool>* cancel) const {
  auto failed = [&](const std::exception& e) {
    RunResult r;
    r.status = RunStatus::error;
    r.message = e.what();
    const auto& p = plan_.run;
    r.traces.assign(p.metrics.size() * p.views.size() * p.checkpoints.size(),
                    std::numeric_limits<double>::quiet_NaN());
    return r;
  };
  // Runs step together only on one shared instance; per-replicate instances run one by one.
  if (!problems_[configuration] && replicates.size() > 1) {
    std::vector<RunResult> results;
    for (long replicate : replicates) results.push_back(run(configuration, replicate, cancel));
    return results;
  }
  try {
    auto problem = this->problem(configuration, replicates.front());
    std::vector<std::unique_ptr<Optimizer>> optimizers;
    std::vector<Optimizer*> optimizer_pointers;
    std::vector<RunStreams> streams;
    std::vector<RunStreams*> stream_pointers;
    streams.reserve(replicates.size());
    for (long replicate : replicates) {
      optimizers.push_back(this->optimizer(configuration));
      optimizer_pointers.push_back(optimizers.back().get());
      streams.emplace_back(std::uint64_t(plan_.options.seed), std::uint64_t(replicate),
                           plan_.configurations[configuration].salt);
      stream_pointers.push_back(&streams.back());
    }
    return ratelab::run_lockstep(*problem, optimizer_pointers, schedules_[configuration], run_plan(configuration),
                                 stream_pointers, cancel);
  } catch (const std::exception& e) {
    return std::vector<RunResult>(replicates.size(), failed(e));
  }
}

}  // namespace ratelab
