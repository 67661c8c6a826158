#include "tools/fixed_target_commands.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <set>

#include "results/fixed_target.hpp"
#include "results/statistics.hpp"
#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/plot.hpp"

namespace ratelab::tools {

using results::TraceData;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

using results::HitSource;

// --hits resolved once for every file and target (results::resolve_hit_source).
HitSource resolve_hits(const std::string& option, const std::vector<TraceData>& data, const std::string& metric,
                       const std::string& view, const std::vector<double>& targets) {
  std::vector<const TraceData*> files;
  for (const auto& d : data) files.push_back(&d);
  return results::resolve_hit_source(option, files, metric, view, targets);
}

// The rule, said once per table: the source of the hitting times (--hits) and the budget (--budget).
std::string hitting_rule(results::Budget budget, HitSource hits) {
  const std::string unit = budget == results::Budget::step ? "steps" : results::budget_name(budget);
  std::string source;
  switch (hits) {
    case HitSource::recorded:
      source = "hits recorded: the run's " + unit + " at the first step the run loop evaluated (every "
               "target_check_every steps and\nat every checkpoint) with metric < target (at most target_check_every - 1 "
               "steps late, never early)";
      break;
    case HitSource::checkpoint:
      source = "hits at checkpoints: the run's " + unit + " at the first stored checkpoint with metric <= target\n"
               "(conservative: the run may have crossed earlier, between checkpoints)";
      break;
    case HitSource::best_so_far:
      source = "hits from best_so_far: the run's " + unit + " at the first stored checkpoint whose best value so far "
               "(over every\nstep the run loop evaluated) is <= target (a crossing between checkpoints counts at the next one)";
      break;
  }
  return source + "; failed runs count as never reaching it;\nan unsuccessful run spends " +
         (budget == results::Budget::step
              ? std::string("T steps (the steps it was given, a diverged run too)")
              : "its " + unit + " at its last recorded checkpoint\n(a diverged run: what it spent until it stopped)");
}

void write_csv_file(const std::string& path, const std::vector<std::string>& header,
                    const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::ofstream file(path);
  if (!file) throw ConfigError("data = '" + path + "' cannot be written");
  print_table(header, rows, true, file);
  file.close();
  if (!file) throw ConfigError("data = '" + path + "': writing failed");
  out << "wrote " << path << "\n";
}

// Every configuration of each file, with the run data of `metric` only.
std::vector<TraceData> read_all(const std::vector<std::string>& files, const std::string& metric) {
  if (files.empty()) throw ConfigError("no trace file given: name one or more .h5 files");
  std::vector<TraceData> data;
  for (const auto& f : files) data.push_back(read_metrics(results::TraceReader(f), {metric}));
  return data;
}

// One configuration's runs of a metric with their budgets: what the hitting times are read from.
struct RunsWithBudgets {
  stats::ReplicateMatrix runs, budgets;  // runs: the metric, or its best so far (--hits best_so_far)
  std::vector<double> horizons;  // what each run spent (stats::run_horizons)
  HitSource source = HitSource::checkpoint;
  const TraceData* data = nullptr;
  std::size_t configuration = 0;
  std::string metric;
  results::Budget budget = results::Budget::step;

  std::vector<double> hitting_times(double target, const std::string& label) const {
    if (source == HitSource::recorded) return results::recorded_hitting_times(*data, configuration, metric, target, budget);
    auto hits = stats::hitting_times(runs, budgets, target);
    for (std::size_t r = 0; r < hits.size(); ++r) {
      // NaN from a measured run: its budget is missing at the checkpoint where it hit (a file that
      // contradicts itself), never silently a run less.
      const auto row = runs.row(Eigen::Index(r));
      if (std::isnan(hits[r]) && std::any_of(row.begin(), row.end(), [](double v) { return !std::isnan(v); }))
        throw ConfigError("configuration '" + label + "', replicate " + std::to_string(r) +
                          ": the metric is recorded at a checkpoint where its budget is not; use --budget step");
    }
    return hits;
  }
};

RunsWithBudgets runs_of(const TraceData& d, const std::string& metric, const std::string& view,
                        std::size_t configuration, results::Budget budget, HitSource hits) {
  RunsWithBudgets out{
      results::hit_matrix(d, configuration, metric, view, hits),
      results::budget_matrix(d, configuration, budget), {}, hits, &d, configuration, metric, budget};
  out.horizons = stats::run_horizons(out.budgets);
  return out;
}

// Every positive budget the selected runs recorded, once, increasing: where an ECDF or a data profile can
// step (in steps: every positive checkpoint of the files used).
std::vector<double> union_budgets(const std::vector<TraceData>& data, const std::vector<FileConfiguration>& refs,
                                  results::Budget budget) {
  std::set<double> budgets;
  for (const auto& ref : refs) {
    const auto matrix = results::budget_matrix(data[ref.file], ref.configuration, budget);
    for (Eigen::Index i = 0; i < matrix.size(); ++i)
      if (const double b = matrix.data()[i]; std::isfinite(b) && b > 0) budgets.insert(b);
  }
  if (budgets.empty())
    throw ConfigError("the selected runs recorded no " + results::budget_name(budget) + " > 0: no budget to plot");
  return {budgets.begin(), budgets.end()};
}

// A one-panel figure of step curves (ECDF, profiles), drawn by the plot machinery: legend outside.
void draw_steps(const std::string& output, const std::string& gnuplot, const std::string& title,
                const std::string& x_label, const std::string& y_label, const std::string& caption,
                const std::vector<double>& x, const std::vector<std::string>& names,
                const std::vector<std::vector<double>>& values, std::ostream& out) {
  PlotData plot;
  plot.title = title;
  plot.x_label = x_label;
  plot.y_label = y_label;
  plot.x = x;
  for (double v : x) plot.t.push_back(long(std::llround(v)));
  plot.x_log = true;
  plot.y_log = false;
  plot.steps = true;
  plot.y_min = 0;
  plot.y_max = 1;
  plot.caption = caption;
  PlotPanel panel;
  plot.legend.push_back({LegendEntry::Kind::heading, caption, 0});
  for (std::size_t i = 0; i < names.size(); ++i) {
    PlotCurve curve{i, "", names[i], names[i], 0, 0, 0, i, 0, {}, 0};
    curve.series.push_back({SeriesRole::center, "fraction", values[i], {}});
    panel.curves.push_back(std::move(curve));
    plot.legend.push_back({LegendEntry::Kind::color, names[i], i});
  }
  plot.panels.push_back(std::move(panel));
  PlotOptions options;
  options.output = output;
  options.gnuplot = gnuplot;
  draw_plot(plot, options, out);
}

}  // namespace

// ---- options ------------------------------------------------------------------------------------------------

ParamTable<ErtOptions> ErtOptions::params() {
  return {text_list(&ErtOptions::files, "files", "trace files (.h5)"),
          param(&ErtOptions::targets, "targets", unconstrained(), "targets, comma-separated: metric <= target is reached"),
          param(&ErtOptions::metric, "metric", unconstrained(), "metric (see `inspect`)"),
          param(&ErtOptions::view, "view", unconstrained(), "iterate view"),
          param(&ErtOptions::where, "where", unconstrained(), "keep configurations whose parameter key=value"),
          param(&ErtOptions::budget, "budget", one_of(results::kBudgetNames),
                "what a hitting time counts: step, gradient_evaluations (oracle samples) or elapsed_seconds"),
          param(&ErtOptions::hits, "hits", one_of(results::kHitSourceOptions), results::kHitSourceDoc),
          param(&ErtOptions::q_low, "q_low", in_closed(0, 1), "lower quantile of the hitting times"),
          param(&ErtOptions::q_high, "q_high", in_closed(0, 1), "upper quantile of the hitting times"),
          param(&ErtOptions::bootstrap, "bootstrap", at_least(1), "bootstrap resamples of the runs (ERT interval)"),
          param(&ErtOptions::confidence, "confidence", in_open(0, 1), "confidence level of the ERT interval"),
          param(&ErtOptions::seed, "seed", nonnegative(), "bootstrap seed"),
          param(&ErtOptions::csv, "csv", unconstrained(), "print CSV of every column instead of an aligned table"),
          param(&ErtOptions::data, "data", unconstrained(), "also write the CSV table to this file")};
}

ParamTable<EcdfOptions> EcdfOptions::params() {
  return {text_list(&EcdfOptions::files, "files", "trace files (.h5)"),
          param(&EcdfOptions::metric, "metric", unconstrained(), "metric (see `inspect`)"),
          param(&EcdfOptions::view, "view", unconstrained(), "iterate view"),
          param(&EcdfOptions::where, "where", unconstrained(), "keep configurations whose parameter key=value"),
          param(&EcdfOptions::budget, "budget", one_of(results::kBudgetNames),
                "the ECDF's x: step, gradient_evaluations (oracle samples) or elapsed_seconds"),
          param(&EcdfOptions::hits, "hits", one_of(results::kHitSourceOptions), results::kHitSourceDoc),
          param(&EcdfOptions::from, "from", positive(), "largest target (the easiest)"),
          param(&EcdfOptions::to, "to", positive(), "smallest target (the hardest)"),
          param(&EcdfOptions::count, "count", at_least(2), "number of log-spaced targets from `from` to `to`"),
          param(&EcdfOptions::by, "by", unconstrained(),
                "group configurations by this key (e.g. optimizer: pooled over problems and parameter values); "
                "empty: one curve per configuration"),
          param(&EcdfOptions::output, "output", unconstrained(), "figure (.png, .svg, .pdf); empty: none"),
          param(&EcdfOptions::data, "data", unconstrained(), "write the ECDF curves as CSV (group, budget, fraction)"),
          param(&EcdfOptions::csv, "csv", unconstrained(), "print the table as CSV"),
          param(&EcdfOptions::gnuplot, "gnuplot", unconstrained(), "gnuplot program")};
}

ParamTable<ProfileOptions> ProfileOptions::params() {
  return {text_list(&ProfileOptions::files, "files", "trace files (.h5)"),
          param(&ProfileOptions::metric, "metric", unconstrained(), "metric (see `inspect`)"),
          param(&ProfileOptions::view, "view", unconstrained(), "iterate view"),
          param(&ProfileOptions::where, "where", unconstrained(), "keep configurations whose parameter key=value"),
          param(&ProfileOptions::budget, "budget", one_of(results::kBudgetNames),
                "the cost's unit (ERT in it): step, gradient_evaluations (oracle samples) or elapsed_seconds"),
          param(&ProfileOptions::hits, "hits", one_of(results::kHitSourceOptions), results::kHitSourceDoc),
          param(&ProfileOptions::targets, "targets", unconstrained(),
                "targets, comma-separated: each (problem, target) is one problem of the profile"),
          param(&ProfileOptions::problem, "problem", unconstrained(),
                "keys that define a problem, comma-separated; empty: problem and every problem.* key; the other "
                "parameters define the solver"),
          param(&ProfileOptions::kind, "kind", one_of({"performance", "data"}),
                "performance (Dolan-More: fraction within a factor tau of the best ERT) or data (More-Wild: "
                "fraction solved within a budget)"),
          param(&ProfileOptions::output, "output", unconstrained(), "figure (.png, .svg, .pdf); empty: none"),
          param(&ProfileOptions::data, "data", unconstrained(), "write the profile curves as CSV (solver, x, fraction)"),
          param(&ProfileOptions::csv, "csv", unconstrained(), "print the table as CSV"),
          param(&ProfileOptions::gnuplot, "gnuplot", unconstrained(), "gnuplot program")};
}

// ---- ert ----------------------------------------------------------------------------------------------------

int ert(const ErtOptions& options, std::ostream& out) {
  return ert(options, read_all(options.files, options.metric), options.files, out);
}

int ert(const ErtOptions& options, const std::vector<TraceData>& data, const std::vector<std::string>& names,
        std::ostream& out) {
  if (options.targets.empty())
    throw ConfigError("targets is empty: give --targets 1e-2,1e-4 (metric <= target counts as reached)");
  if (!(options.q_low < options.q_high))
    throw ConfigError("q_low, q_high = " + exact(options.q_low) + ", " + exact(options.q_high) + " violates q_low < q_high");
  const auto refs = select_across_files(data, names, options.where);
  const results::Budget budget = results::parse_budget(options.budget);
  const HitSource hits = resolve_hits(options.hits, data, options.metric, options.view, options.targets);
  const bool several = data.size() > 1;
  const auto number = [&](double v, bool exact_text) { return exact_text ? exact(v) : short_real(v); };
  std::vector<std::string> header{"configuration"};
  if (several) header.push_back("file");
  for (const char* h : {"target", "reached", "runs", "ert", "ert_lo", "ert_hi", "hit_median"}) header.push_back(h);
  header.push_back("hit_q" + exact(options.q_low));
  header.push_back("hit_q" + exact(options.q_high));
  header.push_back("horizon");
  header.push_back("hits");
  std::vector<std::vector<std::string>> exact_rows, shown_rows;
  for (const auto& ref : refs) {
    const TraceData& d = data[ref.file];
    const auto runs = runs_of(d, options.metric, options.view, ref.configuration, budget, hits);
    // The most any run spent: T in steps.
    const double horizon =
        runs.horizons.empty() ? 0.0 : *std::max_element(runs.horizons.begin(), runs.horizons.end());
    for (double target : options.targets) {
      const auto times = runs.hitting_times(target, ref.label);
      RandomStream stream = results::bootstrap_stream(
          d, options.seed, {{ref.configuration}, options.view, options.metric + "<=" + exact(target)});
      const auto s = stats::fixed_target_summary(times, runs.horizons, options.q_low, options.q_high,
                                                 {options.bootstrap, options.confidence}, stream);
      for (bool exact_text : {true, false}) {
        std::vector<std::string> row{ref.label};
        if (several) row.push_back(names[ref.file]);
        row.push_back(number(target, exact_text));
        row.push_back(std::to_string(s.successes) + "/" + std::to_string(s.runs));
        row.push_back(std::to_string(s.runs));
        row.push_back(number(s.ert, exact_text));
        row.push_back(number(s.ert_ci.lo, exact_text));
        row.push_back(number(s.ert_ci.hi, exact_text));
        for (double v : {s.median, s.q_low, s.q_high, horizon}) row.push_back(number(v, exact_text));
        row.push_back(results::hit_source_name(hits));
        (exact_text ? exact_rows : shown_rows).push_back(std::move(row));
      }
    }
  }
  if (!options.data.empty()) write_csv_file(options.data, header, exact_rows, out);
  if (options.csv) {
    print_table(header, exact_rows, true, out, 1);
    return 0;
  }
  out << "fixed target: metric " << options.metric << "[" << options.view << "] "
      << (hits == HitSource::recorded ? "<" : "<=") << " target, budget in " << results::budget_label(budget) << "\n"
      << hitting_rule(budget, hits) << "\n"
      << "reached: runs that reached the target / runs; ert: (sum of the successful runs' hitting times + what "
         "each\nunsuccessful run spent) / successes (COCO, IOHanalyzer; inf with none), with a "
      << short_real(100 * options.confidence) << "% percentile\nbootstrap interval over runs (" << options.bootstrap
      << " resamples, seed " << options.seed << ");\nhit_*: quantiles of the hitting times, inf for runs that "
         "did not reach it; horizon: the most a run spent\n";
  print_table(header, shown_rows, false, out, 1);
  return 0;
}

// ---- ecdf ---------------------------------------------------------------------------------------------------

int ecdf(const EcdfOptions& options, std::ostream& out) {
  return ecdf(options, read_all(options.files, options.metric), options.files, out);
}

int ecdf(const EcdfOptions& options, const std::vector<TraceData>& data, const std::vector<std::string>& names,
         std::ostream& out) {
  const std::vector<double> targets = stats::log_spaced_targets(options.from, options.to, options.count);
  const auto refs = select_across_files(data, names, options.where);
  if (!options.by.empty()) {
    std::vector<std::string> keys{"label", "id", "file"};
    for (const auto& d : data)
      for (const auto& k : results::parameter_keys(d))
        if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    if (std::find(keys.begin(), keys.end(), options.by) == keys.end())
      throw ConfigError(unknown_key_message("group key (by)", options.by, keys));
  }
  const results::Budget budget = results::parse_budget(options.budget);
  const HitSource hits = resolve_hits(options.hits, data, options.metric, options.view, targets);
  std::vector<std::string> groups;
  std::map<std::string, std::vector<double>> pooled;
  std::map<std::string, long> members;
  for (const auto& ref : refs) {
    const TraceData& d = data[ref.file];
    const auto& config = d.layout.configurations[ref.configuration];
    std::string group = options.by.empty() ? ref.label
                        : options.by == "file" ? names[ref.file]
                                               : results::key_value(config, options.by);
    if (!options.by.empty() && options.by != "file") {
      if (group.empty()) group = "(no " + options.by + ")";
      else group = options.by + "=" + group;
    }
    if (!pooled.count(group)) groups.push_back(group);
    ++members[group];
    const auto runs = runs_of(d, options.metric, options.view, ref.configuration, budget, hits);
    auto& group_hits = pooled[group];
    for (double target : targets) {
      const auto h = runs.hitting_times(target, ref.label);
      group_hits.insert(group_hits.end(), h.begin(), h.end());
    }
  }
  // Where the curves can step: every recorded budget, and with recorded hits every hitting time too (they
  // fall between checkpoints).
  std::vector<double> budgets = union_budgets(data, refs, budget);
  if (hits == HitSource::recorded) {
    std::set<double> grid(budgets.begin(), budgets.end());
    for (const auto& [group, group_hits] : pooled)
      for (double h : group_hits)
        if (std::isfinite(h) && h > 0) grid.insert(h);
    budgets.assign(grid.begin(), grid.end());
  }
  std::vector<std::string> header{"group", "configurations", "pairs", "solved_at_T", "auc", "hits"};
  std::vector<std::vector<std::string>> rows, curves_csv;
  std::vector<std::vector<double>> values;
  for (const auto& group : groups) {
    const stats::Ecdf e = stats::runtime_ecdf(pooled[group], budgets);
    const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };
    rows.push_back({group, std::to_string(members[group]), std::to_string(e.pairs), number(e.fraction.back()),
                    number(e.auc), results::hit_source_name(hits)});
    for (std::size_t j = 0; j < budgets.size(); ++j)
      curves_csv.push_back({group, exact(budgets[j]), exact(e.fraction[j]), results::hit_source_name(hits)});
    values.push_back(e.fraction);
  }
  if (!options.data.empty())
    write_csv_file(options.data, {"group", results::budget_name(budget), "fraction", "hits"}, curves_csv, out);
  const std::string target_text = std::to_string(options.count) + " targets log-spaced from " +
                                  short_real(options.from) + " to " + short_real(options.to);
  if (options.csv) {
    print_table(header, rows, true, out, 1);
  } else {
    out << "runtime ECDF: metric " << options.metric << "[" << options.view << "] "
        << (hits == HitSource::recorded ? "< " : "<= ") << target_text << "\n"
        << hitting_rule(budget, hits) << "\n"
        << "a curve: the fraction of (run, target) pairs reached by budget b (" << results::budget_label(budget)
        << "); auc: its area over log b\nfrom b = " << short_real(budgets.front()) << " to "
        << short_real(budgets.back()) << ", divided by that range (1: every pair at the first budget; 0: none "
           "before the last)\n";
    print_table(header, rows, false, out, 1);
  }
  if (!options.output.empty()) {
    draw_steps(options.output, options.gnuplot,
               "runtime ECDF: " + options.metric + "[" + options.view + "] " + (hits == HitSource::recorded ? "< " : "<= ") +
                   target_text,
               "budget: " + results::budget_label(budget), "fraction of (run, target) pairs reached",
               target_text + ", hits " + results::hit_source_name(hits),
               budgets, groups, values, out);
  }
  return 0;
}

// ---- profile ------------------------------------------------------------------------------------------------

int profile(const ProfileOptions& options, std::ostream& out) {
  return profile(options, read_all(options.files, options.metric), options.files, out);
}

int profile(const ProfileOptions& options, const std::vector<TraceData>& data, const std::vector<std::string>& names,
            std::ostream& out) {
  if (options.targets.empty()) throw ConfigError("targets is empty: give --targets 1e-2,1e-4");
  const auto refs = select_across_files(data, names, options.where);
  const results::Budget budget = results::parse_budget(options.budget);
  const HitSource hits = resolve_hits(options.hits, data, options.metric, options.view, options.targets);
  const std::string unit = budget == results::Budget::step ? "steps" : results::budget_name(budget);
  auto is_problem_key = [&](const std::string& key) {
    if (!options.problem.empty())
      return std::find(options.problem.begin(), options.problem.end(), key) != options.problem.end();
    return key == "problem" || key.rfind("problem.", 0) == 0;
  };
  // Only the keys that vary among the selected configurations name a solver or a problem.
  std::vector<std::string> keys;
  for (const auto& d : data)
    for (const auto& k : results::parameter_keys(d))
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  for (const auto& k : options.problem)
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      throw ConfigError(unknown_key_message("problem key", k, keys));
  auto value_of = [&](const FileConfiguration& ref, const std::string& key) {
    return results::key_value(data[ref.file].layout.configurations[ref.configuration], key);
  };
  std::vector<std::string> varying;
  for (const auto& k : keys) {
    // A key set in only some configurations (heavy_ball's beta, clipped_sgd's tau) tells nothing apart that
    // the component's name does not: it names solvers only when it takes two values.
    std::set<std::string> values;
    for (const auto& ref : refs)
      if (const std::string v = value_of(ref, k); !v.empty()) values.insert(v);
    if (values.size() > 1) varying.push_back(k);
  }
  auto name_of = [&](const FileConfiguration& ref, bool problem_part) {
    std::vector<std::string> parts;
    for (const auto& k : varying)
      if (is_problem_key(k) == problem_part) {
        const std::string v = value_of(ref, k);
        if (!v.empty()) parts.push_back(k.find('.') == std::string::npos ? v : k + "=" + v);  // a component: its name
      }
    return parts.empty() ? std::string("all") : join(parts, " ");
  };
  std::vector<std::string> solvers, problems;
  std::map<std::pair<std::size_t, std::size_t>, const FileConfiguration*> cell;
  for (const auto& ref : refs) {
    const std::string s = name_of(ref, false), p = name_of(ref, true);
    auto index = [](std::vector<std::string>& list, const std::string& name) {
      auto it = std::find(list.begin(), list.end(), name);
      if (it != list.end()) return std::size_t(it - list.begin());
      list.push_back(name);
      return list.size() - 1;
    };
    const std::size_t si = index(solvers, s), pi = index(problems, p);
    if (auto [it, fresh] = cell.emplace(std::pair{pi, si}, &ref); !fresh)
      throw ConfigError("solver '" + s + "' on problem '" + p + "' is both '" + it->second->label + "' (" +
                        names[it->second->file] + ") and '" + ref.label + "' (" + names[ref.file] +
                        "): name the keys that define a problem with --problem, or select with --where");
  }
  // Cost of solver s on instance (problem, target): the ERT in the budget (+inf: never reached, or not run).
  std::vector<std::vector<double>> cost;
  std::vector<std::string> instance_names;
  for (std::size_t p = 0; p < problems.size(); ++p)
    for (double target : options.targets) {
      std::vector<double> row(solvers.size(), kInf);
      for (std::size_t s = 0; s < solvers.size(); ++s) {
        auto it = cell.find({p, s});
        if (it == cell.end()) continue;
        const TraceData& d = data[it->second->file];
        const auto runs = runs_of(d, options.metric, options.view, it->second->configuration, budget, hits);
        row[s] = stats::expected_running_time(runs.hitting_times(target, it->second->label), runs.horizons);
      }
      cost.push_back(std::move(row));
      instance_names.push_back(problems[p] + " @ " + short_real(target));
    }
  const bool performance = options.kind == "performance";
  std::vector<double> x;
  if (performance) {
    std::set<double> taus{1.0};
    double worst = 1.0;
    for (const auto& row : cost) {
      const double best = *std::min_element(row.begin(), row.end());
      if (!(std::isfinite(best) && best > 0)) continue;
      for (double c : row)
        if (std::isfinite(c)) taus.insert(c / best), worst = std::max(worst, c / best);
    }
    const double top = std::max(2.0, worst * 1.25);
    for (int i = 0; i <= 200; ++i) taus.insert(std::pow(top, double(i) / 200.0));
    x.assign(taus.begin(), taus.end());
  } else {
    x = union_budgets(data, refs, budget);
  }
  const auto curves = performance ? stats::performance_profile(cost, x) : stats::data_profile(cost, x);
  std::vector<std::string> header{"solver", "solved", performance ? "best" : "solved_at_T/10",
                                  performance ? "within_2x" : "solved_at_T", "hits"};
  std::vector<std::vector<std::string>> rows, curves_csv;
  const double horizon = x.back();
  for (std::size_t s = 0; s < solvers.size(); ++s) {
    long solved = 0;
    for (const auto& row : cost) solved += std::isfinite(row[s]) ? 1 : 0;
    const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };
    auto at = [&](double where) {
      double v = 0;
      for (std::size_t j = 0; j < x.size(); ++j)
        if (x[j] <= where) v = curves[s][j];
      return v;
    };
    rows.push_back({solvers[s], std::to_string(solved) + "/" + std::to_string(cost.size()),
                    number(performance ? at(1.0) : at(horizon / 10)), number(performance ? at(2.0) : at(horizon)),
                    results::hit_source_name(hits)});
    for (std::size_t j = 0; j < x.size(); ++j)
      curves_csv.push_back({solvers[s], exact(x[j]), exact(curves[s][j]), results::hit_source_name(hits)});
  }
  if (!options.data.empty())
    write_csv_file(options.data, {"solver", performance ? "tau" : results::budget_name(budget), "fraction", "hits"},
                   curves_csv, out);
  const std::string problems_text = std::to_string(problems.size()) + " problem" + (problems.size() > 1 ? "s" : "") +
                                    " x " + std::to_string(options.targets.size()) + " target" +
                                    (options.targets.size() > 1 ? "s" : "");
  if (options.csv) {
    print_table(header, rows, true, out, 1);
  } else {
    out << (performance ? "performance profile (Dolan & More 2002)" : "data profile (More & Wild 2009)")
        << ": metric " << options.metric << "[" << options.view << "], " << problems_text << " = "
        << cost.size() << " instances\n"
        << "cost of a solver on an instance: its ERT in " << unit << " to reach the target (inf: never)\n"
        << hitting_rule(budget, hits) << "\n"
        << (performance ? "rho(tau): fraction of instances where cost <= tau x the best solver's; best = rho(1), "
                          "within_2x = rho(2)\n"
                        : "d(b): fraction of instances with cost <= b " + unit + "\n")
        << "problems (keys " << (options.problem.empty() ? "problem, problem.*" : join(options.problem, ", "))
        << "): " << join(problems, "; ") << "\n";
    print_table(header, rows, false, out, 1);
  }
  if (!options.output.empty())
    draw_steps(options.output, options.gnuplot,
               (performance ? "performance profile: " : "data profile: ") + options.metric + "[" + options.view +
                   "], " + problems_text,
               performance ? "tau (ERT / best ERT)" : "budget: " + results::budget_label(budget),
               performance ? "fraction of instances within tau" : "fraction of instances solved",
               problems_text + ", hits " + results::hit_source_name(hits), x,
               solvers, curves, out);
  return 0;
}

}  // namespace ratelab::tools
