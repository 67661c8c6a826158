// The sweep engine: every (configuration, replicate) run of a prepared experiment, scheduled with TBB.
//
// Runs are independent (each draws only from its own keyed streams), so the traces are bitwise identical
// for any thread count and any scheduling order. Finished runs are handed, through a bounded queue, to
// the calling thread, which is the only one that writes results: memory stays bounded by the runs in
// flight, not by the size of the sweep.
#pragma once

#include <atomic>
#include <functional>
#include <vector>

#include "experiments/experiment.hpp"

namespace ratelab {

struct SweepOptions {
  int threads = 0;                  // 0: all cores
  double time_limit_seconds = 0.0;  // 0: none; past it no run starts and runs in flight are interrupted
  enum class Progress { automatic, quiet, lines } progress = Progress::automatic;
  std::atomic<bool>* cancel = nullptr;  // set by a signal handler: stop starting runs, interrupt the rest
  std::vector<bool> skip;               // [configuration * R + replicate]: already done (resume)
};

struct SweepSummary {
  long ok = 0, diverged = 0, error = 0, interrupted = 0, not_started = 0;
  double seconds = 0.0;
  bool cancelled = false;  // by signal or time limit
};

using RunSink = std::function<void(std::size_t configuration, long replicate, const RunResult& result)>;

SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink);

}  // namespace ratelab
