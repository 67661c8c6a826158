// The fused passes (core/packet_passes.hpp, the fused steps of core/fast_paths.hpp, Optimizer::steps_checked)
// change no numerics: the sums have the bits of Eigen's dot() and squaredNorm(), and every fused path gives
// the iterates, the divergence decisions and the stop steps of its reference, the plain oracle
// (sample_gradient after seeking the streams) with the optimizer's update written as the Eigen expression it
// replaced, checked with x.squaredNorm() after every step. Exact equality throughout.
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "core/packet_passes.hpp"
#include "core/registry.hpp"
#include "core/run.hpp"
#include "problems/data.hpp"

using namespace ratelab;

namespace {

const Registry& registry() {
  static const Registry r = builtin_registry();
  return r;
}

std::shared_ptr<const Problem> make_problem(const std::string& key, std::map<std::string, std::string> raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry().info(ComponentKind::problem, key).params, raw, "problem", errors);
  if (!errors.empty()) throw ConfigError(errors);
  ProblemContext ctx{RandomStream(11, 0, StreamPurpose::instance), ""};
  return registry().make_problem(key, p, ctx);
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& key, std::map<std::string, std::string> raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry().info(ComponentKind::optimizer, key).params, raw, "optimizer", errors);
  if (!errors.empty()) throw ConfigError(errors);
  return registry().make_optimizer(key, p);
}

Vec random_vector(Eigen::Index d, std::uint64_t seed) {
  RandomStream s(seed, 0, StreamPurpose::init);
  Vec x(d);
  for (Eigen::Index i = 0; i < d; ++i) x[i] = s.normal();
  return x;
}

bool same_bits(const Vec& a, const Vec& b) {
  // An empty vector's data() may be null, which memcmp must not be given even for 0 bytes (UBSan).
  return a.size() == b.size() &&
         (a.size() == 0 || std::memcmp(a.data(), b.data(), std::size_t(a.size()) * sizeof(double)) == 0);
}

// The reference recurrences: the plain oracle and each optimizer's update as the Eigen expression the fused
// pass replaced.
struct Reference {
  Vec x, previous, m, v, y, g;
  long stop = 0;  // the step whose iterate failed the check, 0 if none did
  RunStats oracle_stats;  // what the oracle reports at the end (the noise statistics)
};

Reference reference_run(const Problem& problem, const std::string& optimizer, std::map<std::string, std::string> opt,
                        const Schedule& schedule, long steps, std::uint64_t replicate, double limit2) {
  RunStreams streams(7, replicate);
  const Eigen::Index d = problem.dim();
  Reference r;
  r.x.resize(d);
  streams.init.seek(0);
  problem.initial_point(r.x, streams.init);
  r.previous = r.x;
  r.m = Vec::Zero(d), r.v = Vec::Zero(d), r.g = Vec::Zero(d);
  auto oracle = problem.make_oracle(streams);
  const auto get = [&](const char* key, double fallback) { return opt.count(key) ? std::stod(opt[key]) : fallback; };
  for (long t = 1; t <= steps; ++t) {
    streams.seek(std::uint64_t(t));
    const double eta = schedule(t);
    if (optimizer == "sgd") {
      oracle->sample_gradient(r.x, r.g, 1);
      r.x -= eta * r.g;
    } else if (optimizer == "heavy_ball") {
      const double beta = get("beta", 0.9);
      oracle->sample_gradient(r.x, r.g, 1);
      const Vec old = r.x;
      r.x = r.x - eta * r.g + beta * (old - r.previous);
      r.previous = old;
    } else if (optimizer == "nesterov") {
      const double beta = get("beta", 0.9);
      r.y = r.x + beta * (r.x - r.previous);
      oracle->sample_gradient(r.y, r.g, 1);
      r.previous = r.x;
      r.x = r.y - eta * r.g;
    } else if (optimizer == "adam") {
      const double b1 = get("beta1", 0.9), b2 = get("beta2", 0.999), eps = get("eps", 1e-8);
      oracle->sample_gradient(r.x, r.g, 1);
      r.m = b1 * r.m + (1.0 - b1) * r.g;
      r.v = b2 * r.v + (1.0 - b2) * r.g.array().square().matrix();
      const double c1 = 1.0 - std::pow(b1, double(t)), c2 = 1.0 - std::pow(b2, double(t));
      r.x.array() -= eta * (r.m.array() / c1) / ((r.v.array() / c2).sqrt() + eps);
    }
    if (!(r.x.squaredNorm() <= limit2)) {
      r.stop = t;
      break;
    }
  }
  oracle->report(r.oracle_stats);
  return r;
}

// Each statistic the reference's oracle reported, in the run's statistics with the same bits.
void check_oracle_stats(const Reference& ref, const RunStats& stats) {
  for (const auto& [name, value] : ref.oracle_stats) {
    CAPTURE(name, value);
    const auto found = std::find_if(stats.begin(), stats.end(), [&](const auto& s) { return s.first == name; });
    REQUIRE(found != stats.end());
    CHECK(std::memcmp(&found->second, &value, sizeof value) == 0);
  }
}

// run_one with every step checked (steps_checked, the fused paths) and with checks every 7 steps (steps()),
// against the reference: same final iterate, same status and stop step. With a threshold, also with the
// failing step a checkpoint, so that the failure falls on the last step of a segment.
void check_against_reference(const Problem& problem, const std::string& optimizer,
                             std::map<std::string, std::string> opt, long steps, std::optional<double> threshold) {
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
  const double limit2 = threshold ? *threshold * *threshold : RunPlan{}.divergence_threshold * RunPlan{}.divergence_threshold;
  for (std::uint64_t replicate : {0u, 3u}) {
    const Reference ref = reference_run(problem, optimizer, opt, schedule, steps, replicate, limit2);
    std::vector<std::pair<long, std::vector<long>>> layouts{{1, log_checkpoints(steps, 6)}};
    if (threshold && ref.stop) layouts.push_back({1, {0, ref.stop, steps}});
    if (!threshold) layouts.push_back({7, log_checkpoints(steps, 6)});
    for (const auto& [check_every, checkpoints] : layouts) {
      CAPTURE(optimizer, check_every, replicate, problem.dim(), checkpoints);
      RunPlan plan;
      plan.steps = steps;
      plan.checkpoints = checkpoints;
      plan.metrics = {Metric::value};
      plan.divergence_check_every = check_every;
      if (threshold) plan.divergence_threshold = *threshold;
      auto opt_object = make_optimizer(optimizer, opt);
      RunStreams streams(7, replicate);
      const RunResult result = run_one(problem, *opt_object, schedule, plan, streams);
      CHECK(same_bits(Vec(opt_object->iterate()), ref.x));
      check_oracle_stats(ref, result.stats);
      if (ref.stop) {
        CHECK(result.status == RunStatus::diverged);
        CHECK(result.stop_step == ref.stop);
      } else {
        CHECK(result.status == RunStatus::ok);
        CHECK(result.stop_step == steps);
      }
    }
  }
}

}  // namespace

TEST_CASE("sweep_and_sum: the update's dot product and squared norm have the bits of Eigen's", "[fused_paths]") {
  using namespace Eigen::internal;
  for (Eigen::Index d = 0; d <= 70; ++d) {
    CAPTURE(d);
    const Vec a = random_vector(d, 1 + std::uint64_t(d)), b = random_vector(d, 100 + std::uint64_t(d));
    Vec x = random_vector(d, 200 + std::uint64_t(d));
    Vec expected = x;
    for (Eigen::Index j = 0; j < d; ++j) expected[j] = expected[j] * 0.75 - a[j];
    const auto sums = packet_passes::sweep_and_sum<2>(d, [&]<class T>(Eigen::Index j, T* terms) {
      const T xj = psub(pmul(ploadu<T>(x.data() + j), pset1<T>(0.75)), ploadu<T>(a.data() + j));
      pstoreu(x.data() + j, xj);
      terms[0] = pmul(ploadu<T>(b.data() + j), xj), terms[1] = pmul(xj, xj);
    });
    CHECK(same_bits(x, expected));
    const double dot = b.dot(expected), norm2 = expected.squaredNorm();
    CHECK(std::memcmp(&sums[0], &dot, sizeof dot) == 0);
    CHECK(std::memcmp(&sums[1], &norm2, sizeof norm2) == 0);
    // A row of a row-major matrix against a Ref, as the oracles take their dot products.
    if (d > 0) {
      RowMat A(3, d);
      for (Eigen::Index i = 0; i < 3; ++i) A.row(i) = random_vector(d, 300 + std::uint64_t(i + 3 * d)).transpose();
      const ConstVecRef xr = expected;
      const double row_dot = A.row(1).dot(xr);
      const auto s = packet_passes::sweep_and_sum<1>(d, [&]<class T>(Eigen::Index j, T* terms) {
        terms[0] = pmul(ploadu<T>(A.row(1).data() + j), ploadu<T>(expected.data() + j));
      });
      CHECK(std::memcmp(&s[0], &row_dot, sizeof row_dot) == 0);
    }
  }
}

TEST_CASE("two_wide::sweep_and_sum: Eigen's two-wide order with four-wide vectors, the bits of dot() and squaredNorm()",
          "[fused_paths]") {
  if (!packet_passes::two_wide::kTwoWideIsEigensOrder) return;  // a build whose packets are wider keeps sweep_and_sum
  using namespace packet_passes::two_wide;
  for (Eigen::Index d = 0; d <= 70; ++d) {
    CAPTURE(d);
    const Vec a = random_vector(d, 1 + std::uint64_t(d)), b = random_vector(d, 100 + std::uint64_t(d));
    Vec x = random_vector(d, 200 + std::uint64_t(d));
    Vec expected = x;
    for (Eigen::Index j = 0; j < d; ++j) expected[j] = expected[j] * 0.75 - a[j];
    const auto sums = sweep_and_sum<2>(d, [&]<class V>(Eigen::Index j, V* terms) {
      const V xj = load<V>(x.data() + j) * 0.75 - load<V>(a.data() + j);
      store(x.data() + j, xj);
      terms[0] = load<V>(b.data() + j) * xj, terms[1] = xj * xj;
    });
    CHECK(same_bits(x, expected));
    const double dot = b.dot(expected), norm2 = expected.squaredNorm();
    CHECK(std::memcmp(&sums[0], &dot, sizeof dot) == 0);
    CHECK(std::memcmp(&sums[1], &norm2, sizeof norm2) == 0);
  }
}

TEST_CASE("squared_norm_within decides as x.squaredNorm() <= limit2 does, whatever the order of the other sum",
          "[fused_paths]") {
  for (Eigen::Index d = 0; d <= 70; ++d) {
    CAPTURE(d);
    Vec x = random_vector(d, 500 + std::uint64_t(d));
    x *= 1e3;  // terms of many magnitudes: the two orders round differently
    if (d > 2) x[1] = 1e-5, x[2] = 7e7;
    double reversed = 0.0;  // the same terms in the opposite order
    for (Eigen::Index j = d - 1; j >= 0; --j) reversed += x[j] * x[j];
    const double exact = x.squaredNorm();
    // At the limit and just below it, the verdict is the exact sum's, whether the other sum is above or below.
    CHECK(packet_passes::squared_norm_within(reversed, x, exact));
    CHECK(packet_passes::squared_norm_within(reversed, x, 2.0 * exact + 1.0));
    if (d > 0) {
      CHECK_FALSE(packet_passes::squared_norm_within(reversed, x, std::nextafter(exact, 0.0)));
      x[d / 2] = std::numeric_limits<double>::quiet_NaN();
      CHECK_FALSE(packet_passes::squared_norm_within(std::numeric_limits<double>::quiet_NaN(), x, 1e300));
      x[d / 2] = 1e200;  // the squares overflow
      CHECK_FALSE(packet_passes::squared_norm_within(std::numeric_limits<double>::infinity(), x, 1e300));
    }
  }
}

TEST_CASE("fused logistic steps (sgd, heavy ball, Nesterov, Adam) give the reference's bits", "[fused_paths]") {
  // d = 1 (no packet), 3 (one packet and a tail), 6 (a two-wide packet after the four-wide ones of heavy
  // ball's pass), 8, 13, 37.
  for (const char* d : {"1", "3", "6", "8", "13", "37"}) {
    const auto problem = make_problem("logistic", {{"n", "300"}, {"d", d}, {"lambda", "0.01"}});
    check_against_reference(*problem, "sgd", {}, 500, std::nullopt);
    check_against_reference(*problem, "heavy_ball", {{"beta", "0.8"}}, 500, std::nullopt);
    check_against_reference(*problem, "nesterov", {{"beta", "0.7"}}, 500, std::nullopt);
    // beta1 = 0.85, beta2 = 0.9: both bias corrections reach 1 (and are skipped) within the 500 steps
    check_against_reference(*problem, "adam", {{"beta1", "0.85"}, {"beta2", "0.9"}}, 500, std::nullopt);
    check_against_reference(*problem, "adam", {}, 500, std::nullopt);
  }
}

TEST_CASE("fused steps stop where the reference's check does", "[fused_paths]") {
  // From x0 = 0 the iterates' norm grows; a threshold below where it ends stops the runs mid-way.
  const auto logistic = make_problem("logistic", {{"n", "300"}, {"d", "13"}, {"lambda", "0.01"}});
  for (const char* optimizer : {"sgd", "heavy_ball", "nesterov", "adam"}) {
    const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
    const Reference unchecked =
        reference_run(*logistic, optimizer, {}, schedule, 400, 0, std::numeric_limits<double>::infinity());
    const double threshold = 0.5 * unchecked.x.norm();
    const Reference ref = reference_run(*logistic, optimizer, {}, schedule, 400, 0, threshold * threshold);
    CAPTURE(optimizer);
    REQUIRE(ref.stop > 1);
    REQUIRE(ref.stop < 400);
    check_against_reference(*logistic, optimizer, {}, 400, threshold);
  }
  const auto softmax = make_problem("softmax", {{"n", "200"}, {"d", "5"}, {"classes", "3"}});
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
  const double threshold =
      0.5 * reference_run(*softmax, "sgd", {}, schedule, 400, 0, std::numeric_limits<double>::infinity()).x.norm();
  REQUIRE(reference_run(*softmax, "sgd", {}, schedule, 400, 0, threshold * threshold).stop > 1);
  check_against_reference(*softmax, "sgd", {}, 400, threshold);
}

TEST_CASE("fused softmax SGD steps give the reference's bits, packets across columns included", "[fused_paths]") {
  // d = 5, 7: x = vec(W) has columns of odd length, so packets straddle two columns.
  for (auto [d, K] : {std::pair{"5", "3"}, std::pair{"7", "4"}, std::pair{"8", "2"}, std::pair{"1", "5"}}) {
    const auto problem = make_problem("softmax", {{"n", "200"}, {"d", d}, {"classes", K}});
    check_against_reference(*problem, "sgd", {}, 400, std::nullopt);
    check_against_reference(*problem, "heavy_ball", {}, 200, std::nullopt);  // no row gradient: the plain oracle
  }
}

TEST_CASE("with gradient noise the oracles take the plain path, same bits", "[fused_paths]") {
  const auto problem = make_problem("logistic", {{"n", "300"}, {"d", "9"}, {"noise", "gaussian"}, {"noise_scale", "0.1"}});
  check_against_reference(*problem, "sgd", {}, 300, std::nullopt);
  check_against_reference(*problem, "adam", {}, 300, std::nullopt);
}

TEST_CASE("fused SGD on exact gradient + gaussian noise gives the reference's bits, noise statistics and stops",
          "[fused_paths]") {
  // d = 1 and 3 (shorter than a packet or with a tail), 10 (W5), 37; the identity basis and a dense H; the
  // noise off (the gradient and the update only) and additive gaussian (the look-ahead's normals, refilled
  // every 1024 / d steps, so 600 steps cross several refills).
  for (const char* d : {"1", "3", "10", "37"})
    for (const char* basis : {"identity", "random"})
      for (const char* noise : {"none", "gaussian"}) {
        CAPTURE(d, basis, noise);
        const auto problem = make_problem(
            "quadratic", {{"d", d}, {"basis", basis}, {"noise", noise}, {"noise_scale", "0.5"}, {"init", "random"}});
        check_against_reference(*problem, "sgd", {}, 600, std::nullopt);
      }
  // The oracle's own h .* (x - c) (the identity basis hands it the diagonal) is the problem's gradient().
  for (const char* minimizer : {"false", "true"}) {
    const auto quadratic = make_problem("quadratic", {{"d", "13"}, {"noise", "none"}, {"random_minimizer", minimizer}});
    RunStreams streams(7, 0);
    auto oracle = quadratic->make_oracle(streams);
    const Vec x = random_vector(13, 42);
    Vec g(13), expected(13);
    oracle->sample_gradient(x, g, 1);
    quadratic->gradient(x, expected);
    CHECK(same_bits(g, expected));
  }
  // From x0 = x* = 0 only the noise moves the iterates: a threshold just above the first iterate's norm
  // stops the runs at the first later step that goes beyond it, within a segment.
  const auto problem = make_problem("quadratic", {{"d", "10"}, {"noise", "gaussian"}, {"noise_scale", "0.5"}, {"init_scale", "0"}});
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
  const double threshold =
      1.001 * reference_run(*problem, "sgd", {}, schedule, 1, 0, std::numeric_limits<double>::infinity()).x.norm();
  const Reference ref = reference_run(*problem, "sgd", {}, schedule, 600, 0, threshold * threshold);
  REQUIRE(ref.stop > 1);
  REQUIRE(ref.stop < 600);
  check_against_reference(*problem, "sgd", {}, 600, threshold);
}

TEST_CASE("with a noise law the fused pass does not draw, the oracles take the plain path, same bits", "[fused_paths]") {
  for (const char* noise : {"student_t", "pareto"})
    for (const char* mode : {"additive", "multiplicative"}) {
      CAPTURE(noise, mode);
      const auto problem =
          make_problem("quadratic", {{"d", "6"}, {"noise", noise}, {"noise_mode", mode}, {"noise_scale", "0.3"}});
      check_against_reference(*problem, "sgd", {}, 300, std::nullopt);
    }
  const auto multiplicative =
      make_problem("quadratic", {{"d", "6"}, {"noise", "gaussian"}, {"noise_mode", "multiplicative"}, {"noise_scale", "0.3"}});
  check_against_reference(*multiplicative, "sgd", {}, 300, std::nullopt);
}

TEST_CASE("least-squares fused SGD with every step checked gives the reference's bits and stops", "[fused_paths]") {
  const auto problem = make_problem("least_squares", {{"n", "256"}, {"d", "11"}, {"estimate_L", "false"}});
  check_against_reference(*problem, "sgd", {}, 600, std::nullopt);
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
  const double threshold =
      0.5 * reference_run(*problem, "sgd", {}, schedule, 600, 0, std::numeric_limits<double>::infinity()).x.norm();
  check_against_reference(*problem, "sgd", {}, 600, threshold);
}

TEST_CASE("Adam's skipped bias correction: 1 - beta^t is exactly 1 from the step it is skipped", "[fused_paths]") {
  // The rule in optimizers/adam.cpp: from t = floor(56 / -log2(beta)) + 2 on, 1 - pow(beta, t) == 1.
  for (double beta : {0.5, 0.9, 0.99, 0.999, 0.9999, 0.123}) {
    const long from = long(56.0 / -std::log2(beta)) + 2;
    CAPTURE(beta, from);
    for (long t = from; t < from + 2000; ++t) REQUIRE(1.0 - std::pow(beta, double(t)) == 1.0);
  }
}
