// Known hard instances.
//
// harvey_sc, harvey_lip: Harvey, Liaw, Plan & Randhawa, "Tight analyses for non-smooth stochastic gradient
// descent" (COLT 2019), Sections 3-4: functions on the unit ball of R^T on which the last iterate of
// projected (sub)gradient descent from x_1 = 0 is a log T factor worse than the averaged iterate.
//   strongly convex:  a_j = 1/(2(T+1-j)),  f(x) = max_{i=1..T+1} h_i^T x + ||x||^2/2,  step 1/t,
//                     h_{i,j} = a_j (j < i), -1 (j = i <= T), 0 (j > i);  f(x_{T+1}) >= log T / (4T).
//   Lipschitz:        a_j = 1/(8(T+1-j)), b_j = sqrt(j)/(2 sqrt T),  f(x) = max_{i=1..T+1} h_i^T x,
//                     h_{i,j} = a_j (j < i), -b_i (j = i <= T), 0 (j > i),  step 1/sqrt(t);
//                     f(x_{T+1}) >= log T / (32 sqrt T).
// f* = 0 at x* = 0 for both. h_i^T x = S_{i-1} - c_i x_i with the prefix sums S_k = sum_{j<=k} a_j x_j
// (c_i = 1 or b_i), so f costs O(T). The oracle is deterministic and returns h_{i(x)} (+ x), i(x) the
// smallest index attaining the max, values within 1e-12 relative of the max counting as ties (the paper's
// oracle picks the smallest maximizing index; the relative tie keeps that choice stable under rounding).
// The domain (unit ball) is the composite part: prox = projection.
//
// lessard: Lessard, Recht & Packard, "Analysis and design of optimization algorithms via integral quadratic
// constraints" (SIAM J. Optim. 2016), Sec. 2.2: the 1-D function, mu = 1, L = 25,
//   f(x) = 25x^2/2 (x < 1);  x^2/2 + 24x - 12 (1 <= x < 2);  25x^2/2 - 24x + 36 (x >= 2),
// on which heavy ball with the step and momentum tuned for quadratics (Polyak: alpha = 4/(sqrt L + sqrt mu)^2
// = 1/9, beta = ((sqrt L - sqrt mu)/(sqrt L + sqrt mu))^2 = 4/9) does not converge: from the default
// x0 = 3.3 (x_{-1} = x0) it settles on a limit cycle (tests/test_problems.cpp checks it).
// f* = 0 at 0. Oracle: exact gradient plus the gradient-noise model.
#include <cmath>
#include <cstdio>
#include <limits>

#include "core/registry.hpp"
#include "problems/composite.hpp"
#include "problems/noise.hpp"

namespace ratelab {
namespace {

struct HarveyOptions {
  long T = 1000;
  static ParamTable<HarveyOptions> params() {
    return {param(&HarveyOptions::T, "T", at_least(1),
                  "horizon = dimension; the lower bound holds for the last iterate after T steps")};
  }
};

RegularizerOptions unit_ball() {
  RegularizerOptions o;
  o.kind = RegularizerOptions::Kind::ball;
  o.radius = 1.0;
  return o;
}

template <bool StronglyConvex>
class Harvey final : public CompositeProblem {
 public:
  Harvey(const HarveyOptions& o, ProblemContext&) : CompositeProblem(unit_ball()), T_(o.T), a_(o.T), c_(o.T) {
    for (long j = 1; j <= T_; ++j) {
      a_[j - 1] = 1.0 / ((StronglyConvex ? 2.0 : 8.0) * double(T_ + 1 - j));
      c_[j - 1] = StronglyConvex ? 1.0 : std::sqrt(double(j)) / (2.0 * std::sqrt(double(T_)));
    }
    // max_i ||h_i||, h_i = (a_1..a_{i-1}, -c_i, 0..): O(T) with the prefix sums of a_j^2.
    double prefix = 0.0, G = 0.0;
    for (long i = 1; i <= T_ + 1; ++i) {
      const double ci = i <= T_ ? c_[i - 1] : 0.0;
      G = std::max(G, std::sqrt(prefix + ci * ci));
      if (i <= T_) prefix += a_[i - 1] * a_[i - 1];
    }
    facts_.G = StronglyConvex ? G + 1.0 : G;  // + ||x|| <= 1 on the ball
    if (StronglyConvex) facts_.mu = 1.0;
    facts_.f_star = 0.0;
    facts_.x_star_known = true;
    facts_.D = 2.0;
    x_star_ = Vec::Zero(T_);
  }

  Eigen::Index dim() const override { return T_; }
  double smooth_value(ConstVecRef x) const override {
    const double m = max_value(x);
    return StronglyConvex ? m + 0.5 * x.squaredNorm() : m;
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    const long i = max_index(x);  // 1-based
    g.setZero();
    for (long j = 1; j < i; ++j) g[j - 1] = a_[j - 1];
    if (i <= T_) g[i - 1] = -c_[i - 1];
    if (StronglyConvex) g += x;
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<ExactGradientOracle>(*this, NoiseOptions{}, streams.noise);  // scale 0: exact
  }

  // The smallest i in 1..T+1 with h_i^T x >= max - 1e-12 |max|.
  long max_index(ConstVecRef x) const {
    const double m = max_value(x), tie = m - 1e-12 * std::abs(m);
    double prefix = 0.0;
    for (long i = 1; i <= T_; ++i) {
      if (prefix - c_[i - 1] * x[i - 1] >= tie) return i;
      prefix += a_[i - 1] * x[i - 1];
    }
    return T_ + 1;
  }

 private:
  double max_value(ConstVecRef x) const {
    double prefix = 0.0, m = -std::numeric_limits<double>::infinity();
    for (long i = 1; i <= T_; ++i) {
      m = std::max(m, prefix - c_[i - 1] * x[i - 1]);
      prefix += a_[i - 1] * x[i - 1];
    }
    return std::max(m, prefix);
  }

  long T_;
  Vec a_, c_;
};

using HarveySc = Harvey<true>;
using HarveyLip = Harvey<false>;

struct LessardOptions {
  double x0 = 3.3;
  NoiseOptions noise;
  static ParamTable<LessardOptions> params() {
    return ParamTable<LessardOptions>{param(&LessardOptions::x0, "x0", unconstrained(), "initial point")}.with(
        &LessardOptions::noise, NoiseOptions::params());
  }
};

class Lessard final : public Problem {
 public:
  Lessard(const LessardOptions& o, ProblemContext&) : options_(o), x_star_(Vec::Zero(1)) {
    facts_.f_star = 0.0;
    facts_.x_star_known = true;
    facts_.L = 25.0;
    facts_.mu = 1.0;
    facts_.sigma2 = o.noise.variance(1);
  }
  Eigen::Index dim() const override { return 1; }
  const ProblemFacts& facts() const override { return facts_; }
  ConstVecRef x_star() const override { return x_star_; }
  void initial_point(VecRef x0, RandomStream&) const override { x0[0] = options_.x0; }
  double value(ConstVecRef x) const override {
    const double v = x[0];
    if (v < 1.0) return 12.5 * v * v;
    if (v < 2.0) return 0.5 * v * v + 24.0 * v - 12.0;
    return 12.5 * v * v - 24.0 * v + 36.0;
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    const double v = x[0];
    g[0] = v < 1.0 ? 25.0 * v : v < 2.0 ? v + 24.0 : 25.0 * v - 24.0;
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<ExactGradientOracle>(*this, options_.noise, streams.noise);
  }

 private:
  LessardOptions options_;
  ProblemFacts facts_;
  Vec x_star_;
};

}  // namespace
}  // namespace ratelab

using ratelab::HarveyLip;
using ratelab::HarveyOptions;
using ratelab::HarveySc;
using ratelab::Lessard;
using ratelab::LessardOptions;
RATELAB_REGISTER_PROBLEM(harvey_sc, HarveySc, HarveyOptions,
                         "Harvey et al. (2019) strongly convex instance: last iterate of GD with step 1/t is log T worse")
RATELAB_REGISTER_PROBLEM(harvey_lip, HarveyLip, HarveyOptions,
                         "Harvey et al. (2019) Lipschitz instance: last iterate of GD with step 1/sqrt(t) is log T worse")
RATELAB_REGISTER_PROBLEM(lessard, Lessard, LessardOptions,
                         "Lessard-Recht-Packard 1-D piecewise quadratic (mu = 1, L = 25) where tuned heavy ball cycles")
