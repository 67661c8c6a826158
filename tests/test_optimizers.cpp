// The optimizer families: exact recurrences on noise-free problems, closed-form rates and stationary
// values, Monte Carlo checks with tolerances from the standard error, and parameter validation.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <typeinfo>

#include "core/fast_paths.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/rng.hpp"
#include "core/run.hpp"
#include "experiments/conformance.hpp"
#include "optimizers/laplacian_smoothing.hpp"
#include "optimizers/quantize.hpp"

using namespace ratelab;

namespace {

using Raw = std::map<std::string, std::string>;

const Registry& registry() {
  static const Registry r = builtin_registry();
  return r;
}

ParamSet resolve(ComponentKind kind, const std::string& key, const Raw& raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry().info(kind, key).params, raw, kind_name(kind), errors);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  INFO(kind_name(kind) << " " << key << ": " << all);
  REQUIRE(errors.empty());
  return p;
}

std::shared_ptr<const Problem> quadratic(const Raw& raw, std::uint64_t seed = 1) {
  ProblemContext ctx{RandomStream(seed, 0, StreamPurpose::instance), ""};
  return registry().make_problem("quadratic", resolve(ComponentKind::problem, "quadratic", raw), ctx);
}

std::unique_ptr<Optimizer> optimizer(const std::string& key, const Raw& raw = {}) {
  return registry().make_optimizer(key, resolve(ComponentKind::optimizer, key, raw));
}

Schedule constant_step(double eta) { return Schedule{.kind = Schedule::Kind::constant, .c = eta}; }

// Drives an optimizer exactly as run_one does and keeps every iterate x_0..x_T.
struct Trajectory {
  std::vector<Vec> x;
  RunStats stats;
};
Trajectory trajectory(const Problem& problem, Optimizer& opt, double eta, long steps, std::uint64_t seed = 1) {
  Trajectory out;
  RunStreams streams(seed, 0);
  opt.prepare(problem);
  auto oracle = problem.make_oracle(streams);
  Vec x0(problem.dim());
  streams.init.seek(0);
  problem.initial_point(x0, streams.init);
  opt.start(x0, streams);
  out.x.push_back(x0);
  for (long t = 1; t <= steps; ++t) {
    streams.seek(std::uint64_t(t));
    opt.step(t, eta, *oracle);
    out.x.emplace_back(opt.iterate());
  }
  opt.report(out.stats);
  return out;
}

double stat(const RunStats& stats, const std::string& name) {
  for (const auto& [k, v] : stats)
    if (k == name) return v;
  FAIL("run stat " << name << " missing");
  return 0.0;
}

double relative_error(const Vec& a, const Vec& reference) {
  return (a - reference).norm() / std::max(reference.norm(), 1e-300);
}

// f(x) = 1/2 ||x - c||^2 (+ lambda ||x||_1 when lambda > 0), exact gradients, declared facts chosen by the
// test: a problem without L and mu, or one on the simplex.
class TestProblem final : public Problem {
 public:
  TestProblem(Vec c, double lambda, ProblemFacts facts) : c_(std::move(c)), lambda_(lambda), facts_(std::move(facts)) {}
  Eigen::Index dim() const override { return c_.size(); }
  const ProblemFacts& facts() const override { return facts_; }
  void initial_point(VecRef x0, RandomStream&) const override {
    if (facts_.domain == Domain::simplex) x0.setConstant(1.0 / double(c_.size()));
    else x0.setOnes();
  }
  double value(ConstVecRef x) const override { return 0.5 * (x - c_).squaredNorm() + lambda_ * x.lpNorm<1>(); }
  void gradient(ConstVecRef x, VecRef g) const override { g = x - c_; }
  bool is_composite() const override { return lambda_ > 0.0; }
  void prox(double eta, VecRef x) const override {  // soft thresholding at eta * lambda
    const double k = eta * lambda_;
    for (Eigen::Index i = 0; i < x.size(); ++i) x[i] = std::copysign(std::max(std::abs(x[i]) - k, 0.0), x[i]);
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams&) const override {
    struct Exact final : Oracle {
      const TestProblem& p;
      explicit Exact(const TestProblem& problem) : p(problem) {}
      void sample_gradient(ConstVecRef x, VecRef g, int) override { p.gradient(x, g); }
    };
    return std::make_unique<Exact>(*this);
  }

 private:
  Vec c_;
  double lambda_;
  ProblemFacts facts_;
};

// Companion matrix of heavy-ball on one eigenvalue lambda: (x_{t+1}, x_t) = M (x_t, x_{t-1}).
Eigen::Matrix2d companion(double lambda, double gamma, double beta) {
  Eigen::Matrix2d m;
  m << 1.0 + beta - gamma * lambda, -beta, 1.0, 0.0;
  return m;
}
// M^n by repeated squaring: a different order of operations from the optimizer's recurrence.
Eigen::Matrix2d power(Eigen::Matrix2d m, long n) {
  Eigen::Matrix2d result = Eigen::Matrix2d::Identity();
  while (n > 0) {
    if (n & 1) result = result * m;
    m = m * m;
    n >>= 1;
  }
  return result;
}

// Dense A = I + (-1)^n sigma L^n with L the periodic Laplacian, built entry by entry.
Mat dense_smoothing_matrix(Eigen::Index d, double sigma, int order) {
  Mat L = Mat::Zero(d, d);
  for (Eigen::Index i = 0; i < d; ++i) {
    L(i, i) -= 2.0;
    L(i, (i + 1) % d) += 1.0;
    L(i, (i + d - 1) % d) += 1.0;
  }
  Mat power_of_l = Mat::Identity(d, d);
  for (int k = 0; k < order; ++k) power_of_l = power_of_l * L;
  return Mat::Identity(d, d) + (order % 2 ? -sigma : sigma) * power_of_l;
}

}  // namespace

// ---- heavy-ball ------------------------------------------------------------------------------------

TEST_CASE("heavy_ball: trajectory equals the 2x2 companion matrix power per eigenvalue", "[optimizers]") {
  auto p = quadratic({{"d", "6"}, {"mu", "0.1"}, {"L", "1"}});  // identity basis, no noise, x* = 0, x0 = 1
  const double gamma = 0.3, beta = 0.6;
  auto opt = optimizer("heavy_ball", {{"beta", "0.6"}});
  const long T = 80;
  Trajectory tr = trajectory(*p, *opt, gamma, T);
  for (long t = 1; t <= T; ++t) {
    Vec reference(6);
    for (int i = 0; i < 6; ++i) {
      const double lambda = 0.1 + 0.9 * i / 5.0;
      reference[i] = (power(companion(lambda, gamma, beta), t) * Eigen::Vector2d(1.0, 1.0))[0];
    }
    INFO("t = " << t);
    CHECK(relative_error(tr.x[std::size_t(t)], reference) < 1e-12);
  }
  CHECK(stat(tr.stats, "gradient_coordinates") == double(T * 6));
}

TEST_CASE("heavy_ball: multi-block cyclic and random rules follow per-block companion recurrences",
          "[optimizers]") {
  // On a diagonal quadratic a block's gradient depends on that block only, so block j evolves by the
  // companion matrix once per update of block j; cyclic updates every block once per step.
  const int d = 7, B = 3;  // blocks of sizes 3, 2, 2
  auto p = quadratic({{"d", "7"}, {"mu", "0.2"}, {"L", "1.5"}});
  const double gamma = 0.25, beta = 0.5;
  const long T = 40;
  const std::vector<int> block_of{0, 0, 0, 1, 1, 2, 2};
  auto lambda = [](int i) { return 0.2 + 1.3 * i / 6.0; };

  auto cyclic = optimizer("heavy_ball", {{"beta", "0.5"}, {"blocks", "3"}});
  Trajectory tc = trajectory(*p, *cyclic, gamma, T);
  for (long t : {1L, 5L, 40L}) {
    Vec reference(d);
    for (int i = 0; i < d; ++i) reference[i] = (power(companion(lambda(i), gamma, beta), t) * Eigen::Vector2d(1, 1))[0];
    CHECK(relative_error(tc.x[std::size_t(t)], reference) < 1e-12);
  }
  // The noise-free quadratic in the identity basis computes a block for the block's cost: one sweep of the
  // blocks costs d coordinates. With noise it falls back to a full gradient per inner update.
  CHECK(stat(tc.stats, "gradient_coordinates") == double(T * d));
  auto noisy = quadratic({{"d", "7"}, {"noise_scale", "0.1"}});
  Trajectory tn = trajectory(*noisy, *cyclic, gamma, T);
  CHECK(stat(tn.stats, "gradient_coordinates") == double(T * B * d));

  // An oracle without block access (the default: full gradient, block copied out) gives the same
  // trajectory as unblocked heavy-ball on a separable problem, at B full gradients per step.
  Vec c(5);
  c << 1.0, -2.0, 0.5, 3.0, -1.0;
  TestProblem separable(c, 0.0, ProblemFacts{});
  Trajectory blocked = trajectory(separable, *optimizer("heavy_ball", {{"beta", "0.5"}, {"blocks", "2"}}), gamma, T);
  Trajectory plain = trajectory(separable, *optimizer("heavy_ball", {{"beta", "0.5"}}), gamma, T);
  for (long t = 1; t <= T; ++t) CHECK(relative_error(blocked.x[std::size_t(t)], plain.x[std::size_t(t)]) < 1e-12);
  CHECK(stat(blocked.stats, "gradient_coordinates") == double(T * 2 * 5));

  auto random = optimizer("heavy_ball", {{"beta", "0.5"}, {"blocks", "3"}, {"block_rule", "random"}});
  const std::uint64_t seed = 11;
  Trajectory tr = trajectory(*p, *random, gamma, T, seed);
  // Replay the block draws: B draws of below(B) per step from the optimizer stream seeked to t.
  RandomStream picks(seed, 0, StreamPurpose::optimizer);
  std::vector<long> updates(B, 0);
  bool every_block_lagged = false;
  for (long t = 1; t <= T; ++t) {
    picks.seek(std::uint64_t(t));
    for (int inner = 0; inner < B; ++inner) updates[std::size_t(picks.below(B))]++;
    Vec reference(d);
    for (int i = 0; i < d; ++i)
      reference[i] = (power(companion(lambda(i), gamma, beta), updates[std::size_t(block_of[std::size_t(i)])]) *
                      Eigen::Vector2d(1, 1))[0];
    INFO("t = " << t);
    CHECK(relative_error(tr.x[std::size_t(t)], reference) < 1e-12);
    every_block_lagged |= updates[0] != t && updates[1] != t && updates[2] != t;
  }
  CHECK(every_block_lagged);  // the draws are really random: no block was updated exactly once per step
}

TEST_CASE("heavy_ball: Polyak tuning contracts at (sqrt(kappa)-1)/(sqrt(kappa)+1) per step", "[optimizers]") {
  auto p = quadratic({{"d", "10"}, {"mu", "0.01"}, {"L", "1"}});  // kappa = 100
  auto opt = optimizer("heavy_ball", {{"tuning", "polyak"}});
  RunPlan plan;
  plan.steps = 400;
  plan.checkpoints = {0, 200, 400};
  plan.metrics = {Metric::dist2};
  RunStreams streams(3, 0);
  RunResult r = run_one(*p, *opt, constant_step(123.0), plan, streams);  // the schedule is ignored
  REQUIRE(r.status == RunStatus::ok);
  // The extreme eigenvalues give a double root sqrt(beta) of the companion polynomial (error ~ t r^t), the
  // others complex roots of modulus sqrt(beta): over [200, 400] the measured rate is r (400/200)^(1/200),
  // 0.35% above r.
  const double measured = std::pow(r.traces[2] / r.traces[1], 1.0 / (2.0 * 200.0));
  const double expected = (10.0 - 1.0) / (10.0 + 1.0);
  CHECK(std::abs(measured / expected - 1.0) < 0.01);
}

TEST_CASE("heavy_ball: Polyak tuning refuses a problem without L and mu", "[optimizers]") {
  ProblemFacts facts;
  facts.mu = 0.5;  // L missing
  TestProblem no_l(Vec::Ones(3), 0.0, facts);
  auto opt = optimizer("heavy_ball", {{"tuning", "polyak"}});
  CHECK_THROWS_WITH(opt->prepare(no_l), Catch::Contains("tuning = polyak") && Catch::Contains("does not declare L"));
  TestProblem neither(Vec::Ones(3), 0.0, ProblemFacts{});
  CHECK_THROWS_AS(opt->prepare(neither), ConfigError);
  CHECK_THROWS_WITH(opt->prepare(neither), Catch::Contains("does not declare L and mu"));
  auto blocks = optimizer("heavy_ball", {{"blocks", "4"}});
  CHECK_THROWS_WITH(blocks->prepare(neither), Catch::Contains("optimizer.blocks = 4 exceeds the dimension 3"));
}

// ---- nesterov, adam, clipped -------------------------------------------------------------------------

TEST_CASE("nesterov: hand-computed steps and the convex momentum sequence", "[optimizers]") {
  // f = x^2/2, x0 = 1, eta = 1/2, beta = 1/2: every number below is exact in binary.
  //   t=1: y = 1,                    x1 = 1 - 1/2 = 1/2
  //   t=2: y = 1/2 + (1/2)(1/2 - 1) = 1/4,      x2 = 1/4 - 1/8 = 1/8
  //   t=3: y = 1/8 + (1/2)(1/8 - 1/2) = -1/16,  x3 = -1/16 + 1/32 = -1/32
  auto p1 = quadratic({{"d", "1"}, {"mu", "1"}, {"L", "1"}});
  auto opt = optimizer("nesterov", {{"beta", "0.5"}});
  Trajectory tr = trajectory(*p1, *opt, 0.5, 3);
  CHECK(tr.x[1][0] == 0.5);
  CHECK(tr.x[2][0] == 0.125);
  CHECK(tr.x[3][0] == -0.03125);

  // momentum = convex: beta_t = (t-1)/(t+2), on a 4-d diagonal quadratic against the recurrence by hand.
  auto p = quadratic({{"d", "4"}, {"mu", "0.1"}, {"L", "2"}});
  auto convex = optimizer("nesterov", {{"momentum", "convex"}});
  const double eta = 0.4;
  Trajectory tc = trajectory(*p, *convex, eta, 50);
  // The modes oscillate through 0, so the comparison is norm-wise over the 4 coordinates.
  Vec x = Vec::Ones(4), previous = Vec::Ones(4), lambda(4);
  for (int i = 0; i < 4; ++i) lambda[i] = 0.1 + (2.0 - 0.1) * (i / 3.0);
  for (long t = 1; t <= 50; ++t) {
    const double beta = double(t - 1) / double(t + 2);
    const Vec y = x + beta * (x - previous);
    previous = x;
    x = y - eta * lambda.cwiseProduct(y);
    CHECK(relative_error(tc.x[std::size_t(t)], x) < 1e-12);
  }
}

TEST_CASE("adam: hand-computed bias-corrected steps", "[optimizers]") {
  // First step: m1 = (1 - b1) g, v1 = (1 - b2) g^2, so the corrected step is eta g / (|g| + eps).
  auto p1 = quadratic({{"d", "1"}, {"mu", "1"}, {"L", "1"}});
  auto opt = optimizer("adam");
  Trajectory t1 = trajectory(*p1, *opt, 0.1, 1);
  CHECK(t1.x[1][0] == Approx(1.0 - 0.1 / (1.0 + 1e-8)).epsilon(1e-15));

  auto p = quadratic({{"d", "3"}, {"mu", "0.5"}, {"L", "2"}});
  auto adam = optimizer("adam", {{"beta1", "0.8"}, {"beta2", "0.99"}, {"eps", "1e-6"}});
  const double eta = 0.05, b1 = 0.8, b2 = 0.99, eps = 1e-6;
  Trajectory tr = trajectory(*p, *adam, eta, 30);
  for (int i = 0; i < 3; ++i) {
    const double lambda = 0.5 + 1.5 * i / 2.0;
    long double x = 1, m = 0, v = 0;
    for (int t = 1; t <= 30; ++t) {
      const long double g = lambda * x;
      m = b1 * m + (1 - b1) * g;
      v = b2 * v + (1 - b2) * g * g;
      const long double mhat = m / (1 - std::pow((long double)b1, t)), vhat = v / (1 - std::pow((long double)b2, t));
      x -= eta * mhat / (std::sqrt(vhat) + eps);
      CHECK(std::abs(tr.x[std::size_t(t)][i] - double(x)) <= 1e-12 * std::abs(double(x)));
    }
  }
}

TEST_CASE("clipped_sgd: follows the clipped recurrence and reports the clipped fraction", "[optimizers]") {
  auto p = quadratic({{"d", "3"}, {"mu", "0.5"}, {"L", "1"}, {"init_scale", "4"}});
  auto opt = optimizer("clipped_sgd", {{"tau", "0.8"}});
  const double eta = 0.3;
  const long T = 40;
  Trajectory tr = trajectory(*p, *opt, eta, T);
  Eigen::Vector3d lambda(0.5, 0.75, 1.0), x(4, 4, 4);
  long clipped = 0;
  for (long t = 1; t <= T; ++t) {
    Eigen::Vector3d g = lambda.cwiseProduct(x);
    const double factor = std::min(1.0, 0.8 / g.norm());
    clipped += factor < 1.0;
    x -= eta * factor * g;
    CHECK(relative_error(tr.x[std::size_t(t)], x) < 1e-12);
  }
  REQUIRE(clipped > 0);
  REQUIRE(clipped < T);  // both regimes are exercised
  CHECK(stat(tr.stats, "clip_fraction") == double(clipped) / double(T));
}

// ---- prox_sgd ----------------------------------------------------------------------------------------

TEST_CASE("prox_sgd: euclidean is prox of the gradient step, entropy is exponentiated gradient",
          "[optimizers]") {
  Vec c(4);
  c << 2.0, -0.3, 0.05, -1.5;
  TestProblem l1(c, 0.4, ProblemFacts{});
  auto euclidean = optimizer("prox_sgd");
  const double eta = 0.3;
  Trajectory te = trajectory(l1, *euclidean, eta, 30);
  Vec x = Vec::Ones(4);
  for (long t = 1; t <= 30; ++t) {
    x = x - eta * (x - c);
    for (int i = 0; i < 4; ++i) x[i] = x[i] > eta * 0.4 ? x[i] - eta * 0.4 : x[i] < -eta * 0.4 ? x[i] + eta * 0.4 : 0.0;
    CHECK(relative_error(te.x[std::size_t(t)], x) < 1e-12);
  }
  // Closed form: coordinate 0 stays above the threshold, x_{t+1} = 0.7 x_t + 0.3 (2 - 0.4), so
  // x_t = 1.6 - 0.6 * 0.7^t; coordinate 1 is thresholded to exactly 0 (soft(c, lambda) = (1.6, 0, 0, -1.1)).
  CHECK(te.x[30][0] == Approx(1.6 - 0.6 * std::pow(0.7, 30)).epsilon(1e-12));
  CHECK(te.x[30][1] == 0.0);

  ProblemFacts simplex;
  simplex.domain = Domain::simplex;
  TestProblem on_simplex(c, 0.0, simplex);
  auto entropy = optimizer("prox_sgd", {{"geometry", "entropy"}});
  Trajectory tm = trajectory(on_simplex, *entropy, 0.5, 60);
  Vec w = Vec::Constant(4, 0.25);
  for (long t = 1; t <= 60; ++t) {
    Vec g = w - c;
    w = w.array() * (-0.5 * g.array()).exp();
    w /= w.sum();
    CHECK(relative_error(tm.x[std::size_t(t)], w) < 1e-12);
  }
  CHECK(std::abs(tm.x[60].sum() - 1.0) < 1e-14);

  auto q = quadratic({{"d", "3"}});
  CHECK_THROWS_AS(entropy->prepare(*q), ConfigError);
  CHECK_THROWS_WITH(entropy->prepare(*q), Catch::Contains("geometry = entropy") &&
                                              Catch::Contains("domain is euclidean"));
  RunPlan plan;
  plan.steps = 5;
  plan.checkpoints = {0, 5};
  RunStreams streams(1, 0);
  RunResult refused = run_one(*q, *entropy, constant_step(0.1), plan, streams);
  CHECK(refused.status == RunStatus::error);
  CHECK_THAT(refused.message, Catch::Contains("geometry = entropy"));
}

// ---- ls_sgd ------------------------------------------------------------------------------------------

TEST_CASE("ls_sgd: tridiagonal and FFT solves match a dense solve of A y = g", "[optimizers]") {
  RandomStream rng(5, 0, StreamPurpose::noise);
  for (Eigen::Index d : {1, 2, 3, 4, 5, 8, 17, 64}) {
    for (double sigma : {0.3, 1.0, 4.0}) {
      for (int order : {1, 2, 3}) {
        Vec g(d);
        for (Eigen::Index i = 0; i < d; ++i) g[i] = rng.normal();
        const Mat A = dense_smoothing_matrix(d, sigma, order);
        const Vec dense = A.partialPivLu().solve(g);
        LaplacianSmoother fft;
        fft.prepare(d, sigma, order, LaplacianSmoother::Method::fft);
        Vec y = g;
        fft.apply(y);
        INFO("d = " << d << ", sigma = " << sigma << ", order = " << order);
        CHECK(relative_error(y, dense) < 1e-12);
        CHECK((A * y - g).norm() <= 1e-13 * g.norm());
        if (order == 1) {
          LaplacianSmoother tri;
          tri.prepare(d, sigma, 1, LaplacianSmoother::Method::tridiagonal);
          Vec z = g;
          tri.apply(z);
          CHECK(relative_error(z, dense) < 1e-12);
          CHECK(relative_error(z, y) < 1e-12);
        }
      }
    }
  }
  LaplacianSmoother bad;
  CHECK_THROWS_WITH(bad.prepare(8, 1.0, 2, LaplacianSmoother::Method::tridiagonal),
                    Catch::Contains("solver = tridiagonal") && Catch::Contains("order = 2"));
}

TEST_CASE("ls_sgd: one step smooths the gradient per block, sigma = 0 is sgd bit for bit", "[optimizers]") {
  auto p = quadratic({{"d", "8"}, {"mu", "0.5"}, {"L", "2"}});  // x0 = 1, g(x0) = eigenvalues
  Vec g(8);
  for (int i = 0; i < 8; ++i) g[i] = 0.5 + 1.5 * i / 7.0;
  for (std::string solver : {"auto", "fft"}) {
    auto whole = optimizer("ls_sgd", {{"sigma", "2"}, {"solver", solver}});
    Trajectory tw = trajectory(*p, *whole, 1.0, 1);
    const Vec expected = dense_smoothing_matrix(8, 2.0, 1).partialPivLu().solve(g);
    CHECK(relative_error(Vec(Vec::Ones(8) - tw.x[1]), expected) < 1e-12);
  }
  auto blocks = optimizer("ls_sgd", {{"sigma", "0.7"}, {"order", "2"}, {"block_sizes", "3,5"}});
  Trajectory tb = trajectory(*p, *blocks, 1.0, 1);
  Vec expected(8);
  expected.head(3) = dense_smoothing_matrix(3, 0.7, 2).partialPivLu().solve(Vec(g.head(3)));
  expected.tail(5) = dense_smoothing_matrix(5, 0.7, 2).partialPivLu().solve(Vec(g.tail(5)));
  CHECK(relative_error(Vec(Vec::Ones(8) - tb.x[1]), expected) < 1e-12);

  auto noisy = quadratic({{"d", "8"}, {"noise_scale", "0.5"}});
  Trajectory sgd = trajectory(*noisy, *optimizer("sgd"), 0.1, 50, 9);
  Trajectory ls0 = trajectory(*noisy, *optimizer("ls_sgd", {{"sigma", "0"}}), 0.1, 50, 9);
  for (long t = 0; t <= 50; ++t) CHECK(std::memcmp(sgd.x[t].data(), ls0.x[t].data(), 8 * sizeof(double)) == 0);

  auto mismatched = optimizer("ls_sgd", {{"block_sizes", "3,4"}});
  CHECK_THROWS_WITH(mismatched->prepare(*p), Catch::Contains("block_sizes sum to 7") && Catch::Contains("d = 8"));
}

TEST_CASE("ls_sgd: A^{-1} preserves sums and reduces variance by (1/d) sum_k 1/lambda_k^2", "[optimizers]") {
  const Eigen::Index d = 32;
  RandomStream rng(17, 0, StreamPurpose::noise);
  for (int order : {1, 2}) {
    const double sigma = 1.5;
    LaplacianSmoother smoother;
    smoother.prepare(d, sigma, order, LaplacianSmoother::Method::fft);
    // E||A^{-1} xi||^2 = trace(A^{-2}) = sum_k 1/lambda_k^2 for xi ~ N(0, I), and E||xi||^2 = d.
    double exact = 0.0;
    for (Eigen::Index k = 0; k < d; ++k) exact += 1.0 / std::pow(LaplacianSmoother::eigenvalue(d, k, sigma, order), 2);
    const int n = 20000;
    double sum = 0.0, sum_sq = 0.0, worst_sum_change = 0.0;
    Vec xi(d), y(d);
    for (int s = 0; s < n; ++s) {
      for (Eigen::Index i = 0; i < d; ++i) xi[i] = rng.normal();
      y = xi;
      smoother.apply(y);
      worst_sum_change = std::max(worst_sum_change, std::abs(y.sum() - xi.sum()) / xi.lpNorm<1>());
      const double r = y.squaredNorm();
      sum += r;
      sum_sq += r * r;
    }
    const double mean = sum / n, standard_error = std::sqrt((sum_sq / n - mean * mean) / n);
    INFO("order " << order << ": mean " << mean << ", exact " << exact << ", se " << standard_error);
    CHECK(worst_sum_change < 1e-14);
    CHECK(std::abs(mean - exact) < 5.0 * standard_error);  // 5 standard errors
    CHECK(exact / double(d) < 0.5);                         // a real reduction, so the check has teeth
  }
}

// ---- lp_sgd ------------------------------------------------------------------------------------------

TEST_CASE("lp_sgd: constant-q steady state equals the stationary variance of the linear recurrence",
          "[optimizers]") {
  // f = (m/2)||x||^2 with g = m x + s xi:  x_{t+1} = (1 - eta q m) x_t - eta q s xi_t, per coordinate, so
  // from x_0 = 0: E x_T^2 = v (1 - (1 - eta q m)^(2T)),  v = (eta q s)^2 / (1 - (1 - eta q m)^2).
  // (q multiplies the whole stochastic gradient, noise included; without it v would be 4 times larger.)
  const double m = 1.0, s = 1.0, eta = 0.1, q = 0.5;
  const long T = 200, d = 4000;
  auto p = quadratic({{"d", std::to_string(d)}, {"mu", "1"}, {"L", "1"}, {"init_scale", "0"}, {"noise_scale", "1"}});
  const double rho = 1.0 - eta * q * m;
  const double v = (eta * q * s) * (eta * q * s) / (1.0 - rho * rho) * (1.0 - std::pow(rho, 2.0 * T));
  RunPlan plan;
  plan.steps = T;
  plan.checkpoints = {0, T};
  plan.metrics = {Metric::dist2};
  const int replicates = 4;
  double total = 0.0;
  for (int r = 0; r < replicates; ++r) {
    auto opt = optimizer("lp_sgd", {{"q", "0.5"}});
    RunStreams streams(21, std::uint64_t(r));
    RunResult res = run_one(*p, *opt, constant_step(eta), plan, streams);
    REQUIRE(res.status == RunStatus::ok);
    total += res.traces[1];
    CHECK(stat(res.stats, "q_min") == q);
    CHECK(stat(res.stats, "q_mean") == q);
  }
  // x_T coordinates are independent N(0, v): Var(x^2) = 2 v^2, so the mean of d * replicates squares has
  // standard error v sqrt(2 / (d * replicates)) (1.1% of v); allow 5 standard errors.
  const double estimate = total / double(d * replicates);
  CHECK(std::abs(estimate - v) < 5.0 * v * std::sqrt(2.0 / double(d * replicates)));
}

TEST_CASE("lp_sgd: q = 1, s_e = 0 is sgd bit for bit, uniform shrink factors have the right mean", "[optimizers]") {
  auto noisy = quadratic({{"d", "6"}, {"noise_scale", "0.3"}});
  Trajectory sgd = trajectory(*noisy, *optimizer("sgd"), 0.2, 40, 4);
  Trajectory lp = trajectory(*noisy, *optimizer("lp_sgd"), 0.2, 40, 4);
  for (long t = 0; t <= 40; ++t) CHECK(std::memcmp(sgd.x[t].data(), lp.x[t].data(), 6 * sizeof(double)) == 0);

  const long T = 20000;
  Trajectory u = trajectory(*noisy, *optimizer("lp_sgd", {{"shrink", "uniform"}, {"q_min", "0.2"}}), 0.05, T, 4);
  // q_t ~ U[0.2, 1]: mean 0.6, standard deviation 0.8/sqrt(12); 5 standard errors of the mean of T draws.
  CHECK(std::abs(stat(u.stats, "q_mean") - 0.6) < 5.0 * 0.8 / std::sqrt(12.0 * T));
  CHECK(stat(u.stats, "q_min") >= 0.2);
  CHECK(stat(u.stats, "q_min") < 0.2 + 0.8 * 20.0 / T);  // P(min > 0.2 + 20*0.8/T) ~ e^-20
  CHECK(stat(u.stats, "e_mean_sq") == 0.0);

  // Additive quantization noise: e_t = s_e xi with xi ~ N(0, I_6), so ||e_t||^2 = s_e^2 chi^2_6 has mean
  // 6 s_e^2 = 1.5 and variance 2 * 6 s_e^4 = 0.75; 5 standard errors of the mean of T draws.
  Trajectory n = trajectory(*noisy, *optimizer("lp_sgd", {{"s_e", "0.5"}}), 0.05, T, 4);
  CHECK(std::abs(stat(n.stats, "e_mean_sq") - 1.5) < 5.0 * std::sqrt(0.75 / T));
  CHECK(stat(n.stats, "q_mean") == 1.0);
}

TEST_CASE("lp_sgd: quantize follows x - eta Q(g) and measures q_t and e_t", "[optimizers]") {
  auto p = quadratic({{"d", "5"}, {"mu", "0.3"}, {"L", "1"}, {"init", "random"}});
  auto opt = optimizer("lp_sgd", {{"shrink", "quantize"}, {"bits", "3"}});
  const double eta = 0.5;
  const long T = 30;
  Trajectory tr = trajectory(*p, *opt, eta, T, 2);
  Vec x = tr.x[0], g(5), qg(5), lambda(5);
  for (int i = 0; i < 5; ++i) lambda[i] = 0.3 + (1.0 - 0.3) * (i / 4.0);  // as the quadratic spaces them
  RandomStream unused(0, 0, StreamPurpose::rounding);
  double q_min = 1e300, q_sum = 0.0, e_sum = 0.0;
  for (long t = 1; t <= T; ++t) {
    g = lambda.cwiseProduct(x);
    quantize(g, qg, 3, 0.0, Rounding::nearest, unused);
    const double q = qg.dot(g) / g.squaredNorm();
    q_min = std::min(q_min, q);
    q_sum += q;
    e_sum += (qg - q * g).squaredNorm();
    x -= eta * qg;
    CHECK(relative_error(tr.x[std::size_t(t)], x) < 1e-12);
  }
  CHECK(stat(tr.stats, "q_min") == Approx(q_min).epsilon(1e-12));
  CHECK(stat(tr.stats, "q_mean") == Approx(q_sum / T).epsilon(1e-12));
  CHECK(stat(tr.stats, "e_mean_sq") == Approx(e_sum / T).epsilon(1e-12));
  CHECK(q_min < 1.0);  // 3 bits really shrink
}

TEST_CASE("quantizer: stochastic rounding is unbiased, nearest rounding errs by at most half a step",
          "[optimizers]") {
  RandomStream rng(8, 0, StreamPurpose::rounding), data(8, 1, StreamPurpose::noise);
  const int d = 24;
  Vec v(d), out(d);
  for (int i = 0; i < d; ++i) v[i] = 2.0 * data.uniform() - 1.0;
  v[0] = 1.0;  // max-abs scale s = 1
  for (int bits : {1, 2, 4}) {
    const double delta = quantization_step(bits, 1.0);
    const int n = 20000;
    Vec sum = Vec::Zero(d), sum_sq = Vec::Zero(d);
    for (int k = 0; k < n; ++k) {
      rng.seek(std::uint64_t(k));
      quantize(v, out, bits, 0.0, Rounding::stochastic, rng);
      const Vec err = out - v;
      sum += err;
      sum_sq += err.cwiseAbs2();
      // Every value lands on one of the two grid levels around v.
      CHECK((err.cwiseAbs().array() <= delta * (1 + 1e-12)).all());
    }
    // Per coordinate the error takes two values; its mean is within 5 standard errors of 0 (the standard
    // error is estimated from the sample; coordinates exactly on the grid have zero error and zero spread).
    for (int i = 0; i < d; ++i) {
      const double mean = sum[i] / n, se = std::sqrt(std::max(sum_sq[i] / n - mean * mean, 0.0) / n);
      CHECK(std::abs(mean) <= 5.0 * se + 1e-15);
    }
    quantize(v, out, bits, 0.0, Rounding::nearest, rng);
    CHECK(((out - v).cwiseAbs().array() <= 0.5 * delta * (1 + 1e-12)).all());
    // A fixed scale: values inside [-s, s] are still within half a step.
    const Vec w = 0.3 * v;
    quantize(w, out, bits, 0.5, Rounding::nearest, rng);
    CHECK(((out - w).cwiseAbs().array() <= 0.5 * quantization_step(bits, 0.5) * (1 + 1e-12)).all());
  }
  // b = 1 is sign(v) * max|v|.
  quantize(v, out, 1, 0.0, Rounding::nearest, rng);
  for (int i = 0; i < d; ++i) CHECK(out[i] == (v[i] >= 0 ? 1.0 : -1.0));
}

// ---- lockstep groups -----------------------------------------------------------------------------------

namespace {

// Gradient descent that offers a lockstep path which does nothing but record the classes of the group it
// was handed, then declines (returns false), so the runs go on run by run.
class LockstepProbe final : public Optimizer, public OptimizerFastPaths {
 public:
  explicit LockstepProbe(std::vector<bool>& calls_one_class) : calls_one_class_(calls_one_class) {}
  void prepare(const Problem& problem) override { x_.resize(problem.dim()), g_.resize(problem.dim()); }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long, double eta, Oracle& oracle) override {
    oracle.sample_gradient(x_, g_, 1);
    x_ -= eta * g_;
  }
  OptimizerFastPaths* fast_paths() override { return this; }
  bool steps_lockstep(std::span<Optimizer* const> optimizers, long, long, const Schedule&,
                      std::span<Oracle* const>) override {
    bool one_class = true;
    for (Optimizer* o : optimizers) one_class = one_class && typeid(*o) == typeid(LockstepProbe);
    calls_one_class_.push_back(one_class);
    return false;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  std::vector<bool>& calls_one_class_;
  Vec x_, g_;
};

}  // namespace

TEST_CASE("the run loop hands a lockstep path only groups of one optimizer class", "[optimizers][lockstep]") {
  // OptimizerFastPaths::steps_lockstep may static_cast every member of its group to its own class: a group
  // that mixes classes must step run by run, with each run's result that of the run alone.
  Vec c(4);
  c << 1.0, -2.0, 0.5, 3.0;
  TestProblem problem(c, 0.0, ProblemFacts{});
  RunPlan plan;
  plan.steps = 50;
  plan.checkpoints = {0, 10, 50};
  plan.metrics = {Metric::value};
  const Schedule schedule = constant_step(0.3);
  std::vector<bool> calls;
  LockstepProbe probe_a(calls), probe_b(calls);
  auto sgd = optimizer("sgd");
  RunStreams s0(1, 0), s1(1, 1), s2(1, 2);

  Optimizer* same[] = {&probe_a, &probe_b};
  RunStreams* same_streams[] = {&s0, &s1};
  run_lockstep(problem, same, schedule, plan, same_streams);
  REQUIRE(!calls.empty());  // one call per segment: the path is offered to a group of one class
  CHECK(std::all_of(calls.begin(), calls.end(), [](bool one) { return one; }));

  calls.clear();
  Optimizer* mixed[] = {&probe_a, &probe_b, sgd.get()};
  RunStreams* mixed_streams[] = {&s0, &s1, &s2};
  const std::vector<RunResult> together = run_lockstep(problem, mixed, schedule, plan, mixed_streams);
  CHECK(calls.empty());
  RunStreams alone_streams(1, 2);
  auto sgd_alone = optimizer("sgd");
  const RunResult alone = run_one(problem, *sgd_alone, schedule, plan, alone_streams);
  REQUIRE(together[2].status == RunStatus::ok);
  CHECK(std::memcmp(together[2].traces.data(), alone.traces.data(), alone.traces.size() * sizeof(double)) == 0);
}

// ---- validation and conformance ----------------------------------------------------------------------

TEST_CASE("invalid optimizer parameters are rejected with messages naming them", "[optimizers]") {
  auto errors_of = [](const std::string& key, const Raw& raw) {
    std::vector<std::string> errors;
    resolve_params(registry().info(ComponentKind::optimizer, key).params, raw, "optimizer", errors);
    return errors;
  };
  auto single = [&](const std::string& key, const Raw& raw, const std::string& expected) {
    auto errors = errors_of(key, raw);
    INFO(key);
    REQUIRE(errors.size() == 1);
    CHECK_THAT(errors[0], Catch::Contains(expected));
  };
  single("heavy_ball", {{"beta", "1"}}, "optimizer.beta = 1 violates 0 <= optimizer.beta < 1");
  single("heavy_ball", {{"blocks", "0"}}, "optimizer.blocks = 0 violates optimizer.blocks >= 1");
  single("heavy_ball", {{"tuning", "polyk"}}, "optimizer.tuning = 'polyk' is not one of manual, polyak");
  single("nesterov", {{"beta", "1"}}, "optimizer.beta = 1 violates 0 <= optimizer.beta < 1");
  single("adam", {{"beta2", "1"}}, "optimizer.beta2 = 1 violates 0 <= optimizer.beta2 < 1");
  single("adam", {{"eps", "0"}}, "optimizer.eps = 0 violates optimizer.eps > 0");
  single("lp_sgd", {{"q", "0"}}, "optimizer.q = 0 violates 0 < optimizer.q <= 1");
  single("lp_sgd", {{"q_min", "1.5"}}, "optimizer.q_min = 1.5 violates 0 < optimizer.q_min <= 1");
  single("lp_sgd", {{"bits", "0"}}, "optimizer.bits = 0 violates 1 <= optimizer.bits <= 52");
  single("lp_sgd", {{"s_e", "-1"}}, "optimizer.s_e = -1 violates optimizer.s_e >= 0");
  single("ls_sgd", {{"sigma", "-0.5"}}, "optimizer.sigma = -0.5 violates optimizer.sigma >= 0");
  single("ls_sgd", {{"order", "0"}}, "optimizer.order = 0 violates optimizer.order >= 1");
  single("ls_sgd", {{"block_sizes", "4,0"}}, "optimizer.block_sizes contains 0");
  single("clipped_sgd", {{"tau", "0"}}, "optimizer.tau = 0 violates optimizer.tau > 0");
  single("clipped_sgd", {{"tau", "-1"}}, "optimizer.tau = -1 violates optimizer.tau > 0");
  single("prox_sgd", {{"geometry", "entropic"}}, "optimizer.geometry = 'entropic' is not one of euclidean, entropy");
  // Every violation is listed, not only the first.
  CHECK(errors_of("adam", {{"beta1", "1"}, {"beta2", "-1"}, {"eps", "0"}}).size() == 3);
  // Combinations that no single constraint sees are refused when the optimizer is built.
  CHECK_THROWS_WITH(optimizer("ls_sgd", {{"solver", "tridiagonal"}, {"order", "2"}}),
                    Catch::Contains("optimizer.solver = tridiagonal") && Catch::Contains("optimizer.order = 2"));
  CHECK_THROWS_WITH(optimizer("ls_sgd", {{"block_sizes", "2.5"}}), Catch::Contains("optimizer.block_sizes"));
}

// The conformance suite (experiments/conformance.hpp), the same one `ratelab check-plugin` runs on plugins.
TEST_CASE("every registered optimizer conforms: converges, same bits, exact T, no allocation, status",
          "[optimizers]") {
  struct Case {
    std::string key;
    Raw params;
  };
  std::vector<Case> cases;
  for (const std::string& key : registry().keys(ComponentKind::optimizer)) cases.push_back({key, {}});
  cases.push_back({"heavy_ball", {{"blocks", "3"}, {"block_rule", "random"}}});
  cases.push_back({"heavy_ball", {{"tuning", "polyak"}}});
  cases.push_back({"nesterov", {{"momentum", "convex"}}});
  cases.push_back({"ls_sgd", {{"order", "2"}, {"block_sizes", "4,4"}}});
  cases.push_back({"lp_sgd", {{"shrink", "quantize"}, {"bits", "4"}, {"rounding", "stochastic"}}});
  cases.push_back({"lp_sgd", {{"shrink", "uniform"}}});
  for (const Case& c : cases) {
    ConformanceOptions options;
    // Adam's steps have length about eta per coordinate whatever the gradient, so it gets a smaller one.
    options.eta = c.key == "adam" ? 0.02 : 0.5;
    const ConformanceReport report = check_optimizer_conformance(registry(), c.key, c.params, options);
    INFO(format_report(report));
    CHECK(report.passed());
    CHECK(report.checks.size() == 6);
  }
}
