// Stochastic gradient descent (Robbins & Monro, 1951):
//   x_{t+1} = x_t - eta_t g_t,   g_t = (1/B) sum_{b=1..B} g(x_t; xi_{t,b}),
// with B the minibatch size (the oracle averages B draws).
#include <array>

#include "core/fast_paths.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct SgdOptions {
  long batch = 1;
  static ParamTable<SgdOptions> params() {
    return {batch_param(&SgdOptions::batch)};
  }
};

// With batch 1, a segment of steps goes to the oracle's fused SGD steps (core/fast_paths.hpp), run by run or
// for a whole lockstep group, where the oracle has them; otherwise the step-by-step loop.
class Sgd final : public Optimizer, public OptimizerFastPaths {
 public:
  explicit Sgd(const SgdOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    x_ -= eta * g_;
  }
  void steps(long t_first, long t_last, const Schedule& schedule, RunStreams& streams, Oracle& oracle) override {
    if (options_.batch == 1)
      if (OracleFastPaths* fast = oracle.fast_paths(); fast && fast->fused_sgd_steps(x_, t_first, t_last, schedule)) {
        count_gradient_evaluations(double(t_last - t_first + 1));
        return;
      }
    Optimizer::steps(t_first, t_last, schedule, streams, oracle);
  }
  long steps_checked(long t_first, long t_last, double limit2, const Schedule& schedule, RunStreams& streams,
                     Oracle& oracle) override {
    if (options_.batch == 1)
      if (OracleFastPaths* fast = oracle.fast_paths())
        if (const long failed = fast->fused_sgd_steps_checked(x_, t_first, t_last, schedule, limit2); failed >= 0) {
          count_gradient_evaluations(double((failed ? failed : t_last) - t_first + 1));
          return failed;
        }
    return Optimizer::steps_checked(t_first, t_last, limit2, schedule, streams, oracle);
  }
  OptimizerFastPaths* fast_paths() override { return this; }
  // Every optimizers[k] is an Sgd (OptimizerFastPaths::steps_lockstep).
  bool steps_lockstep(std::span<Optimizer* const> optimizers, long t_first, long t_last, const Schedule& schedule,
                      std::span<Oracle* const> oracles) override {
    OracleFastPaths* fast = oracles[0]->fast_paths();
    if (!fast || optimizers.size() > kMaxLockstep) return false;
    std::array<double*, kMaxLockstep> xs{};
    for (std::size_t k = 0; k < optimizers.size(); ++k) {
      Sgd& sgd = static_cast<Sgd&>(*optimizers[k]);
      if (sgd.options_.batch != 1) return false;
      xs[k] = sgd.x_.data();
    }
    if (!fast->fused_sgd_steps_lockstep(oracles, {xs.data(), optimizers.size()}, t_first, t_last, schedule))
      return false;
    for (Optimizer* sgd : optimizers) static_cast<Sgd*>(sgd)->count_gradient_evaluations(double(t_last - t_first + 1));
    return true;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  SgdOptions options_;
  Vec x_, g_;
};

}  // namespace
}  // namespace ratelab

using ratelab::Sgd;
using ratelab::SgdOptions;
RATELAB_REGISTER_OPTIMIZER(sgd, Sgd, SgdOptions, "stochastic gradient descent: x_{t+1} = x_t - eta_t g_t")
