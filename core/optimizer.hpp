// The optimizer interface. Lifecycle: construct from resolved options -> prepare(problem) allocates every
// buffer and may refuse the problem (ConfigError) -> start(x0) -> step(t, eta, oracle) repeatedly, driven
// by the run loop -> iterate() is the current x_t. The run loop owns budgets, checkpoints, divergence
// checks, cancellation and the averaged iterate views, so they behave the same for every optimizer.
#pragma once

#include <cstddef>

#include "core/problem.hpp"
#include "core/schedule.hpp"

namespace ratelab {

class OptimizerFastPaths;  // core/fast_paths.hpp

// The runs of one configuration stepped together (OptimizerFastPaths::steps_lockstep): at most this many at
// once.
inline constexpr std::size_t kMaxLockstep = 8;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // Allocate workspaces for problem.dim(); throw ConfigError if this optimizer cannot run on `problem`
  // (say which fact is missing). Called once per run, before start; nothing allocates after it.
  virtual void prepare(const Problem& problem) = 0;
  virtual void start(ConstVecRef x0, RunStreams& streams) = 0;
  // One step t = 1, 2, ... with step size eta from the schedule.
  virtual void step(long t, double eta, Oracle& oracle) = 0;
  // Steps t_first..t_last, called by the run loop between the events it handles (checkpoints, divergence
  // checks, cancellation, per-step averaging): one virtual call per segment, not per step. An override
  // (sgd's, through OracleFastPaths::fused_sgd_steps) must give the same iterates bit for bit as this loop.
  virtual void steps(long t_first, long t_last, const Schedule& schedule, RunStreams& streams, Oracle& oracle) {
    for (long t = t_first; t <= t_last; ++t) {
      streams.seek(std::uint64_t(t));
      step(t, schedule(t), oracle);
    }
  }
  // The fast paths this optimizer offers (core/fast_paths.hpp: stepping the runs of a lockstep group
  // together), or nullptr: then the run loop calls steps() run by run.
  virtual OptimizerFastPaths* fast_paths() { return nullptr; }
  virtual ConstVecRef iterate() const = 0;
  virtual void report(RunStats& /*stats*/) const {}
};

}  // namespace ratelab
