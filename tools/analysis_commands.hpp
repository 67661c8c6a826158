// The analysis commands of the `ratelab` CLI: `summary`, `compare` and `inspect` (`plot`: tools/plot.hpp). Each takes its
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
#include <functional>
#include <iosfwd>
#include <optional>
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

// The width of summary's default table (a terminal beside an editor); --wide and --csv show every column.
inline constexpr std::size_t summary_narrow_width = 120;

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
  bool wide = false;  // every column aligned; the default table fits summary_narrow_width
  // Rate model: power (log-log slope), contraction (rho per step), auto (per row, the line that fits
  // log(center) better: stats::choose_rate_model); empty: the file's stored `[summary] fit`, else power.
  std::string fit;
  static ParamTable<SummaryOptions> params();
};

// The rate model summary uses: `fit` when given, else the stored experiment's `[summary] fit = ...`, else
// power. ConfigError for another value.
std::string summary_fit(const std::string& fit, const results::TraceData& data);

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

// ---- commands ----------------------------------------------------------------------------------------

int summary(const SummaryOptions& options, const results::TraceData& data, std::ostream& out);
// How much run data the commands that read a file a window of configurations at a time hold at once (at least
// one configuration's runs), as `merge` reads its parts.
inline constexpr std::size_t analysis_window_bytes = std::size_t(16) << 20;
// The same table from a file read a window of configurations at a time (only the metric summarized): memory
// bounded by the window, not by the file.
int summary(const SummaryOptions& options, const results::TraceReader& reader, std::ostream& out,
            std::size_t window_bytes = analysis_window_bytes);
int compare(const CompareOptions& options, const results::TraceData& data, std::ostream& out);
// The same from a file of which only the two configurations compared are read (one metric).
int compare(const CompareOptions& options, const results::TraceReader& reader, std::ostream& out);
// What a file holds: its layout, provenance and experiment text, and its configurations as a table of the
// parameters that vary (those they share listed once); `all`: every parameter of every configuration.
int inspect(const results::TraceData& data, std::ostream& out, bool all = false);
// The same from a file read a window of configurations at a time; every run's data is read once, so that a
// damaged chunk is reported, and a line says whether the file's run data carry checksums.
int inspect(const results::TraceReader& reader, std::ostream& out, bool all = false,
            std::size_t window_bytes = analysis_window_bytes);

// ---- helpers shared by the analysis commands and plot (tools/plot.cpp) ---------------------------------

std::string exact(double v);       // the shortest text that round-trips
std::string short_real(double v);  // 4 significant digits, for reading
// A rate fit's window [from, to] in steps for a configuration, 0 meaning the default end (the last decade
// [T/10, T] of its own horizon T); refuses an empty window naming fit_from and fit_to.
stats::FitWindow fit_window(const results::TraceData& data, double from, double to, std::size_t configuration);
std::string join(const std::vector<std::string>& items, const std::string& separator);
// A table printed aligned for reading (the first `left_aligned` columns, labels, left-aligned; the rest,
// numbers, right-aligned) or as CSV for scripts (fields quoted where needed).
void print_table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                 bool csv, std::ostream& out, std::size_t left_aligned = 2);
std::optional<double> parse_number(const std::string& text);  // the whole text as a number, or nothing
stats::Statistic center_statistic(const std::string& center);  // median | mean
// The columns of the named views (empty: every view), each once, in the order given.
std::vector<std::size_t> selected_views(const results::TraceData& data, const std::vector<std::string>& views);
// "subopt: F(x) - F* [unit]": the metric's name, its meaning and its unit when the file gives one.
std::string metric_description(const results::TraceData& data, std::size_t m);

// Every configuration of `reader`'s file with the run data of the named metrics only (no extra metrics), for the
// commands that need all configurations at once but few metrics (claims, ert, ecdf, profile): a quarter of the
// file's memory for one metric of four. A name the file does not record reads every metric, so that the
// command's own error names it among all of them.
results::TraceData read_metrics(const results::TraceReader& reader, const std::vector<std::string>& metrics);

// Where a command that looks at one configuration at a time finds configuration c's runs: a TraceData that
// holds them (the whole file, or a window of it read by TraceReader::window) and c's index in it.
struct RunsOf {
  const results::TraceData& data;
  std::size_t index;
};
using RunSource = std::function<RunsOf(std::size_t configuration)>;

// Reads `reader`'s configurations a window at a time (about `window_bytes` of the named metrics' run data, at
// least one configuration), for configurations asked for in increasing order: memory bounded by the window.
// Asked for an earlier configuration, it reads its window again.
class WindowedRuns {
 public:
  WindowedRuns(const results::TraceReader& reader, std::size_t window_bytes, std::vector<std::string> metrics,
               bool extra_metrics = false);
  RunsOf operator()(std::size_t c);

 private:
  const results::TraceReader& reader_;
  std::vector<std::string> metrics_;
  bool extra_ = false;
  std::size_t per_window_ = 1, begin_ = 0;
  std::optional<results::TraceData> window_;
};

}  // namespace ratelab::tools
