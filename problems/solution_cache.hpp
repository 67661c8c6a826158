// The solution (x*, and how accurately it was solved) of a data-set problem, cached on disk beside the
// data, so that a study pays a slow solve (softmax on digits: Newton on 640 unknowns, 0.7 s) once per data
// set, problem parameters and build instead of once per run of `ratelab run`.
//
// An entry lives in `.ratelab-cache/` in the directory of the problem's first data file, named by the data
// file, the problem and a hash of its key; the file holds the whole key and is read only when it matches
// exactly. The key is: the content hash of every data file, the problem's parameters that change the
// solution, the solver's version and the build (ProblemContext::solution_cache_build: another build may
// round the solve differently, and a run must give the same bits whether or not an entry existed). An
// entry is written whole to a temporary file and renamed into place, so a reader never sees half of one;
// one that is cut short, damaged (checksum) or of another key is ignored and rewritten. Where the
// directory cannot be written (read-only data), nothing is cached and nothing fails.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace ratelab {

struct CachedSolution {
  Vec x;                       // x*
  double gradient_norm = 0.0;  // ||grad f(x*)|| the solver reached
  long iterations = 0;
};

// What a solve depends on; `build` empty turns the cache off (problems made outside an experiment).
struct SolutionCacheKey {
  std::vector<std::string> data_files;  // read for their contents; the first one's directory holds the cache
  std::string problem;                  // e.g. "softmax lambda=0x1.0624dd2f1a9fcp-10 standardize=1 ..."
  std::string build;
};

std::optional<CachedSolution> read_cached_solution(const SolutionCacheKey& key);
void write_cached_solution(const SolutionCacheKey& key, const CachedSolution& solution);  // never throws
// Where the entry of `key` lives (whether or not it exists).
std::string solution_cache_path(const SolutionCacheKey& key);

// Counters of this process (for tests and `--verbose` diagnostics): entries read, solves written.
struct SolutionCacheCounters {
  std::atomic<long> hits{0}, writes{0};
};
SolutionCacheCounters& solution_cache_counters();

}  // namespace ratelab
