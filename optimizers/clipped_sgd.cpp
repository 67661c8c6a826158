// Clipped SGD (norm clipping: Pascanu, Mikolov & Bengio, "On the difficulty of training recurrent neural
// networks", ICML 2013; the remedy for heavy-tailed gradient noise analysed by Zhang et al., "Why are
// adaptive methods good for attention models?", NeurIPS 2020, and Gorbunov, Danilova & Gasnikov,
// "Stochastic optimization with heavy-tailed noise via accelerated gradient clipping", NeurIPS 2020):
//   x_{t+1} = x_t - eta_t min(1, tau / ||g_t||) g_t,   tau > 0.
// The run stat `clip_fraction` is the fraction of steps whose gradient was shortened.
#include <algorithm>
#include <cmath>

#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct ClippedSgdOptions {
  double tau = 1.0;
  long batch = 1;
  static ParamTable<ClippedSgdOptions> params() {
    return {param(&ClippedSgdOptions::tau, "tau", positive(), "clipping radius: ||step direction|| <= tau"),
            batch_param(&ClippedSgdOptions::batch)};
  }
};

class ClippedSgd final : public Optimizer {
 public:
  explicit ClippedSgd(const ClippedSgdOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    steps_ = clipped_ = 0;
  }
  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    const double norm = g_.norm();
    ++steps_;
    if (norm > options_.tau) {
      ++clipped_;
      x_ -= (eta * (options_.tau / norm)) * g_;
    } else {
      x_ -= eta * g_;
    }
  }
  ConstVecRef iterate() const override { return x_; }
  void report(RunStats& stats) const override {
    stats.emplace_back("clip_fraction", steps_ ? double(clipped_) / double(steps_) : 0.0);
  }

 private:
  ClippedSgdOptions options_;
  Vec x_, g_;
  long steps_ = 0, clipped_ = 0;
};

}  // namespace
}  // namespace ratelab

using ratelab::ClippedSgd;
using ratelab::ClippedSgdOptions;
RATELAB_REGISTER_OPTIMIZER(clipped_sgd, ClippedSgd, ClippedSgdOptions,
                           "clipped SGD: x_{t+1} = x_t - eta_t min(1, tau/||g_t||) g_t")
