// Two coordinate-separable problems with closed-form optima.
//
// logcosh: f(x) = sum_i log cosh(x_i - c_i), c ~ center_scale N(0, I) from the instance stream.
//   Smooth (L = 1: f'' = 1 - tanh^2 <= 1), convex, coercive, not strongly convex (f'' -> 0 as |x - c| grows,
//   so gradient steps act like sign steps far from c). f* = 0 at x* = c. Oracle: exact gradient tanh(x - c)
//   plus the gradient-noise model; takes a regularizer (then F*, x* by FISTA).
//
// abs_mean: F(x) = sum_i E|x_i - xi_i|, xi ~ N(0, I): the stochastic subgradient sign(x - xi) is the
//   textbook non-smooth stochastic oracle (the objective itself is smooth in expectation:
//   E|x - xi| = x (2 Phi(x) - 1) + 2 phi(x), derivative 2 Phi(x) - 1, second derivative 2 phi(x) <= 2 phi(0)).
//   F* = 2 d phi(0) at x* = 0, so the gap per coordinate is x(2 Phi(x) - 1) + 2 phi(x) - 2 phi(0).
//   The oracle draws xi from the sampling stream; E||g - grad F||^2 <= d with equality at x*.
#include <cmath>
#include <numbers>

#include "core/registry.hpp"
#include "problems/composite.hpp"
#include "problems/noise.hpp"

namespace ratelab {
namespace {

double log_cosh(double z) {
  const double a = std::abs(z);
  return a + std::log1p(std::exp(-2.0 * a)) - std::numbers::ln2;  // no overflow for large |z|
}

struct LogCoshOptions {
  long d = 10;
  double center_scale = 1.0;
  double init_scale = 2.0;
  NoiseOptions noise;
  RegularizerOptions regularizer;
  static ParamTable<LogCoshOptions> params() {
    using O = LogCoshOptions;
    return ParamTable<O>{
        param(&O::d, "d", at_least(1), "dimension"),
        param(&O::center_scale, "center_scale", nonnegative(), "c ~ center_scale * N(0, I) (instance stream)"),
        param(&O::init_scale, "init_scale", unconstrained(), "x0 = c + init_scale * (1, ..., 1)"),
    }
        .with(&O::noise, NoiseOptions::params())
        .with(&O::regularizer, RegularizerOptions::params());
  }
};

class LogCosh final : public CompositeProblem {
 public:
  LogCosh(const LogCoshOptions& o, ProblemContext& ctx) : CompositeProblem(o.regularizer), options_(o), c_(o.d) {
    for (long i = 0; i < o.d; ++i) c_[i] = o.center_scale * ctx.instance.normal();
    facts_.L = 1.0;
    facts_.G = std::sqrt(double(o.d));
    facts_.sigma2 = o.noise.variance(o.d);
    if (regularizer_.active()) {
      solve_composite(1.0);
    } else {
      facts_.f_star = 0.0;
      facts_.x_star_known = true;
      x_star_ = c_;
    }
  }
  Eigen::Index dim() const override { return options_.d; }
  void initial_point_before_projection(VecRef x0, RandomStream&) const override { x0 = c_.array() + options_.init_scale; }
  double smooth_value(ConstVecRef x) const override {
    double s = 0.0;
    for (Eigen::Index i = 0; i < x.size(); ++i) s += log_cosh(x[i] - c_[i]);
    return s;
  }
  void gradient(ConstVecRef x, VecRef g) const override { g = (x - c_).array().tanh(); }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<ExactGradientOracle>(*this, options_.noise, streams.noise);
  }

 private:
  LogCoshOptions options_;
  Vec c_;
};

double normal_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }

struct AbsMeanOptions {
  long d = 1;
  double init_scale = 1.0;
  static ParamTable<AbsMeanOptions> params() {
    return {param(&AbsMeanOptions::d, "d", at_least(1), "dimension"),
            param(&AbsMeanOptions::init_scale, "init_scale", unconstrained(), "x0 = init_scale * (1, ..., 1)")};
  }
};

class AbsMean final : public Problem {
 public:
  AbsMean(const AbsMeanOptions& o, ProblemContext&) : options_(o), x_star_(Vec::Zero(o.d)) {
    facts_.f_star = 2.0 * double(o.d) * normal_pdf(0.0);
    facts_.x_star_known = true;
    facts_.L = 2.0 * normal_pdf(0.0);
    facts_.G = std::sqrt(double(o.d));
    facts_.sigma2 = double(o.d);
  }
  Eigen::Index dim() const override { return options_.d; }
  const ProblemFacts& facts() const override { return facts_; }
  ConstVecRef x_star() const override { return x_star_; }
  void initial_point(VecRef x0, RandomStream&) const override { x0.setConstant(options_.init_scale); }
  double value(ConstVecRef x) const override {
    double s = 0.0;
    for (Eigen::Index i = 0; i < x.size(); ++i) s += x[i] * (2.0 * normal_cdf(x[i]) - 1.0) + 2.0 * normal_pdf(x[i]);
    return s;
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    for (Eigen::Index i = 0; i < x.size(); ++i) g[i] = 2.0 * normal_cdf(x[i]) - 1.0;
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<SignOracle>(streams.sampling);
  }

 private:
  class SignOracle final : public Oracle {
   public:
    explicit SignOracle(RandomStream& sampling) : sampling_(sampling) {}
    void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
      g.setZero();
      for (int b = 0; b < batch; ++b)
        for (Eigen::Index i = 0; i < x.size(); ++i) g[i] += x[i] > sampling_.normal() ? 1.0 : -1.0;
      if (batch > 1) g /= double(batch);
    }

   private:
    RandomStream& sampling_;
  };

  AbsMeanOptions options_;
  ProblemFacts facts_;
  Vec x_star_;
};

}  // namespace
}  // namespace ratelab

using ratelab::AbsMean;
using ratelab::AbsMeanOptions;
using ratelab::LogCosh;
using ratelab::LogCoshOptions;
RATELAB_REGISTER_PROBLEM(logcosh, LogCosh, LogCoshOptions,
                         "sum_i log cosh(x_i - c_i): smooth (L = 1), coercive, not strongly convex; f* = 0")
RATELAB_REGISTER_PROBLEM(abs_mean, AbsMean, AbsMeanOptions,
                         "E|x - xi| per coordinate, xi ~ N(0, 1), stochastic subgradient sign(x - xi)")
