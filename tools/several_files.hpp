// Several trace files in one analysis: how `ert`, `ecdf`, `profile`, `summary`, `compare` and `plot` read a
// new optimizer's file beside last month's baseline. The configurations are told apart by their labels; one
// label in two files is a ConfigError naming both files, their ids, the parameters that differ and how to keep
// one (--where id=...).
#pragma once

#include <string>
#include <vector>

#include "results/trace_file.hpp"

namespace ratelab::tools {

// A configuration of one of several files.
struct FileConfiguration {
  std::size_t file;           // index into the files
  std::size_t configuration;  // index in that file
  std::string label;
};

// The configurations of `data` (one per file, `names` for messages) matching `where` in each file (a filter
// key a file does not have, or one matching nothing there, leaves that file out; nothing anywhere is an
// error). ConfigError when one label is in two files, naming both files, their ids and the parameters that
// differ, and how to keep one (--where id=...).
std::vector<FileConfiguration> select_across_files(const std::vector<results::TraceData>& data,
                                                   const std::vector<std::string>& names,
                                                   const std::vector<std::string>& where);

// The configurations `refs` selects, as one trace for the one-file analyses (summary, compare, plot): the
// metrics and views every file has, the union of the files' checkpoints (NaN where a file has no such step),
// each configuration's own horizon recorded as experiment.steps where the files' checkpoints differ, and every
// run statistic any file records (NaN for the others' runs). Per-file extras (problem-specific metrics, run-loop targets, iterates) are
// left out. ConfigError when the files share no metric or no view, naming what each has, or differ in their
// replicates (every table counts runs out of them), naming the fixes.
results::TraceData combine_files(const std::vector<results::TraceData>& data, const std::vector<std::string>& names,
                                 const std::vector<FileConfiguration>& refs);

}  // namespace ratelab::tools
