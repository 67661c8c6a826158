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
#include <string>
#include <utility>
#include <vector>

#include "core/rng.hpp"

namespace ratelab {

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

class OracleFastPaths;  // core/fast_paths.hpp

// A run's stochastic oracle. A problem author implements sample_gradient (and report, when the oracle has
// statistics to record); that is the whole interface every optimizer relies on. An oracle with a faster
// path for some optimizer (fused SGD steps, cheap block gradients) exposes it through fast_paths(), one
// opt-in capability declared in core/fast_paths.hpp; the plain path stays the reference.
class Oracle {
 public:
  virtual ~Oracle() = default;
  // Stochastic (sub)gradient at x averaged over `batch` draws, written into g.
  virtual void sample_gradient(ConstVecRef x, VecRef g, int batch) = 0;
  // Statistics of the randomness this oracle realized over the run.
  virtual void report(RunStats& /*stats*/) const {}
  // The fast paths this oracle offers (core/fast_paths.hpp), or nullptr: then callers use sample_gradient.
  virtual OracleFastPaths* fast_paths() { return nullptr; }
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

  // What one evaluation of F (or of its exact gradient) at one point costs, in oracle samples: 1 for a
  // problem whose value costs about a stochastic gradient; a finite-sum problem that streams its n rows says n.
  // The run loop spaces its target checks by it (target_check_interval in core/run.hpp).
  virtual double evaluation_cost() const { return 1.0; }

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
