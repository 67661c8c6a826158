// The problem interface: an immutable instance shared by all runs that use it, and a per-run oracle.
//
// A Problem is built once per (configuration, instance) from the instance stream and is then read-only,
// so every thread may evaluate it. Each run asks it for an Oracle, which owns the run's scratch memory and
// draws randomness only from the streams it was handed. One virtual call per oracle call; results are
// written into caller-owned storage.
#pragma once

#include <Eigen/Core>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.hpp"

namespace ratelab {

struct Schedule;

using Vec = Eigen::VectorXd;
using Mat = Eigen::MatrixXd;
using VecRef = Eigen::Ref<Eigen::VectorXd>;
using ConstVecRef = Eigen::Ref<const Eigen::VectorXd>;
using MatRef = Eigen::Ref<Eigen::MatrixXd>;
using ConstMatRef = Eigen::Ref<const Eigen::MatrixXd>;

enum class Domain { euclidean, simplex, ball, box };
const char* domain_name(Domain domain);

// Runs body(begin, end) over pieces that cover [0, count), possibly on several threads at once.
using ParallelFor = std::function<void(long count, const std::function<void(long begin, long end)>& body)>;
inline void serial_for(long count, const std::function<void(long, long)>& body) { body(0, count); }

// What a problem knows about itself. Presets, schedules (c/(mu t)), tunings (Polyak's heavy-ball) and
// checks read these; an empty optional means "not known".
struct ProblemFacts {
  std::optional<double> f_star;  // optimal value of the full objective F = f + h
  std::optional<double> L, mu, G, sigma2, D;
  bool x_star_known = false;
  Domain domain = Domain::euclidean;
  // How f* was obtained when it is not a closed form ("newton, ||grad|| = 3e-14"); stored with the run.
  std::string f_star_method = "closed form";
};

// Run-level scalars a component reports at the end of a run (realized noise statistics, shrink factors).
using RunStats = std::vector<std::pair<std::string, double>>;

class Oracle {
 public:
  virtual ~Oracle() = default;
  // Stochastic (sub)gradient at x averaged over `batch` draws, written into g.
  virtual void sample_gradient(ConstVecRef x, VecRef g, int batch) = 0;
  // Statistics of the randomness this oracle realized over the run.
  virtual void report(RunStats& /*stats*/) const {}

  // Plain SGD, x <- x - eta_t g_t(x) with the batch-1 gradient g_t of step t, for t = t_first..t_last in one
  // call: the run loop's per-step work (seeking the streams, two virtual calls, a separate axpy pass) is
  // what a sampled oracle's step costs when the gradient itself is a few hundred flops. An oracle that
  // overrides this must give exactly the iterates of the step-by-step loop (seek every stream to t,
  // sample_gradient(x, g, 1), x -= eta_t * g), bit for bit (tests/test_fast_paths.cpp checks it), and
  // returns false, changing nothing, where it has no such path (noise, other sampling).
  virtual bool fused_sgd_steps(VecRef /*x*/, long /*t_first*/, long /*t_last*/, const Schedule& /*schedule*/) {
    return false;
  }
  // fused_sgd_steps for the runs of a lockstep group (Optimizer::steps_lockstep), called on oracles[0]: run k
  // has oracle oracles[k] (made by the same problem) and iterate xs[k] (dim() doubles), and must end with
  // exactly the iterates fused_sgd_steps or the step-by-step loop give it alone. Returns false, changing
  // nothing, where the oracle has no such path.
  virtual bool fused_sgd_steps_lockstep(std::span<Oracle* const> /*oracles*/, std::span<double* const> /*xs*/,
                                        long /*t_first*/, long /*t_last*/, const Schedule& /*schedule*/) {
    return false;
  }

  // Block-coordinate access for block methods (multi-block heavy-ball). An oracle that can compute the
  // coordinates [begin, begin + size) of a stochastic gradient at x for about size/dim of the cost of a full
  // one overrides both functions below and returns true from has_cheap_block_gradient(). The default
  // computes the full stochastic gradient (paying its full cost, which callers count as dim() coordinates)
  // into a scratch vector owned by the oracle, allocated on the first call only, and copies the block out.
  virtual bool has_cheap_block_gradient() const { return false; }
  virtual void sample_block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block,
                                     int batch) {
    if (block_scratch_.size() != x.size()) block_scratch_.resize(x.size());
    sample_gradient(x, block_scratch_, batch);
    g_block = block_scratch_.segment(begin, size);
  }

 private:
  Vec block_scratch_;  // only used by the default sample_block_gradient
};

class Problem {
 public:
  virtual ~Problem() = default;

  virtual Eigen::Index dim() const = 0;
  virtual const ProblemFacts& facts() const = 0;
  virtual void initial_point(VecRef x0, RandomStream& init) const { (void)init, x0.setZero(); }

  // Full objective F(x) = f(x) + h(x).
  virtual double value(ConstVecRef x) const = 0;
  // F at each column of X; override to stream the data once for the whole block.
  virtual void values(ConstMatRef X, VecRef out) const {
    for (Eigen::Index j = 0; j < X.cols(); ++j) out[j] = value(X.col(j));
  }
  // Exact (sub)gradient of the smooth part f; only called when has_gradient().
  virtual bool has_gradient() const { return true; }
  virtual void gradient(ConstVecRef x, VecRef g) const = 0;
  // Block [begin, begin + size) of the exact gradient of f, for multi-block methods; only called when
  // has_block_gradient(), which a problem returns when the block costs O(size) rather than a full gradient.
  virtual bool has_block_gradient() const { return false; }
  virtual void block_gradient(ConstVecRef /*x*/, Eigen::Index /*begin*/, Eigen::Index /*size*/,
                              VecRef /*g_block*/) const {}
  // prox of eta*h, in place; identity when the problem has no composite part.
  virtual bool is_composite() const { return false; }
  virtual void prox(double /*eta*/, VecRef /*x*/) const {}
  // Only called when facts().x_star_known.
  virtual ConstVecRef x_star() const;

  virtual std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const = 0;
  // Attributes recorded with every run of this instance (how f* was computed, realized condition number).
  virtual RunStats instance_stats() const { return {}; }

  // Problem-specific checkpoint quantities beyond the generic metrics (angle to a teacher, test accuracy).
  // The run loop evaluates them on the last iterate at every checkpoint, after the step loop like the
  // metrics: out is extra_metric_names().size() x X.cols(), row e holding quantity e at each column of X.
  virtual std::vector<std::string> extra_metric_names() const { return {}; }
  virtual void extra_metrics(ConstMatRef /*X*/, MatRef /*out*/) const {}
};

}  // namespace ratelab
