// `ratelab export`: trace files as one long CSV table, one row per (configuration, replicate, view,
// checkpoint), for pandas, R or a spreadsheet. Streams: a file is read a block of runs at a time
// (results::TraceReader::runs), so memory is bounded by the block, not by the file.
#pragma once

#include <string>
#include <vector>

#include "core/params.hpp"

namespace ratelab::tools {

struct ExportOptions {
  std::vector<std::string> files;
  std::string output;                // "-": standard output
  std::vector<std::string> where;    // key=value filters on the configurations (as plot --where)
  std::vector<std::string> views;    // empty: all
  std::vector<std::string> metrics;  // metrics and extra metrics (extra.NAME); empty: all
  double window_mb = 1.0;            // trace data read at a time (a block of runs; at least one run)
  static ParamTable<ExportOptions> params();
};

struct ExportReport {
  long rows = 0, configurations = 0;
};

// Writes the table to options.output (through OUTPUT.partial, renamed when complete: never a half-written
// file). ConfigError for unreadable files and for filters, views or metrics the files do not hold.
ExportReport export_table(const ExportOptions& options);

}  // namespace ratelab::tools
