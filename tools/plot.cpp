#include "tools/plot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
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
using results::select_configurations;
using results::status_counts;
using results::StatusCounts;

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

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
