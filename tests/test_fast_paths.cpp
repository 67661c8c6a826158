// The performance paths change no numerics: the same samples and iterates bit for bit as the plain
// recurrence, and evaluated metrics equal to the straightforward formula up to summation order.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/registry.hpp"
#include "core/run.hpp"
#include "problems/least_squares.hpp"

using namespace ratelab;

namespace {

// The W1 recurrence written out by hand: x_t = x_{t-1} - eta_t a_i (a_i^T x_{t-1} - b_i), with i the
// first draw below(n) of the sampling stream at step t.
Vec plain_sgd(const LeastSquares& p, long steps, std::uint64_t seed, std::uint64_t replicate, double c,
              std::vector<Vec>* at_checkpoints, const std::vector<long>& checkpoints) {
  RandomStream sampling(seed, replicate, StreamPurpose::sampling);
  Vec x = Vec::Zero(p.dim());
  std::size_t k = 0;
  if (at_checkpoints && checkpoints[k] == 0) at_checkpoints->push_back(x), ++k;
  for (long t = 1; t <= steps; ++t) {
    sampling.seek(std::uint64_t(t));
    const auto i = Eigen::Index(sampling.below(std::uint64_t(p.A().rows())));
    const double r = p.A().row(i).dot(x) - p.b()[i];
    const double eta = c / std::sqrt(double(t));
    for (Eigen::Index j = 0; j < x.size(); ++j) x[j] -= eta * (r * p.A()(i, j));
    if (at_checkpoints && k < checkpoints.size() && checkpoints[k] == t) at_checkpoints->push_back(x), ++k;
  }
  return x;
}

}  // namespace

TEST_CASE("least-squares SGD with row prefetching gives the plain recurrence's iterates bit for bit", "[fast_paths]") {
  RowMat A;
  Vec b;
  make_splitmix_instance(512, 24, 12345, 0.1, A, b);
  LeastSquaresOptions o;
  o.solve = false;
  o.estimate_L = false;
  LeastSquares problem(A, b, o, 0.0);
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  auto sgd = registry.make_optimizer("sgd", resolve_params(registry.info(ComponentKind::optimizer, "sgd").params, {},
                                                           "optimizer", errors));
  Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.5};
  RunPlan plan;
  plan.steps = 3000;
  plan.checkpoints = log_checkpoints(plan.steps, 12);
  plan.metrics = {Metric::value};
  for (std::uint64_t replicate : {0u, 5u}) {
    RunStreams streams(7, replicate);
    RunResult result = run_one(problem, *sgd, schedule, plan, streams);
    REQUIRE(result.status == RunStatus::ok);
    std::vector<Vec> iterates;
    Vec x = plain_sgd(problem, plan.steps, 7, replicate, 0.5, &iterates, plan.checkpoints);
    // Iterates: identical bits.
    CHECK((sgd->iterate().array() == x.array()).all());
    // Metrics: the block evaluation (one matrix product) against value() one iterate at a time, equal up
    // to the rounding of a different summation order (n = 512 terms: 1e-12 relative is generous).
    REQUIRE(iterates.size() == plan.checkpoints.size());
    for (std::size_t k = 0; k < iterates.size(); ++k)
      CHECK(result.traces[k] == Approx(problem.value(iterates[k])).epsilon(1e-12));
  }
}

TEST_CASE("first_below_of_steps equals seek(t) + below(n) for every step, rejections included", "[fast_paths]") {
  RandomStream stream(11, 3, StreamPurpose::sampling);
  // 4096: no rejection possible; 1000: rare; 2^63 + 1: about half of all first draws are rejected, so the
  // exact fallback is exercised hundreds of times.
  for (std::uint64_t n : {std::uint64_t(4096), std::uint64_t(1000), (std::uint64_t(1) << 63) + 1}) {
    std::vector<std::uint64_t> bulk(1000);
    stream.first_below_of_steps(5, n, bulk);
    for (std::size_t k = 0; k < bulk.size(); ++k) {
      RandomStream one = stream;
      one.seek(5 + k);
      REQUIRE(bulk[k] == one.below(n));
    }
  }
}

TEST_CASE("sgd's fused steps equal the step-by-step loop, and a second draw in a step continues the stream",
          "[fast_paths]") {
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  // Dimensions around the fused update-and-dot's branches (shorter than a packet, one packet, pairs of
  // packets with and without a leftover packet, a scalar tail) for packets of 2 (SSE2) and 8 (AVX-512).
  for (Eigen::Index dim : {1, 3, 7, 8, 16, 24, 37, 128}) {
    RowMat A_d;
    Vec b_d;
    make_splitmix_instance(300, dim, 99, 0.1, A_d, b_d);
    LeastSquares problem_d(A_d, b_d, LeastSquaresOptions{});
    auto make_sgd = [&] {
      auto sgd = registry.make_optimizer("sgd", resolve_params(registry.info(ComponentKind::optimizer, "sgd").params,
                                                               {}, "optimizer", errors));
      sgd->prepare(problem_d);
      return sgd;
    };
    const Schedule schedule{.kind = Schedule::Kind::inv_t, .c = 0.8};
    auto fused = make_sgd(), stepwise = make_sgd();
    RunStreams streams_fused(3, 1), streams_stepwise(3, 1);
    auto oracle_fused = problem_d.make_oracle(streams_fused);
    auto oracle_stepwise = problem_d.make_oracle(streams_stepwise);
    const Vec x0 = Vec::LinSpaced(dim, -0.5, 0.5);
    fused->start(x0, streams_fused);
    stepwise->start(x0, streams_stepwise);
    // Segments of uneven lengths, as the run loop makes them (checkpoints, checks, polls), crossing the
    // oracle's 64-step row windows at arbitrary offsets.
    long t = 0;
    for (long end : {1L, 2L, 63L, 64L, 65L, 200L, 333L, 1000L, 4096L, 5000L}) {
      fused->steps(t + 1, end, schedule, streams_fused, *oracle_fused);
      stepwise->Optimizer::steps(t + 1, end, schedule, streams_stepwise, *oracle_stepwise);
      INFO("d = " << dim << ", steps to " << end);
      REQUIRE((fused->iterate().array() == stepwise->iterate().array()).all());
      t = end;
    }
    CHECK(fused->iterate().norm() > 0.0);
  }

  RowMat A;
  Vec b;
  make_splitmix_instance(300, 16, 99, 0.1, A, b);
  LeastSquares problem(A, b, LeastSquaresOptions{});
  // Two gradients in one step: the first uses the step's first row (served from the prefetched window),
  // the second the stream's second draw.
  RunStreams streams(3, 2);
  auto oracle = problem.make_oracle(streams);
  const Vec x = Vec::LinSpaced(16, -1.0, 1.0);
  Vec g1(16), g2(16);
  streams.seek(77);
  oracle->sample_gradient(x, g1, 1);
  oracle->sample_gradient(x, g2, 1);
  RandomStream reference(3, 2, StreamPurpose::sampling);
  reference.seek(77);
  for (const Vec* g : {&g1, &g2}) {
    const auto i = Eigen::Index(reference.below(300));
    const Vec expected = (A.row(i).dot(x) - b[i]) * A.row(i).transpose();
    CHECK((g->array() == expected.array()).all());
  }
}

TEST_CASE("least-squares checkpoint values from H and x* agree with the direct formula", "[fast_paths]") {
  RowMat A;
  Vec b;
  make_splitmix_instance(512, 24, 12345, 0.1, A, b);
  LeastSquaresOptions gram_options, direct_options;
  direct_options.evaluation = LeastSquaresOptions::Evaluation::direct;
  LeastSquares gram(A, b, gram_options), direct(A, b, direct_options);
  REQUIRE(gram.facts().f_star == direct.facts().f_star);
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  auto sgd = registry.make_optimizer("sgd", resolve_params(registry.info(ComponentKind::optimizer, "sgd").params, {},
                                                           "optimizer", errors));
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.5};
  RunPlan plan;
  plan.steps = 20000;
  plan.checkpoints = log_checkpoints(plan.steps, 20);
  plan.metrics = {Metric::value, Metric::subopt};
  RunStreams s1(1, 0), s2(1, 0);
  const RunResult a = run_one(gram, *sgd, schedule, plan, s1);
  const RunResult c = run_one(direct, *sgd, schedule, plan, s2);
  const std::size_t K = plan.checkpoints.size();
  // The two differ by grad f(x*)^T (x - x*) (below 1e-15 |x - x*| after the refined solve) and by the
  // direct formula's rounding, about d eps |a_i||x| / |r_i| ~ 1e-13 relative to f(x) here; 1e-11 f(x) bounds
  // both with room, and a subopt of 1e-3 f(x) (the last checkpoints) still gets 8 correct digits.
  for (std::size_t k = 0; k < K; ++k) {
    const double f = c.traces[k];
    CHECK(std::abs(a.traces[k] - f) <= 1e-11 * f);
    CHECK(std::abs(a.traces[K + k] - c.traces[K + k]) <= 1e-11 * f);
  }
  // The subopt of the last checkpoint is far above the tolerance: the comparison is not vacuous.
  CHECK(c.traces[2 * K - 1] > 1e-6 * c.traces[K - 1]);
}

TEST_CASE("the run loop's segmentation does not change a run: every divergence-check interval, every view",
          "[fast_paths]") {
  RowMat A;
  Vec b;
  make_splitmix_instance(256, 12, 5, 0.1, A, b);
  LeastSquares problem(A, b, LeastSquaresOptions{});
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.3};
  // 9000 steps cross two cancellation polls (every 4096 steps); the checkpoints fall between them.
  for (const auto& views : {std::vector<View>{View::last}, std::vector<View>{View::last, View::uniform, View::suffix}}) {
    std::vector<double> reference;
    for (long every : {1L, 7L, 64L, 5000L}) {
      RunPlan plan;
      plan.steps = 9000;
      plan.checkpoints = log_checkpoints(plan.steps, 15);
      plan.views = views;
      plan.metrics = {Metric::value, Metric::dist2};
      plan.divergence_check_every = every;
      auto sgd = registry.make_optimizer(
          "sgd", resolve_params(registry.info(ComponentKind::optimizer, "sgd").params, {}, "optimizer", errors));
      RunStreams streams(2, 3);
      const RunResult result = run_one(problem, *sgd, schedule, plan, streams);
      REQUIRE(result.status == RunStatus::ok);
      REQUIRE(result.stop_step == plan.steps);
      if (reference.empty()) reference = result.traces;
      INFO("divergence_check_every = " << every << ", views = " << views.size());
      CHECK(result.traces == reference);  // exact: same iterates, same evaluation
    }
  }
}

TEST_CASE("gemv_columns_as_eigen gives the bits of Eigen's H * x, column by column", "[fast_paths]") {
  // Sizes around every branch: single-block (d < 128) and 16-column blocks, whole register blocks of rows,
  // leftover packet rows and an odd last row; 1..8 columns, and 11 (two calls).
  for (Eigen::Index d : {1, 2, 3, 5, 8, 15, 16, 17, 31, 33, 64, 100, 127, 128, 129, 130, 200, 257}) {
    RandomStream rng(11, std::uint64_t(d), StreamPurpose::instance);
    Mat H(d, d), X(d, 11), Y(d, 11), E(d, 11);
    for (Eigen::Index i = 0; i < H.size(); ++i) H.data()[i] = rng.normal();
    for (Eigen::Index i = 0; i < X.size(); ++i) X.data()[i] = rng.normal();
    for (Eigen::Index k = 0; k < X.cols(); ++k) {
      VecRef e = E.col(k);  // the types of LeastSquares::gradient: g.noalias() = H_ * x
      const ConstVecRef x = X.col(k);
      e.noalias() = H * x;
    }
    for (std::size_t columns : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 11u}) {
      std::vector<const double*> xs;
      std::vector<double*> ys;
      for (std::size_t k = 0; k < columns; ++k) xs.push_back(X.col(Eigen::Index(k)).data()), ys.push_back(Y.col(Eigen::Index(k)).data());
      Y.setConstant(std::numeric_limits<double>::quiet_NaN());
      gemv_columns_as_eigen(H, xs, ys);
      INFO("d = " << d << ", columns = " << columns);
      CHECK((Y.leftCols(Eigen::Index(columns)).array() == E.leftCols(Eigen::Index(columns)).array()).all());
    }
  }
}

TEST_CASE("runs stepped in lockstep equal the same runs alone, bit for bit", "[fast_paths]") {
  // Exact gradient plus Student-t noise (the W1-heavy oracle, with the lockstep H X product), the sampled
  // oracle (no lockstep path: run by run), and heavy_ball (the default steps_lockstep). Step sizes large
  // enough that some runs diverge at different steps, so runs leave the group while the others go on.
  RowMat A;
  Vec b;
  make_splitmix_instance(300, 130, 3, 0.1, A, b);
  Registry registry = builtin_registry();
  std::vector<std::string> errors;
  const auto make = [&](const std::string& name) {
    return registry.make_optimizer(name, resolve_params(registry.info(ComponentKind::optimizer, name).params, {},
                                                        "optimizer", errors));
  };
  struct Case {
    const char* name;
    LeastSquaresOptions::OracleKind oracle;
    double scale, c;
    const char* optimizer;
    std::vector<View> views;
  };
  const std::vector<Case> cases{
      {"exact + student_t", LeastSquaresOptions::OracleKind::exact, 0.5, 0.5, "sgd", {View::last}},
      {"exact + student_t, diverging", LeastSquaresOptions::OracleKind::exact, 3.0, 30.0, "sgd", {View::last}},
      {"exact + student_t, per-step views", LeastSquaresOptions::OracleKind::exact, 0.5, 0.5, "sgd",
       {View::last, View::uniform}},
      {"sampled", LeastSquaresOptions::OracleKind::sampled, 0.0, 0.5, "sgd", {View::last}},
      {"heavy_ball, exact + student_t", LeastSquaresOptions::OracleKind::exact, 0.5, 0.2, "heavy_ball", {View::last}},
  };
  for (const Case& c : cases) {
    LeastSquaresOptions o;
    o.oracle = c.oracle;
    o.noise.kind = NoiseOptions::Kind::student_t;
    o.noise.scale = c.scale;
    o.noise.nu = 2.5;
    LeastSquares problem(A, b, o);
    const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = c.c};
    RunPlan plan;
    plan.steps = 700;
    plan.checkpoints = log_checkpoints(plan.steps, 12);
    plan.views = c.views;
    plan.metrics = {Metric::value, Metric::dist2};
    plan.divergence_threshold = 1e3;
    plan.divergence_check_every = 5;
    constexpr std::size_t n = 7;
    std::vector<RunResult> alone;
    for (std::size_t r = 0; r < n; ++r) {
      RunStreams streams(4, r);
      auto optimizer = make(c.optimizer);
      alone.push_back(run_one(problem, *optimizer, schedule, plan, streams));
    }
    std::vector<std::unique_ptr<Optimizer>> optimizers;
    std::vector<Optimizer*> pointers;
    std::vector<RunStreams> streams;
    std::vector<RunStreams*> stream_pointers;
    streams.reserve(n);
    for (std::size_t r = 0; r < n; ++r) {
      optimizers.push_back(make(c.optimizer));
      pointers.push_back(optimizers.back().get());
      streams.emplace_back(4, r);
      stream_pointers.push_back(&streams.back());
    }
    const std::vector<RunResult> together = run_lockstep(problem, pointers, schedule, plan, stream_pointers);
    REQUIRE(together.size() == n);
    long diverged = 0, ok = 0;
    for (std::size_t r = 0; r < n; ++r) {
      INFO(c.name << ", run " << r);
      CHECK(together[r].status == alone[r].status);
      CHECK(together[r].stop_step == alone[r].stop_step);
      CHECK(together[r].stats == alone[r].stats);  // the noise's realized statistics included
      // NaN marks checkpoints after divergence: compare the bits.
      CHECK(std::memcmp(together[r].traces.data(), alone[r].traces.data(), alone[r].traces.size() * sizeof(double)) == 0);
      diverged += alone[r].status == RunStatus::diverged;
      ok += alone[r].status == RunStatus::ok;
    }
    // The diverging case has runs leaving the group early and runs going on; the others all finish.
    if (std::string(c.name).find("diverging") != std::string::npos) {
      CHECK(diverged > 0);
      CHECK(ok > 0);
    } else {
      CHECK(ok == long(n));
    }
  }
}
