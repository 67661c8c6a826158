// The performance paths change no numerics: the same samples and iterates bit for bit as the plain
// recurrence, and evaluated metrics equal to the straightforward formula up to summation order.
#include <catch2/catch.hpp>
#include <cmath>

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
