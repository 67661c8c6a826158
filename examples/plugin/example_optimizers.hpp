// Two optimizers written exactly as in-tree components are (an Options struct with in-class defaults and
// a params() table, an Optimizer subclass that allocates in prepare() only), exported from a plugin by
// plugin.cpp. The header is separate only so ratelab's benchmark can build the same classes in.
//
// AdaGrad, diagonal form (Duchi, Hazan & Singer, "Adaptive subgradient methods", JMLR 2011):
//   G_t = G_{t-1} + g_t * g_t,   x_{t+1} = x_t - eta_t g_t / (eps + sqrt(G_t))   (coordinatewise), G_0 = g0.
// Randomized coordinate descent (Nesterov, "Efficiency of coordinate descent methods on huge-scale
// optimization problems", SIAM J. Optim. 2012), stochastic-gradient form:
//   i_t ~ uniform{1..d} from the optimizer stream,   x_{t+1} = x_t - eta_t [g_t]_{i_t} e_{i_t}.
#pragma once

#include <cmath>

#include "core/fast_paths.hpp"
#include "core/optimizer.hpp"
#include "core/params.hpp"

namespace example {

using namespace ratelab;

struct AdaGradOptions {
  double eps = 1e-8;
  double initial_accumulator = 0.0;
  long batch = 1;
  static ParamTable<AdaGradOptions> params() {
    return {param(&AdaGradOptions::eps, "eps", positive(), "added to sqrt(G_t) so the first steps stay finite"),
            param(&AdaGradOptions::initial_accumulator, "initial_accumulator", nonnegative(),
                  "G_0, the starting value of every coordinate's sum of squared gradients"),
            param(&AdaGradOptions::batch, "batch", at_least(1), "minibatch size B: the oracle averages B draws")};
  }
};

class AdaGrad final : public Optimizer {
 public:
  explicit AdaGrad(const AdaGradOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    sum_squares_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    sum_squares_.setConstant(options_.initial_accumulator);
  }
  void step(long, double eta, Oracle& oracle) override {
    oracle.sample_gradient(x_, g_, int(options_.batch));
    sum_squares_.array() += g_.array().square();
    x_.array() -= eta * g_.array() / (options_.eps + sum_squares_.array().sqrt());
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  AdaGradOptions options_;
  Vec x_, g_, sum_squares_;
};

struct CoordinateSgdOptions {
  long batch = 1;
  static ParamTable<CoordinateSgdOptions> params() {
    return {param(&CoordinateSgdOptions::batch, "batch", at_least(1), "minibatch size B: the oracle averages B draws")};
  }
};

class CoordinateSgd final : public Optimizer {
 public:
  explicit CoordinateSgd(const CoordinateSgdOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    block_gradients_.prepare(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams& streams) override {
    x_ = x0;
    stream_ = &streams.optimizer;
    coordinates_ = 0;
  }
  void step(long, double eta, Oracle& oracle) override {
    const auto i = Eigen::Index(stream_->below(std::uint64_t(x_.size())));
    // One coordinate of a stochastic gradient: cheap when the oracle can compute a block (core/fast_paths.hpp),
    // else a full one is computed and counted.
    const bool cheap = block_gradients_.bind(oracle);
    block_gradients_.sample(x_, i, 1, g_.segment(i, 1), int(options_.batch));
    coordinates_ += cheap ? 1.0 : double(x_.size());
    x_[i] -= eta * g_[i];
  }
  ConstVecRef iterate() const override { return x_; }
  void report(RunStats& stats) const override { stats.emplace_back("gradient_coordinates", coordinates_); }

 private:
  CoordinateSgdOptions options_;
  Vec x_, g_;
  BlockGradientSampler block_gradients_;
  RandomStream* stream_ = nullptr;
  double coordinates_ = 0;
};

}  // namespace example
