#include "experiments/claims.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "results/fixed_target.hpp"
#include "results/trace_query.hpp"

namespace ratelab::claims {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string real(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  int depth = 0;
  std::string current;
  for (char c : text) {
    if (c == '(' || c == '[') ++depth;
    if (c == ')' || c == ']') --depth;
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

// ---- formulas (core/formula.hpp) ----------------------------------------------------------------------

namespace {

// The value of a configuration's parameter `name` (qualified, or unqualified and unique).
double parameter_value(const results::TraceData& data, std::size_t c, const std::string& name) {
  const auto& config = data.layout.configurations[c];
  const ParamValue* found = nullptr;
  std::vector<std::string> candidates;
  for (const auto& [key, value] : config.parameters) {
    const auto dot = key.find('.');
    if (key == name) {
      found = &value;
      candidates = {key};
      break;
    }
    if (dot != std::string::npos && key.substr(dot + 1) == name) {
      found = &value;
      candidates.push_back(key);
    }
  }
  if (!found) {
    std::string keys;
    for (const auto& [key, value] : config.parameters)
      if (key != "stream_salt") keys += (keys.empty() ? "" : ", ") + key;
    throw ConfigError("unknown name '" + name + "' (T, R, or a parameter of configuration '" + config.label +
                      "': " + keys + ")");
  }
  if (candidates.size() > 1)
    throw ConfigError("name '" + name + "' is ambiguous: qualify it (" + candidates[0] + " or " +
                      candidates[1] + ")");
  if (auto* d = std::get_if<double>(found)) return *d;
  if (auto* i = std::get_if<std::int64_t>(found)) return double(*i);
  if (auto* b = std::get_if<bool>(found)) return *b ? 1.0 : 0.0;
  throw ConfigError("parameter '" + candidates[0] + "' is not a number (" + format_value(*found) + ")");
}

}  // namespace

double evaluate(const Formula& formula, const results::TraceData& data, std::size_t configuration, double t) {
  return formula.evaluate([&](const std::string& name) {
    if (name == "t") {
      if (!std::isnan(t)) return t;
      throw ConfigError("'t' (the checkpoint measured) exists only in scale= of a measurement at one t");
    }
    if (name == "T") return data.layout.checkpoints.empty() ? kNaN : double(results::horizon(data, configuration));
    if (name == "R") return double(data.layout.replicates);
    return parameter_value(data, configuration, name);
  });
}

// ---- parsing claims -------------------------------------------------------------------------------------

namespace {

struct Field {
  std::string key, value;
};

// "kind k=v k="quoted value" k=[a, b]" -> kind and fields.
std::vector<Field> tokenize(const std::string& text, std::string& kind) {
  std::vector<Field> fields;
  std::size_t i = 0;
  auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip();
  std::size_t start = i;
  while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  kind = text.substr(start, i - start);
  for (;;) {
    skip();
    if (i >= text.size()) break;
    start = i;
    while (i < text.size() && text[i] != '=' && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const std::string key = text.substr(start, i - start);
    if (i >= text.size() || text[i] != '=') throw ConfigError("expected key=value, found '" + key + "'");
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      const auto close = text.find('"', i + 1);
      if (close == std::string::npos) throw ConfigError("unterminated quote in " + key + "=");
      value = text.substr(i + 1, close - i - 1);
      i = close + 1;
    } else if (i < text.size() && text[i] == '[') {
      const auto close = text.find(']', i + 1);
      if (close == std::string::npos) throw ConfigError("missing ']' in " + key + "=");
      value = text.substr(i, close - i + 1);
      i = close + 1;
    } else {
      start = i;
      int depth = 0;
      while (i < text.size() && (depth > 0 || !std::isspace(static_cast<unsigned char>(text[i])))) {
        if (text[i] == '(') ++depth;
        if (text[i] == ')') --depth;
        ++i;
      }
      value = text.substr(start, i - start);
    }
    if (value.empty()) throw ConfigError(key + "= has no value");
    for (const auto& f : fields)
      if (f.key == key) throw ConfigError(key + "= is given twice");
    fields.push_back({key, value});
  }
  return fields;
}

bool bracketed(const std::string& v) {
  return v.size() >= 2 && v.front() == '[' && v.back() == ']';
}

void interval(const std::string& key, const std::string& value, Formula& low, Formula& high) {
  if (!bracketed(value)) {  // a single number or formula: exactly that
    low = high = Formula::parse(value, key);
    return;
  }
  auto parts = split_commas(value.substr(1, value.size() - 2));
  if (parts.size() != 2) throw ConfigError(key + "=" + value + ": expected [low, high]");
  low = Formula::parse(parts[0], key + " low");
  high = Formula::parse(parts[1], key + " high");
}

std::vector<std::string> filters(const std::string& value) {
  std::vector<std::string> out;
  for (const auto& f : split_commas(value))
    if (!f.empty()) out.push_back(f);
  return out;
}

Claim parse_claim(const std::string& name, const std::string& text) {
  Claim claim;
  claim.name = name;
  claim.text = text;
  std::string kind;
  auto fields = tokenize(text, kind);
  static const std::map<std::string, Claim::Kind> kinds{
      {"slope", Claim::Kind::slope},         {"value", Claim::Kind::value}, {"compare", Claim::Kind::compare},
      {"converges", Claim::Kind::converges}, {"fails", Claim::Kind::fails}, {"status", Claim::Kind::status},
      {"ert", Claim::Kind::ert},             {"success", Claim::Kind::success}};
  auto k = kinds.find(kind);
  if (k == kinds.end())
    throw ConfigError("unknown claim kind '" + kind + "' (slope, value, compare, converges, fails, status, ert, success)");
  claim.kind = k->second;
  using K = Claim::Kind;
  const std::map<K, std::vector<std::string>> allowed{
      {K::slope, {"where", "metric", "view", "stat", "window", "expect", "ci", "over", "scale"}},
      {K::value,
       {"where", "metric", "view", "stat", "measure", "at", "checkpoint", "window", "scale", "expect", "tol", "atol",
        "se", "ci"}},
      {K::compare,
       {"where", "a", "b", "metric", "view", "a_view", "b_view", "stat", "measure", "at", "checkpoint", "window", "scale",
        "expect", "factor"}},
      {K::converges, {"where", "metric", "view", "at", "checkpoint", "below", "fraction"}},
      {K::fails, {"where", "metric", "view", "window", "above", "fraction"}},
      {K::status, {"where", "diverged", "error", "ok", "nonfinite"}},
      {K::ert, {"where", "metric", "view", "target", "expect", "ci", "hits"}},
      {K::success, {"where", "metric", "view", "target", "by", "fraction", "hits"}}};
  const auto& keys = allowed.at(claim.kind);
  bool has_expect = false;
  for (const auto& [key, value] : fields) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      throw ConfigError(unknown_key_message(kind + " claim field", key, keys));
    if (key == "where")
      claim.where = filters(value);
    else if (key == "a")
      claim.a = filters(value);
    else if (key == "b")
      claim.b = filters(value);
    else if (key == "metric")
      claim.metric = value;
    else if (key == "view" || key == "a_view" || key == "b_view") {
      const auto& views = all_view_names();
      if (std::find(views.begin(), views.end(), value) == views.end())
        throw ConfigError(key + "=" + value + ": " + unknown_key_message("iterate view", value, views));
      (key == "view" ? claim.view : key == "a_view" ? claim.a_view : claim.b_view) = value;
    }
    else if (key == "stat") {
      claim.statistic_text = value;
      if (value == "median")
        claim.statistic = stats::Statistic::median();
      else if (value == "mean")
        claim.statistic = stats::Statistic::mean();
      else if (value.size() > 1 && value[0] == 'q') {
        char* end = nullptr;
        const double p = std::strtod(value.c_str() + 1, &end);
        if (*end != '\0' || !(p >= 0 && p <= 1))
          throw ConfigError("stat=" + value + ": a quantile is q<p> with p in [0, 1], e.g. q0.9");
        claim.statistic = stats::Statistic::quantile(p);
      } else {
        throw ConfigError("stat=" + value + " is not one of median, mean, q<p> (e.g. q0.9)");
      }
    } else if (key == "measure") {
      if (value == "at")
        claim.measure = Claim::Measure::at;
      else if (value == "slope" && claim.kind == K::compare)
        claim.measure = Claim::Measure::slope;
      else if (value == "contraction" && claim.kind == K::value)
        claim.measure = Claim::Measure::contraction;
      else
        throw ConfigError("measure=" + value + " is not one of " +
                          (claim.kind == K::compare ? "at, slope" : "at, contraction"));
    } else if (key == "over") {
      if (value == "horizon") claim.over_horizon = true;
      else if (value != "t")
        throw ConfigError("over=" + value + " is not one of t (along each run, the default), horizon (the final value "
                          "of each configuration against its T, across configurations that differ only in "
                          "experiment.steps)");
    } else if (key == "hits") {
      const auto& options = results::kHitSourceOptions;
      if (std::find(options.begin(), options.end(), value) == options.end())
        throw ConfigError("hits=" + value + " is not one of auto, recorded, checkpoint, best_so_far (" +
                          results::kHitSourceDoc + ")");
      claim.hits = value;
    } else if (key == "ci") {
      if (value == "within") claim.interval_mode = Claim::IntervalMode::within;
      else if (value == "contains") claim.interval_mode = Claim::IntervalMode::contains;
      else if (value == "point") claim.interval_mode = Claim::IntervalMode::point;
      else
        throw ConfigError("ci=" + value + " is not one of point (the estimate decides), within (the whole interval "
                          "lies in expect=[a, b]), contains (the interval contains expect=VALUE)");
    } else if (key == "at")
      claim.at = Formula::parse(value, "at");
    else if (key == "checkpoint") {
      if (value != "exact" && value != "nearest")
        throw ConfigError("checkpoint=" + value + " is not one of exact (at= must be a stored step), nearest");
      claim.at_nearest = value == "nearest";
    }
    else if (key == "scale")
      claim.scale = Formula::parse(value, "scale");
    else if (key == "window") {
      if (!bracketed(value)) throw ConfigError("window=" + value + ": expected [from, to], e.g. [T/10, T]");
      interval("window", value, claim.window_from, claim.window_to);
    } else if (key == "expect") {
      has_expect = true;
      if (claim.kind == K::compare) {
        std::string v;
        for (char c : value)
          if (!std::isspace(static_cast<unsigned char>(c))) v += c;
        if (v == "a<b")
          claim.a_less = true;
        else if (v == "a>b")
          claim.a_less = false;
        else
          throw ConfigError("expect=" + value + " is not one of a<b, a>b");
      } else if (bracketed(value) || claim.kind == K::slope || claim.kind == K::ert) {
        if (!bracketed(value)) {
          claim.expect_target = Formula::parse(value, "expect");  // slope: only with ci=contains (checked below)
        } else {
          interval("expect", value, claim.expect_low, claim.expect_high);
        }
      } else {
        claim.expect_target = Formula::parse(value, "expect");
      }
    } else if (key == "tol" || key == "atol" || key == "fraction" || key == "se") {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (*end != '\0' || !(v >= 0) || (key == "fraction" && v > 1))
        throw ConfigError(key + "=" + value +
                          (key == "fraction" ? " is not a number in [0, 1]" : " is not a number >= 0"));
      (key == "tol" ? claim.tol : key == "atol" ? claim.atol : key == "se" ? claim.se : claim.fraction) = v;
    } else if (key == "factor")
      claim.factor = Formula::parse(value, "factor");
    else if (key == "below" || key == "above")
      claim.threshold = Formula::parse(value, key);
    else if (key == "target")
      claim.target = Formula::parse(value, key);
    else if (key == "by")
      claim.budget = Formula::parse(value, key);
    else if (key == "diverged")
      interval(key, value, claim.diverged_low, claim.diverged_high);
    else if (key == "error")
      interval(key, value, claim.error_low, claim.error_high);
    else if (key == "ok")
      interval(key, value, claim.ok_low, claim.ok_high);
    else if (key == "nonfinite")
      interval(key, value, claim.nonfinite_low, claim.nonfinite_high);
  }
  if ((claim.kind == K::ert || claim.kind == K::success) && claim.target.empty())
    throw ConfigError(kind + " claim needs target= (the metric must reach metric <= target)");
  if (claim.kind == K::ert && (!has_expect || claim.expect_low.empty()))
    throw ConfigError("ert claim needs expect=[low, high] (steps)");
  if ((claim.kind == K::slope || claim.kind == K::value || claim.kind == K::compare) && !has_expect)
    throw ConfigError(kind + " claim needs expect=" +
                      (claim.kind == K::compare ? std::string("a<b or a>b") : std::string("[low, high]")));
  if (claim.kind == K::slope && !claim.expect_target.empty() && claim.interval_mode != Claim::IntervalMode::contains)
    throw ConfigError("expect=" + claim.expect_target.text() +
                      ": a slope claim needs an interval [low, high] (or ci=contains with one value)");
  if (claim.interval_mode == Claim::IntervalMode::within && claim.expect_low.empty())
    throw ConfigError("ci=within needs expect=[low, high]: the whole interval must lie in it");
  if (claim.interval_mode == Claim::IntervalMode::contains &&
      (claim.expect_target.empty() || claim.tol >= 0 || claim.atol >= 0 || claim.se >= 0))
    throw ConfigError("ci=contains needs expect=VALUE (one formula, no tol=/atol=/se=): the interval must contain it");
  if (claim.kind == K::value && claim.interval_mode != Claim::IntervalMode::contains &&
      !claim.expect_target.empty() && claim.tol < 0 && claim.atol < 0 && claim.se < 0)
    throw ConfigError(
        "value claim with expect=FORMULA needs tol= (relative), atol= (absolute) or se= (standard errors)");
  if (claim.kind == K::value && claim.expect_target.empty() &&
      (claim.tol >= 0 || claim.atol >= 0 || claim.se >= 0))
    throw ConfigError("tol=/atol=/se= go with expect=FORMULA, not with an interval");
  if (claim.se >= 0 &&
      (claim.statistic.kind != stats::Statistic::Kind::mean || claim.measure != Claim::Measure::at))
    throw ConfigError("se= needs stat=mean at one t (the standard error of the mean over replicates)");
  if ((claim.kind == K::converges || claim.kind == K::fails) && claim.threshold.empty())
    throw ConfigError(kind + std::string(" claim needs ") +
                      (claim.kind == K::converges ? "below=" : "above="));
  if (claim.kind == K::status && claim.diverged_low.empty() && claim.error_low.empty() &&
      claim.ok_low.empty() && claim.nonfinite_low.empty())
    throw ConfigError("status claim needs at least one of diverged=, error=, ok=, nonfinite=");
  if (claim.kind == K::compare && claim.a.empty() && claim.b.empty() &&
      (claim.a_view.empty() ? claim.view : claim.a_view) ==
          (claim.b_view.empty() ? claim.view : claim.b_view))
    throw ConfigError(
        "compare claim needs a= and/or b= (configuration filters; where= applies to both), or "
        "a_view= and b_view= that differ");
  if (claim.kind == K::compare) {
    if (claim.a.empty()) claim.a = claim.where;
    if (claim.b.empty()) claim.b = claim.where;
    if (!claim.where.empty() && claim.a != claim.where)
      claim.a.insert(claim.a.begin(), claim.where.begin(), claim.where.end());
    if (!claim.where.empty() && claim.b != claim.where)
      claim.b.insert(claim.b.begin(), claim.where.begin(), claim.where.end());
  }
  if (claim.a_view.empty()) claim.a_view = claim.view;
  if (claim.b_view.empty()) claim.b_view = claim.view;
  if (claim.at.empty()) claim.at = Formula::parse("T", "at");
  if (claim.kind == K::slope && !claim.scale.empty() && !claim.over_horizon)
    throw ConfigError("scale=" + claim.scale.text() + " in a slope along one run moves log(center) by a constant and "
                      "leaves the slope alone; it changes a slope only over=horizon (each final value times the scale "
                      "of its configuration, e.g. scale=\"T/log(T)\" for a rate log T / T)");
  if (claim.scale.empty()) claim.scale = Formula::parse("1", "scale");
  if (claim.factor.empty()) claim.factor = Formula::parse("1", "factor");
  if (claim.window_from.empty()) {
    claim.window_from = Formula::parse("T/10", "window");
    claim.window_to = Formula::parse("T", "window");
  }
  return claim;
}

}  // namespace

std::vector<Claim> parse_claims(const IniDocument& document) {
  std::vector<Claim> out;
  std::vector<std::string> problems;
  for (const auto& section : document.sections) {
    if (section.name != "claims") continue;
    for (const auto& e : section.entries) {
      const std::string at = (e.origin.empty() ? document.source + ":" + std::to_string(e.line) : e.origin) +
                             ": claim '" + e.key + "': ";
      try {
        Claim c = parse_claim(e.key, e.value);
        c.source = e.origin.empty() ? document.source : e.origin;
        c.line = e.line;
        out.push_back(std::move(c));
      } catch (const ConfigError& err) {
        for (const auto& p : err.problems()) problems.push_back(at + p);
      }
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
  return out;
}

std::vector<std::string> quick_overrides(const IniDocument& document) {
  std::vector<std::string> overrides;
  for (const auto& s : document.sections)
    if (s.name == "quick")
      for (const auto& e : s.entries) overrides.push_back(e.key + "=" + e.value);
  return overrides;
}

namespace {
bool is_claim_override(const std::string& o) { return trim(o).rfind("claims.", 0) == 0; }
}  // namespace

LoadedExperiment load_experiment(const Registry& registry, const IniDocument& document,
                                 const std::vector<std::string>& overrides, bool quick, const PlanLimits& limits) {
  LoadedExperiment out;
  out.document = quick ? apply_overrides(document, quick_overrides(document), document.source + " [quick]") : document;
  out.document = apply_overrides(std::move(out.document), overrides);
  out.plan = plan_experiment(registry, out.document, {}, limits);
  out.claims = parse_claims(out.document);
  std::vector<Claim> written;  // the claims an override wrote
  for (const auto& c : out.claims)
    for (const auto& s : out.document.sections)
      if (s.name == "claims")
        for (const auto& e : s.entries)
          if (e.key == c.name && !e.origin.empty()) written.push_back(c);
  if (!written.empty()) check_claims(written, layout_of(out.plan), false);
  return out;
}

std::vector<Claim> claims_for_stored_runs(const IniDocument& document, const std::string& trace_file,
                                          const std::vector<std::string>& overrides, bool quick, const PlanLimits& limits) {
  std::vector<std::string> claim_overrides, refused;
  if (quick)
    for (const auto& o : quick_overrides(document))
      if (is_claim_override(o)) claim_overrides.push_back(o);
  for (const auto& o : overrides) (is_claim_override(o) ? claim_overrides : refused).push_back(o);
  if (!refused.empty()) {
    std::vector<std::string> problems;
    for (const auto& o : refused)
      problems.push_back("--set '" + o + "' cannot apply to the stored trace file " + trace_file +
                         ": its runs are already made (only claims.NAME=... overrides apply to a stored file); "
                         "to verify a changed experiment, run it: ratelab verify EXPERIMENT --set '" + o + "'");
    throw ConfigError(problems);
  }
  return parse_claims(claim_overrides.empty() ? document : apply_overrides(document, claim_overrides));
}

std::vector<std::pair<std::string, std::string>> plot_section(const IniDocument& document) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : document.sections)
    if (s.name == "plot")
      for (const auto& e : s.entries) out.emplace_back(e.key, e.value);
  return out;
}

results::TraceData layout_of(const ExperimentPlan& plan) {
  results::TraceData data;
  data.schema_version = results::kSchemaVersion;
  data.layout.experiment_name = plan.options.name;
  data.layout.replicates = plan.options.replicates;
  data.layout.checkpoints = plan.run.checkpoints;
  for (View v : plan.run.views) data.layout.views.push_back(view_name(v));
  for (const auto& c : plan.configurations) data.layout.configurations.push_back(configuration_record(c));
  return data;
}

// ---- evaluation -----------------------------------------------------------------------------------------

namespace {

// The checkpoint a claim reads at at=: the stored step equal to it, or with checkpoint=nearest the stored step
// closest to it. A step that is not stored is an error naming the stored neighbours and the two ways out.
std::size_t checkpoint_at(const Claim& claim, const results::TraceData& data, std::size_t c) {
  const double t = evaluate(claim.at, data, c);
  const std::size_t k = results::nearest_checkpoint(data, t);
  const auto& steps = data.layout.checkpoints;
  if (claim.at_nearest || std::abs(double(steps[k]) - t) <= 1e-9 * std::max(1.0, std::abs(t))) return k;
  const auto above = std::upper_bound(steps.begin(), steps.end(), long(std::floor(t)));
  std::string neighbours;
  if (above != steps.begin()) neighbours = "t = " + std::to_string(*(above - 1));
  if (above != steps.end()) neighbours += (neighbours.empty() ? "t = " : " and ") + std::to_string(*above);
  throw ConfigError("at=" + claim.at.text() + " is t = " + real(t) +
                    ", which is not a stored checkpoint (the nearest stored: " + neighbours +
                    "); store it (experiment.checkpoint_steps = a list that holds it, or experiment.steps = " +
                    real(t) + " to make it the last one), or add checkpoint=nearest to the claim to read t = " +
                    std::to_string(steps[k]));
}

std::string where_text(const Claim& c) {
  return c.source + (c.line > 0 ? ":" + std::to_string(c.line) : std::string()) + ": claim '" + c.name +
         "': ";
}

std::vector<double> column(const stats::ReplicateMatrix& m, std::size_t k) {
  std::vector<double> out(std::size_t(m.rows()));
  for (Eigen::Index r = 0; r < m.rows(); ++r) out[std::size_t(r)] = m(r, Eigen::Index(k));
  return out;
}

double statistic_of(std::span<const double> values, const stats::Statistic& s) {
  return s.kind == stats::Statistic::Kind::mean ? stats::mean(values) : stats::quantile(values, s.p);
}

// A quantity measured on one configuration and view, with an interval when there is one.
struct Measurement {
  double value = kNaN;
  stats::Interval interval{kNaN, kNaN};
  std::string interval_kind;          // "CI", "t-interval", ""
  double se = kNaN;                   // standard error of the mean (stat=mean at one t)
  std::vector<double> per_replicate;  // the scaled column, for paired comparisons (measure=at)
  std::string at_text;
  long checkpoint = -1;               // the step measured (measure=at on a trace metric); -1 otherwise
};

std::string window_text(const stats::FitWindow& w) {
  return "t in [" + real(w.t_min) + ", " + real(w.t_max) + "]";
}

// metric=run.NAME: a run statistic (one number per run, e.g. run.q_mean, run.clip_fraction) instead of a
// trace; NaN for runs that did not report it or ended with an error.
bool is_run_statistic(const std::string& metric) {
  return metric.rfind("run.", 0) == 0;
}

std::vector<double> run_statistic(const results::TraceData& data, const std::string& metric, std::size_t c) {
  return results::run_statistic_column(data, metric.substr(4), c);
}

Measurement measure(const Claim& claim, Claim::Measure kind, const results::TraceData& data, std::size_t c,
                    const std::string& view, long seed, long resamples) {
  Measurement out;
  if (is_run_statistic(claim.metric)) {
    if (kind != Claim::Measure::at)
      throw ConfigError(where_text(claim) + "metric=" + claim.metric +
                        " is one number per run: only a value at the end");
    out.at_text = "per run";
    out.per_replicate = run_statistic(data, claim.metric, c);
    const double scale = evaluate(claim.scale, data, c);
    for (auto& x : out.per_replicate) x *= scale;
  }
  const std::size_t m = is_run_statistic(claim.metric) ? 0 : results::metric_column(data, claim.metric);
  const std::size_t v = is_run_statistic(claim.metric) ? 0 : results::view_column(data, view);
  const stats::ReplicateMatrix runs =
      is_run_statistic(claim.metric) ? stats::ReplicateMatrix() : results::replicate_matrix(data, m, c, v);
  if (kind == Claim::Measure::at) {
    if (!is_run_statistic(claim.metric)) {
      const std::size_t k = checkpoint_at(claim, data, c);
      const double scale = evaluate(claim.scale, data, c, double(data.layout.checkpoints[k]));
      out.checkpoint = data.layout.checkpoints[k];
      out.at_text = "t=" + std::to_string(out.checkpoint);
      out.per_replicate = column(runs, k);
      for (auto& x : out.per_replicate) x *= scale;
    }
    out.value = statistic_of(out.per_replicate, claim.statistic);
    if (claim.statistic.kind == stats::Statistic::Kind::mean) {
      // Student t with n - 1 degrees of freedom: 1.96 is its limit for large n, too narrow for a few runs.
      const stats::MeanInterval mean = stats::mean_interval(out.per_replicate, 0.95);
      out.se = mean.se;
      out.interval = mean.interval;
      out.interval_kind = "95% t-interval";
    } else if (claim.statistic.p == 0.5 && stats::count_present(out.per_replicate) >= 2) {
      // The bootstrap interval of the median: the paired difference against zero is the sample itself.
      const std::vector<double> zeros(out.per_replicate.size(), 0.0);
      auto stream = results::bootstrap_stream(data, seed, {{c}, view, claim.metric, out.checkpoint});
      const auto d = stats::paired_difference(out.per_replicate, zeros, {resamples, 0.95}, stream);
      out.interval = d.median_ci;
      out.interval_kind = "CI";
    }
    return out;
  }
  const double scale = evaluate(claim.scale, data, c);
  const stats::FitWindow window{evaluate(claim.window_from, data, c), evaluate(claim.window_to, data, c)};
  out.at_text = window_text(window);
  if (kind == Claim::Measure::slope) {
    auto stream = results::bootstrap_stream(data, seed, {{c}, view, claim.metric});
    const stats::RateFit fit = stats::bootstrap_loglog_slope(runs, data.layout.checkpoints, window,
                                                             claim.statistic, {resamples, 0.95}, stream);
    out.value = fit.fit.slope;
    out.interval = fit.slope_ci;
    out.interval_kind = "CI";
    if (fit.fit.points < 3)
      throw ConfigError(where_text(claim) + window_text(window) + " holds " + std::to_string(fit.fit.points) +
                        " usable checkpoints (finite, > 0); a slope needs at least 3");
    return out;
  }
  // Contraction: rho = exp(slope of log(center) against t), the per-step factor of a linear rate, with the
  // replicate-bootstrap interval `summary --fit contraction` prints (same stream key, same bits). A constant
  // scale= moves log(center) by a constant and leaves the slope alone.
  (void)scale;
  auto stream = results::bootstrap_stream(data, seed, {{c}, view, claim.metric});
  const stats::RateFit fit = stats::bootstrap_contraction(runs, data.layout.checkpoints, window, claim.statistic,
                                                          {resamples, 0.95}, stream);
  if (fit.fit.points < 3)
    throw ConfigError(where_text(claim) + window_text(window) + " holds " + std::to_string(fit.fit.points) +
                      " usable checkpoints; a contraction fit needs at least 3");
  out.value = stats::contraction_factor(fit);
  out.interval = stats::contraction_interval(fit);
  out.interval_kind = "CI";
  return out;
}

std::string measured_text(const Measurement& m) {
  std::string s = real(m.value);
  if (!m.interval_kind.empty() && std::isfinite(m.interval.lo))
    s += " " + m.interval_kind + " [" + real(m.interval.lo) + ", " + real(m.interval.hi) + "]";
  return s;
}

std::string what_text(const Claim& claim, const results::TraceData& data, std::size_t c,
                      const std::string& view) {
  std::string q = claim.statistic_text + " " + claim.metric + "[" + view + "]";
  if (claim.scale.text() != "1") q = "(" + claim.scale.text() + ") * " + q;
  return q + " of '" + data.layout.configurations[c].label + "'";
}

bool in_bounds(double v, double lo, double hi) {
  return v >= lo && v <= hi;
}

// slope over=horizon: the log-log slope of the final value against T across a series of horizons, with the
// replicate-bootstrap interval of `summary --fit horizon` (the same stream, so the same bits).
Measurement measure_over_horizon(const Claim& claim, const results::TraceData& data, const results::HorizonSeries& series,
                                 long seed, long resamples) {
  if (series.horizons.size() < 2)
    throw ConfigError("over=horizon needs configurations of several horizons that differ in nothing else; '" +
                      series.label + "' has the one horizon T = " + std::to_string(series.horizons.front()) +
                      " (sweep experiment.steps)");
  const std::size_t m = results::metric_column(data, claim.metric);
  const std::size_t view = results::view_column(data, claim.view);
  stats::ReplicateMatrix finals = results::horizon_finals(
      series, [&](std::size_t c) { return results::replicate_matrix(data, m, c, view); }, data);
  // scale= (a formula of T and the parameters) multiplies each horizon's final values: the slope of
  // f(x_T) T / log T is 0 when the rate is exactly log T / T.
  for (std::size_t j = 0; j < series.configurations.size(); ++j)
    finals.col(Eigen::Index(j)) *= evaluate(claim.scale, data, series.configurations[j]);
  const stats::RateFit fit =
      results::horizon_slope(data, series, finals, claim.view, claim.metric, claim.statistic, {resamples, 0.95}, seed);
  Measurement out;
  out.value = fit.fit.slope;
  out.interval = fit.slope_ci;
  out.interval_kind = "CI";
  out.at_text = "final value against T = " + std::to_string(series.horizons.front()) + " .. " +
                std::to_string(series.horizons.back()) + ", " + std::to_string(fit.fit.points) + " horizons";
  return out;
}

// One configuration's verdict for the single-configuration kinds (a slope over=horizon: one series's, c its first).
Verdict evaluate_one(const Claim& claim, const results::TraceData& data, std::size_t c, long seed,
                     long resamples, const results::HorizonSeries* series = nullptr) {
  Verdict v;
  v.name = claim.name;
  using K = Claim::Kind;
  switch (claim.kind) {
    case K::slope:
    case K::value: {
      const auto kind = claim.kind == K::slope ? Claim::Measure::slope : claim.measure;
      const Measurement m = series ? measure_over_horizon(claim, data, *series, seed, resamples)
                                   : measure(claim, kind, data, c, claim.view, seed, resamples);
      v.what = std::string(kind == Claim::Measure::slope         ? "slope of "
                           : kind == Claim::Measure::contraction ? "contraction of "
                                                                 : "") +
               (series ? (claim.scale.text() != "1" ? "(" + claim.scale.text() + ") * " : std::string()) +
                             claim.statistic_text + " " + claim.metric + "[" + claim.view + "] of '" + series->label + "'"
                       : what_text(claim, data, c, claim.view)) +
               " (" + m.at_text + ")";
      v.measured = measured_text(m);
      v.value = m.value;
      v.interval = m.interval;
      const bool has_interval = std::isfinite(m.interval.lo) && std::isfinite(m.interval.hi);
      if (claim.interval_mode == Claim::IntervalMode::contains) {
        const double target = evaluate(claim.expect_target, data, c);
        v.pass = has_interval && m.interval.lo <= target && target <= m.interval.hi;
        v.bound = "interval contains " + claim.expect_target.text() + " = " + real(target) +
                  (has_interval ? std::string() : " (no interval: " + std::string(data.layout.replicates < 2 ? "one run" : "too few points") + ")");
        const double width = has_interval && m.interval.hi > m.interval.lo ? m.interval.hi - m.interval.lo : 1.0;
        v.margin = has_interval ? std::min(target - m.interval.lo, m.interval.hi - target) / width : -1.0;
      } else if (claim.interval_mode == Claim::IntervalMode::within) {
        const double lo = evaluate(claim.expect_low, data, c), hi = evaluate(claim.expect_high, data, c);
        v.pass = has_interval && m.interval.lo >= lo && m.interval.hi <= hi;
        v.bound = "interval within [" + real(lo) + ", " + real(hi) + "]" +
                  (has_interval ? std::string() : " (no interval: " + std::string(data.layout.replicates < 2 ? "one run" : "too few points") + ")");
        const double width = std::isfinite(hi - lo) && hi > lo ? hi - lo : 1.0;
        v.margin = has_interval ? std::min(m.interval.lo - lo, hi - m.interval.hi) / width : -1.0;
      } else if (!claim.expect_target.empty()) {
        const double target = evaluate(claim.expect_target, data, c);
        const double se = m.se;  // se=K: K standard errors of the mean
        const double slack =
            std::max({claim.tol >= 0 ? claim.tol * std::abs(target) : 0.0, claim.atol >= 0 ? claim.atol : 0.0,
                      claim.se >= 0 ? claim.se * se : 0.0});
        v.pass = std::abs(m.value - target) <= slack;
        v.margin = (slack - std::abs(m.value - target)) / std::max(slack, 1e-300);
        v.bound = "within " + real(slack) + " of " + claim.expect_target.text() + " = " + real(target) +
                  " (off by " + real(m.value - target) + ", " +
                  real(100 * (m.value - target) / std::abs(target)) + "%)";
      } else {
        const double lo = evaluate(claim.expect_low, data, c), hi = evaluate(claim.expect_high, data, c);
        v.pass = in_bounds(m.value, lo, hi);
        v.bound = "in [" + real(lo) + ", " + real(hi) + "]";
        const double width =
            std::isfinite(hi - lo) && hi > lo ? hi - lo : std::max(std::abs(m.value), 1e-300);
        v.margin = std::min(m.value - lo, hi - m.value) / width;
      }
      return v;
    }
    case K::converges:
    case K::fails: {
      const std::size_t m = results::metric_column(data, claim.metric);
      const std::size_t view = results::view_column(data, claim.view);
      const stats::ReplicateMatrix runs = results::replicate_matrix(data, m, c, view);
      const double threshold = evaluate(claim.threshold, data, c);
      long hits = 0;
      std::string where;
      if (claim.kind == K::converges) {
        const std::size_t k = checkpoint_at(claim, data, c);
        where = "t=" + std::to_string(data.layout.checkpoints[k]);
        for (Eigen::Index r = 0; r < runs.rows(); ++r)
          if (runs(r, Eigen::Index(k)) < threshold) ++hits;  // NaN (diverged, error) does not converge
      } else {
        const stats::FitWindow w{evaluate(claim.window_from, data, c), evaluate(claim.window_to, data, c)};
        where = window_text(w);
        for (Eigen::Index r = 0; r < runs.rows(); ++r) {
          bool above = true;
          for (std::size_t k = 0; k < data.layout.checkpoints.size(); ++k) {
            const double t = double(data.layout.checkpoints[k]);
            const double x = runs(r, Eigen::Index(k));
            if (t >= w.t_min && t <= w.t_max && !(x >= threshold) && !std::isnan(x)) above = false;
          }
          const RunStatus s = data.status[c * std::size_t(data.layout.replicates) + std::size_t(r)];
          if (s == RunStatus::error || s == RunStatus::missing) above = false;  // no evidence either way
          if (above) ++hits;
        }
      }
      const double share = runs.rows() ? double(hits) / double(runs.rows()) : 0.0;
      v.what = claim.metric + "[" + claim.view + "] of '" + data.layout.configurations[c].label + "' " +
               (claim.kind == K::converges ? "below " : "stays above ") + real(threshold) + " (" + where +
               ")";
      v.measured = std::to_string(hits) + "/" + std::to_string(runs.rows()) + " replicates";
      v.pass = runs.rows() > 0 && share >= claim.fraction;
      v.margin = share - claim.fraction;
      v.bound = "fraction >= " + real(claim.fraction);
      return v;
    }
    case K::ert:
    case K::success: {
      const double target = evaluate(claim.target, data, c);
      using results::HitSource;
      const HitSource source = results::resolve_hit_source(claim.hits, {&data}, claim.metric, claim.view, {target});
      const stats::ReplicateMatrix steps = results::budget_matrix(data, c, results::Budget::step);
      const std::vector<double> hits =
          source == HitSource::recorded
              ? results::recorded_hitting_times(data, c, claim.metric, target, results::Budget::step)
              : stats::hitting_times(results::hit_matrix(data, c, claim.metric, claim.view, source), steps, target);
      const double horizon = data.layout.checkpoints.empty() ? 0.0 : double(results::horizon(data, c));
      const std::string subject = claim.metric + "[" + claim.view + "] " + (source == HitSource::recorded ? "< " : "<= ") +
                                  real(target) + " of '" + data.layout.configurations[c].label + "'";
      // The rule, said in every verdict: a checkpoint hit can be late or missed where a recorded one is not.
      const std::string rule = source == HitSource::recorded   ? "hits recorded by the run loop: first evaluated step"
                               : source == HitSource::checkpoint ? "first stored checkpoint at or below"
                                                                 : "first stored checkpoint whose best so far is at or below";
      if (claim.kind == K::success) {
        const double by = claim.budget.empty() ? horizon : evaluate(claim.budget, data, c);
        long runs_counted = 0, reached = 0;
        for (double h : hits)
          if (!std::isnan(h)) ++runs_counted, reached += h <= by ? 1 : 0;
        const double share = runs_counted ? double(reached) / double(runs_counted) : 0.0;
        v.what = "runs reaching " + subject + " by t = " + real(by) + " (" + rule + ")";
        v.measured = std::to_string(reached) + "/" + std::to_string(runs_counted) + " runs";
        v.value = share;
        v.pass = runs_counted > 0 && share >= claim.fraction;
        v.margin = share - claim.fraction;
        v.bound = "fraction >= " + real(claim.fraction);
        return v;
      }
      // The stream key of `ratelab ert` for this target, so the interval is the one it prints.
      auto stream = results::bootstrap_stream(data, seed, {{c}, claim.view, claim.metric + "<=" + format_value(target)});
      const auto s = stats::fixed_target_summary(hits, stats::run_horizons(steps), 0.1, 0.9, {resamples, 0.95}, stream);
      v.what = "ERT (steps) to " + subject + " (" + rule + "; unsuccessful runs spend T)";
      v.measured = real(s.ert) + " CI [" + real(s.ert_ci.lo) + ", " + real(s.ert_ci.hi) + "], reached by " +
                   std::to_string(s.successes) + "/" + std::to_string(s.runs) + " runs";
      v.value = s.ert;
      v.interval = s.ert_ci;
      const double lo = evaluate(claim.expect_low, data, c), hi = evaluate(claim.expect_high, data, c);
      const bool within = claim.interval_mode == Claim::IntervalMode::within;
      v.pass = within ? (s.ert_ci.lo >= lo && s.ert_ci.hi <= hi) : in_bounds(s.ert, lo, hi);
      v.bound = std::string(within ? "interval " : "") + "in [" + real(lo) + ", " + real(hi) + "]";
      const double width = std::isfinite(hi - lo) && hi > lo ? hi - lo : 1.0;
      v.margin = std::isfinite(s.ert) ? std::min(s.ert - lo, hi - s.ert) / width : -1.0;
      return v;
    }
    case K::status: {
      const results::StatusCounts n = results::status_counts(data, c);
      v.what = "run status of '" + data.layout.configurations[c].label + "'";
      v.measured = std::to_string(n.ok) + " ok, " + std::to_string(n.diverged) + " diverged, " +
                   std::to_string(n.error) + " error" +
                   (n.nonfinite ? ", " + std::to_string(n.nonfinite) + " nonfinite" : std::string());
      v.pass = true;
      auto check = [&](const Formula& lo, const Formula& hi, long count, const char* what) {
        if (lo.empty()) return;
        const double a = evaluate(lo, data, c), b = evaluate(hi, data, c);
        v.pass = v.pass && in_bounds(double(count), a, b);
        v.bound +=
            (v.bound.empty() ? "" : ", ") + std::string(what) + " in [" + real(a) + ", " + real(b) + "]";
      };
      check(claim.ok_low, claim.ok_high, n.ok, "ok");
      check(claim.diverged_low, claim.diverged_high, n.diverged, "diverged");
      check(claim.error_low, claim.error_high, n.error, "error");
      check(claim.nonfinite_low, claim.nonfinite_high, n.nonfinite, "nonfinite");
      return v;
    }
    case K::compare:
      break;
  }
  throw ConfigError("internal: compare evaluated as a single configuration");
}

std::size_t single(const results::TraceData& data, const std::vector<std::string>& filters,
                   const Claim& claim, const char* side) {
  const auto selected = results::select_configurations(data, filters);
  if (selected.size() != 1) {
    std::string labels;
    for (auto c : selected)
      labels += (labels.empty() ? "'" : ", '") + data.layout.configurations[c].label + "'";
    throw ConfigError(where_text(claim) + side + " selects " + std::to_string(selected.size()) +
                      " configurations (" + labels +
                      "); a compare needs exactly one on each side: add filters");
  }
  return selected.front();
}

Verdict evaluate_compare(const Claim& claim, const results::TraceData& data, long seed, long resamples) {
  const std::size_t a = single(data, claim.a, claim, "a="), b = single(data, claim.b, claim, "b=");
  const Measurement ma = measure(claim, claim.measure, data, a, claim.a_view, seed, resamples);
  const Measurement mb = measure(claim, claim.measure, data, b, claim.b_view, seed, resamples);
  const double factor = evaluate(claim.factor, data, a);
  Verdict v;
  v.name = claim.name;
  const char* quantity = claim.measure == Claim::Measure::slope ? "slope of " : "";
  v.what = std::string(quantity) + what_text(claim, data, a, claim.a_view) + " vs " +
           what_text(claim, data, b, claim.b_view) + " (" + ma.at_text +
           (mb.at_text != ma.at_text ? " / " + mb.at_text : "") + ")";
  v.measured = "a = " + measured_text(ma) + ", b = " + measured_text(mb);
  if (claim.measure == Claim::Measure::at) {
    v.measured += ", a/b = " + real(ma.value / mb.value);
    if (ma.per_replicate.size() == mb.per_replicate.size() && (a != b || claim.a_view != claim.b_view)) {
      const std::string views = claim.a_view == claim.b_view ? claim.a_view : claim.a_view + "," + claim.b_view;
      auto stream = results::bootstrap_stream(data, seed, {{a, b}, views, claim.metric, ma.checkpoint});
      const auto d = stats::paired_difference(ma.per_replicate, mb.per_replicate, {resamples, 0.95}, stream);
      if (d.pairs > 0) v.measured += ", a<b in " + real(100 * d.fraction_a_smaller) + "% of pairs";
    }
  }
  if (claim.a_less) {
    // Slopes are negative: "a < b by factor k" for slopes is a <= b - (k - 1) |b| only when k = 1; keep k
    // multiplicative on the quantity itself, which is how rate ratios are stated.
    v.pass = ma.value * factor < mb.value;
    v.bound = factor == 1 ? "a < b" : "a < b / " + real(factor);
  } else {
    v.pass = ma.value > factor * mb.value;
    v.bound = factor == 1 ? "a > b" : "a > " + real(factor) + " b";
  }
  return v;
}

}  // namespace

void check_claims(const std::vector<Claim>& claims, const results::TraceData& data, bool check_metrics) {
  std::vector<std::string> problems;
  for (const auto& claim : claims) {
    const std::string at = where_text(claim);
    try {
      std::vector<std::size_t> configs;
      if (claim.kind == Claim::Kind::compare) {
        configs.push_back(single(data, claim.a, claim, "a="));
        configs.push_back(single(data, claim.b, claim, "b="));
      } else {
        configs = results::select_configurations(data, claim.where);
      }
      for (const auto& view : {claim.view, claim.a_view, claim.b_view})
        if (claim.kind != Claim::Kind::status) results::view_column(data, view);
      if (is_run_statistic(claim.metric)) {
        if (claim.kind != Claim::Kind::value && claim.kind != Claim::Kind::compare)
          throw ConfigError("metric=" + claim.metric +
                            " (a run statistic) goes with value and compare claims");
        if (claim.measure != Claim::Measure::at)
          throw ConfigError("metric=" + claim.metric + " is one number per run: measure=at only");
        if (check_metrics) run_statistic(data, claim.metric, configs.front());
      } else if (check_metrics && claim.kind != Claim::Kind::status) {
        results::metric_column(data, claim.metric);
      }
      for (auto c : configs)
        for (const Formula* f :
             {&claim.at, &claim.scale, &claim.window_from, &claim.window_to, &claim.expect_low,
              &claim.expect_high, &claim.expect_target, &claim.factor, &claim.threshold, &claim.diverged_low,
              &claim.diverged_high, &claim.error_low, &claim.error_high, &claim.ok_low, &claim.ok_high,
              &claim.nonfinite_low, &claim.nonfinite_high, &claim.target, &claim.budget})
          if (!f->empty())
            evaluate(*f, data, c, f == &claim.scale && claim.measure == Claim::Measure::at ? 1.0 : kNaN);
      const bool reads_at_checkpoint =
          claim.kind == Claim::Kind::converges ||
          ((claim.kind == Claim::Kind::value || claim.kind == Claim::Kind::compare) &&
           claim.measure == Claim::Measure::at && !is_run_statistic(claim.metric));
      if (reads_at_checkpoint && !data.layout.checkpoints.empty())
        for (auto c : configs) checkpoint_at(claim, data, c);
    } catch (const ConfigError& e) {
      for (const auto& p : e.problems()) problems.push_back(p.rfind(at, 0) == 0 ? p : at + p);
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
}

std::vector<Verdict> evaluate_claims(const std::vector<Claim>& claims, const results::TraceData& data,
                                     long seed, long resamples) {
  results::check_trace_data(data);
  check_claims(claims, data, true);
  std::vector<Verdict> out;
  for (const auto& claim : claims) {
    try {
      if (claim.kind == Claim::Kind::compare) {
        out.push_back(evaluate_compare(claim, data, seed, resamples));
        continue;
      }
      const auto configs = results::select_configurations(data, claim.where);
      std::vector<Verdict> each;
      if (claim.over_horizon)
        for (const auto& series : results::horizon_series(data, configs))
          each.push_back(evaluate_one(claim, data, series.configurations.front(), seed, resamples, &series));
      else
        for (auto c : configs) each.push_back(evaluate_one(claim, data, c, seed, resamples));
      // One line per claim: the configuration closest to (or furthest beyond) its bound, with the count.
      auto shown = std::min_element(each.begin(), each.end(), [](const Verdict& x, const Verdict& y) {
        if (x.pass != y.pass) return !x.pass;
        return x.margin < y.margin;
      });
      const long failing =
          long(std::count_if(each.begin(), each.end(), [](const Verdict& v) { return !v.pass; }));
      Verdict v = shown != each.end() ? *shown : each.front();
      if (each.size() > 1)
        v.what += " [" + std::to_string(long(each.size()) - failing) + "/" + std::to_string(each.size()) +
                  (claim.over_horizon ? " series of horizons pass; " : " configurations pass; ") +
                  (failing ? "a failing one" : "the closest to its bound") +
                  " shown]";
      out.push_back(std::move(v));
    } catch (const ConfigError& e) {
      std::vector<std::string> problems;
      const std::string at = where_text(claim);
      for (const auto& p : e.problems()) problems.push_back(p.rfind(at, 0) == 0 ? p : at + p);
      throw ConfigError(problems);
    }
  }
  return out;
}

std::string format_verdict(const Verdict& v) {
  return std::string(v.pass ? "PASS " : "FAIL ") + v.name + ": " + v.what + ": " + v.measured +
         "; expected " + v.bound;
}

std::vector<std::string> claim_metrics(const std::vector<Claim>& claims) {
  std::vector<std::string> metrics;
  for (const auto& claim : claims)
    if (!is_run_statistic(claim.metric) && std::find(metrics.begin(), metrics.end(), claim.metric) == metrics.end())
      metrics.push_back(claim.metric);
  return metrics;
}

}  // namespace ratelab::claims
