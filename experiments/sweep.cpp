#include "experiments/sweep.hpp"

#include <tbb/concurrent_queue.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <exception>
#include <cstdio>
#include <optional>
#include <thread>

namespace ratelab {

namespace {

struct Finished {
  std::size_t configuration = 0;
  long replicate = 0;
  std::optional<RunResult> result;  // empty: the run was not started (cancelled before it began)
};

class ProgressLine {
 public:
  ProgressLine(SweepOptions::Progress mode, long total) : total_(total) {
    tty_ = isatty(STDERR_FILENO);
    mode_ = mode == SweepOptions::Progress::automatic ? (tty_ ? mode : SweepOptions::Progress::lines) : mode;
    start_ = last_ = std::chrono::steady_clock::now();
  }
  void update(const SweepSummary& s, long done, bool final) {
    if (mode_ == SweepOptions::Progress::quiet) return;
    auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool lines = mode_ == SweepOptions::Progress::lines;
    if (!final && since < (lines ? 10.0 : 0.2)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? double(done) / elapsed : 0.0;
    const double eta = rate > 0 ? double(total_ - done) / rate : 0.0;
    std::fprintf(stderr, "%s%ld/%ld runs  %.1f runs/s  elapsed %.1fs  eta %.1fs  diverged %ld  error %ld%s",
                 lines ? "" : "\r", done, total_, rate, elapsed, eta, s.diverged, s.error,
                 lines || final ? "\n" : "   ");
    std::fflush(stderr);
  }

 private:
  long total_;
  bool tty_ = false;
  SweepOptions::Progress mode_;
  std::chrono::steady_clock::time_point start_, last_;
};

// This process's own runs, handed out one at a time to whichever thread is free.
class LocalRuns final : public RunSource {
 public:
  explicit LocalRuns(std::vector<long> todo) : todo_(std::move(todo)) {}
  long expected() const override { return long(todo_.size()); }
  std::optional<long> take() override {
    if (stopped_.load(std::memory_order_relaxed)) return std::nullopt;
    const std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= todo_.size()) return std::nullopt;
    return todo_[i];
  }
  bool pump(const RunSink&) override { return false; }
  void stop() override { stopped_ = true; }
  bool complete() override { return true; }

 private:
  std::vector<long> todo_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace

std::vector<long> runs_to_do(const PreparedExperiment& experiment, const std::vector<bool>& skip) {
  const auto& plan = experiment.plan();
  const long total = long(plan.configurations.size()) * plan.options.replicates;
  std::vector<long> todo;
  for (long i = 0; i < total; ++i)
    if (skip.empty() || !skip[std::size_t(i)]) todo.push_back(i);
  return todo;
}

SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink) {
  LocalRuns source(runs_to_do(experiment, options.skip));
  return run_sweep(experiment, options, sink, source);
}

SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink,
                       RunSource& source) {
  const long R = experiment.plan().options.replicates;
  const int threads = resolve_threads(options.threads);
  std::atomic<bool> stop{false};  // cancel or time limit
  auto should_stop = [&] {
    return stop.load(std::memory_order_relaxed) || (options.cancel && options.cancel->load(std::memory_order_relaxed));
  };
  // Lockstep groups small enough that each thread takes at least 4 of them: the threads finish together,
  // and a cancelled sweep has few runs in flight.
  const std::size_t width = std::size_t(std::clamp<long>(
      std::min<long>(options.lockstep, source.expected() / (4 * std::max(1, threads))), 1, long(kMaxLockstep)));
  // Bounded: a worker blocks when the writer falls behind, so finished traces never pile up.
  tbb::concurrent_bounded_queue<Finished> queue;
  queue.set_capacity(4 * threads + 4);

  auto started = std::chrono::steady_clock::now();
  // Runs of one configuration (indices j = configuration * R + replicate), stepped together; their results,
  // or "not started" after a stop, go to the writer.
  auto run_group = [&](std::span<const long> runs) {
    const std::size_t configuration = std::size_t(runs.front() / R);
    std::array<long, kMaxLockstep> replicates{};
    for (std::size_t k = 0; k < runs.size(); ++k) replicates[k] = runs[k] % R;
    const std::span<const long> group(replicates.data(), runs.size());
    std::vector<RunResult> results;
    if (!should_stop()) results = experiment.run_lockstep(configuration, group, &stop);
    for (std::size_t k = 0; k < group.size(); ++k) {
      Finished f{configuration, group[k], std::nullopt};
      if (k < results.size()) f.result = std::move(results[k]);
      queue.push(std::move(f));
    }
  };
  // One thread's work: up to `width` runs at a time, those of one configuration in one group.
  auto work = [&] {
    for (;;) {
      std::array<long, kMaxLockstep> taken{};
      std::size_t count = 0;
      while (count < width) {
        const std::optional<long> j = source.take();
        if (!j) break;
        taken[count++] = *j;
      }
      if (count == 0) return;
      for (std::size_t first = 0; first < count;) {
        std::size_t last = first + 1;
        while (last < count && taken[last] / R == taken[first] / R) ++last;
        run_group({taken.data() + first, last - first});
        first = last;
      }
    }
  };

  std::atomic<bool> workers_done{false};
  std::thread workers([&] {
    tbb::task_arena arena(threads);
    arena.execute([&] {
      // One pulling loop per thread: a thread takes the next runs as soon as it is free, so the threads
      // (and, through the source, the processes) that finish early take more.
      tbb::parallel_for(
          tbb::blocked_range<int>(0, threads, 1),
          [&](const tbb::blocked_range<int>& range) {
            for (int t = range.begin(); t != range.end(); ++t) work();
          },
          tbb::simple_partitioner());
    });
    workers_done = true;
  });

  SweepSummary summary;
  ProgressLine progress(options.progress, source.expected());
  std::exception_ptr failure;  // e.g. the disk is full: stop, let the workers drain, then rethrow
  long done = 0;
  auto deliver = [&](std::size_t configuration, long replicate, const RunResult& result) {
    switch (result.status) {
      case RunStatus::ok: ++summary.ok; break;
      case RunStatus::diverged: ++summary.diverged; break;
      case RunStatus::error: ++summary.error; break;
      case RunStatus::nonfinite: ++summary.nonfinite; break;
      default: ++summary.interrupted; break;
    }
    if (!failure) {
      try {
        sink(configuration, replicate, result);
      } catch (...) {
        failure = std::current_exception();
        stop = true;
      }
    }
    progress.update(summary, ++done, false);
  };
  bool source_stopped = false, source_failed = false;
  for (;;) {
    Finished f;
    const bool got = queue.try_pop(f);
    if (got && f.result) deliver(f.configuration, f.replicate, *f.result);
    // Noticed even while every worker is busy: signals, the time limit, messages from other processes.
    if (!source_failed) {
      try {
        if (source.pump(deliver)) stop = true;
      } catch (...) {  // a broken message: stop here, let the workers drain, then rethrow
        if (!failure) failure = std::current_exception();
        source_failed = true;
        stop = true;
      }
    }
    if (options.cancel && options.cancel->load()) stop = true;
    if (options.time_limit_seconds > 0 &&
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() > options.time_limit_seconds)
      stop = true;
    if (stop && !source_stopped) {
      source.stop();
      source_stopped = true;
    }
    if (got) continue;
    if (workers_done.load() && queue.empty() && (source_failed || source.complete())) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  workers.join();
  summary.not_started = std::max(0L, source.expected() - (summary.ok + summary.diverged + summary.error + summary.nonfinite + summary.interrupted));
  progress.update(summary, done, true);
  if (failure) std::rethrow_exception(failure);
  summary.cancelled = should_stop() || summary.interrupted > 0 || summary.not_started > 0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace ratelab
