// The optimizer interface. Lifecycle: construct from resolved options -> prepare(problem) allocates every
// buffer and may refuse the problem (ConfigError) -> start(x0) -> step(t, eta, oracle) repeatedly, driven
// by the run loop -> iterate() is the current x_t. The run loop owns budgets, checkpoints, divergence
// checks, cancellation and the averaged iterate views, so they behave the same for every optimizer.
#pragma once

#include <cstddef>
#include <limits>

#include "core/params.hpp"
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
  // Steps t_first..t_last with the run loop's divergence check after every step: returns the first step t
  // whose iterate has !(||x_t||^2 <= limit2) (NaN included), where the run stops, or 0 if every one passed.
  // The run loop calls it when every step is checked (divergence_check_every = 1). This default takes the
  // steps one at a time and checks iterate().squaredNorm(); an override folds the squared norm into its
  // update pass (core/packet_passes.hpp), with the same iterates and the same decisions bit for bit.
  virtual long steps_checked(long t_first, long t_last, double limit2, const Schedule& schedule, RunStreams& streams,
                             Oracle& oracle) {
    for (long t = t_first; t <= t_last; ++t) {
      steps(t, t, schedule, streams, oracle);
      if (!(iterate().squaredNorm() <= limit2)) return t;
    }
    return 0;
  }
  // The fast paths this optimizer offers (core/fast_paths.hpp: stepping the runs of a lockstep group
  // together), or nullptr: then the run loop calls steps() run by run.
  virtual OptimizerFastPaths* fast_paths() { return nullptr; }
  virtual ConstVecRef iterate() const = 0;
  virtual void report(RunStats& /*stats*/) const {}

  // Oracle samples drawn since the run started: a minibatch of B counts B, a block of s of the d coordinates
  // from an oracle with cheap block gradients counts s/d per draw. The run loop records it at every
  // checkpoint (the file's `gradient_evaluations`: an x axis for plots, a budget for fixed-target analyses).
  // An optimizer counts by drawing through sample_minibatch() or by calling count_gradient_evaluations();
  // one that does neither reports NaN (its cost is unknown, not zero). Not virtual: free to read.
  double gradient_evaluations() const {
    return counted_ ? gradient_evaluations_ : std::numeric_limits<double>::quiet_NaN();
  }
  // Called by the run loop before start().
  void reset_gradient_evaluations() { gradient_evaluations_ = 0.0, counted_ = false; }

 protected:
  // g = the oracle's minibatch gradient at x over `batch` draws, counted.
  void sample_minibatch(Oracle& oracle, ConstVecRef x, VecRef g, long batch) {
    count_gradient_evaluations(double(batch));
    oracle.sample_gradient(x, g, int(batch));
  }
  void count_gradient_evaluations(double samples) { gradient_evaluations_ += samples, counted_ = true; }

 private:
  double gradient_evaluations_ = 0.0;
  bool counted_ = false;
};

// The minibatch size B of an optimizer that draws through sample_minibatch(), declared once here:
//   param(&SgdOptions::batch, ...) becomes batch_param(&SgdOptions::batch).
// A field rather than a `.with` option group on purpose: a configuration's id is its parameters in
// declaration order, and a group is appended after the component's own fields, which would move `batch`
// and change the ids (and run fingerprints, so `run --reuse`) of every existing heavy_ball, nesterov, adam,
// lp_sgd and ls_sgd configuration.
template <class Options>
Field<Options> batch_param(long Options::*member) {
  return param(member, "batch", at_least(1), "minibatch size B: the oracle averages B draws");
}

}  // namespace ratelab
