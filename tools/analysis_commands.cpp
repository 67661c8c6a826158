#include "tools/analysis_commands.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <iterator>
#include <optional>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <ostream>
#include <sstream>

#include "core/run.hpp"
#include "results/trace_query.hpp"

extern char** environ;

namespace ratelab::tools {

using results::TraceData;
using results::check_trace_data;
using results::find_parameter;
using results::key_value;
using results::metric_column;
using results::parameter_keys;
using results::replicate_matrix;
using results::run_index;
using results::select_configurations;
using results::status_counts;
using results::StatusCounts;
using results::view_column;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- small formatting helpers ------------------------------------------------------------------------

std::string exact(double v) { return format_value(v); }  // shortest text that round-trips

std::string short_real(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string join(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? separator : "") + items[i];
  return out;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A table printed either aligned for reading or as CSV for scripts.
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 bool csv, std::ostream& out) {
  if (csv) {
    std::vector<std::string> fields;
    for (const auto& h : header) fields.push_back(csv_field(h));
    out << join(fields, ",") << '\n';
    for (const auto& row : rows) {
      fields.clear();
      for (const auto& f : row) fields.push_back(csv_field(f));
      out << join(fields, ",") << '\n';
    }
    return;
  }
  std::vector<std::size_t> width(header.size());
  for (std::size_t j = 0; j < header.size(); ++j) width[j] = header[j].size();
  for (const auto& row : rows)
    for (std::size_t j = 0; j < row.size() && j < width.size(); ++j) width[j] = std::max(width[j], row[j].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (std::size_t j = 0; j < cells.size(); ++j) {
      std::string cell = cells[j];
      // The first column (a label) reads best left-aligned, numbers right-aligned.
      if (j == 0 || j == 1) cell += std::string(width[j] - cell.size(), ' ');
      else cell = std::string(width[j] - cell.size(), ' ') + cell;
      s += (j ? "  " : "") + cell;
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  };
  line(header);
  for (const auto& row : rows) line(row);
}

// ---- indexing and selection ----------------------------------------------------------------------------

stats::Statistic center_statistic(const std::string& center) {
  if (center == "median") return stats::Statistic::median();
  if (center == "mean") return stats::Statistic::mean();
  throw ConfigError("center = '" + center + "' is not one of median, mean");
}

std::vector<std::size_t> selected_views(const TraceData& data, const std::vector<std::string>& views) {
  std::vector<std::size_t> out;
  if (views.empty()) {
    for (std::size_t v = 0; v < data.layout.views.size(); ++v) out.push_back(v);
  } else {
    for (const auto& name : views) {
      const std::size_t v = view_column(data, name);
      if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
    }
  }
  return out;
}

std::optional<double> parse_number(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return v;
}

// The configuration named by an id, a label or an index, for `compare`.
std::size_t resolve_configuration(const TraceData& data, const std::string& name, const char* option) {
  const auto& configs = data.layout.configurations;
  for (std::size_t c = 0; c < configs.size(); ++c)
    if (configs[c].id == name) return c;
  for (std::size_t c = 0; c < configs.size(); ++c)
    if (configs[c].label == name) return c;
  if (auto index = parse_number(name); index && *index >= 0 && *index < double(configs.size()) &&
                                      std::floor(*index) == *index)
    return std::size_t(*index);
  std::vector<std::string> labels;
  for (const auto& config : configs) labels.push_back(config.label);
  if (name.empty())
    throw ConfigError(std::string(option) + " is empty: give a configuration's id, label or index (0 to " +
                      std::to_string(configs.size()) + " - 1)");
  throw ConfigError(unknown_key_message(std::string("configuration (") + option + ")", name, labels) +
                    " (or an id, or an index from 0 to " + std::to_string(configs.size() - 1) + ")");
}

std::string metric_description(const TraceData& data, std::size_t m) {
  const std::string& name = data.layout.metrics[m];
  std::string text = name;
  try {
    text += ": " + std::string(metric_doc(metric_from_name(name)));
  } catch (const ConfigError&) {
    // A metric this build does not know by name: its name is the best description there is.
  }
  if (m < data.metric_units.size() && !data.metric_units[m].empty()) text += " [" + data.metric_units[m] + "]";
  return text;
}

// The fit window in steps, checked against the stored checkpoints.
stats::FitWindow fit_window(const TraceData& data, double from, double to) {
  stats::FitWindow window = stats::last_decade(data.layout.checkpoints);
  if (from > 0) window.t_min = from;
  if (to > 0) window.t_max = to;
  if (!(window.t_min < window.t_max))
    throw ConfigError("fit window [fit_from, fit_to] = [" + exact(window.t_min) + ", " + exact(window.t_max) +
                      "] is empty: it needs fit_from < fit_to (0 means the last decade of t)");
  return window;
}

void check_quantile_pair(double lo, double hi, const std::string& what) {
  if (!(lo >= 0.0 && lo < hi && hi <= 1.0))
    throw ConfigError(what + " = " + exact(lo) + ", " + exact(hi) + " violates 0 <= low < high <= 1");
}

}  // namespace

// ---- options ------------------------------------------------------------------------------------------

ParamTable<CurveOptions> CurveOptions::params() {
  return {param(&CurveOptions::metric, "metric", unconstrained(), "metric to analyse (see `inspect`)"),
          param(&CurveOptions::views, "views", unconstrained(), "iterate views, comma-separated; empty: all"),
          param(&CurveOptions::where, "where", unconstrained(),
                "keep configurations whose parameter key=value (label= and id= also work)"),
          param(&CurveOptions::center, "center", one_of({"median", "mean"}),
                "statistic over replicates at each checkpoint")};
}

ParamTable<SummaryOptions> SummaryOptions::params() {
  return ParamTable<SummaryOptions>{
      param(&SummaryOptions::q_low, "q_low", in_closed(0, 1), "lower quantile of the final metric"),
      param(&SummaryOptions::q_high, "q_high", in_closed(0, 1), "upper quantile of the final metric"),
      param(&SummaryOptions::fit_from, "fit_from", nonnegative(), "rate window start t; 0: T/10"),
      param(&SummaryOptions::fit_to, "fit_to", nonnegative(), "rate window end t; 0: T"),
      param(&SummaryOptions::bootstrap, "bootstrap", at_least(1), "bootstrap resamples of the replicates"),
      param(&SummaryOptions::confidence, "confidence", in_open(0, 1), "confidence level of the rate interval"),
      param(&SummaryOptions::seed, "seed", nonnegative(), "bootstrap seed (intervals are reproducible)"),
      param(&SummaryOptions::csv, "csv", unconstrained(), "print CSV instead of an aligned table")}
      .with(&SummaryOptions::curves, CurveOptions::params());
}

ParamTable<CompareOptions> CompareOptions::params() {
  return {param(&CompareOptions::metric, "metric", unconstrained(), "metric to compare"),
          param(&CompareOptions::views, "views", unconstrained(), "iterate views, comma-separated; empty: all"),
          param(&CompareOptions::a, "a", unconstrained(), "configuration A: id, label or index"),
          param(&CompareOptions::b, "b", unconstrained(), "configuration B: id, label or index"),
          param(&CompareOptions::at, "at", nonnegative(), "checkpoint t compared (nearest stored); 0: last"),
          param(&CompareOptions::bootstrap, "bootstrap", at_least(1), "bootstrap resamples of the pairs"),
          param(&CompareOptions::confidence, "confidence", in_open(0, 1), "confidence level"),
          param(&CompareOptions::seed, "seed", nonnegative(), "bootstrap seed"),
          param(&CompareOptions::csv, "csv", unconstrained(), "print CSV instead of an aligned table")};
}

ParamTable<PlotOptions> PlotOptions::params() {
  return ParamTable<PlotOptions>{
      param(&PlotOptions::output, "output", unconstrained(), "figure file: .png, .svg or .pdf"),
      param(&PlotOptions::data, "data", unconstrained(), "also write the plotted numbers to this TSV file"),
      param(&PlotOptions::band, "band", in_closed(0, 1), "two quantiles drawn as a band; empty: none"),
      param(&PlotOptions::deltas, "deltas", in_open(0, 1), "high-probability curves: (1 - delta) quantiles"),
      param(&PlotOptions::theory, "theory", unconstrained(), "overlay c t^(-p) log(t)^k"),
      param(&PlotOptions::theory_p, "theory_p", unconstrained(), "theory exponent p"),
      param(&PlotOptions::theory_k, "theory_k", unconstrained(), "theory log power k"),
      param(&PlotOptions::theory_at, "theory_at", nonnegative(), "t where c is anchored to the data; 0: last"),
      param(&PlotOptions::theory_c, "theory_c", nonnegative(), "theory constant c; 0: anchored"),
      param(&PlotOptions::facet, "facet", unconstrained(), "one panel per value of this parameter"),
      param(&PlotOptions::title, "title", unconstrained(), "figure title; empty: experiment and metric"),
      param(&PlotOptions::gnuplot, "gnuplot", unconstrained(), "gnuplot program")}
      .with(&PlotOptions::curves, CurveOptions::params());
}

// ---- building blocks --------------------------------------------------------------------------------------

// ---- summary ------------------------------------------------------------------------------------------

int summary(const SummaryOptions& options, const TraceData& data, std::ostream& out) {
  check_trace_data(data);
  const std::size_t m = metric_column(data, options.curves.metric);
  const auto views = selected_views(data, options.curves.views);
  const auto configs = select_configurations(data, options.curves.where);
  const stats::Statistic center = center_statistic(options.curves.center);
  check_quantile_pair(options.q_low, options.q_high, "q_low, q_high");
  const stats::FitWindow window = fit_window(data, options.fit_from, options.fit_to);
  const stats::BootstrapOptions bootstrap{options.bootstrap, options.confidence};
  if (data.layout.checkpoints.empty()) throw ConfigError("the file has no checkpoints: nothing to summarize");
  const std::size_t last = data.layout.checkpoints.size() - 1;

  std::vector<std::string> header{"configuration", "view", "final_n", "final_median", "final_mean",
                                  "final_q" + exact(options.q_low), "final_q" + exact(options.q_high),
                                  "rate", "rate_lo", "rate_hi", "rate_se", "fit_points",
                                  "ok", "diverged", "error", "nonfinite", "other"};
  for (const auto& [name, values] : data.run_stats) header.push_back("mean_" + name);
  const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };

  std::vector<std::vector<std::string>> rows;
  for (std::size_t c : configs) {
    const auto& config = data.layout.configurations[c];
    const StatusCounts counts = status_counts(data, c);
    std::vector<std::string> stat_means;
    for (const auto& [name, values] : data.run_stats) {
      auto begin = values.begin() + std::ptrdiff_t(run_index(data, c, 0));
      stat_means.push_back(number(stats::mean(std::vector<double>(begin, begin + data.layout.replicates))));
    }
    for (std::size_t v : views) {
      const stats::ReplicateMatrix runs = replicate_matrix(data, m, c, v);
      const Eigen::VectorXd final_column = runs.col(Eigen::Index(last));
      const std::span<const double> final_values(final_column.data(), std::size_t(final_column.size()));
      RandomStream stream =
          results::bootstrap_stream(data, options.seed, {{c}, data.layout.views[v], data.layout.metrics[m]});
      const stats::RateFit rate =
          stats::bootstrap_loglog_slope(runs, data.layout.checkpoints, window, center, bootstrap, stream);
      // The rate p of metric ~ t^(-p) is minus the log-log slope, so the interval's ends swap.
      std::vector<std::string> row{config.label,
                                   data.layout.views[v],
                                   std::to_string(stats::count_finite(final_values)),
                                   number(stats::median(final_values)),
                                   number(stats::mean(final_values)),
                                   number(stats::quantile(final_values, options.q_low)),
                                   number(stats::quantile(final_values, options.q_high)),
                                   number(-rate.fit.slope),
                                   number(-rate.slope_ci.hi),
                                   number(-rate.slope_ci.lo),
                                   number(rate.fit.slope_se),
                                   std::to_string(rate.fit.points),
                                   std::to_string(counts.ok),
                                   std::to_string(counts.diverged),
                                   std::to_string(counts.error),
                                   std::to_string(counts.nonfinite),
                                   std::to_string(counts.other)};
      row.insert(row.end(), stat_means.begin(), stat_means.end());
      rows.push_back(std::move(row));
    }
  }
  if (!options.csv) {
    out << "experiment " << data.layout.experiment_name << ", metric " << metric_description(data, m) << "\n"
        << "final: t = " << data.layout.checkpoints[last] << ", over the finite runs (final_n of "
        << data.layout.replicates << ")\n"
        << "rate p: least squares of log(" << options.curves.center << " over replicates) = a - p log t for t in ["
        << short_real(window.t_min) << ", " << short_real(window.t_max) << "]; "
        << short_real(100 * options.confidence) << "% percentile bootstrap over replicates (" << options.bootstrap
        << " resamples, seed " << options.seed << ")\n";
  }
  print_table(header, rows, options.csv, out);
  return 0;
}

// ---- compare ------------------------------------------------------------------------------------------

int compare(const CompareOptions& options, const TraceData& data, std::ostream& out) {
  check_trace_data(data);
  const std::size_t m = metric_column(data, options.metric);
  const auto views = selected_views(data, options.views);
  const std::size_t a = resolve_configuration(data, options.a, "a");
  const std::size_t b = resolve_configuration(data, options.b, "b");
  if (a == b) throw ConfigError("a and b name the same configuration '" + data.layout.configurations[a].label + "'");
  const auto& checkpoints = data.layout.checkpoints;
  if (checkpoints.empty()) throw ConfigError("the file has no checkpoints: nothing to compare");
  const std::size_t k = options.at > 0 ? results::nearest_checkpoint(data, options.at) : checkpoints.size() - 1;
  const stats::BootstrapOptions bootstrap{options.bootstrap, options.confidence};
  const auto& ca = data.layout.configurations[a];
  const auto& cb = data.layout.configurations[b];

  std::vector<std::string> header{"view", "pairs", "median_a", "median_b", "median_diff", "diff_lo", "diff_hi",
                                  "mean_diff", "mean_diff_se", "fraction_a_smaller"};
  const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };
  std::vector<std::vector<std::string>> rows;
  for (std::size_t v : views) {
    const Eigen::VectorXd col_a = replicate_matrix(data, m, a, v).col(Eigen::Index(k));
    const Eigen::VectorXd col_b = replicate_matrix(data, m, b, v).col(Eigen::Index(k));
    std::span<const double> va(col_a.data(), std::size_t(col_a.size())), vb(col_b.data(), std::size_t(col_b.size()));
    RandomStream stream = results::bootstrap_stream(
        data, options.seed, {{a, b}, data.layout.views[v], data.layout.metrics[m], checkpoints[k]});
    const stats::PairedDifference d = stats::paired_difference(va, vb, bootstrap, stream);
    rows.push_back({data.layout.views[v], std::to_string(d.pairs), number(stats::median(va)),
                    number(stats::median(vb)), number(d.median), number(d.median_ci.lo), number(d.median_ci.hi),
                    number(d.mean), number(d.mean_se), number(d.fraction_a_smaller)});
  }
  if (!options.csv) {
    out << "metric " << metric_description(data, m) << " at t = " << checkpoints[k] << "\n"
        << "A: " << ca.label << " (id " << ca.id << ")\n"
        << "B: " << cb.label << " (id " << cb.id << ")\n"
        << "paired by replicate (common random numbers); diff = A - B over pairs where both are finite; "
        << short_real(100 * options.confidence) << "% percentile bootstrap of the median difference ("
        << options.bootstrap << " resamples, seed " << options.seed << ")\n";
  }
  print_table(header, rows, options.csv, out);
  return 0;
}

// ---- inspect ------------------------------------------------------------------------------------------

int inspect(const TraceData& data, std::ostream& out) {
  check_trace_data(data);
  const auto& layout = data.layout;
  out << "ratelab trace file, schema version " << data.schema_version << "\n"
      << "experiment: " << layout.experiment_name << "\n"
      << "replicates: " << layout.replicates << "\n";
  if (layout.checkpoints.empty()) {
    out << "checkpoints: none\n";
  } else {
    std::vector<std::string> ts;
    for (long t : layout.checkpoints) ts.push_back(std::to_string(t));
    out << "steps: " << layout.checkpoints.back() << "\n"
        << "checkpoints (" << ts.size() << "): " << join(ts, " ") << "\n";
  }
  out << "views: " << join(layout.views, ", ") << "\n"
      << "metrics:\n";
  for (std::size_t m = 0; m < layout.metrics.size(); ++m) out << "  " << metric_description(data, m) << "\n";
  out << "configurations (" << layout.configurations.size() << "):\n";
  for (std::size_t c = 0; c < layout.configurations.size(); ++c) {
    const auto& config = layout.configurations[c];
    const StatusCounts counts = status_counts(data, c);
    out << "  [" << c << "] " << config.label << "  (id " << config.id << ")\n"
        << "      runs: ok " << counts.ok << ", diverged " << counts.diverged << ", error " << counts.error
        << ", nonfinite " << counts.nonfinite << ", other " << counts.other << "\n";
    if (!config.f_star_source.empty()) {  // schema 1 files did not record F*
      out << "      F* = " << (config.f_star ? format_value(*config.f_star) : "unknown") << " (" << config.f_star_source;
      if (config.f_star_method != config.f_star_source) out << ": " << config.f_star_method;
      out << ")\n";
    }
    for (const auto& [key, value] : config.parameters) out << "      " << key << " = " << format_value(value) << "\n";
    for (const auto& [key, value] : config.instance)
      out << "      instance." << key << " = " << format_value(value) << "\n";
    for (long r = 0; r < layout.replicates && data.messages.size() == data.status.size(); ++r) {
      const std::size_t i = run_index(data, c, std::size_t(r));
      if (data.status[i] == RunStatus::error && !data.messages[i].empty()) {
        out << "      first error (replicate " << r << "): " << data.messages[i] << "\n";
        break;
      }
    }
  }
  if (!data.run_stats.empty()) {
    std::vector<std::string> names;
    for (const auto& [name, values] : data.run_stats) names.push_back(name);
    out << "run statistics: " << join(names, ", ") << "\n";
  }
  out << "provenance:\n";
  for (const auto& [key, value] : layout.root) out << "  " << key << " = " << format_value(value) << "\n";
  if (!layout.experiment_text.empty()) {
    out << "experiment file (resolved; `ratelab run` on it reproduces this file):\n";
    std::istringstream lines(layout.experiment_text);
    for (std::string line; std::getline(lines, line);) out << "  | " << line << "\n";
  }
  return 0;
}

// ---- plot ---------------------------------------------------------------------------------------------

namespace {

std::string quantile_name(double p) { return "q" + exact(p); }

// The facet values present among the selected configurations: numerically sorted when all are numbers,
// otherwise in file order.
std::vector<std::string> facet_values(const TraceData& data, const std::vector<std::size_t>& configs,
                                      const std::string& key) {
  std::vector<std::string> values;
  bool numeric = true;
  for (std::size_t c : configs) {
    const ParamValue* p = find_parameter(data.layout.configurations[c], key);
    const std::string text = p ? format_value(*p) : std::string("(unset)");
    numeric = numeric && p && (std::holds_alternative<double>(*p) || std::holds_alternative<std::int64_t>(*p));
    if (std::find(values.begin(), values.end(), text) == values.end()) values.push_back(text);
  }
  if (numeric)
    std::stable_sort(values.begin(), values.end(),
                     [](const std::string& x, const std::string& y) { return *parse_number(x) < *parse_number(y); });
  return values;
}

std::string extension_of(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return ext;
}

void check_plot_options(const PlotOptions& options) {
  std::vector<std::string> problems;
  if (!options.output.empty()) {
    const std::string ext = extension_of(options.output);
    if (ext != ".png" && ext != ".svg" && ext != ".pdf")
      problems.push_back("output = '" + options.output + "' has extension '" + ext +
                         "'; the terminal is chosen by extension: .png, .svg or .pdf");
  }
  // What params() cannot declare: each entry's range (band, deltas) and theory_c >= 0 are its constraints.
  if (!options.band.empty() && options.band.size() != 2)
    problems.push_back("band needs two quantiles (low,high) or none; got " + std::to_string(options.band.size()));
  if (options.band.size() == 2 && !(options.band[0] < options.band[1]))
    problems.push_back("band = " + exact(options.band[0]) + "," + exact(options.band[1]) +
                       " violates 0 <= low < high <= 1");
  if (options.theory && !(std::isfinite(options.theory_p) && std::isfinite(options.theory_k)))
    problems.push_back("theory_p and theory_k must be finite");
  for (const auto& path : {options.output, options.data}) {
    if (path.empty()) continue;
    const auto dir = std::filesystem::path(path).parent_path();
    if (!dir.empty() && !std::filesystem::is_directory(dir))
      problems.push_back("the directory of '" + path + "' does not exist: create " + dir.string() + " first");
  }
  if (!problems.empty()) throw ConfigError(problems);
}

// t^(-p) log(t)^k, the shape of the theory line; NaN where it is not positive (log 1 = 0 with k != 0).
double theory_shape(double t, double p, double k) {
  if (k != 0.0 && !(t > 1.0)) return kNaN;
  const double v = std::pow(t, -p) * (k != 0.0 ? std::pow(std::log(t), k) : 1.0);
  return std::isfinite(v) && v > 0 ? v : kNaN;
}

}  // namespace

PlotData plot_data(const PlotOptions& options, const TraceData& data) {
  check_trace_data(data);
  check_plot_options(options);
  const std::size_t m = metric_column(data, options.curves.metric);
  const auto views = selected_views(data, options.curves.views);
  const auto configs = select_configurations(data, options.curves.where);
  const stats::Statistic center = center_statistic(options.curves.center);

  std::vector<std::string> facets{""};
  if (!options.facet.empty()) {
    const auto keys = parameter_keys(data);
    if (std::find(keys.begin(), keys.end(), options.facet) == keys.end())
      throw ConfigError(unknown_key_message("facet parameter", options.facet, keys));
    facets = facet_values(data, configs, options.facet);
  }

  PlotData plot;
  plot.metric = data.layout.metrics[m];
  plot.title = !options.title.empty() ? options.title : data.layout.experiment_name + ": " + plot.metric;
  plot.x_label = "t (iterations)";
  plot.y_label = metric_description(data, m);
  plot.rows = long(views.size());
  plot.columns = long(facets.size());
  std::vector<std::size_t> columns;  // checkpoints with t > 0: a log axis has no t = 0
  for (std::size_t k = 0; k < data.layout.checkpoints.size(); ++k)
    if (data.layout.checkpoints[k] > 0) {
      columns.push_back(k);
      plot.t.push_back(data.layout.checkpoints[k]);
    }
  if (plot.t.empty()) throw ConfigError("the file has no checkpoint with t > 0: nothing to plot on log axes");

  auto make_series = [&](const stats::ReplicateMatrix& runs, stats::Statistic statistic, SeriesRole role,
                         std::string name) {
    const stats::ReplicateCurve curve = stats::replicate_curve(runs, statistic);
    PlotSeries series{role, std::move(name), {}, {}};
    for (std::size_t k : columns) {
      series.value.push_back(curve.value[k]);
      series.used.push_back(curve.used[k]);
    }
    return series;
  };

  for (std::size_t v : views) {
    for (const auto& facet : facets) {
      PlotPanel panel;
      panel.view = data.layout.views[v];
      panel.facet_value = facet;
      panel.title = "view " + panel.view + (options.facet.empty() ? "" : ", " + options.facet + " = " + facet);
      for (std::size_t c : configs) {
        const auto& config = data.layout.configurations[c];
        if (!options.facet.empty() && key_value(config, options.facet) != facet &&
            !(facet == "(unset)" && !find_parameter(config, options.facet)))
          continue;
        const StatusCounts counts = status_counts(data, c);
        PlotCurve curve{c, config.label, data.layout.replicates, counts.diverged, counts.error, {}};
        const stats::ReplicateMatrix runs = replicate_matrix(data, m, c, v);
        curve.series.push_back(make_series(runs, center, SeriesRole::center, options.curves.center));
        if (options.band.size() == 2) {
          curve.series.push_back(make_series(runs, stats::Statistic::quantile(options.band[0]), SeriesRole::band_low,
                                             quantile_name(options.band[0])));
          curve.series.push_back(make_series(runs, stats::Statistic::quantile(options.band[1]),
                                             SeriesRole::band_high, quantile_name(options.band[1])));
        }
        for (double delta : options.deltas)
          curve.series.push_back(make_series(runs, stats::Statistic::quantile(1.0 - delta),
                                             SeriesRole::high_probability, quantile_name(1.0 - delta)));
        panel.curves.push_back(std::move(curve));
      }
      if (panel.curves.empty()) continue;

      bool drawable = false;
      for (const auto& curve : panel.curves)
        for (const auto& series : curve.series)
          for (double value : series.value) drawable = drawable || (std::isfinite(value) && value > 0);
      if (!drawable)
        throw ConfigError("metric " + plot.metric + " has no finite positive value in " + panel.title +
                          ": nothing to draw on log axes");

      if (options.theory) {
        std::size_t anchor = plot.t.size() - 1;
        if (options.theory_at > 0)
          for (std::size_t j = 0; j < plot.t.size(); ++j)
            if (std::abs(std::log(double(plot.t[j]) / options.theory_at)) <
                std::abs(std::log(double(plot.t[anchor]) / options.theory_at)))
              anchor = j;
        double c = options.theory_c;
        if (c == 0) {
          const double at = double(plot.t[anchor]);
          const double shape = theory_shape(at, options.theory_p, options.theory_k);
          const double value = panel.curves.front().series.front().value[anchor];
          if (!std::isfinite(shape))
            throw ConfigError("theory_at = " + exact(at) + " cannot anchor c t^(-p) log(t)^k: log(t)^k vanishes "
                              "there; choose theory_at > 1");
          if (!(std::isfinite(value) && value > 0))
            throw ConfigError("theory cannot be anchored at t = " + exact(at) + ": the " + options.curves.center +
                              " of '" + panel.curves.front().label + "' is " + exact(value) +
                              " there; choose another theory_at or give theory_c");
          c = value / shape;
        }
        panel.theory_c = c;
        PlotSeries line{SeriesRole::theory, "theory", {}, {}};
        for (long t : plot.t) line.value.push_back(c * theory_shape(double(t), options.theory_p, options.theory_k));
        panel.theory.push_back(std::move(line));
      }
      plot.panels.push_back(std::move(panel));
    }
  }
  return plot;
}

void write_plot_tsv(const PlotData& plot, std::ostream& out) {
  out << "panel\tview\tfacet\tconfiguration\tlabel\tseries\tt\tvalue\treplicates_used\n";
  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    auto rows = [&](const std::string& configuration, const std::string& label, const PlotSeries& series) {
      for (std::size_t j = 0; j < plot.t.size(); ++j) {
        out << p << '\t' << panel.view << '\t' << panel.facet_value << '\t' << configuration << '\t' << label << '\t'
            << series.name << '\t' << plot.t[j] << '\t' << exact(series.value[j]) << '\t'
            << (series.used.empty() ? std::string() : std::to_string(series.used[j])) << '\n';
      }
    };
    for (const auto& curve : panel.curves)
      for (const auto& series : curve.series) rows(std::to_string(curve.configuration), curve.label, series);
    for (const auto& series : panel.theory) rows("", "theory", series);
  }
}

namespace {

// A gnuplot single-quoted string: only the quote itself needs escaping, by doubling.
std::string gp_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string gp_number(double v) { return std::isfinite(v) ? exact(v) : "NaN"; }

// Okabe & Ito's palette, distinguishable under the common color-vision deficiencies; black is the theory's.
const std::vector<std::string> kColors{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"};

std::string legend_title(const PlotCurve& curve) {
  std::string title = curve.label;
  std::vector<std::string> notes;
  if (curve.diverged > 0)
    notes.push_back(std::to_string(curve.diverged) + "/" + std::to_string(curve.replicates) + " diverged");
  if (curve.errors > 0) notes.push_back(std::to_string(curve.errors) + "/" + std::to_string(curve.replicates) + " failed");
  if (!notes.empty()) title += " (" + join(notes, ", ") + ")";
  return title;
}

std::string find_program(const std::string& program) {
  if (program.find('/') != std::string::npos) return access(program.c_str(), X_OK) == 0 ? program : "";
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) return candidate;
  }
  return "";
}

// Runs `program script`, its stdout and stderr into `log`; returns the exit status (-1: did not start).
int run_program(const std::string& program, const std::string& script, const std::string& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv{const_cast<char*>(program.c_str()), const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

std::string gnuplot_script(const PlotData& plot, const PlotOptions& options) {
  std::ostringstream s;
  const std::string ext = extension_of(options.output);
  const long cols = plot.columns, rows = plot.rows;
  if (ext == ".png")
    s << "set terminal pngcairo size " << 960 * cols << "," << 640 * rows
      << " enhanced font 'Sans,13' linewidth 1.5 rounded\n";
  else if (ext == ".svg")
    s << "set terminal svg size " << 960 * cols << "," << 640 * rows
      << " dynamic enhanced font 'Sans,13' linewidth 1.5 rounded background '#ffffff'\n";
  else
    s << "set terminal pdfcairo size " << 6 * cols << "in," << 4 * rows << "in enhanced font 'Sans,10' linewidth 1.5 rounded\n";
  s << "set output " << gp_string(options.output) << "\n";

  // Data first, as inline datablocks: no temporary data files, one self-contained script.
  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    for (std::size_t c = 0; c < panel.curves.size(); ++c) {
      s << "$p" << p << "c" << c << " << EOD\n";
      for (std::size_t j = 0; j < plot.t.size(); ++j) {
        s << plot.t[j];
        for (const auto& series : panel.curves[c].series) s << ' ' << gp_number(series.value[j]);
        s << '\n';
      }
      s << "EOD\n";
    }
    if (!panel.theory.empty()) {
      s << "$p" << p << "theory << EOD\n";
      for (std::size_t j = 0; j < plot.t.size(); ++j) s << plot.t[j] << ' ' << gp_number(panel.theory[0].value[j]) << '\n';
      s << "EOD\n";
    }
  }

  s << "set logscale xy\n"
       "set format x '10^{%L}'\n"
       "set format y '10^{%L}'\n"
       "set grid xtics ytics lc rgb '#d9d9d9' lw 1 dt 1\n"
       "set key left bottom spacing 1.2 samplen 3 box lc rgb '#bbbbbb' opaque\n"
       "set border lw 1.2\n";
  s << "set xlabel " << gp_string(plot.x_label) << " noenhanced\n"
    << "set ylabel " << gp_string(plot.y_label) << " noenhanced\n";
  const bool multi = plot.panels.size() > 1;
  if (multi)
    s << "set multiplot layout " << rows << "," << cols << " title " << gp_string(plot.title) << " noenhanced\n";

  for (std::size_t p = 0; p < plot.panels.size(); ++p) {
    const PlotPanel& panel = plot.panels[p];
    s << "set title " << gp_string(multi ? panel.title : plot.title + " (" + panel.title + ")") << " noenhanced\n";
    std::vector<std::string> items;
    for (std::size_t c = 0; c < panel.curves.size(); ++c) {
      const PlotCurve& curve = panel.curves[c];
      const std::string color = "lc rgb '" + kColors[c % kColors.size()] + "'";
      const int dash = 1 + int(c / kColors.size()) % 5;  // past six curves, colors repeat with new dash types
      const std::string block = "$p" + std::to_string(p) + "c" + std::to_string(c);
      std::size_t low = 0, high = 0;
      for (std::size_t i = 0; i < curve.series.size(); ++i) {
        if (curve.series[i].role == SeriesRole::band_low) low = i + 2;
        if (curve.series[i].role == SeriesRole::band_high) high = i + 2;
      }
      if (low && high)
        items.push_back(block + " using 1:" + std::to_string(low) + ":" + std::to_string(high) +
                        " with filledcurves fs transparent solid 0.18 noborder " + color + " notitle");
      items.push_back(block + " using 1:2 with lines lw 2.5 dt " + std::to_string(dash) + " " + color + " title " +
                      gp_string(legend_title(curve)) + " noenhanced");
      for (std::size_t i = 0; i < curve.series.size(); ++i)
        if (curve.series[i].role == SeriesRole::high_probability)
          items.push_back(block + " using 1:" + std::to_string(i + 2) + " with lines lw 1.5 dt 2 " + color +
                          " title " + gp_string(curve.label + ", " + curve.series[i].name) + " noenhanced");
    }
    if (!panel.theory.empty()) {
      std::string formula = "theory " + short_real(panel.theory_c) + " t^-" + short_real(options.theory_p);
      if (options.theory_k != 0) formula += " log(t)^" + short_real(options.theory_k);
      items.push_back("$p" + std::to_string(p) + "theory using 1:2 with lines lw 2 dt 4 lc rgb '#000000' title " +
                      gp_string(formula) + " noenhanced");
    }
    s << "plot " << join(items, ", \\\n     ") << "\n";
  }
  if (multi) s << "unset multiplot\n";
  s << "set output\n";
  return s.str();
}

int plot(const PlotOptions& options, const TraceData& data, std::ostream& out) {
  if (options.output.empty() && options.data.empty())
    throw ConfigError("output is empty: give a figure file (.png, .svg, .pdf) and/or data (a .tsv file)");
  const PlotData plot = plot_data(options, data);
  std::string program;
  if (!options.output.empty()) {
    program = find_program(options.gnuplot);
    if (program.empty())
      throw ConfigError("gnuplot = '" + options.gnuplot +
                        "' was not found on PATH: `plot` draws through gnuplot; install it with "
                        "`apt-get install gnuplot-nox` (or write only the numbers with data=FILE.tsv)");
  }
  if (!options.data.empty()) {
    std::ofstream tsv(options.data);
    if (!tsv) throw ConfigError("data = '" + options.data + "' cannot be written");
    write_plot_tsv(plot, tsv);
    tsv.close();
    if (!tsv) throw ConfigError("data = '" + options.data + "': writing failed");
    out << "wrote " << options.data << "\n";
  }
  if (options.output.empty()) return 0;

  std::string pattern = (std::filesystem::temp_directory_path() / "ratelab-plot-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("cannot create a temporary directory for gnuplot");
  const std::filesystem::path dir(pattern);
  const std::string script = (dir / "plot.gp").string(), log = (dir / "gnuplot.log").string();
  {
    std::ofstream file(script);
    file << gnuplot_script(plot, options);
  }
  std::filesystem::remove(options.output);  // so a stale figure can never pass for a fresh one
  const int status = run_program(program, script, log);
  std::ifstream log_file(log);
  const std::string messages((std::istreambuf_iterator<char>(log_file)), std::istreambuf_iterator<char>());
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (status != 0 || !std::filesystem::exists(options.output) || std::filesystem::file_size(options.output) == 0)
    throw std::runtime_error("gnuplot (" + program + ") failed with status " + std::to_string(status) +
                             " writing '" + options.output + "':\n" + messages);
  std::size_t curves = 0;
  for (const auto& panel : plot.panels) curves += panel.curves.size();
  out << "wrote " << options.output << " (" << plot.panels.size() << " panel" << (plot.panels.size() > 1 ? "s" : "")
      << ", " << curves << " curves)\n";
  return 0;
}

}  // namespace ratelab::tools
