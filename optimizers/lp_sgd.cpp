// Low-precision SGD as gradient shrinkage (V.-D. Yun, "SGD convergence under stepsize shrinkage in
// low-precision training", arXiv:2508.07142, 2025):
//   x_{t+1} = x_t - eta_t (q_t g_t + e_t),
// so q_t shrinks the effective step to eta_t q_t and e_t is a perturbation. shrink selects q_t and e_t:
//   constant: q_t = q in (0, 1];
//   uniform:  q_t ~ U[q_min, 1], drawn each step from the rounding stream;
//   quantize: g_t is actually quantized to b bits (optimizers/quantize.hpp: symmetric uniform grid scaled
//             by the vector's max-abs or a fixed scale, rounding nearest | stochastic from the rounding
//             stream) and q_t, e_t are measured from the result: q_t = <Q(g_t), g_t> / ||g_t||^2 (the
//             least-squares shrink factor) and e_t = Q(g_t) - q_t g_t (the remainder, orthogonal to g_t).
// In every mode s_e > 0 adds quantization noise N(0, s_e^2 I) from the rounding stream to e_t.
// q = 1 with s_e = 0 is SGD bit for bit. Run stats: q_min and q_mean (over steps with g_t != 0) and
// e_mean_sq, the mean of ||e_t||^2 (noise included).
#include <algorithm>
#include <limits>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "optimizers/quantize.hpp"

namespace ratelab {
namespace {

struct LpSgdOptions {
  enum class Shrink { constant, uniform, quantize };
  Shrink shrink = Shrink::constant;
  double q = 1.0;
  double q_min = 0.5;
  long bits = 8;
  double scale = 0.0;
  Rounding rounding = Rounding::nearest;
  double s_e = 0.0;
  long batch = 1;
  static ParamTable<LpSgdOptions> params() {
    return {
        choice(&LpSgdOptions::shrink, "shrink",
               {{"constant", Shrink::constant}, {"uniform", Shrink::uniform}, {"quantize", Shrink::quantize}},
               "constant q_t = q; uniform q_t ~ U[q_min, 1]; quantize: measured from a b-bit quantized gradient"),
        param(&LpSgdOptions::q, "q", in_open_closed(0, 1), "shrink factor for shrink = constant"),
        param(&LpSgdOptions::q_min, "q_min", in_open_closed(0, 1), "lower end of q_t's range for shrink = uniform"),
        param(&LpSgdOptions::bits, "bits", in_closed(1, 52), "bits b of the quantizer (2^b levels)"),
        param(&LpSgdOptions::scale, "scale", nonnegative(),
              "quantizer range [-scale, scale]; 0 scales each gradient by its max-abs entry"),
        choice(&LpSgdOptions::rounding, "rounding",
               {{"nearest", Rounding::nearest}, {"stochastic", Rounding::stochastic}},
               "rounding to the quantizer grid"),
        param(&LpSgdOptions::s_e, "s_e", nonnegative(), "standard deviation of additive quantization noise in e_t"),
        batch_param(&LpSgdOptions::batch),
    };
  }
};

class LpSgd final : public Optimizer {
 public:
  explicit LpSgd(const LpSgdOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    direction_.resize(problem.dim());
    error_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams& streams) override {
    x_ = x0;
    rng_ = &streams.rounding;
    steps_ = shrink_steps_ = 0;
    q_min_seen_ = std::numeric_limits<double>::infinity();
    q_sum_ = error_sq_sum_ = 0.0;
  }
  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    double q_t = 1.0;
    bool q_defined = true, has_error = false;
    switch (options_.shrink) {
      case LpSgdOptions::Shrink::constant:
        q_t = options_.q;
        direction_ = q_t * g_;
        break;
      case LpSgdOptions::Shrink::uniform:
        q_t = options_.q_min + (1.0 - options_.q_min) * rng_->uniform();
        direction_ = q_t * g_;
        break;
      case LpSgdOptions::Shrink::quantize: {
        quantize(g_, direction_, int(options_.bits), options_.scale, options_.rounding, *rng_);
        const double g2 = g_.squaredNorm();
        q_defined = g2 > 0.0;
        q_t = q_defined ? direction_.dot(g_) / g2 : 1.0;
        error_ = direction_ - q_t * g_;
        has_error = true;
        break;
      }
    }
    if (options_.s_e > 0.0) {
      if (!has_error) error_.setZero();
      for (Eigen::Index i = 0; i < error_.size(); ++i) {
        const double n = options_.s_e * rng_->normal();
        error_[i] += n;
        direction_[i] += n;
      }
      has_error = true;
    }
    x_ -= eta * direction_;
    ++steps_;
    if (has_error) error_sq_sum_ += error_.squaredNorm();
    if (q_defined) {
      ++shrink_steps_;
      q_sum_ += q_t;
      q_min_seen_ = std::min(q_min_seen_, q_t);
    }
  }
  ConstVecRef iterate() const override { return x_; }
  void report(RunStats& stats) const override {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    stats.emplace_back("q_min", shrink_steps_ ? q_min_seen_ : nan);
    stats.emplace_back("q_mean", shrink_steps_ ? q_sum_ / double(shrink_steps_) : nan);
    stats.emplace_back("e_mean_sq", steps_ ? error_sq_sum_ / double(steps_) : nan);
  }

 private:
  LpSgdOptions options_;
  Vec x_, g_, direction_, error_;
  RandomStream* rng_ = nullptr;
  long steps_ = 0, shrink_steps_ = 0;
  double q_min_seen_ = 0.0, q_sum_ = 0.0, error_sq_sum_ = 0.0;
};

}  // namespace
}  // namespace ratelab

using ratelab::LpSgd;
using ratelab::LpSgdOptions;
RATELAB_REGISTER_OPTIMIZER(lp_sgd, LpSgd, LpSgdOptions,
                           "low-precision SGD as shrinkage: x_{t+1} = x_t - eta_t (q_t g_t + e_t)")
