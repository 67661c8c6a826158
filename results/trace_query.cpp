#include "results/trace_query.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

namespace ratelab::results {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

void check_trace_data(const TraceData& data) {
  if (data.schema_version < kOldestReadableSchemaVersion || data.schema_version > kSchemaVersion)
    throw ConfigError("trace data has schema version " + std::to_string(data.schema_version) + "; this ratelab reads versions " +
                      std::to_string(kOldestReadableSchemaVersion) + " to " + std::to_string(kSchemaVersion));
  const std::size_t configurations = data.layout.configurations.size(), views = data.layout.views.size(),
                    replicates = std::size_t(std::max(0L, data.layout.replicates)),
                    checkpoints = data.layout.checkpoints.size();
  std::vector<std::string> problems;
  auto expect = [&](std::size_t actual, std::size_t wanted, const std::string& what) {
    if (actual != wanted)
      problems.push_back(what + " has " + std::to_string(actual) + " entries, expected " + std::to_string(wanted));
  };
  if (data.layout.replicates < 0) problems.push_back("replicates is negative");
  if (!std::is_sorted(data.layout.checkpoints.begin(), data.layout.checkpoints.end()))
    problems.push_back("checkpoints are not increasing");
  const std::size_t runs = configurations * replicates;
  expect(data.traces.size(), data.layout.metrics.size(), "traces");
  for (std::size_t m = 0; m < data.traces.size(); ++m)
    expect(data.traces[m].size(), runs * views * checkpoints,
           "traces/" + (m < data.layout.metrics.size() ? data.layout.metrics[m] : std::to_string(m)));
  expect(data.status.size(), runs, "status");
  for (const auto& [name, values] : data.run_stats) expect(values.size(), runs, "run statistic " + name);
  if (!data.metric_units.empty()) expect(data.metric_units.size(), data.layout.metrics.size(), "metric units");
  if (!data.target_steps.empty() || !data.best_so_far.empty()) {  // hitting times recorded in the run loop
    expect(data.target_steps.size(), runs * data.layout.targets.size(), "target_step");
    expect(data.target_gradient_evaluations.size(), runs * data.layout.targets.size(), "target_gradient_evaluations");
    expect(data.best_so_far.size(), runs * checkpoints, "best_so_far");
  }
  if (!problems.empty()) throw ConfigError(problems);
}

std::size_t metric_column(const TraceData& data, const std::string& metric) {
  const auto& metrics = data.layout.metrics;
  if (auto it = std::find(metrics.begin(), metrics.end(), metric); it != metrics.end())
    return std::size_t(it - metrics.begin());
  throw ConfigError(unknown_key_message("metric (not recorded in this file)", metric, metrics));
}

std::size_t view_column(const TraceData& data, const std::string& view) {
  const auto& views = data.layout.views;
  if (auto it = std::find(views.begin(), views.end(), view); it != views.end())
    return std::size_t(it - views.begin());
  throw ConfigError(unknown_key_message("iterate view (not recorded in this file)", view, views));
}

std::size_t run_index(const TraceData& data, std::size_t configuration, std::size_t replicate) {
  return configuration * std::size_t(data.layout.replicates) + replicate;
}

// ---- configurations ----------------------------------------------------------------------------------

std::vector<std::string> parameter_keys(const TraceData& data) {
  std::vector<std::string> keys;
  for (const auto& config : data.layout.configurations)
    for (const auto& [key, value] : config.parameters)
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  return keys;
}

const ParamValue* find_parameter(const ConfigurationRecord& config, const std::string& key) {
  for (const auto& [k, v] : config.parameters)
    if (k == key) return &v;
  return nullptr;
}

std::string key_value(const ConfigurationRecord& config, const std::string& key) {
  if (key == "label") return config.label;
  if (key == "id") return config.id;
  const ParamValue* v = find_parameter(config, key);
  return v ? format_value(*v) : std::string();
}

bool value_matches(const ParamValue& value, const std::string& text) {
  if (format_value(value) == text) return true;
  if (std::holds_alternative<double>(value) || std::holds_alternative<std::int64_t>(value)) {
    const double v = std::holds_alternative<double>(value) ? std::get<double>(value)
                                                          : double(std::get<std::int64_t>(value));
    if (auto parsed = parse_number(text)) return *parsed == v;
  }
  if (auto* b = std::get_if<bool>(&value)) {
    if (text == "1" || text == "yes" || text == "on") return *b;
    if (text == "0" || text == "no" || text == "off") return !*b;
  }
  return false;
}

std::vector<std::size_t> select_configurations(const TraceData& data, const std::vector<std::string>& where) {
  std::vector<std::string> available = parameter_keys(data);
  available.push_back("label");
  available.push_back("id");
  std::map<std::string, std::vector<std::string>> wanted;  // key -> accepted values
  std::vector<std::string> key_order;
  for (const auto& filter : where) {
    const auto eq = filter.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("where = '" + filter + "' is malformed: expected key=value, e.g. optimizer=sgd");
    const std::string key = filter.substr(0, eq), value = filter.substr(eq + 1);
    if (std::find(available.begin(), available.end(), key) == available.end())
      throw ConfigError(unknown_key_message("filter key (where)", key, available));
    if (!wanted.count(key)) key_order.push_back(key);
    wanted[key].push_back(value);
  }
  std::vector<std::size_t> out;
  const auto& configs = data.layout.configurations;
  for (std::size_t c = 0; c < configs.size(); ++c) {
    bool keep = true;
    for (const auto& [key, values] : wanted) {
      bool any = false;
      for (const auto& value : values) {
        if (key == "label" || key == "id") any = any || key_value(configs[c], key) == value;
        else if (const ParamValue* p = find_parameter(configs[c], key)) any = any || value_matches(*p, value);
      }
      keep = keep && any;
    }
    if (keep) out.push_back(c);
  }
  if (out.empty()) {
    std::vector<std::string> lines{"no configuration matches where = " + join(where, ", ")};
    for (const auto& key : key_order) {
      std::vector<std::string> present;
      for (const auto& config : configs) {
        std::string v = key_value(config, key);
        if (std::find(present.begin(), present.end(), v) == present.end()) present.push_back(v);
      }
      lines.push_back("values of " + key + " in this file: " + join(present, ", "));
    }
    throw ConfigError(lines);
  }
  return out;
}

// ---- checkpoints, runs, replicates ----------------------------------------------------------------------

std::size_t nearest_checkpoint(const TraceData& data, double t) {
  const auto& cp = data.layout.checkpoints;
  if (cp.empty()) throw ConfigError("the file has no checkpoints");
  std::size_t best = 0;
  for (std::size_t k = 1; k < cp.size(); ++k)
    if (std::abs(double(cp[k]) - t) < std::abs(double(cp[best]) - t)) best = k;
  return best;
}

long horizon(const TraceData& data, std::size_t configuration) {
  const auto& cp = data.layout.checkpoints;
  if (cp.empty()) throw ConfigError("the file has no checkpoints");
  if (const ParamValue* steps = find_parameter(data.layout.configurations.at(configuration), "experiment.steps"))
    if (const auto* t = std::get_if<std::int64_t>(steps)) return long(*t);
  return cp.back();
}

std::size_t horizon_checkpoint(const TraceData& data, std::size_t configuration) {
  const auto& cp = data.layout.checkpoints;
  const long T = horizon(data, configuration);
  const auto after = std::upper_bound(cp.begin(), cp.end(), T);
  return after == cp.begin() ? 0 : std::size_t(after - cp.begin()) - 1;
}

StatusCounts status_counts(const TraceData& data, std::size_t configuration) {
  StatusCounts counts;
  for (long r = 0; r < data.layout.replicates; ++r) {
    switch (data.status[run_index(data, configuration, std::size_t(r))]) {
      case RunStatus::ok: ++counts.ok; break;
      case RunStatus::diverged: ++counts.diverged; break;
      case RunStatus::error: ++counts.error; break;
      case RunStatus::nonfinite: ++counts.nonfinite; break;
      default: ++counts.other; break;
    }
  }
  return counts;
}

bool run_failed(RunStatus status) {
  return status == RunStatus::diverged || status == RunStatus::error || status == RunStatus::nonfinite;
}

bool measured(const TraceData& data, std::size_t configuration, std::size_t replicate) {
  const RunStatus status = data.status[run_index(data, configuration, replicate)];
  return status != RunStatus::error && status != RunStatus::missing;
}

stats::ReplicateMatrix replicate_matrix(const TraceData& data, std::size_t metric, std::size_t configuration,
                                        std::size_t view) {
  const std::size_t views = data.layout.views.size(), replicates = std::size_t(data.layout.replicates),
                    checkpoints = data.layout.checkpoints.size();
  stats::ReplicateMatrix matrix(static_cast<Eigen::Index>(replicates), static_cast<Eigen::Index>(checkpoints));
  const double* block = data.traces[metric].data() + ((configuration * views + view) * replicates) * checkpoints;
  constexpr double kFailed = std::numeric_limits<double>::infinity();
  // Beyond the configuration's horizon (a file of several horizons) there is nothing, failed run or not.
  const std::size_t last = horizon_checkpoint(data, configuration);
  for (std::size_t r = 0; r < replicates; ++r) {
    const RunStatus status = data.status[run_index(data, configuration, r)];
    const bool failed = run_failed(status);
    const bool has_values = measured(data, configuration, r);
    for (std::size_t k = 0; k < checkpoints; ++k) {
      if (k > last) {
        matrix(Eigen::Index(r), Eigen::Index(k)) = kNaN;
        continue;
      }
      const double v = has_values ? block[r * checkpoints + k] : kNaN;
      matrix(Eigen::Index(r), Eigen::Index(k)) = failed && !std::isfinite(v) ? kFailed : v;
    }
  }
  return matrix;
}

Budget parse_budget(const std::string& name) {
  for (std::size_t i = 0; i < kBudgetNames.size(); ++i)
    if (name == kBudgetNames[i]) return Budget(i);
  throw ConfigError(unknown_key_message("budget", name, kBudgetNames));
}

const std::string& budget_name(Budget budget) { return kBudgetNames[std::size_t(budget)]; }

std::string budget_label(Budget budget) {
  switch (budget) {
    case Budget::step: return "steps";
    case Budget::gradient_evaluations: return "gradient evaluations (oracle samples)";
    case Budget::elapsed_seconds: return "elapsed time [s]";
  }
  return "";
}

stats::ReplicateMatrix budget_matrix(const TraceData& data, std::size_t configuration, Budget budget) {
  const std::size_t replicates = std::size_t(data.layout.replicates), checkpoints = data.layout.checkpoints.size();
  stats::ReplicateMatrix matrix(static_cast<Eigen::Index>(replicates), static_cast<Eigen::Index>(checkpoints));
  if (budget == Budget::step) {
    const std::size_t last = horizon_checkpoint(data, configuration);
    for (std::size_t k = 0; k < checkpoints; ++k)
      matrix.col(Eigen::Index(k)).setConstant(k <= last ? double(data.layout.checkpoints[k]) : kNaN);
    return matrix;
  }
  const std::vector<double>& costs =
      budget == Budget::gradient_evaluations ? data.gradient_evaluations : data.elapsed_seconds;
  bool any = false;
  for (std::size_t r = 0; r < replicates; ++r) {
    const std::size_t run = run_index(data, configuration, r);
    const bool has_values = measured(data, configuration, r) && costs.size() >= (run + 1) * checkpoints;
    for (std::size_t k = 0; k < checkpoints; ++k) {
      const double v = has_values ? costs[run * checkpoints + k] : kNaN;
      matrix(Eigen::Index(r), Eigen::Index(k)) = v;
      any = any || std::isfinite(v);
    }
  }
  if (!any) {
    const auto& config = data.layout.configurations[configuration];
    throw ConfigError(
        {"configuration '" + config.label + "' (id " + config.id + ") has no " + budget_name(budget) +
             " recorded: the file was written before ratelab recorded run costs per checkpoint" +
             (budget == Budget::gradient_evaluations ? ", or its optimizer does not count its oracle samples" : ""),
         "use --budget step (plot: --x step), or re-run the experiment with this version of ratelab"});
  }
  return matrix;
}

bool has_recorded_hits(const TraceData& data, const std::string& metric, double target) {
  const auto& targets = data.layout.targets;
  return data.layout.target_metric == metric && std::find(targets.begin(), targets.end(), target) != targets.end();
}

namespace {
[[noreturn]] void no_recorded_hits(const TraceData& data, const std::string& metric, const std::string& what) {
  const auto& layout = data.layout;
  std::string recorded = "this file records ";
  if (layout.targets.empty()) {
    recorded += "no hitting times in the run loop (its experiment had no experiment.targets)";
  } else {
    recorded += "hitting times of " + layout.target_metric + " for targets ";
    for (std::size_t j = 0; j < layout.targets.size(); ++j) recorded += (j ? ", " : "") + format_value(layout.targets[j]);
  }
  throw ConfigError({"no recorded hitting times of " + metric + " " + what + ": " + recorded,
                     "use --hits checkpoint (in a claim: hits=checkpoint; the first stored checkpoint at or below the "
                     "target), or re-run with "
                     "experiment.targets (and experiment.target_metric = " + metric + ")"});
}
}  // namespace

std::vector<double> recorded_hitting_times(const TraceData& data, std::size_t configuration, const std::string& metric,
                                           double target, Budget budget) {
  if (!has_recorded_hits(data, metric, target)) no_recorded_hits(data, metric, "for target " + format_value(target));
  if (budget == Budget::elapsed_seconds)
    throw ConfigError(std::vector<std::string>{"recorded hitting times have no elapsed seconds (the run loop records the step and the "
                       "gradient evaluations at a hit)",
                       "use --budget step or --budget gradient_evaluations, or --hits checkpoint"});
  const auto& targets = data.layout.targets;
  const std::size_t T = targets.size(), j = std::size_t(std::find(targets.begin(), targets.end(), target) - targets.begin());
  const std::vector<double>& hits = budget == Budget::step ? data.target_steps : data.target_gradient_evaluations;
  std::vector<double> out;
  for (std::size_t r = 0; r < std::size_t(data.layout.replicates); ++r) {
    const std::size_t run = run_index(data, configuration, r);
    const RunStatus status = data.status[run];
    double v = hits.size() >= (run + 1) * T ? hits[run * T + j] : kNaN;
    if (!measured(data, configuration, r)) v = kNaN;
    if (run_failed(status) && !std::isfinite(v)) v = std::numeric_limits<double>::infinity();
    if (budget == Budget::gradient_evaluations && std::isnan(v) && status != RunStatus::interrupted &&
        status != RunStatus::missing) {
      const auto& config = data.layout.configurations[configuration];
      throw ConfigError({"configuration '" + config.label + "' (id " + config.id + "), replicate " + std::to_string(r) +
                             ": no gradient evaluations recorded at its hit of " + format_value(target) +
                             " (its optimizer does not count its oracle samples)",
                         "use --budget step"});
    }
    out.push_back(v);
  }
  return out;
}

stats::ReplicateMatrix best_so_far_matrix(const TraceData& data, std::size_t configuration, const std::string& metric) {
  if (data.layout.targets.empty() || data.layout.target_metric != metric) no_recorded_hits(data, metric, "(best_so_far)");
  const std::size_t replicates = std::size_t(data.layout.replicates), checkpoints = data.layout.checkpoints.size();
  stats::ReplicateMatrix matrix(static_cast<Eigen::Index>(replicates), static_cast<Eigen::Index>(checkpoints));
  for (std::size_t r = 0; r < replicates; ++r) {
    const std::size_t run = run_index(data, configuration, r);
    const bool failed = run_failed(data.status[run]);
    const bool has_values = measured(data, configuration, r) && data.best_so_far.size() >= (run + 1) * checkpoints;
    for (std::size_t k = 0; k < checkpoints; ++k) {
      const double v = has_values ? data.best_so_far[run * checkpoints + k] : kNaN;
      matrix(Eigen::Index(r), Eigen::Index(k)) = failed && !std::isfinite(v) ? std::numeric_limits<double>::infinity() : v;
    }
  }
  return matrix;
}

const std::string& hit_source_name(HitSource source) { return kHitSourceNames[std::size_t(source)]; }

const std::string kHitSourceDoc =
    "where hitting times come from: recorded (the first step the run loop evaluated with metric < target; "
    "experiment.targets), checkpoint (the first stored checkpoint at or below the target) or best_so_far (the "
    "first stored checkpoint whose best value so far is at or below it); auto: recorded when every file has "
    "them for the targets, else checkpoint";

HitSource resolve_hit_source(const std::string& option, const std::vector<const TraceData*>& data,
                             const std::string& metric, const std::string& view, const std::vector<double>& targets) {
  if (option == "checkpoint") return HitSource::checkpoint;
  if (option != "auto" && view != "last")
    throw ConfigError({"hits " + option + ": the run loop records the metric of the last iterate, not of view " + view,
                       "use view last, or hits checkpoint"});
  if (option == "recorded") return HitSource::recorded;
  if (option == "best_so_far") return HitSource::best_so_far;
  if (option != "auto")
    throw ConfigError("hits " + option + " is not one of auto, recorded, checkpoint, best_so_far");
  const bool all = view == "last" && std::all_of(data.begin(), data.end(), [&](const TraceData* d) {
    return std::all_of(targets.begin(), targets.end(), [&](double t) { return has_recorded_hits(*d, metric, t); });
  });
  return all ? HitSource::recorded : HitSource::checkpoint;
}

stats::ReplicateMatrix hit_matrix(const TraceData& data, std::size_t configuration, const std::string& metric,
                                  const std::string& view, HitSource source) {
  if (source == HitSource::best_so_far) return best_so_far_matrix(data, configuration, metric);
  return replicate_matrix(data, metric_column(data, metric), configuration, view_column(data, view));
}

std::vector<double> run_statistic_column(const TraceData& data, const std::string& name,
                                         std::size_t configuration) {
  for (const auto& [key, values] : data.run_stats) {
    if (key != name) continue;
    std::vector<double> out(std::size_t(data.layout.replicates));
    for (std::size_t r = 0; r < out.size(); ++r)
      out[r] = measured(data, configuration, r) ? values[run_index(data, configuration, r)] : kNaN;
    return out;
  }
  std::vector<std::string> names;
  for (const auto& [key, values] : data.run_stats) names.push_back("run." + key);
  throw ConfigError(unknown_key_message("run statistic (metric=run.NAME)", "run." + name, names));
}

// ---- the final value against the horizon -----------------------------------------------------------------

std::vector<HorizonSeries> horizon_series(const TraceData& data, const std::vector<std::size_t>& configurations) {
  std::vector<HorizonSeries> out;
  // A parameter equal to the horizon in every selected configuration that has it is the horizon itself, not
  // something the series differ in: Harvey's instance for horizon T (problem.T = experiment.steps), or the
  // horizon read from the problem (steps = problem.T).
  std::set<std::string> seen, not_horizon;
  for (std::size_t c : configurations)
    for (const auto& [key, value] : data.layout.configurations.at(c).parameters) {
      const auto* integer = std::get_if<std::int64_t>(&value);
      const auto* real = std::get_if<double>(&value);
      const double T = double(horizon(data, c));
      seen.insert(key);
      if (!(integer ? double(*integer) == T : real && *real == T)) not_horizon.insert(key);
    }
  // The horizon's parameters, experiment.steps first (every series shares them).
  std::vector<std::string> horizon_parameters{"experiment.steps"};
  for (const auto& key : seen)
    if (!not_horizon.count(key) && key != "experiment.steps") horizon_parameters.push_back(key);
  std::map<std::string, std::size_t> by_rest;  // the parameters but the horizon -> series
  for (std::size_t c : configurations) {
    const auto& record = data.layout.configurations.at(c);
    std::string rest;
    for (const auto& [key, value] : record.parameters)
      if (not_horizon.count(key)) rest += key + "=" + format_value(value) + ";";
    auto [it, fresh] = by_rest.try_emplace(rest, out.size());
    if (fresh) {
      HorizonSeries series;
      series.label = record.label;
      // The label without the horizon: steps=T, and a parameter equal to it with its formula (T=64 (= experiment.steps)).
      for (const std::string& key : horizon_parameters) {  // as labels show them: the short name
        const std::string tag = " " + key.substr(key.rfind('.') + 1) + "=" + std::to_string(horizon(data, c));
        const auto at = series.label.find(tag);
        std::size_t end = at + tag.size();
        if (at == std::string::npos || (end < series.label.size() && series.label[end] != ' ')) continue;
        if (const auto close = series.label.find(')', end); series.label.compare(end, 4, " (= ") == 0 && close != std::string::npos)
          end = close + 1;
        series.label.erase(at, end - at);
      }
      series.horizon_parameters = horizon_parameters;
      out.push_back(std::move(series));
    }
    HorizonSeries& series = out[it->second];
    const long T = horizon(data, c);
    const auto at = std::upper_bound(series.horizons.begin(), series.horizons.end(), T) - series.horizons.begin();
    series.horizons.insert(series.horizons.begin() + at, T);
    series.configurations.insert(series.configurations.begin() + at, c);
  }
  return out;
}

stats::ReplicateMatrix horizon_finals(const HorizonSeries& series,
                                      const std::function<stats::ReplicateMatrix(std::size_t)>& column_source,
                                      const TraceData& data) {
  stats::ReplicateMatrix finals(Eigen::Index(data.layout.replicates), Eigen::Index(series.configurations.size()));
  for (std::size_t j = 0; j < series.configurations.size(); ++j) {
    const std::size_t c = series.configurations[j];
    finals.col(Eigen::Index(j)) = column_source(c).col(Eigen::Index(horizon_checkpoint(data, c)));
  }
  return finals;
}

TraceData final_values_against_horizon(const TraceData& data, const std::string& metric) {
  const std::size_t m = metric_column(data, metric);
  std::vector<std::size_t> all(data.layout.configurations.size());
  std::iota(all.begin(), all.end(), std::size_t(0));
  const std::vector<HorizonSeries> series = horizon_series(data, all);
  if (std::none_of(series.begin(), series.end(), [](const HorizonSeries& s) { return s.horizons.size() > 1; }))
    throw ConfigError(std::vector<std::string>{"x = horizon draws the final value against T, and no two "
                       "configurations of this file differ only in experiment.steps",
                       "sweep the horizon (experiment.steps = 100, 1000, 10000, or --sweep "
                       "'experiment.steps=logspace(100,10000,3)'), or draw against t with x = step"});
  std::set<long> union_of_horizons;
  for (const auto& s : series) union_of_horizons.insert(s.horizons.begin(), s.horizons.end());
  TraceData out;
  out.schema_version = data.schema_version;
  out.layout.experiment_name = data.layout.experiment_name;
  out.layout.experiment_text = data.layout.experiment_text;
  out.layout.root = data.layout.root;
  out.layout.replicates = data.layout.replicates;
  out.layout.checkpoints.assign(union_of_horizons.begin(), union_of_horizons.end());
  out.layout.views = data.layout.views;
  out.layout.metrics = {data.layout.metrics[m]};
  if (m < data.metric_units.size()) out.metric_units = {data.metric_units[m]};
  const std::size_t S = series.size(), V = data.layout.views.size(), R = std::size_t(data.layout.replicates),
                    K = out.layout.checkpoints.size();
  out.traces.assign(1, std::vector<double>(S * V * R * K, kNaN));
  for (std::size_t s = 0; s < S; ++s) {
    ConfigurationRecord record = data.layout.configurations.at(series[s].configurations.front());
    const auto& horizon_keys = series[s].horizon_parameters;
    std::erase_if(record.parameters, [&](const auto& entry) {
      return std::find(horizon_keys.begin(), horizon_keys.end(), entry.first) != horizon_keys.end();
    });
    record.label = series[s].label;
    record.run_fingerprint.clear();
    out.layout.configurations.push_back(std::move(record));
    for (std::size_t j = 0; j < series[s].configurations.size(); ++j) {
      const std::size_t c = series[s].configurations[j];
      const std::size_t k = std::size_t(
          std::lower_bound(out.layout.checkpoints.begin(), out.layout.checkpoints.end(), series[s].horizons[j]) -
          out.layout.checkpoints.begin());
      for (std::size_t v = 0; v < V; ++v) {
        const stats::ReplicateMatrix runs = replicate_matrix(data, m, c, v);
        const Eigen::Index at = Eigen::Index(horizon_checkpoint(data, c));
        for (std::size_t r = 0; r < R; ++r) out.traces[0][((s * V + v) * R + r) * K + k] = runs(Eigen::Index(r), at);
      }
    }
  }
  out.status.assign(S * R, RunStatus::ok);
  out.stop_step.assign(S * R, out.layout.checkpoints.back());
  out.wall_seconds.assign(S * R, 0.0);
  out.eval_seconds.assign(S * R, 0.0);
  out.messages.assign(S * R, "");
  return out;
}

stats::RateFit horizon_slope(const TraceData& data, const HorizonSeries& series, const stats::ReplicateMatrix& finals,
                             const std::string& view, const std::string& metric, stats::Statistic center,
                             const stats::BootstrapOptions& bootstrap, long seed) {
  RandomStream stream = bootstrap_stream(data, seed, {series.configurations, view, metric + "|final against T"});
  const stats::FitWindow every{double(series.horizons.front()), double(series.horizons.back())};
  return stats::bootstrap_loglog_slope(finals, series.horizons, every, center, bootstrap, stream);
}

// ---- bootstrap ----------------------------------------------------------------------------------------------

RandomStream bootstrap_stream(const TraceData& data, long seed, const BootstrapSubject& subject) {
  std::string key;
  for (std::size_t c : subject.configurations) key += data.layout.configurations.at(c).id + "|";
  key += subject.view + "|" + subject.metric;
  if (subject.checkpoint >= 0) key += "|" + std::to_string(subject.checkpoint);
  return stats::bootstrap_stream(std::uint64_t(seed), key);
}

}  // namespace ratelab::results
