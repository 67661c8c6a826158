// Fast paths: optional capabilities an oracle or an optimizer may expose on top of the plain interfaces
// (core/problem.hpp, core/optimizer.hpp), each of which must give exactly what the plain path gives.
//
// A problem author implements the plain Oracle (sample_gradient, report) and is done. An oracle that can do
// better opts in by deriving from OracleFastPaths as well, overriding the capabilities it has, and returning
// itself from Oracle::fast_paths(); an optimizer likewise through OptimizerFastPaths and
// Optimizer::fast_paths(). The callers ask for the capability once per segment of the run loop (or once per
// step for block access), never once per inner operation, and fall back to the plain path when they get
// nullptr or false.
//
// The reference is always the plain path: an override gives the same iterates, draws and statistics bit
// for bit (tests/test_fast_paths.cpp and tests/test_fused_paths.cpp hold them against it).
#pragma once

#include <span>
#include <stdexcept>

#include "core/optimizer.hpp"
#include "core/problem.hpp"

namespace ratelab {

struct Schedule;

class OracleFastPaths {
 public:
  // Plain SGD, x <- x - eta_t g_t(x) with the batch-1 gradient g_t of step t, for t = t_first..t_last in one
  // call: the run loop's per-step work (seeking the streams, two virtual calls, a separate axpy pass) is
  // what a sampled oracle's step costs when the gradient itself is a few hundred flops. Must give exactly
  // the iterates of the step-by-step loop (seek every stream to t, sample_gradient(x, g, 1),
  // x -= eta_t * g); returns false, changing nothing, where the oracle has no such path (noise, other
  // sampling).
  virtual bool fused_sgd_steps(VecRef /*x*/, long /*t_first*/, long /*t_last*/, const Schedule& /*schedule*/) {
    return false;
  }
  // fused_sgd_steps with the run loop's divergence check after every step (Optimizer::steps_checked) folded
  // into the update pass: returns the first step t whose iterate has !(||x_t||^2 <= limit2) (NaN included;
  // the squared norm in the bits of Eigen's squaredNorm(), so every decision is the run loop's), where it
  // stops, or 0 if every one passed; returns -1, changing nothing, where the oracle has no such path.
  virtual long fused_sgd_steps_checked(VecRef /*x*/, long /*t_first*/, long /*t_last*/, const Schedule& /*schedule*/,
                                       double /*limit2*/) {
    return -1;
  }
  // fused_sgd_steps for the runs of a lockstep group (OptimizerFastPaths::steps_lockstep), called on the fast
  // paths of oracles[0]: run k has oracle oracles[k] and iterate xs[k] (dim() doubles), and must end with
  // exactly the iterates fused_sgd_steps or the step-by-step loop give it alone. The run loop guarantees
  // that every oracles[k] has the dynamic class of oracles[0] and was made by the same Problem object, so
  // an implementation may static_cast them to its own class. Returns false, changing nothing, where the
  // oracle has no such path.
  virtual bool fused_sgd_steps_lockstep(std::span<Oracle* const> /*oracles*/, std::span<double* const> /*xs*/,
                                        long /*t_first*/, long /*t_last*/, const Schedule& /*schedule*/) {
    return false;
  }

  // The batch-1 stochastic gradient of step t as a row of the data and two numbers, for optimizers that fuse
  // the gradient into their own update pass (heavy ball, Nesterov, Adam): g_j = ridge * x_j + coef * row[j],
  // evaluated in that order, the bits the plain path gives (seek every stream to t, sample_gradient(x, g, 1)).
  // coef depends on x only through dot = row . x, which the caller sums (in the bits of Eigen's dot():
  // packet_passes::sweep_and_sum), in the update pass of the step before where it can: row_gradient_of_dot
  // also names next_row, the row of step t + 1. So a step costs one virtual call and one pass over x.
  // gradient_row(t) gives the row of the first step of a segment, or nullptr where the gradient has no such
  // form (noise, other sampling): then the caller takes the plain path. The rows stay valid for the run.
  struct RowGradient {
    const double* row = nullptr;
    double coef = 0.0, ridge = 0.0;
    const double* next_row = nullptr;
  };
  virtual const double* gradient_row(long /*t*/) { return nullptr; }
  // Called only where gradient_row() gives rows.
  virtual void row_gradient_of_dot(long /*t*/, double /*dot*/, RowGradient& /*out*/) {
    throw std::logic_error("row_gradient_of_dot called on an oracle without row gradients");
  }

  // Cheap block gradients, for block methods (multi-block heavy-ball, coordinate methods): coordinates
  // [begin, begin + size) of a stochastic gradient at x for about size/dim of the cost of a full one, the
  // same values as that block of sample_gradient's. sample_block_gradient is only called when
  // has_cheap_block_gradient(); block methods reach both through BlockGradientSampler below.
  virtual bool has_cheap_block_gradient() const { return false; }
  virtual void sample_block_gradient(ConstVecRef /*x*/, Eigen::Index /*begin*/, Eigen::Index /*size*/,
                                     VecRef /*g_block*/, int /*batch*/) {
    throw std::logic_error("sample_block_gradient called on an oracle without cheap block gradients");
  }

 protected:
  ~OracleFastPaths() = default;  // owned through the Oracle that exposes it
};

class OptimizerFastPaths {
 public:
  // Steps t_first..t_last of several runs of one configuration at once (a lockstep group: one optimizer
  // class and options, one problem instance, each run with its own streams and oracle), called once per
  // segment on the fast paths of optimizers[0]. Stepping the runs together lets an optimizer interleave their
  // dependency chains and share reads of the data among them (sgd: OracleFastPaths::fused_sgd_steps_lockstep).
  // The run loop guarantees that every optimizers[k] has the dynamic class of optimizers[0] and every
  // oracles[k] that of oracles[0] (made by one Problem object), so an implementation may static_cast them.
  // Must give every run exactly the iterates of its own Optimizer::steps(), bit for bit; returns false,
  // changing nothing, where it has no such path: the run loop then calls steps() run by run.
  virtual bool steps_lockstep(std::span<Optimizer* const> optimizers, long t_first, long t_last,
                              const Schedule& schedule, std::span<Oracle* const> oracles) = 0;

 protected:
  ~OptimizerFastPaths() = default;  // owned through the Optimizer that exposes it
};

// Block [begin, begin + size) of a stochastic gradient for block methods: the oracle's cheap block gradient
// where it has one, otherwise the full stochastic gradient (paying its full cost, which callers count as
// dim coordinates) into a scratch owned here and the block copied out. The optimizer owns one and calls
// prepare(dim) from its own prepare(), so nothing allocates in the step loop.
class BlockGradientSampler {
 public:
  void prepare(Eigen::Index dim) { full_.resize(dim); }
  // The oracle of the coming step; returns whether its block gradients are cheap. Two virtual calls, once
  // per step.
  bool bind(Oracle& oracle) {
    oracle_ = &oracle;
    OracleFastPaths* fast = oracle.fast_paths();
    cheap_ = fast && fast->has_cheap_block_gradient() ? fast : nullptr;
    return cheap_ != nullptr;
  }
  void sample(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block, int batch) {
    if (cheap_) return cheap_->sample_block_gradient(x, begin, size, g_block, batch);
    oracle_->sample_gradient(x, full_, batch);
    g_block = full_.segment(begin, size);
  }

 private:
  Oracle* oracle_ = nullptr;
  OracleFastPaths* cheap_ = nullptr;
  Vec full_;
};

}  // namespace ratelab
