#include "tools/several_files.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"

namespace ratelab::tools {

using results::TraceData;

std::vector<FileConfiguration> select_across_files(const std::vector<TraceData>& data,
                                                   const std::vector<std::string>& names,
                                                   const std::vector<std::string>& where) {
  std::vector<FileConfiguration> out;
  std::vector<std::string> misses;
  for (std::size_t f = 0; f < data.size(); ++f) {
    results::check_trace_data(data[f]);
    std::vector<std::size_t> selected;
    try {
      selected = results::select_configurations(data[f], where);
    } catch (const ConfigError& e) {
      if (data.size() == 1) throw;
      misses.push_back(names[f] + ": " + e.problems().front());
      continue;
    }
    for (std::size_t c : selected) out.push_back({f, c, data[f].layout.configurations[c].label});
  }
  if (out.empty()) {
    std::vector<std::string> lines{"no configuration matches where = " + join(where, ", ") + " in any file"};
    lines.insert(lines.end(), misses.begin(), misses.end());
    throw ConfigError(lines);
  }
  std::map<std::string, const FileConfiguration*> by_label;
  for (const auto& ref : out) {
    auto [it, fresh] = by_label.emplace(ref.label, &ref);
    if (fresh) continue;
    const FileConfiguration& first = *it->second;
    const auto& a = data[first.file].layout.configurations[first.configuration];
    const auto& b = data[ref.file].layout.configurations[ref.configuration];
    std::vector<std::string> differ;
    for (const auto& [key, value] : a.parameters) {
      const ParamValue* other = results::find_parameter(b, key);
      if (!other || format_value(*other) != format_value(value))
        differ.push_back(key + " (" + format_value(value) + " vs " + (other ? format_value(*other) : "unset") + ")");
    }
    throw ConfigError(
        {"configuration '" + ref.label + "' is in " + names[first.file] + " (id " + a.id + ") and in " +
             names[ref.file] + " (id " + b.id + "): the analysis cannot tell them apart",
         differ.empty() ? "they have the same parameters (the same study twice?)"
                        : "parameters that differ: " + join(differ, ", "),
         "keep one with --where id=" + a.id + " (or id=" + b.id + "), or compare them with --where on a parameter"});
  }
  return out;
}

namespace {
// The names every file has, in the first file's order.
std::vector<std::string> common_names(const std::vector<TraceData>& data,
                                      const std::vector<std::string>& (*of)(const TraceData&)) {
  std::vector<std::string> out;
  for (const auto& name : of(data.front()))
    if (std::all_of(data.begin(), data.end(), [&](const TraceData& d) {
          const auto& names = of(d);
          return std::find(names.begin(), names.end(), name) != names.end();
        }))
      out.push_back(name);
  return out;
}
const std::vector<std::string>& metrics_of(const TraceData& d) { return d.layout.metrics; }
const std::vector<std::string>& views_of(const TraceData& d) { return d.layout.views; }
std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
  return std::size_t(std::find(names.begin(), names.end(), name) - names.begin());
}
}  // namespace

TraceData combine_files(const std::vector<TraceData>& data, const std::vector<std::string>& names,
                        const std::vector<FileConfiguration>& refs) {
  const std::vector<std::string> metrics = common_names(data, metrics_of), views = common_names(data, views_of);
  if (metrics.empty() || views.empty()) {
    std::vector<std::string> lines{std::string("the files share no ") + (metrics.empty() ? "metric" : "iterate view") +
                                   ": nothing can be analysed across them"};
    for (std::size_t f = 0; f < data.size(); ++f)
      lines.push_back(names[f] + ": " + join(metrics.empty() ? data[f].layout.metrics : data[f].layout.views, ", "));
    throw ConfigError(lines);
  }
  // A run's count is out of its file's replicates in every table ("finished 98/100"); files of different sizes
  // would count the smaller ones' absent runs as not finished.
  for (std::size_t f = 1; f < data.size(); ++f)
    if (data[f].layout.replicates != data.front().layout.replicates)
      throw ConfigError({names.front() + " has " + std::to_string(data.front().layout.replicates) + " replicates and " +
                             names[f] + " " + std::to_string(data[f].layout.replicates) +
                             ": summary, compare and plot across files need the same number",
                         "run the smaller study with --set experiment.replicates=" +
                             std::to_string(std::max(data.front().layout.replicates, data[f].layout.replicates)) +
                             " (--reuse keeps its runs), or read them with ert, ecdf or profile, which take any"});
  std::set<long> steps;
  std::set<std::string> experiment_names;
  bool same_checkpoints = true;
  for (const auto& d : data) {
    steps.insert(d.layout.checkpoints.begin(), d.layout.checkpoints.end());
    same_checkpoints = same_checkpoints && d.layout.checkpoints == data.front().layout.checkpoints;
  }
  TraceData out;
  out.schema_version = data.front().schema_version;
  for (const auto& d : data) out.schema_version = std::min(out.schema_version, d.schema_version);
  std::string title;
  for (const auto& d : data)
    if (experiment_names.insert(d.layout.experiment_name).second)
      title += (title.empty() ? "" : " + ") + d.layout.experiment_name;
  out.layout.experiment_name = title;
  // Provenance of the first file; its presentation sections ([plot], [summary]) are one study's, not all of them.
  out.layout.root = data.front().layout.root;
  std::erase_if(out.layout.root, [](const auto& entry) { return entry.first == "plot" || entry.first == "summary"; });
  out.layout.replicates = data.front().layout.replicates;  // every file's (checked above)
  out.layout.checkpoints.assign(steps.begin(), steps.end());
  out.layout.views = views;
  out.layout.metrics = metrics;
  for (const auto& m : metrics) {
    const auto& first = data.front();
    const std::size_t i = index_of(first.layout.metrics, m);
    out.metric_units.push_back(i < first.metric_units.size() ? first.metric_units[i] : std::string());
  }
  const std::size_t C = refs.size(), V = views.size(), R = std::size_t(out.layout.replicates), K = steps.size();
  out.traces.assign(metrics.size(), std::vector<double>(C * V * R * K, std::numeric_limits<double>::quiet_NaN()));
  out.status.assign(C * R, RunStatus::missing);
  out.stop_step.assign(C * R, -1);
  out.wall_seconds.assign(C * R, 0.0);
  out.eval_seconds.assign(C * R, 0.0);
  out.messages.assign(C * R, "");
  const bool costs = std::all_of(data.begin(), data.end(), [](const TraceData& d) { return !d.gradient_evaluations.empty(); });
  if (costs) {
    out.gradient_evaluations.assign(C * R * K, std::numeric_limits<double>::quiet_NaN());
    out.elapsed_seconds.assign(C * R * K, std::numeric_limits<double>::quiet_NaN());
  }
  // Every run statistic any file records (a clipped optimizer's clip fraction beside an unclipped baseline): NaN
  // for the runs of files without it, as for the configurations of one file whose component does not report it.
  std::vector<std::string> statistics;
  for (const auto& d : data)
    for (const auto& [name, values] : d.run_stats)
      if (std::find(statistics.begin(), statistics.end(), name) == statistics.end())
        statistics.push_back(name), out.run_stats.emplace_back(name, std::vector<double>(C * R, std::numeric_limits<double>::quiet_NaN()));
  for (std::size_t i = 0; i < C; ++i) {
    const TraceData& d = data[refs[i].file];
    const std::size_t c = refs[i].configuration, Kf = d.layout.checkpoints.size();
    results::ConfigurationRecord record = d.layout.configurations[c];
    if (!same_checkpoints && !results::find_parameter(record, "experiment.steps"))
      record.parameters.emplace_back("experiment.steps", std::int64_t(results::horizon(d, c)));
    out.layout.configurations.push_back(std::move(record));
    std::vector<std::size_t> column(Kf);  // each of the file's checkpoints in the union
    for (std::size_t k = 0; k < Kf; ++k)
      column[k] = std::size_t(std::lower_bound(out.layout.checkpoints.begin(), out.layout.checkpoints.end(),
                                               d.layout.checkpoints[k]) - out.layout.checkpoints.begin());
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t from = c * R + r, to = i * R + r;
      out.status[to] = d.status[from];
      out.stop_step[to] = d.stop_step[from];
      out.wall_seconds[to] = d.wall_seconds[from];
      out.eval_seconds[to] = d.eval_seconds[from];
      out.messages[to] = d.messages[from];
      for (const auto& [name, values] : d.run_stats) out.run_stats[index_of(statistics, name)].second[to] = values[from];
      for (std::size_t k = 0; costs && k < Kf; ++k) {
        out.gradient_evaluations[to * K + column[k]] = d.gradient_evaluations[from * Kf + k];
        out.elapsed_seconds[to * K + column[k]] = d.elapsed_seconds[from * Kf + k];
      }
      for (std::size_t m = 0; m < metrics.size(); ++m) {
        const std::size_t fm = index_of(d.layout.metrics, metrics[m]);
        for (std::size_t v = 0; v < V; ++v) {
          const std::size_t fv = index_of(d.layout.views, views[v]);
          for (std::size_t k = 0; k < Kf; ++k)
            out.traces[m][((i * V + v) * R + r) * K + column[k]] = d.trace(fm, c, fv, r, k);
        }
      }
    }
  }
  return out;
}

}  // namespace ratelab::tools
