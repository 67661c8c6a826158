// Problems: gradients against finite differences, unbiased oracles, f* and x* against optimality
// conditions and closed forms, prox operators against brute force, the hard instances' lower bounds.
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <numbers>
#include <string>

#include "core/fast_paths.hpp"
#include "core/registry.hpp"
#include "problems/composite.hpp"

using namespace ratelab;

namespace {

std::shared_ptr<const Problem> make_problem(const std::string& key, std::map<std::string, std::string> raw,
                                            std::uint64_t seed = 11, std::string data_directory = "") {
  static const Registry registry = builtin_registry();
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry.info(ComponentKind::problem, key).params, raw, "problem", errors);
  if (!errors.empty()) throw ConfigError(errors);
  ProblemContext ctx{RandomStream(seed, 0, StreamPurpose::instance), std::move(data_directory)};
  return registry.make_problem(key, p, ctx);
}

Vec random_point(Eigen::Index d, std::uint64_t seed, double scale = 1.0) {
  RandomStream s(seed, 0, StreamPurpose::init);
  Vec x(d);
  for (Eigen::Index i = 0; i < d; ++i) x[i] = scale * s.normal();
  return x;
}

// Max over coordinates of |grad_i - central difference_i|, relative to max(1, |grad_i|).
// Central differences with step h have error O(h^2 f''') + O(eps f / h): h = 1e-5 gives ~1e-9.
double gradient_fd_error(const Problem& p, const Vec& x, double h = 1e-5) {
  Vec g(p.dim());
  p.gradient(x, g);
  double worst = 0.0;
  for (Eigen::Index i = 0; i < p.dim(); ++i) {
    Vec xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    const double fd = (p.value(xp) - p.value(xm)) / (2 * h);
    worst = std::max(worst, std::abs(fd - g[i]) / std::max(1.0, std::abs(g[i])));
  }
  return worst;
}

// Mean of `draws` oracle calls (batch 1) at x, each at its own step, minus the exact gradient, in units of
// the per-coordinate standard error; returns the largest |z| over coordinates.
double oracle_bias_z(const Problem& p, const Vec& x, int draws, std::uint64_t seed = 5) {
  RunStreams streams(seed, 0);
  auto oracle = p.make_oracle(streams);
  const Eigen::Index d = p.dim();
  Vec g(d), sum = Vec::Zero(d), sum_sq = Vec::Zero(d), exact(d);
  for (int k = 1; k <= draws; ++k) {
    streams.seek(std::uint64_t(k));
    oracle->sample_gradient(x, g, 1);
    sum += g;
    sum_sq += g.cwiseProduct(g);
  }
  p.gradient(x, exact);
  const Vec mean = sum / draws;
  const Vec var = (sum_sq / draws - mean.cwiseProduct(mean)).cwiseMax(1e-300);
  double worst = 0.0;
  for (Eigen::Index i = 0; i < d; ++i) {
    const double se = std::sqrt(var[i] / draws);
    // A deterministic coordinate must match exactly (up to rounding of the sum).
    const double z = se < 1e-12 ? (std::abs(mean[i] - exact[i]) < 1e-10 ? 0.0 : 1e9) : (mean[i] - exact[i]) / se;
    worst = std::max(worst, std::abs(z));
  }
  return worst;
}

// Brute-force prox of eta*h at v: minimize h(u) + ||u - v||^2/(2 eta) over a grid in 2-D.
double prox_objective(const Regularizer& h, double eta, const Vec& v, const Vec& u) {
  // Written out: GCC 12 reports a false -Warray-bounds on Eigen's vectorized squaredNorm of 2-vectors here.
  const double d0 = u[0] - v[0], d1 = u[1] - v[1];
  return h.value(u) + (d0 * d0 + d1 * d1) / (2 * eta);
}
Vec brute_force_prox(const Regularizer& h, double eta, const Vec& v, double lo, double hi, int n) {
  Vec best = Vec::Zero(2), u = Vec::Zero(2);
  double best_value = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= n; ++i)
    for (int j = 0; j <= n; ++j) {
      u[0] = lo + (hi - lo) * i / n;
      u[1] = lo + (hi - lo) * j / n;
      const double value = prox_objective(h, eta, v, u);
      if (value < best_value) best_value = value, best = u;
    }
  return best;
}

}  // namespace

TEST_CASE("prox operators match brute-force minimization in 2-D", "[problems]") {
  using K = RegularizerOptions::Kind;
  const double eta = 0.7;
  // The prox is the exact minimizer, so its objective is never above the best grid point's (up to
  // rounding). Grid spacing 6/1200 = 5e-3: for the penalties the grid minimizer of a 1/eta-strongly
  // convex function lies within about one cell (7.5e-3); for the sets, feasible grid points near a curved
  // boundary can be farther, so the distance bound is 2.5e-2 there.
  for (K kind : {K::l1, K::l2, K::elastic_net, K::linf, K::box, K::ball}) {
    RegularizerOptions o;
    o.kind = kind;
    o.weight = 0.9;
    o.radius = 0.8;
    o.l1_ratio = 0.3;
    Regularizer h(o);
    for (int trial = 0; trial < 6; ++trial) {
      Vec v = random_point(2, 100 + trial, 1.5);
      Vec p = v;
      h.prox(eta, p);
      const Vec b = brute_force_prox(h, eta, v, -3, 3, 1200);
      INFO(h.describe() << " at v = " << v.transpose() << ": prox " << p.transpose() << " brute " << b.transpose());
      CHECK(prox_objective(h, eta, v, p) <= prox_objective(h, eta, v, b) + 1e-12);
      CHECK((p - b).lpNorm<Eigen::Infinity>() < (h.is_constraint() ? 2.5e-2 : 7.5e-3));
    }
  }
}

TEST_CASE("simplex and l1-ball projections: optimality (KKT) and idempotence", "[problems]") {
  std::vector<double> scratch;
  for (int trial = 0; trial < 20; ++trial) {
    const Eigen::Index d = 1 + trial % 7;
    const double r = 0.5 + 0.25 * trial;
    Vec v = random_point(d, 300 + trial, 2.0);
    // Simplex: x = max(v - theta, 0) with sum x = r; KKT: every positive coordinate has v_i - x_i = theta,
    // every zero coordinate has v_i <= theta.
    Vec x = v;
    project_simplex(x, r, scratch);
    CHECK(x.minCoeff() >= 0.0);
    CHECK(x.sum() == Approx(r).epsilon(1e-14));
    double theta = 0;
    for (Eigen::Index i = 0; i < d; ++i)
      if (x[i] > 0) theta = v[i] - x[i];
    for (Eigen::Index i = 0; i < d; ++i) {
      if (x[i] > 0) CHECK(v[i] - x[i] == Approx(theta).margin(1e-12));
      else CHECK(v[i] <= theta + 1e-12);
    }
    Vec again = x;
    project_simplex(again, r, scratch);
    CHECK((again - x).lpNorm<Eigen::Infinity>() < 1e-14);
    // l1 ball: either v inside, or ||x||_1 = r with x = soft(v, theta).
    Vec y = v;
    project_l1_ball(y, r, scratch);
    CHECK(y.lpNorm<1>() <= r * (1 + 1e-14));
    if (v.lpNorm<1>() > r) CHECK(y.lpNorm<1>() == Approx(r).epsilon(1e-14));
    else CHECK(y == v);
    Vec y2 = y;
    project_l1_ball(y2, r, scratch);
    CHECK((y2 - y).lpNorm<Eigen::Infinity>() < 1e-14);
    // Box and ball: idempotent and inside.
    Vec z = v;
    project_ball(z, r);
    CHECK(z.norm() <= r * (1 + 1e-15));
    Vec z2 = z;
    project_ball(z2, r);
    CHECK((z2 - z).lpNorm<Eigen::Infinity>() < 1e-15 * r);
    Vec w = v;
    project_box(w, r);
    Vec w2 = w;
    project_box(w2, r);
    CHECK(w2 == w);
    CHECK(w.lpNorm<Eigen::Infinity>() <= r);
  }
  // Simplex projection in 2-D against brute force on the segment {(s, r - s), 0 <= s <= r}.
  Vec v(2);
  v << 0.9, -0.4;
  Vec x = v;
  project_simplex(x, 1.0, scratch);
  CHECK(x[0] == Approx(1.0));  // theta = -0.1 would leave x_1 < 0; so x = (1, 0)
  CHECK(x[1] == 0.0);
  v << 0.3, 0.5;
  x = v;
  project_simplex(x, 1.0, scratch);
  CHECK(x[0] == Approx(0.4));
  CHECK(x[1] == Approx(0.6));
}

TEST_CASE("l_inf prox is the Moreau complement of the l1-ball projection", "[problems]") {
  std::vector<double> scratch;
  for (int trial = 0; trial < 20; ++trial) {
    const Eigen::Index d = 1 + trial % 6;
    const double t = 0.2 + 0.3 * trial;
    Vec v = random_point(d, 500 + trial, 2.0);
    Vec p = v, q = v;
    prox_linf(p, t, scratch);
    project_l1_ball(q, t, scratch);
    CHECK((p + q - v).lpNorm<Eigen::Infinity>() < 1e-13);
  }
}

TEST_CASE("l1-regularized diagonal quadratic: FISTA's F* and x* equal the soft-thresholding closed form",
          "[problems]") {
  // f = 1/2 sum l_i (x_i - c_i)^2, h = lambda ||x||_1 separates: x*_i = soft(c_i, lambda / l_i).
  auto p = make_problem("quadratic", {{"d", "12"},
                                      {"mu", "0.1"},
                                      {"L", "3"},
                                      {"random_minimizer", "true"},
                                      {"regularizer", "l1"},
                                      {"reg_weight", "0.4"}});
  REQUIRE(p->is_composite());
  REQUIRE(p->facts().x_star_known);
  // Recover c and l from the problem: grad f(0) = -l .* c, and grad f(e_i) - grad f(0) = l_i e_i.
  const Eigen::Index d = p->dim();
  Vec g0(d), gi(d), c(d), l(d), x = Vec::Zero(d);
  p->gradient(x, g0);
  for (Eigen::Index i = 0; i < d; ++i) {
    x.setZero();
    x[i] = 1.0;
    p->gradient(x, gi);
    l[i] = gi[i] - g0[i];
    c[i] = -g0[i] / l[i];
  }
  Vec closed = c;
  double F = 0;
  for (Eigen::Index i = 0; i < d; ++i) {
    const double a = std::abs(c[i]) - 0.4 / l[i];
    closed[i] = a > 0 ? std::copysign(a, c[i]) : 0.0;
    F += 0.5 * l[i] * (closed[i] - c[i]) * (closed[i] - c[i]) + 0.4 * std::abs(closed[i]);
  }
  int zeros = 0;
  for (Eigen::Index i = 0; i < d; ++i) zeros += closed[i] == 0.0;
  CHECK(zeros > 0);  // the instance exercises both branches of soft thresholding
  CHECK(zeros < d);
  // FISTA stops at gradient-mapping norm <= 1e-11; with mu = 0.1, ||x - x*|| <= ||G|| / mu ~ 1e-10.
  CHECK((p->x_star() - closed).lpNorm<Eigen::Infinity>() < 1e-9);
  CHECK(*p->facts().f_star == Approx(F).epsilon(1e-12));
  CHECK_THAT(p->facts().f_star_method, Catch::Contains("fista"));
}

TEST_CASE("constrained problems declare their domain and keep prox-gradient fixed points", "[problems]") {
  for (std::string kind : {"box", "ball", "simplex"}) {
    auto p = make_problem("quadratic", {{"d", "6"},
                                        {"basis", "random"},
                                        {"random_minimizer", "true"},
                                        {"regularizer", kind},
                                        {"reg_radius", "0.5"}});
    INFO(kind);
    CHECK(std::string(domain_name(p->facts().domain)) == kind);
    // x* is a fixed point of the prox-gradient map: x* = P(x* - grad f(x*)/L).
    Vec xs = p->x_star(), g(6);
    p->gradient(xs, g);
    Vec y = xs - g / *p->facts().L;
    p->prox(1.0 / *p->facts().L, y);
    CHECK((y - xs).norm() < 1e-9);
    CHECK(std::isfinite(p->value(xs)));
    Vec far = Vec::Constant(6, 3.0);
    CHECK(std::isinf(p->value(far)));
  }
}

// ---- least squares -----------------------------------------------------------------------------------

#include "problems/least_squares.hpp"

TEST_CASE("least_squares: gradient, block values, exact solve", "[problems]") {
  auto p = make_problem("least_squares", {{"n", "300"}, {"d", "12"}, {"condition", "50"}});
  const Eigen::Index d = p->dim();
  REQUIRE(d == 12);
  for (int trial = 0; trial < 3; ++trial) CHECK(gradient_fd_error(*p, random_point(d, 40 + trial)) < 1e-7);
  // values() (one matrix product) equals value() column by column up to summation order.
  Mat X(d, 5);
  for (int j = 0; j < 5; ++j) X.col(j) = random_point(d, 60 + j);
  Vec block(5);
  p->values(X, block);
  for (int j = 0; j < 5; ++j) CHECK(block[j] == Approx(p->value(X.col(j))).epsilon(1e-13));
  // x*: the normal equations hold to rounding; f* = f(x*); L and mu bracket the Rayleigh quotients.
  REQUIRE(p->facts().x_star_known);
  Vec g(d);
  p->gradient(p->x_star(), g);
  CHECK(g.norm() < 1e-13);
  CHECK(*p->facts().f_star == p->value(p->x_star()));
  const double L = *p->facts().L, mu = *p->facts().mu;
  CHECK(L / mu > 25);  // column scaling to 50 gives a realized condition number of the same order
  CHECK(L / mu < 100);
  for (int trial = 0; trial < 5; ++trial) {
    const Vec v = random_point(d, 80 + trial);
    const Vec w = p->x_star() + v;
    // f(x* + v) - f* = v^T H v / 2 exactly for a quadratic.
    const double q = 2 * (p->value(w) - *p->facts().f_star) / v.squaredNorm();
    CHECK(q <= L * (1 + 1e-9));
    CHECK(q >= mu * (1 - 1e-9));
  }
}

TEST_CASE("least_squares: the row oracle is unbiased, without replacement one epoch is exact", "[problems]") {
  auto p = make_problem("least_squares", {{"n", "200"}, {"d", "6"}});
  const Vec x = random_point(6, 3);
  // 5 standard errors per coordinate (6 coordinates: a false alarm has probability below 4e-6).
  CHECK(oracle_bias_z(*p, x, 20000) < 5.0);

  auto q = make_problem("least_squares", {{"n", "200"}, {"d", "6"}, {"sampling", "without_replacement"}});
  RunStreams streams(9, 0);
  auto oracle = q->make_oracle(streams);
  Vec g(6), sum = Vec::Zero(6), exact(6);
  for (int epoch = 0; epoch < 2; ++epoch) {
    sum.setZero();
    for (int k = 1; k <= 200; ++k) {
      streams.seek(std::uint64_t(epoch * 200 + k));
      oracle->sample_gradient(x, g, 1);
      sum += g;
    }
    q->gradient(x, exact);
    CHECK((sum / 200 - exact).norm() < 1e-13);  // every row exactly once per epoch
  }
  // sigma^2 fact = E||g(x*) - grad f(x*)||^2: Monte Carlo mean within 5 standard errors.
  RunStreams s2(10, 0);
  auto o2 = p->make_oracle(s2);
  const int draws = 20000;
  double m1 = 0, m2 = 0;
  for (int k = 1; k <= draws; ++k) {
    s2.seek(std::uint64_t(k));
    o2->sample_gradient(p->x_star(), g, 1);
    const double e = g.squaredNorm();
    m1 += e;
    m2 += e * e;
  }
  m1 /= draws;
  m2 /= draws;
  CHECK(std::abs(m1 - *p->facts().sigma2) < 5 * std::sqrt((m2 - m1 * m1) / draws));
}

TEST_CASE("least_squares: the W1 benchmark instance gives the documented f*", "[problems]") {
  // WORKLOADS.md recipe: SplitMix64(12345) uniforms, Box-Muller normals, A = Z / sqrt(d) row-major, then
  // x_true, then e; b = A x_true + 0.1 e. f* = 0.004906696940132532 from LAPACK gelsd (1e-12 agreement).
  const int n = 4096, d = 128;
  RowMat A;
  Vec b;
  make_splitmix_instance(n, d, 12345, 0.1, A, b);
  CHECK(A(0, 0) == Approx(0.04972229208822638).epsilon(1e-15));
  {
    // Computed in pieces (as the sweep's threads do), here uneven pieces in reverse order: the same bits.
    RowMat A_pieces;
    Vec b_pieces;
    long calls = 0;
    const ParallelFor reversed_pieces = [&](long count, const std::function<void(long, long)>& body) {
      for (long end = count; end > 0; end -= 1 + end % 7777) body(std::max(0L, end - 1 - end % 7777), end), ++calls;
    };
    make_splitmix_instance(n, d, 12345, 0.1, A_pieces, b_pieces, reversed_pieces);
    CHECK(calls > 10);
    CHECK((A_pieces.array() == A.array()).all());
    CHECK((b_pieces.array() == b.array()).all());
  }
  CHECK(b[0] == Approx(-0.3075536348999733).epsilon(1e-14));
  CHECK(A.sum() == Approx(27.754550228693752).epsilon(1e-12));
  LeastSquares p(A, b, LeastSquaresOptions{});
  CHECK(*p.facts().f_star == Approx(0.004906696940132532).epsilon(1e-12));
  CHECK(p.value(Vec::Zero(d)) == Approx(0.45515142457008845).epsilon(1e-12));
  CHECK(p.x_star().sum() == Approx(23.701145179384667).epsilon(1e-10));
  CHECK(*p.facts().mu == Approx(0.005314).epsilon(1e-3));  // documented to 4 digits
  CHECK(*p.facts().L == Approx(0.010769).epsilon(1e-3));
  // The benchmark's path: f* given, no solve; L by power iteration agrees with the eigensolver.
  LeastSquaresOptions fast;
  fast.solve = false;
  LeastSquares q(A, b, fast, 0.004906696940132532);
  CHECK(q.facts().f_star_method == "given");
  CHECK(*q.facts().L == Approx(*p.facts().L).epsilon(1e-6));
  // The same instance through the registry.
  auto r = make_problem("least_squares", {{"generator", "splitmix"}, {"n", "4096"}, {"d", "128"}});
  CHECK(*r->facts().f_star == *p.facts().f_star);
}

// ---- separable and hard instances --------------------------------------------------------------------

TEST_CASE("logcosh: gradient, unbiased noisy oracle, f* = 0 at c, composite fixed point", "[problems]") {
  auto p = make_problem("logcosh", {{"d", "7"}, {"noise", "gaussian"}, {"noise_scale", "0.5"}});
  CHECK(*p->facts().L == 1.0);
  CHECK(*p->facts().f_star == 0.0);
  CHECK(p->value(p->x_star()) == 0.0);
  Vec g(7);
  p->gradient(p->x_star(), g);
  CHECK(g.norm() == 0.0);
  for (int t = 0; t < 3; ++t) CHECK(gradient_fd_error(*p, random_point(7, 20 + t, 3.0)) < 1e-8);
  CHECK(p->value(Vec::Constant(7, 1e3)) < 7e3 + 1e-9);  // no overflow far away: ~ sum |x - c| - log 2
  CHECK(oracle_bias_z(*p, random_point(7, 1), 20000) < 5.0);  // 5 standard errors, 7 coordinates
  CHECK(*p->facts().sigma2 == Approx(7 * 0.25));
  auto q = make_problem("logcosh", {{"d", "7"}, {"regularizer", "l1"}, {"reg_weight", "0.3"}});
  Vec xs = q->x_star(), y(7);
  q->gradient(xs, g);
  y = xs - g;
  q->prox(1.0, y);
  CHECK((y - xs).norm() < 1e-9);  // prox-gradient fixed point at the FISTA solution
}

TEST_CASE("abs_mean: the gap formula equals numerical integration, sign oracle unbiased", "[problems]") {
  auto p = make_problem("abs_mean", {{"d", "1"}});
  const double two_phi0 = 2.0 / std::sqrt(2.0 * std::numbers::pi);
  CHECK(*p->facts().f_star == Approx(two_phi0).epsilon(1e-15));
  for (double x : {-2.5, -0.7, 0.0, 0.3, 1.0, 4.0}) {
    // E|x - xi| by composite Simpson on [-12, 12] with 24000 intervals; the integrand's kink at s = x is
    // placed on a grid node by splitting the interval there (error ~ h^4 f'''' ~ 1e-16, tail < 1e-30).
    auto integrand = [&](double s) { return std::abs(x - s) * std::exp(-0.5 * s * s) / std::sqrt(2 * std::numbers::pi); };
    auto simpson = [&](double a, double b, int m) {
      const double h = (b - a) / m;
      double s = integrand(a) + integrand(b);
      for (int k = 1; k < m; ++k) s += (k % 2 ? 4 : 2) * integrand(a + k * h);
      return s * h / 3;
    };
    const double integral = simpson(-12, x, 12000) + simpson(x, 12, 12000);
    Vec v(1);
    v << x;
    INFO("x = " << x);
    CHECK(p->value(v) == Approx(integral).epsilon(1e-11));
    CHECK(p->value(v) - *p->facts().f_star >= 0.0);
  }
  auto q = make_problem("abs_mean", {{"d", "4"}});
  for (int t = 0; t < 3; ++t) CHECK(gradient_fd_error(*q, random_point(4, 30 + t)) < 1e-8);
  CHECK(oracle_bias_z(*q, random_point(4, 2), 40000) < 5.0);  // 5 standard errors, 4 coordinates
}

TEST_CASE("harvey instances: O(T) value equals the O(T^2) definition, subgradient inequality", "[problems]") {
  for (std::string key : {"harvey_sc", "harvey_lip"}) {
    const bool sc = key == "harvey_sc";
    const long T = 9;
    auto p = make_problem(key, {{"T", std::to_string(T)}});
    CHECK(std::string(domain_name(p->facts().domain)) == "ball");
    CHECK(p->is_composite());
    // Direct definition: h_i in R^T for i = 1..T+1.
    Mat H = Mat::Zero(T + 1, T);
    for (long i = 1; i <= T + 1; ++i)
      for (long j = 1; j <= T; ++j) {
        const double a = 1.0 / ((sc ? 2.0 : 8.0) * double(T + 1 - j));
        const double b = sc ? 1.0 : std::sqrt(double(j)) / (2.0 * std::sqrt(double(T)));
        H(i - 1, j - 1) = j < i ? a : (j == i ? -b : 0.0);
      }
    for (int t = 0; t < 20; ++t) {
      Vec x = random_point(T, 900 + t, 0.3);
      project_ball(x, 1.0);
      const double direct = (H * x).maxCoeff() + (sc ? 0.5 * x.squaredNorm() : 0.0);
      INFO(key << " trial " << t);
      CHECK(p->value(x) == Approx(direct).epsilon(1e-14).margin(1e-16));
      // Subgradient (plus strong convexity for sc): f(y) >= f(x) + g^T (y - x) (+ ||y - x||^2 / 2).
      Vec g(T), y = random_point(T, 950 + t, 0.3);
      project_ball(y, 1.0);
      p->gradient(x, g);
      const double lower = p->value(x) + g.dot(y - x) + (sc ? 0.5 * (y - x).squaredNorm() : 0.0);
      CHECK(p->value(y) >= lower - 1e-14);
    }
  }
}

TEST_CASE("harvey instances: the last iterate of projected GD exceeds the lower bounds exactly", "[problems]") {
  // Harvey et al. (2019): f(x_{T+1}) >= H_T / (4T) with step 1/t (strongly convex) and
  // >= H_T / (32 sqrt T) with step 1/sqrt(t) (Lipschitz), H_T the harmonic number; and the uniform average
  // is a log factor better: we also check that the average beats the last iterate.
  for (long T : {2L, 10L, 100L, 1000L, 3000L}) {
    double H_T = 0;
    for (long k = 1; k <= T; ++k) H_T += 1.0 / double(k);
    for (std::string key : {"harvey_sc", "harvey_lip"}) {
      const bool sc = key == "harvey_sc";
      auto p = make_problem(key, {{"T", std::to_string(T)}});
      RunStreams streams(1, 0);
      auto oracle = p->make_oracle(streams);
      Vec x = Vec::Zero(T), g(T), sum = Vec::Zero(T);
      for (long t = 1; t <= T; ++t) {
        oracle->sample_gradient(x, g, 1);
        x -= (sc ? 1.0 / double(t) : 1.0 / std::sqrt(double(t))) * g;
        p->prox(1.0, x);
        sum += x;
      }
      const double last = p->value(x), bound = sc ? H_T / (4.0 * T) : H_T / (32.0 * std::sqrt(double(T)));
      INFO(key << " T = " << T << ": f(x_{T+1}) = " << last << ", bound " << bound);
      CHECK(last >= bound);
      if (T >= 100) CHECK(p->value(sum / double(T)) < last);
    }
  }
}

TEST_CASE("lessard: continuous piecewise quadratic with mu = 1, L = 25", "[problems]") {
  auto p = make_problem("lessard", {});
  CHECK(*p->facts().L == 25.0);
  CHECK(*p->facts().mu == 1.0);
  Vec x(1);
  for (double v : {-1.3, 0.4, 1.5, 2.7}) {
    x << v;
    CHECK(gradient_fd_error(*p, x) < 1e-8);
  }
  for (double knot : {1.0, 2.0}) {  // value and slope continuous at the knots
    Vec lo(1), hi(1), glo(1), ghi(1);
    lo << knot - 1e-12;
    hi << knot;
    CHECK(p->value(lo) == Approx(p->value(hi)).epsilon(1e-10));
    p->gradient(lo, glo);
    p->gradient(hi, ghi);
    CHECK(glo[0] == Approx(ghi[0]).epsilon(1e-10));
  }
  x << 0.0;
  CHECK(p->value(x) == 0.0);
  // Heavy ball with Polyak's quadratic tuning (alpha = 1/9, beta = 4/9) from the default x0 does not
  // converge (Lessard et al. 2016): after 2000 steps the iterate is still far from 0 and keeps cycling;
  // gradient descent with step 1/L converges.
  RandomStream init(1, 0, StreamPurpose::init);
  Vec x0(1), gx(1);
  p->initial_point(x0, init);
  CHECK(x0[0] == 3.3);
  double cur = x0[0], prev = x0[0], far = 0;
  for (int t = 0; t < 2000; ++t) {
    x << cur;
    p->gradient(x, gx);
    const double next = cur - gx[0] / 9.0 + 4.0 / 9.0 * (cur - prev);
    prev = cur;
    cur = next;
    if (t >= 1900) far = std::max(far, std::abs(cur));
  }
  CHECK(far > 1.0);
  double gd = x0[0];
  for (int t = 0; t < 2000; ++t) {
    x << gd;
    p->gradient(x, gx);
    gd -= gx[0] / 25.0;
  }
  CHECK(std::abs(gd) < 1e-12);
  // Strong convexity and smoothness: the slope ratio between any two points lies in [1, 25].
  Vec g1(1), g2(1), y(1);
  for (double a = -3; a < 4; a += 0.37)
    for (double b = a + 0.11; b < 4; b += 0.53) {
      x << a;
      y << b;
      p->gradient(x, g1);
      p->gradient(y, g2);
      const double slope = (g2[0] - g1[0]) / (b - a);
      CHECK(slope >= 1.0 - 1e-12);
      CHECK(slope <= 25.0 + 1e-12);
    }
}

// ---- logistic and softmax ----------------------------------------------------------------------------

TEST_CASE("logistic and softmax: gradients, unbiased oracles, Newton's f*", "[problems]") {
  for (std::string key : {"logistic", "softmax"}) {
    INFO(key);
    auto p = make_problem(key, {{"n", "150"}, {"d", "5"}, {"lambda", "0.01"}, {"separability", "3"}});
    const Eigen::Index d = p->dim();
    CHECK(d == (key == "logistic" ? 5 : 15));
    for (int t = 0; t < 3; ++t) CHECK(gradient_fd_error(*p, random_point(d, 70 + t)) < 1e-8);
    CHECK(oracle_bias_z(*p, random_point(d, 7), 20000) < 5.0);  // 5 standard errors per coordinate
    REQUIRE(p->facts().x_star_known);
    Vec g(d);
    p->gradient(p->x_star(), g);
    CHECK(g.norm() < 1e-12);
    CHECK_THAT(p->facts().f_star_method, Catch::Contains("newton"));
    // Strong convexity (mu = lambda) and smoothness: mu/2 ||v||^2 <= F(x* + v) - F* <= L/2 ||v||^2.
    for (int t = 0; t < 5; ++t) {
      const Vec v = random_point(d, 90 + t, 0.5);
      const double gap = p->value(p->x_star() + v) - *p->facts().f_star;
      CHECK(gap >= 0.5 * *p->facts().mu * v.squaredNorm() * (1 - 1e-9));
      CHECK(gap <= 0.5 * *p->facts().L * v.squaredNorm() * (1 + 1e-9));
    }
    // sigma^2 fact = E||g(x*) - grad f(x*)||^2 for one example: Monte Carlo within 5 standard errors.
    {
      RunStreams s(12, 0);
      auto o = p->make_oracle(s);
      Vec gs(d);
      const int draws = 20000;
      double m1 = 0, m2 = 0;
      for (int k = 1; k <= draws; ++k) {
        s.seek(std::uint64_t(k));
        o->sample_gradient(p->x_star(), gs, 1);
        m1 += gs.squaredNorm();
        m2 += gs.squaredNorm() * gs.squaredNorm();
      }
      m1 /= draws;
      m2 /= draws;
      REQUIRE(p->facts().sigma2.has_value());
      CHECK(std::abs(m1 - *p->facts().sigma2) < 5 * std::sqrt((m2 - m1 * m1) / draws));
    }
    Mat X(d, 3);
    for (int j = 0; j < 3; ++j) X.col(j) = random_point(d, 95 + j);
    Vec block(3);
    p->values(X, block);
    for (int j = 0; j < 3; ++j) CHECK(block[j] == Approx(p->value(X.col(j))).epsilon(1e-13));
  }
  // Composite: l1-regularized logistic regression by FISTA is a prox-gradient fixed point.
  auto q = make_problem("logistic", {{"n", "150"}, {"d", "5"}, {"regularizer", "l1"}, {"reg_weight", "0.02"}});
  Vec xs = q->x_star(), g(5);
  q->gradient(xs, g);
  Vec y = xs - g / *q->facts().L;
  q->prox(1.0 / *q->facts().L, y);
  CHECK((y - xs).norm() < 1e-9);
}

TEST_CASE("problems reject invalid combinations naming the parameter", "[problems]") {
  auto message = [](const std::string& key, std::map<std::string, std::string> raw) -> std::string {
    try {
      make_problem(key, raw);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  CHECK_THAT(message("quadratic", {{"regularizer", "l1"}}), Catch::Contains("problem.reg_weight = 0"));
  CHECK_THAT(message("quadratic", {{"mu", "2"}, {"L", "1"}}), Catch::Contains("need mu <= L"));
  CHECK_THAT(message("least_squares", {{"intercept", "true"}}), Catch::Contains("problem.intercept"));
  CHECK_THAT(message("least_squares", {{"dataset", "x.csv"}, {"condition", "10"}}), Catch::Contains("problem.condition"));
  CHECK_THAT(message("least_squares", {{"oracle", "exact"}, {"sampling", "without_replacement"}}),
             Catch::Contains("problem.sampling"));
  CHECK_THAT(message("logistic", {{"intercept", "true"}}), Catch::Contains("problem.intercept"));
  CHECK_THAT(message("least_squares", {{"dataset", "no_such_file.svm"}}), Catch::Contains("cannot open"));
}

TEST_CASE("every registered problem declares consistent facts", "[problems]") {
  // Small instances of every key the issue names; L, mu, f*, x* cross-checked where declared.
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases{
      {"quadratic", {{"d", "5"}}},
      {"least_squares", {{"n", "60"}, {"d", "5"}}},
      {"logistic", {{"n", "60"}, {"d", "4"}}},
      {"softmax", {{"n", "60"}, {"d", "3"}, {"classes", "3"}}},
      {"logcosh", {{"d", "5"}}},
      {"abs_mean", {{"d", "3"}}},
      {"harvey_sc", {{"T", "20"}}},
      {"harvey_lip", {{"T", "20"}}},
      {"lessard", {}},
  };
  for (const auto& [key, raw] : cases) {
    INFO(key);
    auto p = make_problem(key, raw);
    const ProblemFacts& f = p->facts();
    REQUIRE(f.f_star.has_value());
    REQUIRE(f.x_star_known);
    CHECK(p->value(p->x_star()) == Approx(*f.f_star).margin(1e-14));
    if (f.mu && f.L) CHECK(*f.mu <= *f.L);
    // f* is a lower bound at random feasible points.
    for (int t = 0; t < 10; ++t) {
      Vec x = random_point(p->dim(), 700 + t);
      p->prox(1.0, x);  // onto the domain for the constrained instances (identity otherwise)
      CHECK(p->value(x) >= *f.f_star - 1e-12);
    }
    // Initial points are finite and evaluate.
    Vec x0(p->dim());
    RandomStream init(1, 0, StreamPurpose::init);
    p->initial_point(x0, init);
    CHECK(std::isfinite(p->value(x0)));
  }
}

TEST_CASE("quadratic: gradient, unbiased heavy-tailed oracle, cheap block gradient", "[problems]") {
  auto p = make_problem("quadratic", {{"d", "6"}, {"basis", "random"}, {"random_minimizer", "true"},
                                      {"noise", "student_t"}, {"noise_nu", "5"}, {"noise_scale", "0.7"}});
  for (int t = 0; t < 3; ++t) CHECK(gradient_fd_error(*p, random_point(6, 110 + t)) < 1e-8);
  CHECK(oracle_bias_z(*p, random_point(6, 4), 20000) < 5.0);  // 5 standard errors per coordinate
  CHECK(*p->facts().sigma2 == Approx(6 * 0.49));              // unit-variance t_5 times s, 6 coordinates
  // Identity basis without noise: the block oracle computes l_j (x_j - c_j) on the block alone, equal to the
  // full gradient's block.
  auto q = make_problem("quadratic", {{"d", "8"}, {"random_minimizer", "true"}, {"noise_scale", "0"}});
  RunStreams streams(1, 0);
  auto oracle = q->make_oracle(streams);
  OracleFastPaths* fast = oracle->fast_paths();
  REQUIRE(fast);
  REQUIRE(fast->has_cheap_block_gradient());
  const Vec x = random_point(8, 5);
  Vec full(8), block(3);
  q->gradient(x, full);
  fast->sample_block_gradient(x, 2, 3, block, 1);
  CHECK(block == full.segment(2, 3));
}

TEST_CASE("every regularizer on least squares: FISTA's x* is a prox-gradient fixed point", "[problems]") {
  for (std::string kind : {"l1", "l2", "elastic_net", "linf", "box", "ball", "simplex"}) {
    INFO(kind);
    auto p = make_problem("least_squares", {{"n", "80"}, {"d", "6"}, {"regularizer", kind}, {"reg_weight", "0.05"},
                                            {"reg_radius", "0.7"}});
    REQUIRE(p->is_composite());
    CHECK_THAT(p->facts().f_star_method, Catch::Contains("fista"));
    const double L = *p->facts().L;
    Vec xs = p->x_star(), g(6);
    p->gradient(xs, g);
    Vec y = xs - g / L;
    p->prox(1.0 / L, y);
    // Gradient mapping below 1e-11 relative (FISTA's stopping rule); with mu > 0, ||x - x*|| <= ||G|| / mu.
    CHECK(L * (y - xs).norm() < 1e-9);
    CHECK(std::isfinite(p->value(xs)));
    for (int t = 0; t < 20; ++t) {
      Vec x = xs + random_point(6, 600 + t, 0.3);
      p->prox(1.0, x);  // feasible for the constraint kinds; a different point for the penalties
      CHECK(p->value(x) >= *p->facts().f_star - 1e-12);
    }
  }
}

#include "core/run.hpp"

TEST_CASE("a run records the noise statistics, including the Hill tail index", "[problems]") {
  auto p = make_problem("quadratic", {{"d", "4"}, {"noise", "pareto"}, {"noise_tail", "1.5"}, {"noise_scale", "0.01"},
                                      {"noise_shape", "isotropic"}});
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  auto sgd = registry.make_optimizer("sgd", resolve_params(registry.info(ComponentKind::optimizer, "sgd").params, {},
                                                           "optimizer", errors));
  auto schedule = registry.make_schedule(
      "constant", resolve_params(registry.info(ComponentKind::schedule, "constant").params, {{"eta", "0.1"}},
                                 "schedule", errors),
      {});
  RunPlan plan;
  plan.steps = 40000;
  plan.checkpoints = log_checkpoints(plan.steps, 10);
  RunStreams streams(3, 0);
  RunResult r = run_one(*p, *sgd, schedule, plan, streams);
  REQUIRE(r.status == RunStatus::ok);
  std::map<std::string, double> stats(r.stats.begin(), r.stats.end());
  REQUIRE(stats.count("noise_tail_index_hill"));
  CHECK(stats["noise_hill_k"] == 200.0);  // floor(sqrt(40000))
  // Exact Pareto radii: the estimate has sd 1.5/sqrt(200) = 0.106; 5 sd.
  CHECK(std::abs(stats["noise_tail_index_hill"] - 1.5 * 200 / 199) < 5 * 0.106);
  CHECK(stats["noise_max_norm"] >= 0.01);
}
