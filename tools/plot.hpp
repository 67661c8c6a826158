// `ratelab plot`: figures of a trace file's curves, drawn by gnuplot. The numbers (plot_data) are decided
// separately from drawing (gnuplot_script), so tests check what a figure holds without running gnuplot, and
// `data=FILE.tsv` writes exactly the numbers drawn. Like the other analysis commands (analysis_commands.hpp)
// it never re-runs anything and throws ConfigError for bad input.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "results/trace_file.hpp"
#include "tools/analysis_commands.hpp"

namespace ratelab::tools {

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

// ---- command -----------------------------------------------------------------------------------------

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
