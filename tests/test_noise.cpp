// Gradient noise models: moments with standard-error tolerances, Kolmogorov-Smirnov tests against the
// known CDFs, the scale convention, isotropic and multiplicative shapes, and the Hill tail-index estimate.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <functional>
#include <numbers>
#include <vector>

#include "problems/noise.hpp"

using namespace ratelab;

namespace {

NoiseOptions noise(NoiseOptions::Kind kind, double scale = 1.0) {
  NoiseOptions o;
  o.kind = kind;
  o.scale = scale;
  return o;
}

std::vector<double> variates(const NoiseOptions& o, int n, std::uint64_t seed) {
  GradientNoise model(o, 1);
  RandomStream s(seed, 0, StreamPurpose::noise);
  std::vector<double> out(static_cast<std::size_t>(n));
  for (double& v : out) v = model.standard_variate(s);
  return out;
}

// sqrt(n) * sup |F_n - F|. Under H0 its distribution tends to Kolmogorov's; P(> 1.95) = 0.001, so a
// correct sampler fails this with probability 1e-3 (fixed seeds make the outcome deterministic).
double ks_statistic(std::vector<double> x, const std::function<double(double)>& cdf) {
  std::sort(x.begin(), x.end());
  const double n = double(x.size());
  double d = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double F = cdf(x[i]);
    d = std::max({d, double(i + 1) / n - F, F - double(i) / n});
  }
  return std::sqrt(n) * d;
}
constexpr double kKsThreshold = 1.95;

double normal_cdf(double x, double sd = 1.0) { return 0.5 * std::erfc(-x / (sd * std::numbers::sqrt2)); }

}  // namespace

TEST_CASE("noise: Kolmogorov-Smirnov against the known CDFs", "[problems][noise]") {
  using K = NoiseOptions::Kind;
  const int n = 20000;
  const double pi = std::numbers::pi;
  CHECK(ks_statistic(variates(noise(K::gaussian), n, 1), [](double x) { return normal_cdf(x); }) < kKsThreshold);
  // student_t, nu = 1 (Cauchy, infinite variance: no rescaling): F = 1/2 + atan(x)/pi.
  NoiseOptions t1 = noise(K::student_t);
  t1.nu = 1.0;
  CHECK(ks_statistic(variates(t1, n, 2), [&](double x) { return 0.5 + std::atan(x) / pi; }) < kKsThreshold);
  // student_t, nu = 3, rescaled to unit variance by sqrt(1/3): F_3(x sqrt 3) with
  // F_3(t) = 1/2 + (t / (sqrt3 (1 + t^2/3)) + atan(t / sqrt3)) / pi.
  NoiseOptions t3 = noise(K::student_t);
  t3.nu = 3.0;
  auto f3 = [&](double x) {
    const double t = x * std::sqrt(3.0);
    return 0.5 + (t / (std::sqrt(3.0) * (1 + t * t / 3)) + std::atan(t / std::sqrt(3.0))) / pi;
  };
  CHECK(ks_statistic(variates(t3, n, 3), f3) < kKsThreshold);
  // alpha_stable: alpha = 2 is N(0, 2); alpha = 1 is the standard Cauchy.
  NoiseOptions s2 = noise(K::alpha_stable);
  s2.alpha = 2.0;
  CHECK(ks_statistic(variates(s2, n, 4), [](double x) { return normal_cdf(x, std::numbers::sqrt2); }) < kKsThreshold);
  NoiseOptions s1 = noise(K::alpha_stable);
  s1.alpha = 1.0;
  CHECK(ks_statistic(variates(s1, n, 5), [&](double x) { return 0.5 + std::atan(x) / pi; }) < kKsThreshold);
  // pareto, tail 1.5 (no rescaling): symmetric, P(|X| > r) = r^-1.5 for r >= 1.
  NoiseOptions p = noise(K::pareto);
  p.tail = 1.5;
  auto fp = [](double x) {
    const double a = std::abs(x), tail = a < 1 ? 1.0 : std::pow(a, -1.5);
    return x < 0 ? 0.5 * tail : 1.0 - 0.5 * tail;
  };
  CHECK(ks_statistic(variates(p, n, 6), fp) < kKsThreshold);
  // The wrong law is rejected: N(0, 1) samples against the N(0, 2) CDF.
  CHECK(ks_statistic(variates(noise(K::gaussian), n, 7), [](double x) { return normal_cdf(x, std::numbers::sqrt2); }) >
        kKsThreshold);
}

TEST_CASE("noise: scale convention and moments (5 standard errors)", "[problems][noise]") {
  using K = NoiseOptions::Kind;
  const int n = 200000;
  auto second_moment = [&](const NoiseOptions& o, std::uint64_t seed, double& se) {
    auto x = variates(o, n, seed);
    double m2 = 0, m4 = 0;
    for (double v : x) m2 += v * v, m4 += v * v * v * v;
    m2 /= n;
    m4 /= n;
    se = std::sqrt((m4 - m2 * m2) / n);
    return m2;
  };
  double se;
  // Finite variance: the standard variate has unit variance, so noise_scale is the standard deviation.
  CHECK(std::abs(second_moment(noise(K::gaussian), 11, se) - 1.0) < 5 * std::sqrt(2.0 / n));
  NoiseOptions t5 = noise(K::student_t);
  t5.nu = 5.0;  // E t^4 finite for nu > 4; after rescaling E xi^4 = 3 (nu-2)/(nu-4) = 9, Var(xi^2) = 8
  CHECK(std::abs(second_moment(t5, 12, se) - 1.0) < 5 * std::sqrt(8.0 / n));
  NoiseOptions p5 = noise(K::pareto);
  p5.tail = 5.0;  // E r^4 = 5 finite; rescaled by (tail-2)/tail: E xi^4 = 5 * 9/25, Var(xi^2) = 0.8
  CHECK(std::abs(second_moment(p5, 13, se) - 1.0) < 5 * std::sqrt(0.8 / n));
  NoiseOptions s2 = noise(K::alpha_stable);
  s2.alpha = 2.0;  // N(0, 2): E x^2 = 2, Var(x^2) = 8
  CHECK(std::abs(second_moment(s2, 14, se) - 2.0) < 5 * std::sqrt(8.0 / n));
  // Means are 0 (symmetric laws with finite mean).
  for (auto o : {noise(K::gaussian), t5, p5, s2}) {
    auto x = variates(o, n, 15);
    double m = 0;
    for (double v : x) m += v;
    CHECK(std::abs(m / n) < 5 * std::sqrt(2.0 / n));  // variance at most 2
  }
  // The declared E||noise||^2 (facts().sigma2) matches the realized mean squared norm of apply().
  NoiseOptions o = t5;
  o.scale = 0.5;
  REQUIRE(o.variance(3).has_value());
  CHECK(*o.variance(3) == Approx(3 * 0.25));
  GradientNoise model(o, 3);
  RandomStream s(16, 0, StreamPurpose::noise);
  Vec g(3);
  double sum = 0, sum_sq = 0;
  for (int k = 0; k < 50000; ++k) {
    g.setZero();
    model.apply(g, 1, s);
    sum += g.squaredNorm();
    sum_sq += g.squaredNorm() * g.squaredNorm();
  }
  const double mean = sum / 50000, sd = std::sqrt(sum_sq / 50000 - mean * mean);
  CHECK(std::abs(mean - 0.75) < 5 * sd / std::sqrt(50000.0));
  NoiseOptions heavy = noise(K::student_t);
  heavy.nu = 2.0;
  CHECK(!heavy.variance(3).has_value());  // infinite variance is not declared
}

TEST_CASE("noise: isotropic shape, batches and multiplicative mode", "[problems][noise]") {
  using K = NoiseOptions::Kind;
  const int n = 40000;
  // Isotropic gaussian in d = 4: E||xi||^2 = s^2 (radius |N(0,1)|), and the direction is uniform, so every
  // coordinate has mean 0 and variance s^2 / d.
  NoiseOptions iso = noise(K::gaussian, 2.0);
  iso.shape = NoiseOptions::Shape::isotropic;
  CHECK(*iso.variance(4) == Approx(4.0));
  GradientNoise model(iso, 4);
  RandomStream s(21, 0, StreamPurpose::noise);
  Vec g(4), sum = Vec::Zero(4), sum_sq = Vec::Zero(4);
  double norm2 = 0;
  for (int k = 0; k < n; ++k) {
    g.setZero();
    model.apply(g, 1, s);
    sum += g;
    sum_sq += g.cwiseProduct(g);
    norm2 += g.squaredNorm();
  }
  // ||xi||^2 = s^2 z^2: mean s^2 = 4, variance 2 s^4 = 32.
  CHECK(std::abs(norm2 / n - 4.0) < 5 * std::sqrt(32.0 / n));
  for (int i = 0; i < 4; ++i) {
    CHECK(std::abs(sum[i] / n) < 5 * std::sqrt(1.0 / n));
    // Var(xi_i^2) = E xi_i^4 - 1 with E xi_i^4 = s^4 E z^4 E u_i^4 = 16 * 3 * 3/(d(d+2)) = 6: so 5.
    CHECK(std::abs(sum_sq[i] / n - 1.0) < 5 * std::sqrt(5.0 / n));
  }
  // A batch of B averages B draws: the variance per coordinate is s^2 / B.
  NoiseOptions gauss = noise(K::gaussian, 1.0);
  GradientNoise batched(gauss, 2);
  Vec h(2);
  double m2 = 0;
  for (int k = 0; k < n; ++k) {
    h.setZero();
    batched.apply(h, 8, s);
    m2 += h.squaredNorm() / 2;
  }
  CHECK(std::abs(m2 / n - 1.0 / 8) < 5 * std::sqrt(2.0 / 64 / (2 * n)));
  // Multiplicative: g = grad .* (1 + s xi) is unbiased, with per-coordinate variance s^2 grad_i^2.
  NoiseOptions mult = noise(K::gaussian, 0.5);
  mult.mode = NoiseOptions::Mode::multiplicative;
  CHECK(!mult.variance(2).has_value());
  GradientNoise multiplicative(mult, 2);
  Vec grad(2), q(2), mean = Vec::Zero(2), var = Vec::Zero(2);
  grad << 3.0, -1.0;
  for (int k = 0; k < n; ++k) {
    q = grad;
    multiplicative.apply(q, 1, s);
    mean += q;
    var += (q - grad).cwiseProduct(q - grad);
  }
  for (int i = 0; i < 2; ++i) {
    const double sd = 0.5 * std::abs(grad[i]);
    CHECK(std::abs(mean[i] / n - grad[i]) < 5 * sd / std::sqrt(double(n)));
    CHECK(std::abs(var[i] / n - sd * sd) < 5 * sd * sd * std::sqrt(2.0 / n));
  }
}

TEST_CASE("noise: Hill estimate of the tail index from the run's largest norms", "[problems][noise]") {
  // Isotropic pareto in d = 1: ||noise|| = s r exactly, r Pareto(tail). Over the k largest of m draws,
  // log(r_(i) / r_(k+1)) are k i.i.d. Exp(tail) variables (Renyi), so the Hill estimate has mean
  // tail k/(k-1) and standard deviation about tail / sqrt(k). m = 250000 gives k = 500: sd 0.067.
  NoiseOptions o = noise(NoiseOptions::Kind::pareto, 0.3);
  o.tail = 1.5;
  o.shape = NoiseOptions::Shape::isotropic;
  GradientNoise model(o, 1);
  RandomStream s(31, 0, StreamPurpose::noise);
  Vec g(1);
  for (int k = 0; k < 250000; ++k) {
    g.setZero();
    model.apply(g, 1, s);
  }
  CHECK(model.hill_k() == 500);
  CHECK(std::abs(model.hill_tail_index() - 1.5 * 500.0 / 499.0) < 5 * 1.5 / std::sqrt(500.0));
  RunStats stats;
  model.report(stats);
  auto find = [&](const std::string& key) {
    for (auto& [k, v] : stats)
      if (k == key) return v;
    return std::nan("");
  };
  CHECK(find("noise_tail_index_hill") == model.hill_tail_index());
  CHECK(find("noise_hill_k") == 500.0);
  CHECK(find("noise_max_norm") >= 0.3);
  // k is capped at 1000 however long the run: memory stays bounded.
  for (int k = 0; k < 800000; ++k) {
    g.setZero();
    model.apply(g, 1, s);
  }
  CHECK(model.hill_k() == GradientNoise::kHillMaxK);
  CHECK(std::abs(model.hill_tail_index() - 1.5) < 5 * 1.5 / std::sqrt(1000.0));
  // Gaussian norms have no power tail: the estimate grows with k instead of settling (here well above 3).
  GradientNoise light(noise(NoiseOptions::Kind::gaussian, 1.0), 1);
  for (int k = 0; k < 100000; ++k) {
    g.setZero();
    light.apply(g, 1, s);
  }
  CHECK(light.hill_tail_index() > 3.0);
}

TEST_CASE("noise: alpha_stable has the characteristic function exp(-|k|^alpha) for every alpha", "[problems][noise]") {
  // E cos(k X) = exp(-|k|^alpha) for the unit-scale symmetric stable law (the scale convention of
  // noise_scale). cos is bounded, so the Monte Carlo mean has a finite standard error; 5 of them.
  const int n = 100000;
  for (double alpha : {0.7, 1.0, 1.5, 1.9, 2.0}) {
    NoiseOptions o = noise(NoiseOptions::Kind::alpha_stable);
    o.alpha = alpha;
    auto x = variates(o, n, 40 + std::uint64_t(alpha * 10));
    for (double k : {0.3, 1.0, 2.0}) {
      double m = 0, m2 = 0;
      for (double v : x) {
        const double c = std::cos(k * v);
        m += c;
        m2 += c * c;
      }
      m /= n;
      m2 /= n;
      INFO("alpha = " << alpha << ", k = " << k);
      CHECK(std::abs(m - std::exp(-std::pow(k, alpha))) < 5 * std::sqrt((m2 - m * m) / n) + 1e-12);
    }
  }
}
