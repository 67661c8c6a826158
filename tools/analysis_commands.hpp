// The analysis commands of the `ratelab` CLI: `summary`, `compare`, `inspect` and `plot`. Each takes its
// parsed options and the content of a trace file (results/trace_file.hpp) and never re-runs anything, so
// it works on files from any machine or merged shards. What they ask of a file (columns, selection by
// key=value, nearest checkpoint, status counts, bootstrap streams) comes from results/trace_query.hpp, the
// statistics from results/statistics.hpp.
//
// Options are declared once (core/params.hpp): the CLI resolves `--key value` pairs against params().
// Every command returns 0 on success and throws ConfigError for bad input (unknown metric, view or filter
// key, inconsistent file content, invalid option combination); the CLI prints it and exits with 2.
//
// Indexing: traces[metric] is (configuration, view, replicate, checkpoint) row-major; status and run
// statistics are (configuration, replicate).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "results/statistics.hpp"
#include "results/trace_file.hpp"

namespace ratelab::tools {

// Which numbers: one metric, some views, some configurations, and the center statistic over replicates.
struct CurveOptions {
  std::string metric = "subopt";
  std::vector<std::string> views;  // empty: every view in the file
  // key=value on the configurations' resolved parameters ("optimizer=sgd", "schedule.c=0.5"); the
  // pseudo-keys "label" and "id" match those fields. Several values of one key: either; different keys:
  // all. Reals compare numerically ("0.5" matches 5e-1).
  std::vector<std::string> where;
  std::string center = "median";  // median | mean
  static ParamTable<CurveOptions> params();
};

struct SummaryOptions {
  CurveOptions curves;
  double q_low = 0.1;    // quantiles of the final metric shown next to median and mean
  double q_high = 0.9;
  double fit_from = 0;   // rate window [fit_from, fit_to] in steps; 0: the last decade [T/10, T]
  double fit_to = 0;     // 0: T, the last checkpoint
  long bootstrap = 1000;
  double confidence = 0.95;
  long seed = 1;
  bool csv = false;
  static ParamTable<SummaryOptions> params();
};

struct CompareOptions {
  std::string metric = "subopt";
  std::vector<std::string> views;  // empty: every view
  std::string a, b;                // configurations: id, label, or index in the file
  double at = 0;                   // checkpoint t compared (the nearest stored one); 0: the last
  long bootstrap = 1000;
  double confidence = 0.95;
  long seed = 1;
  bool csv = false;
  static ParamTable<CompareOptions> params();
};

struct PlotOptions {
  CurveOptions curves;
  std::string output;              // .png (pngcairo), .svg (svg) or .pdf (pdfcairo)
  std::string data;                // also write the plotted numbers here as TSV; empty: no
  std::vector<double> band{0.1, 0.9};  // quantile band around the center; empty: no band
  std::vector<double> deltas;      // high-probability curves: the (1 - delta) quantile, for each delta
  bool theory = false;             // overlay c t^(-p) log(t)^k
  double theory_p = 1.0;
  double theory_k = 0.0;
  double theory_at = 0;            // anchor: c matches the first curve of a panel at this t; 0: last t
  double theory_c = 0;             // 0: anchored; otherwise this c
  std::string facet;               // one panel per value of this parameter; empty: none
  std::string title;               // empty: the experiment name and metric
  std::string gnuplot = "gnuplot"; // program, looked up on PATH
  static ParamTable<PlotOptions> params();
};

// ---- commands ----------------------------------------------------------------------------------------

int summary(const SummaryOptions& options, const results::TraceData& data, std::ostream& out);
int compare(const CompareOptions& options, const results::TraceData& data, std::ostream& out);
int inspect(const results::TraceData& data, std::ostream& out);
// Draws the figure (and the TSV if asked); writes one line per file written to `out`.
int plot(const PlotOptions& options, const results::TraceData& data, std::ostream& out);

// ---- building blocks, public for tests ----------------------------------------------------------------

// The plot's numbers, decided separately from drawing. Only checkpoints t > 0 (log axis).
enum class SeriesRole { center, band_low, band_high, high_probability, theory };
struct PlotSeries {
  SeriesRole role;
  std::string name;             // "median", "q0.1", "q0.95", "theory"
  std::vector<double> value;    // per t
  std::vector<long> used;       // finite replicates per t (empty for theory)
};
struct PlotCurve {
  std::size_t configuration;
  std::string label;
  long replicates = 0, diverged = 0, errors = 0;
  std::vector<PlotSeries> series;  // center first
};
struct PlotPanel {
  std::string view;
  std::string facet_value;  // empty without facets
  std::string title;
  std::vector<PlotCurve> curves;
  std::vector<PlotSeries> theory;  // zero or one line
  double theory_c = 0;
};
struct PlotData {
  std::string title, x_label, y_label, metric;
  std::vector<long> t;
  std::vector<PlotPanel> panels;
  long rows = 1, columns = 1;  // multiplot layout: rows = views, columns = facet values
};

PlotData plot_data(const PlotOptions& options, const results::TraceData& data);
// Tidy table, one row per (panel, curve, series, t):
// panel view facet configuration label series t value replicates_used; reals in shortest round-trip form.
void write_plot_tsv(const PlotData& plot, std::ostream& out);
// The gnuplot script that draws `plot` into options.output (terminal chosen by its extension).
std::string gnuplot_script(const PlotData& plot, const PlotOptions& options);

}  // namespace ratelab::tools
