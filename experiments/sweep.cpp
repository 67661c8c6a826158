#include "experiments/sweep.hpp"

#include <tbb/concurrent_queue.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <cmath>
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

}  // namespace

SweepSummary run_sweep(const PreparedExperiment& experiment, const SweepOptions& options, const RunSink& sink) {
  const auto& plan = experiment.plan();
  const long R = plan.options.replicates;
  const long total = long(plan.configurations.size()) * R;
  std::vector<long> todo;
  for (long i = 0; i < total; ++i)
    if (options.skip.empty() || !options.skip[std::size_t(i)]) todo.push_back(i);

  const int threads = options.threads > 0 ? options.threads : int(std::thread::hardware_concurrency());
  std::atomic<bool> stop{false};  // cancel or time limit
  auto should_stop = [&] {
    return stop.load(std::memory_order_relaxed) || (options.cancel && options.cancel->load(std::memory_order_relaxed));
  };
  // Bounded: a worker blocks when the writer falls behind, so finished traces never pile up.
  tbb::concurrent_bounded_queue<Finished> queue;
  queue.set_capacity(4 * threads + 4);

  auto started = std::chrono::steady_clock::now();
  std::thread workers([&] {
    tbb::task_arena arena(threads);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::size_t>(0, todo.size(), 1),
                        [&](const tbb::blocked_range<std::size_t>& range) {
                          for (std::size_t i = range.begin(); i != range.end(); ++i) {
                            Finished f{std::size_t(todo[i] / R), todo[i] % R, std::nullopt};
                            if (!should_stop()) f.result = experiment.run(f.configuration, f.replicate, &stop);
                            queue.push(std::move(f));
                          }
                        });
    });
  });

  SweepSummary summary;
  ProgressLine progress(options.progress, long(todo.size()));
  std::exception_ptr sink_failure;  // e.g. the disk is full: stop, let the workers drain, then rethrow
  for (std::size_t received = 0; received < todo.size(); ++received) {
    Finished f;
    // Poll so the time limit and signals are noticed even while every worker is busy.
    while (!queue.try_pop(f)) {
      if (options.cancel && options.cancel->load()) stop = true;
      if (options.time_limit_seconds > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() > options.time_limit_seconds)
        stop = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (!f.result) {
      ++summary.not_started;
    } else {
      switch (f.result->status) {
        case RunStatus::ok: ++summary.ok; break;
        case RunStatus::diverged: ++summary.diverged; break;
        case RunStatus::error: ++summary.error; break;
        default: ++summary.interrupted; break;
      }
      if (!sink_failure) {
        try {
          sink(f.configuration, f.replicate, *f.result);
        } catch (...) {
          sink_failure = std::current_exception();
          stop = true;
        }
      }
    }
    progress.update(summary, long(received + 1), received + 1 == todo.size());
  }
  workers.join();
  if (sink_failure) std::rethrow_exception(sink_failure);
  summary.cancelled = should_stop() || summary.interrupted > 0 || summary.not_started > 0;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return summary;
}

}  // namespace ratelab
