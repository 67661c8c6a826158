// `ratelab export`: trace files as one long CSV table, one row per (configuration, replicate, view,
// checkpoint), for pandas, R or a spreadsheet. Streams: a file is read a block of runs at a time
// (results::TraceReader::runs), so memory is bounded by the block, not by the file.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <string>
#include <vector>

namespace ratelab::tools {

struct ExportOptions {
  std::vector<std::string> files;
  std::string output;                // "-": standard output
  std::vector<std::string> where;    // key=value filters (select_configurations)
  std::vector<std::string> views;    // empty: all
  std::vector<std::string> metrics;  // metrics and extra metrics; empty: all
  std::size_t block_values = std::size_t(1) << 17;  // trace values read per block (1 MiB of float64)
};

struct ExportReport {
  long rows = 0, configurations = 0;
};

// Writes the table to options.output (through OUTPUT.partial, renamed when complete: never a half-written
// file). ConfigError for unreadable files and for filters, views or metrics the files do not hold.
ExportReport export_table(const ExportOptions& options);

// The command line: ratelab export FILE [FILE...] -o OUT.csv [--where k=v] [--views a,b] [--metrics m,n].
int command_export(const std::vector<std::string>& args);

}  // namespace ratelab::tools
