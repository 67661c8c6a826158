// `ratelab report`: one self-contained HTML page per study, to read, mail and attach to a paper's artifact.
//
// The page holds everything it shows (inline CSS, an inline script, the data as embedded JSON): it opens
// from a mail attachment with no network access. Its numbers come from the commands that print them, so a
// number on the page is the number the terminal shows:
//   - the summary table is `summary --csv`'s rows (tools/analysis_commands.hpp), cell for cell;
//   - claims are `verify`'s verdicts (experiments/claims.hpp) on the claims stored in the file, failed first;
//   - the figures' series are `plot`'s (tools/plot.hpp: plot_data), center and quantile band per
//     configuration x view x metric x checkpoint; never a replicate, so the page grows with the number of
//     configurations, not with the replicates.
// The figures are inline SVG drawn in the page by a small script of our own (no charting library: a few
// hundred lines do log axes, bands, a tooltip and a legend, and nothing has to be pinned, vendored or
// licensed). The script records what it drew in DOM attributes (data-curves per figure, data-js-errors on
// <body>), which the browser test reads through chromium's --dump-dom.
//
// Every string from a file (labels, the description, the experiment text, claim texts, provenance) is
// escaped for where it goes: HTML text and attributes (&, <, >, ", ') or JSON inside <script> (<, >, & and
// U+2028/2029 as \u escapes), so no value can end the script or inject markup.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "results/trace_file.hpp"

namespace ratelab::tools {

struct ReportOptions {
  std::vector<std::string> files;
  std::string output;
  std::string metric;  // the summary table's; empty: subopt if the file has it, else its first (figures: all)
  long seed = 1;                  // bootstrap seed of the summary intervals and the claims' verdicts
  static ParamTable<ReportOptions> params();
};

// One trace file as the page shows it: its whole content, or (with `reader`, as `report` reads a file) its
// outline, the run data read through the reader a window of configurations or the metrics needed at a time.
struct ReportInput {
  std::string path;
  results::TraceData data;
  const results::TraceReader* reader = nullptr;
};

// The whole page. ConfigError for a question a file cannot answer (an unknown summary metric).
std::string report_html(const std::vector<ReportInput>& inputs, const ReportOptions& options);

// Reads the files, writes the page to options.output through a temporary file renamed into place (never a
// half-written page), and one line to `log` naming it and its size.
int report(const ReportOptions& options, std::ostream& log);

// Escaping, public for tests.
std::string html_escape(const std::string& text);   // for HTML text and attribute values
std::string json_string(const std::string& text);   // a quoted JSON string safe inside <script>

}  // namespace ratelab::tools
