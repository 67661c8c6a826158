// `ratelab plot`: figures of a trace file's curves, drawn by gnuplot. The numbers (plot_data) are decided
// separately from drawing (gnuplot_script), so tests check what a figure holds without running gnuplot, and
// `data=FILE.tsv` writes exactly the numbers drawn. Like the other analysis commands (analysis_commands.hpp)
// it never re-runs anything and throws ConfigError for bad input.
//
// What a figure shows is said by encodings, as in seaborn's faceting: each curve is one (configuration,
// view); the dimensions that vary among the selected curves (`view`, or a group of parameters that vary
// together, like `optimizer` with its own `optimizer.beta`) are each given a channel: color, dash type,
// panel row or panel column. The user names some (`color = optimizer`, `col = problem.noise_scale`), the
// rest are derived (views share a panel by dash type; the optimizer, else the largest dimension, takes
// color; the others make columns, then rows, while they stay small; what is left joins color). The legend
// says each encoded value once (`c: 0.01, 0.1, 1`), outside the data, one legend for the whole figure.
#pragma once

#include <iosfwd>
#include <limits>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "results/trace_file.hpp"
#include "tools/analysis_commands.hpp"

namespace ratelab::tools {

struct PlotOptions {
  CurveOptions curves;
  std::string output;              // .png (pngcairo), .svg (svg), .pdf (pdfcairo), .tex (cairolatex + .pdf)
  std::string data;                // also write the plotted numbers here as TSV; empty: no
  std::string script;              // also keep the gnuplot script (data inline) here; empty: no
  std::vector<double> band{0.1, 0.9};  // quantile band around the center; empty: no band
  std::vector<double> deltas;      // high-probability curves: the (1 - delta) quantile, for each delta
  bool theory = false;             // overlay a line fitted to each curve, of theory_model's shape
  double theory_p = 1.0;
  double theory_k = 0.0;
  double theory_at = 0;            // anchor: c matches each curve at this t; 0: last t
  double theory_c = 0;             // 0: anchored; otherwise this c (one line per panel)
  // The fitted overlay's shape: power (c t^-p log(t)^k above, c anchored), slope (c t^s with s fitted: log(center)
  // against log t by least squares over [fit_from, fit_to], summary's slope and line) or contraction (C rho^t,
  // linear convergence: log(center) against t over the window, summary --fit contraction's line and rho). The
  // window fits are drawn over their window, each curve's rate named in the legend.
  std::string theory_model = "power";
  double fit_from = 0;             // slope or contraction window in steps; 0: T/10 (summary's default)
  double fit_to = 0;               // 0: T
  // The theory itself: a formula in the claims language (README "Claims"), evaluated for each configuration
  // with its parameters and t = each checkpoint ("noise_scale^2 / (2*mu*(t + t0)) * ..."); empty: none.
  std::string theory_formula;
  std::string theory_label = "theory";  // its legend entry
  // Encodings: a parameter key ("schedule.c", "optimizer"), or "view"; empty: derived.
  std::string color, dash, row, col;
  bool share_y = true;             // panels share one y range
  // The x axis: step | gradient_evaluations | elapsed_seconds (results::Budget); a recorded budget puts each
  // curve at the median over its finished runs of what they spent up to each checkpoint.
  std::string x = "step";
  std::string xscale = "auto";     // auto | log | linear; auto: linear when the checkpoints are evenly spaced
  std::string yscale = "log";      // log | linear
  std::string size;                // "W,H" with a unit in | cm (e.g. "6in,4in", "16cm,9cm"); empty: derived
  double font_size = 10;           // points
  std::string title;               // empty: the experiment name and metric
  std::string gnuplot = "gnuplot"; // program, looked up on PATH
  static ParamTable<PlotOptions> params();
};

// ---- command -----------------------------------------------------------------------------------------

// Draws the figure (and the TSV and script if asked); writes one line per file written to `out`, and the
// warnings (values a log axis cannot show) to `warnings`.
int plot(const PlotOptions& options, const results::TraceData& data, std::ostream& out, std::ostream& warnings);
int plot(const PlotOptions& options, const results::TraceData& data, std::ostream& out);  // warnings: stderr
// The same from a file read a window of configurations at a time, only the metric drawn: memory bounded by
// the window, not by the file.
int plot(const PlotOptions& options, const results::TraceReader& reader, std::ostream& out, std::ostream& warnings);

// ---- building blocks, public for tests ----------------------------------------------------------------

enum class SeriesRole { center, band_low, band_high, high_probability, theory };
struct PlotSeries {
  SeriesRole role;
  std::string name;             // "median", "band_q0.1", "band_q0.9", "q0.95" (1 - delta curve), "fitted", "theory"
  std::vector<double> value;    // per t
  std::vector<long> used;       // finite replicates per t (empty for theory)
};
struct PlotCurve {
  std::size_t configuration;
  std::string view;
  std::string label;            // the configuration's label in the file
  std::string key;              // what tells it apart in its panel, only the varying dimensions: "c=0.316, last"
  long replicates = 0, diverged = 0, errors = 0;
  std::size_t color = 0, dash = 0;  // index of its value in the color / dash encoding
  std::vector<PlotSeries> series;   // center first; a fitted power law last when asked
  double fitted_c = 0;
  double fitted_rho = 0;  // theory_model = contraction: the fitted rho per step (0: none fitted)
  double fitted_slope = std::numeric_limits<double>::quiet_NaN();  // theory_model = slope: the fitted exponent
  // Its own x positions, per t, when the x axis is a recorded budget (x = gradient_evaluations or
  // elapsed_seconds): the median over the configuration's finished runs (status ok) with a finite value, NaN
  // where none has one. Empty: the plot's x (or t).
  std::vector<double> x;
};
struct PlotPanel {
  std::size_t row = 0, column = 0;
  std::string title;                // the row and column values; empty for a single panel
  std::vector<PlotCurve> curves;
  std::vector<PlotSeries> theory;   // theory_c given: one line c t^-p log(t)^k
  bool clipped = false;             // some value <= 0 drawn at the floor of the log y axis
};
// One channel's dimension: the keys it shows and their values, in drawing order.
struct Encoding {
  std::string channel;              // color | dash | row | col
  std::string name;                 // "c", "view", "optimizer" (several keys varying together: "optimizer, beta")
  std::vector<std::string> keys;    // parameter keys, or "view"
  std::vector<std::string> values;  // as shown: at most 4 significant digits, only as many as tell them apart
};
struct LegendEntry {
  enum class Kind { heading, color, dash, high_probability, fitted, theory, floor, note } kind;
  std::string text;
  std::size_t style = 0;  // color or dash index
};
struct PlotData {
  std::string title, x_label, y_label, metric;
  std::vector<long> t;
  // x positions when they are not steps (a performance profile's tau); empty: t. Same length as t.
  std::vector<double> x;
  bool x_log = true, y_log = true;
  bool steps = false;               // draw each center as a right-continuous step function (ECDFs, profiles)
  std::vector<Encoding> encodings;  // the channels in use, in the order color, dash, row, col
  std::vector<PlotPanel> panels;
  long rows = 1, columns = 1;
  std::vector<LegendEntry> legend;
  std::string caption;              // "median, band 10-90% over 64 runs"
  double y_min = 0, y_max = 0;      // the shared y range (share_y), with the floor; 0, 0: each panel its own
  double floor = 0;                 // log y: where values <= 0 are drawn; 0: none needed
  std::vector<std::string> warnings;
};

PlotData plot_data(const PlotOptions& options, const results::TraceData& data);
// The same numbers from a file read a window of configurations at a time (only the metric drawn).
PlotData plot_data(const PlotOptions& options, const results::TraceReader& reader,
                   std::size_t window_bytes = analysis_window_bytes);
// Tidy table, one row per (panel, curve, series, t):
// panel row col view configuration label color dash series t value replicates_used x; reals round-trip;
// x is where the point is drawn (t, a profile's tau, or the curve's median budget).
void write_plot_tsv(const PlotData& plot, std::ostream& out);
// The gnuplot script that draws `plot` into options.output (terminal chosen by its extension).
std::string gnuplot_script(const PlotData& plot, const PlotOptions& options);
// Draws `plot` into options.output with gnuplot (options.script keeps the script); one line per file
// written to `out`. Used by `plot` and by the fixed-target figures (tools/fixed_target_commands.hpp).
void draw_plot(const PlotData& plot, const PlotOptions& options, std::ostream& out);

}  // namespace ratelab::tools
