#include "tools/analysis_commands.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <sstream>

#include "core/run.hpp"
#include "experiments/experiment.hpp"
#include "results/trace_query.hpp"

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

// ---- small formatting helpers (declared in the header: plot.cpp uses them too) -------------------------

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

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 bool csv, std::ostream& out, std::size_t left_aligned) {
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
      // Labels read best left-aligned, numbers right-aligned.
      if (j < left_aligned) cell += std::string(width[j] - cell.size(), ' ');
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

namespace {

// The configuration named by an id, a label or an index, for `compare`.
std::size_t resolve_configuration(const TraceData& data, const std::string& name, const char* option) {
  const auto& configs = data.layout.configurations;
  for (std::size_t c = 0; c < configs.size(); ++c)
    if (configs[c].id == name) return c;
  for (std::size_t c = 0; c < configs.size(); ++c)
    if (configs[c].label == name) return c;
  std::string selector_problem;
  if (name.find('=') != std::string::npos) {
    // Not a label: key=value selectors, as --where and claims' a=/b= take them (comma-separated: all must hold).
    std::vector<std::string> filters;
    std::string item;
    for (char ch : name + ",") {
      if (ch != ',') { item += ch; continue; }
      while (!item.empty() && item.front() == ' ') item.erase(item.begin());
      if (!item.empty()) filters.push_back(item);
      item.clear();
    }
    std::vector<std::size_t> selected;
    try {
      selected = select_configurations(data, filters);
    } catch (const ConfigError& e) {
      selector_problem = e.problems().front();  // perhaps a mistyped label: said below with the labels
    }
    if (selected.size() == 1) return selected.front();
    if (selector_problem.empty()) {
    std::vector<std::string> labels;
    for (std::size_t c : selected) labels.push_back("'" + configs[c].label + "'");
    throw ConfigError(std::string(option) + " = " + name + " selects " + std::to_string(selected.size()) +
                      " configurations (" + join(labels, ", ") + "): a comparison needs exactly one; add a key=value");
    }
  }
  if (auto index = parse_number(name); index && *index >= 0 && *index < double(configs.size()) &&
                                      std::floor(*index) == *index)
    return std::size_t(*index);
  std::vector<std::string> labels;
  for (const auto& config : configs) labels.push_back(config.label);
  if (name.empty())
    throw ConfigError(std::string(option) + " is empty: give a configuration's id, label or index (0 to " +
                      std::to_string(configs.size()) + " - 1)");
  throw ConfigError(unknown_key_message(std::string("configuration (") + option + ")", name, labels) +
                    " (or an id, or an index from 0 to " + std::to_string(configs.size() - 1) + ")" +
                    (selector_problem.empty() ? std::string() : "; read as key=value selectors: " + selector_problem));
}

}  // namespace

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

namespace {

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
      param(&SummaryOptions::csv, "csv", unconstrained(), "print CSV of every column instead of an aligned table"),
      param(&SummaryOptions::wide, "wide", unconstrained(),
            "every column aligned (mean, slope standard error, fit points, status counts, run statistics)"),
      param(&SummaryOptions::fit, "fit", unconstrained(),
            "rate model: power (log-log slope), contraction (rho per step: log metric against t), auto (the "
            "line that fits log(center) better, smaller residual sum of squares); empty: the file's "
            "[summary] fit, else power")}
      .with(&SummaryOptions::curves, CurveOptions::params());
}

ParamTable<CompareOptions> CompareOptions::params() {
  return {param(&CompareOptions::metric, "metric", unconstrained(), "metric to compare"),
          param(&CompareOptions::views, "views", unconstrained(), "iterate views, comma-separated; empty: all"),
          param(&CompareOptions::a, "a", unconstrained(),
                "configuration A: id, label, index, or key=value selectors as --where (optimizer=clipped_sgd)"),
          param(&CompareOptions::b, "b", unconstrained(), "configuration B: as --a"),
          param(&CompareOptions::at, "at", nonnegative(), "checkpoint t compared (nearest stored); 0: last"),
          param(&CompareOptions::bootstrap, "bootstrap", at_least(1), "bootstrap resamples of the pairs"),
          param(&CompareOptions::confidence, "confidence", in_open(0, 1), "confidence level"),
          param(&CompareOptions::seed, "seed", nonnegative(), "bootstrap seed"),
          param(&CompareOptions::csv, "csv", unconstrained(), "print CSV instead of an aligned table")};
}

// ---- building blocks --------------------------------------------------------------------------------------

// ---- summary ------------------------------------------------------------------------------------------

std::string summary_fit(const std::string& fit, const TraceData& data) {
  static const std::vector<std::string> models{"power", "contraction", "auto"};
  std::string chosen = fit;
  std::string where = "fit";
  if (chosen.empty() && !data.layout.experiment_text.empty()) {
    std::optional<IniDocument> stored;
    try {
      stored = parse_ini(data.layout.experiment_text, "the file's stored experiment");
    } catch (const ConfigError&) {
      // Not an experiment file's text (files written by hand, by tests): it has no [summary] to read.
    }
    if (stored)
      for (const auto& section : stored->sections)
        if (section.name == "summary")
          for (const auto& entry : section.entries)
            if (entry.key == "fit") chosen = entry.value, where = "the file's [summary] fit";
  }
  if (chosen.empty()) return "power";
  if (std::find(models.begin(), models.end(), chosen) == models.end())
    throw ConfigError(where + " = '" + chosen + "' is not one of power, contraction, auto");
  return chosen;
}

namespace {

// Where a command that looks at one configuration at a time finds configuration c's runs: a TraceData that
// holds them (the whole file, or a window of it read by TraceReader::window) and c's index in it.
struct RunsOf {
  const TraceData& data;
  std::size_t index;
};
using RunSource = std::function<RunsOf(std::size_t configuration)>;

// Reads `reader`'s configurations a window at a time (about `window_bytes` of the named metrics' run data, at
// least one configuration), for configurations asked for in increasing order: memory bounded by the window.
class WindowedRuns {
 public:
  WindowedRuns(const results::TraceReader& reader, std::size_t window_bytes, std::vector<std::string> metrics,
               bool extra_metrics = false)
      : reader_(reader), metrics_(std::move(metrics)), extra_(extra_metrics) {
    const auto& layout = reader.outline().layout;
    const std::size_t extra = extra_metrics ? layout.extra_metrics.size() : 0;
    const std::size_t run_bytes = 8 * (metrics_.size() * layout.views.size() + extra + 1) * layout.checkpoints.size() + 64;
    per_window_ = std::max<std::size_t>(1, window_bytes / (run_bytes * std::size_t(std::max(1L, layout.replicates))));
  }
  RunsOf operator()(std::size_t c) {
    if (!window_ || c < begin_ || c >= begin_ + window_->layout.configurations.size()) {
      window_.reset();  // release the previous window before reading the next
      begin_ = c;
      window_ = reader_.window(c, c + per_window_, metrics_, extra_);
      check_trace_data(*window_);
    }
    return {*window_, c - begin_};
  }

 private:
  const results::TraceReader& reader_;
  std::vector<std::string> metrics_;
  bool extra_ = false;
  std::size_t per_window_ = 1, begin_ = 0;
  std::optional<TraceData> window_;
};

int summary_of(const SummaryOptions& options, const TraceData& data, const std::vector<std::string>& stat_names,
               const RunSource& runs_of, std::ostream& out) {
  const std::size_t m = metric_column(data, options.curves.metric);
  const auto views = selected_views(data, options.curves.views);
  const auto configs = select_configurations(data, options.curves.where);
  const stats::Statistic center = center_statistic(options.curves.center);
  check_quantile_pair(options.q_low, options.q_high, "q_low, q_high");
  const stats::FitWindow window = fit_window(data, options.fit_from, options.fit_to);
  const stats::BootstrapOptions bootstrap{options.bootstrap, options.confidence};
  const std::string fit = summary_fit(options.fit, data);
  if (data.layout.checkpoints.empty()) throw ConfigError("the file has no checkpoints: nothing to summarize");
  const std::size_t last = data.layout.checkpoints.size() - 1;
  const long R = data.layout.replicates;
  const bool one_run = R == 1;

  std::vector<std::string> header{"configuration", "view", "final_n", "final_finished", "final_median", "final_mean",
                                  "final_mean_lo", "final_mean_hi",
                                  "final_q" + exact(options.q_low), "final_q" + exact(options.q_high),
                                  "slope", "slope_lo", "slope_hi", "slope_se", "fit_points", "fit", "rho", "rho_lo",
                                  "rho_hi", "ok", "diverged", "error", "nonfinite", "other"};
  for (const auto& name : stat_names) header.push_back("mean_" + name);
  const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };
  const auto interval_text = [&](stats::Interval ci) {
    return one_run ? std::string("n/a (one run)") : "[" + number(ci.lo) + ", " + number(ci.hi) + "]";
  };

  std::vector<std::vector<std::string>> rows;
  // The default table: what fits in 120 columns (summary_narrow_width), the rest behind --wide and --csv.
  const std::vector<std::string> narrow_header{"configuration", "view", "final_median",
                                               "final_q" + exact(options.q_low), "final_q" + exact(options.q_high),
                                               fit == "power" ? "slope" : fit == "contraction" ? "rho" : "rate",
                                               short_real(100 * options.confidence) + "% interval", "finished"};
  std::vector<std::vector<std::string>> narrow_rows;
  bool any_failed = false;
  for (std::size_t c : configs) {
    const auto& config = data.layout.configurations[c];
    const auto [runs_data, index] = runs_of(c);
    const std::size_t runs_metric = metric_column(runs_data, options.curves.metric);
    const StatusCounts counts = status_counts(runs_data, index);
    std::vector<std::string> stat_means;
    for (const auto& [name, values] : runs_data.run_stats) {
      auto begin = values.begin() + std::ptrdiff_t(run_index(runs_data, index, 0));
      stat_means.push_back(number(stats::mean(std::vector<double>(begin, begin + data.layout.replicates))));
    }
    for (std::size_t v : views) {
      const stats::ReplicateMatrix runs = replicate_matrix(runs_data, runs_metric, index, v);
      const Eigen::VectorXd final_column = runs.col(Eigen::Index(last));
      const std::span<const double> final_values(final_column.data(), std::size_t(final_column.size()));
      // One subject, one stream key: the power and the contraction fit each draw the resamples verify's
      // slope and contraction claims draw (results::bootstrap_stream), so the intervals are the same bits.
      const results::BootstrapSubject subject{{index}, data.layout.views[v], data.layout.metrics[m]};
      RandomStream stream = results::bootstrap_stream(runs_data, options.seed, subject);
      const stats::RateFit rate =
          stats::bootstrap_loglog_slope(runs, data.layout.checkpoints, window, center, bootstrap, stream);
      const stats::RateModel model =
          fit == "power"         ? stats::RateModel::power
          : fit == "contraction" ? stats::RateModel::contraction
                                 : stats::choose_rate_model(runs, data.layout.checkpoints, window, center);
      std::optional<stats::RateFit> contraction;
      if (model == stats::RateModel::contraction) {
        RandomStream again = results::bootstrap_stream(runs_data, options.seed, subject);
        contraction = stats::bootstrap_contraction(runs, data.layout.checkpoints, window, center, bootstrap, again);
      }
      const std::size_t present = stats::count_present(final_values), finite = stats::count_finite(final_values);
      any_failed = any_failed || finite < present;
      const stats::MeanInterval mean = stats::mean_interval(final_values, options.confidence);
      // One sign convention everywhere (claims' `slope`, plots): the log-log slope, negative when converging.
      const std::string rate_text = contraction ? (fit == "auto" ? "rho " : "") + number(stats::contraction_factor(*contraction))
                                                : (fit == "auto" ? "slope " : "") + number(rate.fit.slope);
      narrow_rows.push_back({config.label, data.layout.views[v], number(stats::median(final_values)),
                             number(stats::quantile(final_values, options.q_low)),
                             number(stats::quantile(final_values, options.q_high)), rate_text,
                             interval_text(contraction ? stats::contraction_interval(*contraction) : rate.slope_ci),
                             std::to_string(finite) + "/" + std::to_string(R)});
      const auto blank_unless = [&](bool shown, double v) { return shown ? number(v) : std::string(); };
      std::vector<std::string> row{config.label,
                                   data.layout.views[v],
                                   std::to_string(present),
                                   std::to_string(finite),
                                   number(stats::median(final_values)),
                                   number(mean.mean),
                                   number(mean.interval.lo),
                                   number(mean.interval.hi),
                                   number(stats::quantile(final_values, options.q_low)),
                                   number(stats::quantile(final_values, options.q_high)),
                                   number(rate.fit.slope),
                                   number(rate.slope_ci.lo),
                                   number(rate.slope_ci.hi),
                                   number(rate.fit.slope_se),
                                   std::to_string(rate.fit.points),
                                   contraction ? "contraction" : "power",
                                   blank_unless(bool(contraction), contraction ? stats::contraction_factor(*contraction) : 0),
                                   blank_unless(bool(contraction), contraction ? stats::contraction_interval(*contraction).lo : 0),
                                   blank_unless(bool(contraction), contraction ? stats::contraction_interval(*contraction).hi : 0),
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
        << "final: t = " << data.layout.checkpoints[last] << ", over the " << R << " run" << (one_run ? "" : "s")
        << "; finished = runs with a finite value at t; a diverged or errored run\n"
        << "       counts as +inf (the median is inf when more than half did not finish, the mean when one did not)\n";
    if (fit != "contraction")
      out << "slope: least squares of log(" << options.curves.center << " over replicates) = a + slope log t for t in ["
          << short_real(window.t_min) << ", " << short_real(window.t_max) << "] (t^-1 has slope -1)\n";
    if (fit != "power")
      out << "rho:   exp(slope of log(" << options.curves.center << " over replicates) against t) for t in ["
          << short_real(window.t_min) << ", " << short_real(window.t_max) << "]: the per-step contraction C rho^t\n";
    if (fit == "auto")
      out << "rate:  auto: per row, the line (log t or t) with the smaller residual sum of squares\n";
    out << "interval: " << short_real(100 * options.confidence) << "% percentile bootstrap over replicates ("
        << options.bootstrap << " resamples, seed " << options.seed << ")"
        << (one_run ? "; n/a: one run, nothing to resample" : "") << "\n";
    if (any_failed) out << "(a row with finished < " << R << ": runs that did not finish count as +inf)\n";
  }
  if (options.csv || options.wide) {
    print_table(header, rows, options.csv, out);
    return 0;
  }
  // Labels too long for 120 columns are listed above the table, which names configurations by index.
  std::size_t other_width = 0;
  for (std::size_t j = 1; j < narrow_header.size(); ++j) {
    std::size_t w = narrow_header[j].size();
    for (const auto& row : narrow_rows) w = std::max(w, row[j].size());
    other_width += w + 2;
  }
  std::size_t label_width = narrow_header[0].size();
  for (const auto& row : narrow_rows) label_width = std::max(label_width, row[0].size());
  if (label_width + other_width > summary_narrow_width) {
    out << "configurations:\n";
    std::size_t row = 0;
    for (std::size_t c : configs) {
      out << "  [" << c << "] " << data.layout.configurations[c].label << "\n";
      for (std::size_t n = 0; n < views.size(); ++n) narrow_rows[row++][0] = "[" + std::to_string(c) + "]";
    }
  }
  print_table(narrow_header, narrow_rows, false, out);
  out << "(--wide: also the mean with its Student t interval, final_n, slope_se, fit points, status counts, run\n"
         " statistics; --csv: all, exact)\n";
  return 0;
}

}  // namespace

int summary(const SummaryOptions& options, const TraceData& data, std::ostream& out) {
  check_trace_data(data);
  std::vector<std::string> stat_names;
  for (const auto& [name, values] : data.run_stats) stat_names.push_back(name);
  return summary_of(options, data, stat_names, [&](std::size_t c) { return RunsOf{data, c}; }, out);
}

int summary(const SummaryOptions& options, const results::TraceReader& reader, std::ostream& out, std::size_t window_bytes) {
  const TraceData& outline = reader.outline();
  metric_column(outline, options.curves.metric);  // an unknown metric is named before anything is read
  WindowedRuns windows(reader, window_bytes, {options.curves.metric});
  return summary_of(options, outline, reader.run_statistics(), std::ref(windows), out);
}

// ---- compare ------------------------------------------------------------------------------------------

namespace {

// compare on `data` (the whole file or its outline); configuration c's runs are runs_of(c), as summary's.
int compare_of(const CompareOptions& options, const TraceData& data, const RunSource& runs_of, std::ostream& out) {
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

  std::vector<std::string> header{"view", "pairs", "finished_a", "finished_b", "median_a", "median_b", "median_diff",
                                  "diff_lo", "diff_hi", "mean_diff", "mean_diff_se", "fraction_a_smaller"};
  const auto number = [&](double v) { return options.csv ? exact(v) : short_real(v); };
  std::vector<std::vector<std::string>> rows;
  const auto column = [&](std::size_t c, std::size_t v) -> Eigen::VectorXd {
    const auto [runs_data, index] = runs_of(c);
    return replicate_matrix(runs_data, metric_column(runs_data, options.metric), index, v).col(Eigen::Index(k));
  };
  for (std::size_t v : views) {
    const Eigen::VectorXd col_a = column(a, v);
    const Eigen::VectorXd col_b = column(b, v);
    std::span<const double> va(col_a.data(), std::size_t(col_a.size())), vb(col_b.data(), std::size_t(col_b.size()));
    RandomStream stream = results::bootstrap_stream(
        data, options.seed, {{a, b}, data.layout.views[v], data.layout.metrics[m], checkpoints[k]});
    const stats::PairedDifference d = stats::paired_difference(va, vb, bootstrap, stream);
    const auto finished = [&](std::span<const double> x) {
      return std::to_string(stats::count_finite(x)) + "/" + std::to_string(data.layout.replicates);
    };
    rows.push_back({data.layout.views[v], std::to_string(d.pairs), finished(va), finished(vb), number(stats::median(va)),
                    number(stats::median(vb)), number(d.median), number(d.median_ci.lo), number(d.median_ci.hi),
                    number(d.mean), number(d.mean_se), number(d.fraction_a_smaller)});
  }
  if (!options.csv) {
    out << "metric " << metric_description(data, m) << " at t = " << checkpoints[k] << "\n"
        << "A: " << ca.label << " (id " << ca.id << ")\n"
        << "B: " << cb.label << " (id " << cb.id << ")\n"
        << "paired by replicate (common random numbers); diff = A - B over pairs where both were measured; a diverged "
           "or errored run counts as +inf (both: a tie); finished = runs with a finite value at t;\n"
        << short_real(100 * options.confidence) << "% percentile bootstrap of the median difference ("
        << options.bootstrap << " resamples, seed " << options.seed << ")\n";
  }
  print_table(header, rows, options.csv, out);
  return 0;
}

}  // namespace

int compare(const CompareOptions& options, const TraceData& data, std::ostream& out) {
  check_trace_data(data);
  return compare_of(options, data, [&](std::size_t c) { return RunsOf{data, c}; }, out);
}

int compare(const CompareOptions& options, const results::TraceReader& reader, std::ostream& out) {
  const TraceData& outline = reader.outline();
  metric_column(outline, options.metric);  // an unknown metric is named before anything is read
  // Only the two configurations compared are read, each on its own (memory: two configurations' runs of
  // one metric).
  std::map<std::size_t, TraceData> read;
  return compare_of(options, outline, [&](std::size_t c) {
    auto it = read.find(c);
    if (it == read.end()) {
      it = read.emplace(c, reader.window(c, c + 1, {options.metric})).first;
      check_trace_data(it->second);
    }
    return RunsOf{it->second, 0};
  }, out);
}

// ---- inspect ------------------------------------------------------------------------------------------

namespace {
std::string f_star_text(const results::ConfigurationRecord& config) {
  std::string text = (config.f_star ? format_value(*config.f_star) : "unknown") + " (" + config.f_star_source;
  if (config.f_star_method != config.f_star_source) text += ": " + config.f_star_method;
  return text + ")";
}
// Every parameter and instance measurement of a configuration, as `key = value` shows them.
std::vector<std::pair<std::string, std::string>> parameter_cells(const results::ConfigurationRecord& config) {
  std::vector<std::pair<std::string, std::string>> cells;
  for (const auto& [key, value] : config.parameters) cells.emplace_back(key, format_value(value));
  for (const auto& [key, value] : config.instance) cells.emplace_back("instance." + key, format_value(value));
  return cells;
}
// "(replicate r): message" of the configuration's first errored run, or "".
std::string first_error(const TraceData& data, std::size_t c) {
  for (long r = 0; r < data.layout.replicates && data.messages.size() == data.status.size(); ++r) {
    const std::size_t i = run_index(data, c, std::size_t(r));
    if (data.status[i] == RunStatus::error && !data.messages[i].empty())
      return "(replicate " + std::to_string(r) + "): " + data.messages[i];
  }
  return "";
}

// inspect of `data` (the whole file or its outline): `first_errors[c]` is first_error's text for configuration
// c, `stat_names` the run statistics the file holds, `integrity` a line on the checksums (empty: none).
int inspect_of(const TraceData& data, const std::vector<std::string>& first_errors, const std::vector<std::string>& stat_names,
               const std::string& integrity, std::ostream& out, bool all) {
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
  if (layout.iterate_dimension > 0)
    out << "iterates: x of every view at every checkpoint, variable `iterate` (configuration, view, replicate, step, "
           "component), up to d = " << layout.iterate_dimension << "\n";
  if (all) {
    out << "configurations (" << layout.configurations.size() << "):\n";
    for (std::size_t c = 0; c < layout.configurations.size(); ++c) {
      const auto& config = layout.configurations[c];
      const StatusCounts counts = status_counts(data, c);
      out << "  [" << c << "] " << config.label << "  (id " << config.id << ")\n"
          << "      runs: ok " << counts.ok << ", diverged " << counts.diverged << ", error " << counts.error
          << ", nonfinite " << counts.nonfinite << ", other " << counts.other << "\n";
      if (!config.f_star_source.empty()) out << "      F* = " << f_star_text(config) << "\n";
      for (const auto& [key, value] : parameter_cells(config)) out << "      " << key << " = " << value << "\n";
      if (const std::string& error = first_errors[c]; !error.empty()) out << "      first error " << error << "\n";
    }
  } else {
    // What every configuration shares is said once; the table has a column for each parameter that varies
    // (a parameter a configuration does not have, e.g. beta where tuning = polyak, shows as '-').
    std::vector<std::vector<std::pair<std::string, std::string>>> cells;
    for (const auto& config : layout.configurations) {
      cells.push_back(parameter_cells(config));
      if (!config.f_star_source.empty()) cells.back().insert(cells.back().begin(), {"F*", f_star_text(config)});
    }
    std::vector<std::string> keys;  // in the order first met
    for (const auto& config_cells : cells)
      for (const auto& [key, value] : config_cells)
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    auto value_of = [&](std::size_t c, const std::string& key) -> std::string {
      for (const auto& [k, v] : cells[c])
        if (k == key) return v;
      return "-";
    };
    std::vector<std::string> varying, shared;
    for (const auto& key : keys) {
      bool same = true;
      for (std::size_t c = 1; c < cells.size() && same; ++c) same = value_of(c, key) == value_of(0, key);
      (same ? shared : varying).push_back(key);
    }
    if (!shared.empty()) {
      out << (cells.size() > 1 ? "shared by every configuration:\n" : "parameters:\n");
      for (const auto& key : shared) out << "  " << key << " = " << value_of(0, key) << "\n";
    }
    out << "configurations (" << layout.configurations.size() << ")"
        << (varying.empty()       ? std::string()
            : varying.size() == 1 ? std::string(", with the parameter that varies")
                                  : ", with the " + std::to_string(varying.size()) + " parameters that vary")
        << " (every parameter of each: inspect --all):\n";
    std::vector<std::string> header{"#", "label", "id", "ok", "diverged", "error", "nonfinite", "other"};
    header.insert(header.end(), varying.begin(), varying.end());
    std::vector<std::vector<std::string>> rows;
    for (std::size_t c = 0; c < layout.configurations.size(); ++c) {
      const auto& config = layout.configurations[c];
      const StatusCounts counts = status_counts(data, c);
      std::vector<std::string> row{std::to_string(c), config.label, config.id, std::to_string(counts.ok),
                                   std::to_string(counts.diverged), std::to_string(counts.error),
                                   std::to_string(counts.nonfinite), std::to_string(counts.other)};
      for (const auto& key : varying) row.push_back(value_of(c, key));
      rows.push_back(std::move(row));
    }
    std::ostringstream table;
    print_table(header, rows, false, table);
    std::istringstream lines(table.str());
    for (std::string line; std::getline(lines, line);) out << "  " << line << "\n";
    for (std::size_t c = 0; c < layout.configurations.size(); ++c)
      if (const std::string& error = first_errors[c]; !error.empty())
        out << "  [" << c << "] first error " << error << "\n";
  }
  if (!stat_names.empty()) out << "run statistics: " << join(stat_names, ", ") << "\n";
  if (!integrity.empty()) out << integrity << "\n";
  out << "provenance:\n";
  for (const auto& [key, value] : layout.root) out << "  " << key << " = " << format_value(value) << "\n";
  if (!layout.experiment_text.empty()) {
    out << "experiment file (resolved; `ratelab run` on it reproduces this file):\n";
    std::istringstream lines(layout.experiment_text);
    for (std::string line; std::getline(lines, line);) out << "  | " << line << "\n";
  }
  return 0;
}

}  // namespace

int inspect(const TraceData& data, std::ostream& out, bool all) {
  check_trace_data(data);
  std::vector<std::string> first_errors, stat_names;
  for (std::size_t c = 0; c < data.layout.configurations.size(); ++c) first_errors.push_back(first_error(data, c));
  for (const auto& [name, values] : data.run_stats) stat_names.push_back(name);
  return inspect_of(data, first_errors, stat_names, "", out, all);
}

int inspect(const results::TraceReader& reader, std::ostream& out, bool all, std::size_t window_bytes) {
  const TraceData& outline = reader.outline();
  // Every run's data is read once, a window at a time (memory bounded by the window, not the file): for the
  // first error message of each configuration, and so that HDF5 verifies every chunk's checksum (a damaged
  // one fails here naming its run).
  std::vector<std::string> first_errors;
  WindowedRuns windows(reader, window_bytes, outline.layout.metrics, /*extra_metrics=*/true);
  for (std::size_t c = 0; c < outline.layout.configurations.size(); ++c) {
    const auto [runs_data, index] = windows(c);
    first_errors.push_back(first_error(runs_data, index));
  }
  const std::string integrity =
      reader.checksummed() ? "checksums: the run data of every configuration match their Fletcher-32 checksums"
                           : "checksums: none (written before ratelab checksummed run data; `ratelab merge FILE -o "
                             "NEW.h5` writes a copy with them)";
  return inspect_of(outline, first_errors, reader.run_statistics(), integrity, out, all);
}

}  // namespace ratelab::tools
