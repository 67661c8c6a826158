// The sweep engine: every (configuration, replicate) run of a prepared experiment, scheduled with TBB.
//
// Runs are independent (each draws only from its own keyed streams), so the traces are bitwise identical
// for any thread count and any scheduling order. Worker threads pull run indices from a RunSource (by
// default this process's own list; under MPI, chunks handed out by rank 0: experiments/distributed.hpp).
// Finished runs are handed, through a bounded queue, to the calling thread, which is the only one that
// writes results: memory stays bounded by the runs in flight, not by the size of the sweep.
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <vector>

#include "experiments/experiment.hpp"

namespace ratelab {

struct SweepOptions {
  int threads = 0;                  // 0: all cores (resolve_threads)
  double time_limit_seconds = 0.0;  // 0: none; past it no run starts and runs in flight are interrupted
  enum class Progress { automatic, quiet, lines } progress = Progress::automatic;
  std::atomic<bool>* cancel = nullptr;  // set by a signal handler: stop starting runs, interrupt the rest
  std::vector<bool> skip;               // [configuration * R + replicate]: already done (resume)
  // A thread takes up to this many runs at a time (at most kMaxLockstep, and at most 1/4 of its share of
  // the sweep) and steps those of one configuration in lockstep; results do not depend on it.
  int lockstep = int(kMaxLockstep);
};

struct SweepSummary {
  long ok = 0, diverged = 0, error = 0, interrupted = 0, not_started = 0, nonfinite = 0;
  double seconds = 0.0;
  bool cancelled = false;  // by signal or time limit
  std::vector<long> runs_per_rank;  // under MPI (on rank 0): the runs each rank took, rank 0 first
  std::vector<std::string> skipped;  // configurations refused at set-up (skip_invalid), with the reason
};

using RunSink = std::function<void(std::size_t configuration, long replicate, const RunResult& result)>;

// Where a sweep's worker threads get their runs, and where results of runs computed by other processes
// come in. Run indices are j = configuration * R + replicate.
class RunSource {
 public:
  virtual ~RunSource() = default;
  // The runs this process answers for (handed to it, or to be delivered to its sink), for the progress
  // line and the count of runs not started. Read before the sweep starts and after it ended.
  virtual long expected() const = 0;
  // Worker threads: the next run to compute, or nullopt when this process gets no more work. Thread-safe;
  // may block while more work is being fetched.
  virtual std::optional<long> take() = 0;
  // The calling thread, every few milliseconds: communication with other processes. Runs they finished
  // are passed to `deliver`. Returns true when the sweep must stop (another process was interrupted).
  virtual bool pump(const RunSink& deliver) = 0;
  // The sweep is stopping (signal, time limit, failed sink, pump's request): hand out no more work;
  // take() returns nullopt from now on. Called once, from the calling thread.
  virtual void stop() = 0;
  // The calling thread: whether nothing more will arrive through pump(). The sweep ends when this holds
  // and the local workers are done.
  virtual bool complete() = 0;
};

// The runs not marked in `skip` (every run if it is empty), in index order.
std::vector<long> runs_to_do(const PreparedExperiment& experiment, const std::vector<bool>& skip);

// The sweep over this process's own runs (runs_to_do(experiment, options.skip)).
SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink);
// The sweep over the runs `source` hands out (options.skip is not used: the source decides).
SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink,
                       RunSource& source);

}  // namespace ratelab
