// The iterate views the run loop maintains online (last, uniform, suffix, polydecay, best) against a
// brute-force recomputation from every stored iterate.
//
// The problem is one-dimensional with F(x) = x, so the `value` metric of a view is the view's iterate
// itself and the comparison is exact up to rounding. The optimizer ignores the oracle and follows a fixed
// irregular sequence x_t, which the test recomputes.
#include <catch2/catch.hpp>
#include <cmath>

#include "core/run.hpp"

using namespace ratelab;

namespace {

double scripted_iterate(long t) {
  return std::cos(0.37 * double(t)) + 0.01 * double(t) + 0.3 * std::sin(1.7 * std::pow(double(t), 1.1));
}

class LinearProblem final : public Problem {
 public:
  Eigen::Index dim() const override { return 1; }
  const ProblemFacts& facts() const override { return facts_; }
  void initial_point(VecRef x0, RandomStream&) const override { x0[0] = scripted_iterate(0); }
  double value(ConstVecRef x) const override { return x[0]; }
  void gradient(ConstVecRef, VecRef g) const override { g.setOnes(); }
  std::unique_ptr<Oracle> make_oracle(RunStreams&) const override {
    struct Unused final : Oracle {
      void sample_gradient(ConstVecRef, VecRef g, int) override { g.setOnes(); }
    };
    return std::make_unique<Unused>();
  }

 private:
  ProblemFacts facts_;
};

class ScriptedOptimizer final : public Optimizer {
 public:
  void prepare(const Problem&) override { x_.resize(1); }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long t, double, Oracle&) override { x_[0] = scripted_iterate(t); }
  ConstVecRef iterate() const override { return x_; }

 private:
  Vec x_;
};

}  // namespace

TEST_CASE("iterate views equal a brute-force recomputation from the stored iterates", "[optimizers][views]") {
  const long T = 300;
  std::vector<double> x(T + 1);
  for (long t = 0; t <= T; ++t) x[std::size_t(t)] = scripted_iterate(t);

  std::vector<long> dense;
  for (long t = 0; t <= 40; ++t) dense.push_back(t);
  for (long t : {57L, 99L, 100L, 101L, 173L, 250L, 300L}) dense.push_back(t);
  struct Alpha {
    long numerator, denominator;  // alpha as an exact fraction, so ceil(alpha t) is exact here
  };
  const std::vector<Alpha> alphas{{1, 2}, {3, 10}, {1, 4}, {1, 1}, {1, 100}, {7, 9}};
  const std::vector<double> ks{0.0, 3.0, 2.5};

  LinearProblem problem;
  for (const auto& checkpoints : {log_checkpoints(T, 15), dense}) {
    for (const Alpha& alpha : alphas) {
      for (double k : ks) {
        RunPlan plan;
        plan.steps = T;
        plan.checkpoints = checkpoints;
        plan.views = {View::last, View::uniform, View::suffix, View::polydecay, View::best};
        plan.metrics = {Metric::value};
        plan.suffix_alpha = double(alpha.numerator) / double(alpha.denominator);
        plan.polydecay_k = k;
        ScriptedOptimizer opt;
        RunStreams streams(1, 0);
        RunResult r = run_one(problem, opt, Schedule{}, plan, streams);
        REQUIRE(r.status == RunStatus::ok);
        const std::size_t K = checkpoints.size(), V = plan.views.size();
        REQUIRE(r.traces.size() == K * V);
        double best = x[0];
        for (std::size_t c = 0; c < K; ++c) {
          const long t = checkpoints[c];
          double uniform = x[0], suffix = x[0], poly = x[0];
          if (t > 0) {
            uniform = 0.0;
            for (long s = 1; s <= t; ++s) uniform += x[std::size_t(s)];
            uniform /= double(t);
            const long width =
                std::min(t, std::max(1L, (alpha.numerator * t + alpha.denominator - 1) / alpha.denominator));
            suffix = 0.0;
            for (long s = t - width + 1; s <= t; ++s) suffix += x[std::size_t(s)];
            suffix /= double(width);
            // Unrolled Shamir-Zhang recursion: weight of x_s in xbar_t is
            // w_s prod_{j=s+1..t} (1 - w_j), w_j = (k+1)/(j+k); w_1 = 1 removes x_0.
            poly = 0.0;
            for (long s = 1; s <= t; ++s) {
              double weight = (k + 1.0) / (double(s) + k);
              for (long j = s + 1; j <= t; ++j) weight *= 1.0 - (k + 1.0) / (double(j) + k);
              poly += weight * x[std::size_t(s)];
            }
          }
          best = std::min(best, x[std::size_t(t)]);
          const double expected[5] = {x[std::size_t(t)], uniform, suffix, poly, best};
          for (std::size_t v = 0; v < V; ++v) {
            INFO("t = " << t << ", view " << view_name(plan.views[v]) << ", alpha = " << plan.suffix_alpha
                        << ", k = " << k);
            CHECK(std::abs(r.traces[v * K + c] - expected[v]) <= 1e-12 * std::max(1.0, std::abs(expected[v])));
          }
        }
      }
    }
  }
}

TEST_CASE("iterate views: best alone and suffix alone are recorded without the other views", "[optimizers][views]") {
  // The tracker stores only the views asked for (best needs the last iterate internally).
  LinearProblem problem;
  const long T = 50;
  RunPlan plan;
  plan.steps = T;
  plan.checkpoints = {0, 1, 10, 25, 50};
  plan.views = {View::best, View::suffix};
  plan.metrics = {Metric::value};
  plan.suffix_alpha = 0.5;
  ScriptedOptimizer opt;
  RunStreams streams(1, 0);
  RunResult r = run_one(problem, opt, Schedule{}, plan, streams);
  REQUIRE(r.status == RunStatus::ok);
  double best = scripted_iterate(0);
  for (std::size_t c = 0; c < plan.checkpoints.size(); ++c) {
    const long t = plan.checkpoints[c];
    best = std::min(best, scripted_iterate(t));
    CHECK(r.traces[c] == best);  // best is a stored value, copied exactly
    double suffix = scripted_iterate(0);
    if (t > 0) {
      const long width = (t + 1) / 2;
      suffix = 0.0;
      for (long s = t - width + 1; s <= t; ++s) suffix += scripted_iterate(s);
      suffix /= double(width);
    }
    CHECK(std::abs(r.traces[plan.checkpoints.size() + c] - suffix) <= 1e-12 * std::max(1.0, std::abs(suffix)));
  }
}

namespace {

// x_t = 2^-t from x_0 = 1: the suffix window's mean has a closed form, exact up to two roundings.
class GeometricOptimizer final : public Optimizer {
 public:
  void prepare(const Problem&) override { x_.resize(1); }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long t, double, Oracle&) override { x_[0] = std::ldexp(1.0, int(-t)); }
  ConstVecRef iterate() const override { return x_; }

 private:
  Vec x_;
};

class GeometricStart final : public Problem {
 public:
  Eigen::Index dim() const override { return 1; }
  const ProblemFacts& facts() const override { return facts_; }
  void initial_point(VecRef x0, RandomStream&) const override { x0[0] = 1.0; }
  double value(ConstVecRef x) const override { return x[0]; }
  void gradient(ConstVecRef, VecRef g) const override { g.setOnes(); }
  std::unique_ptr<Oracle> make_oracle(RunStreams&) const override {
    struct Unused final : Oracle {
      void sample_gradient(ConstVecRef, VecRef g, int) override { g.setOnes(); }
    };
    return std::make_unique<Unused>();
  }

 private:
  ProblemFacts facts_;
};

}  // namespace

TEST_CASE("suffix view: relative error independent of how small the iterates get (x_t = 2^-t)", "[optimizers][views]") {
  // sum_{s=a}^{t} 2^-s = 2^{1-a} - 2^-t; in double the two powers are exact, so the reference has at most two
  // roundings (difference, division). The view sums at most `width` positive terms: relative error at most
  // about width * 2^-53 (< 5e-14 for width <= 200), whatever the magnitude. Subtracting two running sums
  // (both about 2) gave 0 from t = 118 on.
  GeometricStart problem;
  const long T = 400;
  std::vector<long> dense;
  for (long t = 0; t <= 130; ++t) dense.push_back(t);
  for (long t : {200L, 201L, 333L, 400L}) dense.push_back(t);
  for (const auto& checkpoints : {log_checkpoints(T, 40), dense}) {
    for (double alpha : {0.5, 0.25, 1.0}) {
      RunPlan plan;
      plan.steps = T;
      plan.checkpoints = checkpoints;
      plan.views = {View::suffix, View::uniform};
      plan.metrics = {Metric::value};
      plan.suffix_alpha = alpha;
      GeometricOptimizer opt;
      RunStreams streams(1, 0);
      RunResult r = run_one(problem, opt, Schedule{}, plan, streams);
      REQUIRE(r.status == RunStatus::ok);
      const std::size_t K = checkpoints.size();
      for (std::size_t c = 0; c < K; ++c) {
        const long t = checkpoints[c];
        if (t == 0) continue;
        const long width = std::min(t, std::max(1L, long(std::ceil(alpha * double(t) - 1e-12))));
        const long a = t - width + 1;
        const double reference = (std::ldexp(1.0, int(1 - a)) - std::ldexp(1.0, int(-t))) / double(width);
        INFO("t = " << t << ", alpha = " << alpha << ", reference " << reference << ", view " << r.traces[c]);
        CHECK(std::abs(r.traces[c] - reference) <= 2 * double(width) * 0x1p-53 * reference);
        // uniform: every term counts, so the relative error of a plain running sum is already small
        const double uniform = (1.0 - std::ldexp(1.0, int(-t))) / double(t);
        CHECK(std::abs(r.traces[K + c] - uniform) <= 4 * double(t) * 0x1p-53 * uniform);
      }
    }
  }
}
