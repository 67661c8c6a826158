// sgd_polyak (optimizers/sgd_polyak.cpp): the README's worked example of adding an optimizer. Exact
// recurrences on noise-free quadratics; the registry-wide conformance test covers the rest.
#include <catch2/catch.hpp>
#include <cmath>

#include "core/registry.hpp"
#include "core/run.hpp"

using namespace ratelab;

namespace {

ParamSet resolve(const Registry& r, ComponentKind kind, const std::string& key,
                 const std::map<std::string, std::string>& raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(r.info(kind, key).params, raw, kind_name(kind), errors);
  REQUIRE(errors.empty());
  return p;
}

// x_0 .. x_T of sgd_polyak at constant cap eta on a noise-free quadratic (identity basis, x* = 0, x0 = 1).
std::vector<Vec> iterates(const std::map<std::string, std::string>& problem, double eta, long T) {
  const Registry registry = builtin_registry();
  ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), ""};
  auto p = registry.make_problem("quadratic", resolve(registry, ComponentKind::problem, "quadratic", problem), ctx);
  auto opt = registry.make_optimizer("sgd_polyak", resolve(registry, ComponentKind::optimizer, "sgd_polyak", {}));
  RunStreams streams(1, 0);
  opt->prepare(*p);
  auto oracle = p->make_oracle(streams);
  Vec x0(p->dim());
  p->initial_point(x0, streams.init);
  opt->start(x0, streams);
  std::vector<Vec> xs{x0};
  for (long t = 1; t <= T; ++t) {
    streams.seek(std::uint64_t(t));
    opt->step(t, eta, *oracle);
    xs.emplace_back(opt->iterate());
  }
  return xs;
}

}  // namespace

TEST_CASE("sgd_polyak: one eigenvalue halves x each step, a smaller cap gives x_t = (1 - eta lambda)^t",
          "[optimizers]") {
  // f = lambda/2 x^2, F* = 0: the Polyak step (lambda x^2/2) / (lambda x)^2 = 1/(2 lambda), so x_{t+1} = x_t/2,
  // exactly in floating point.
  auto halving = iterates({{"d", "1"}, {"mu", "0.5"}, {"L", "0.5"}, {"noise", "none"}}, 10.0, 40);
  for (long t = 0; t <= 40; ++t) CHECK(halving[std::size_t(t)][0] == std::ldexp(1.0, int(-t)));
  // Cap eta = 0.1 below 1/(2 lambda) = 1: plain gradient descent, x_t = 0.95^t.
  auto capped = iterates({{"d", "1"}, {"mu", "0.5"}, {"L", "0.5"}, {"noise", "none"}}, 0.1, 40);
  for (long t = 0; t <= 40; ++t) CHECK(capped[std::size_t(t)][0] == Approx(std::pow(0.95, double(t))).epsilon(1e-13));
}

TEST_CASE("sgd_polyak: step (sum lambda_i x_i^2 / 2) / (sum lambda_i^2 x_i^2) on a diagonal quadratic",
          "[optimizers]") {
  auto xs = iterates({{"d", "3"}, {"mu", "0.2"}, {"L", "1"}, {"noise", "none"}}, 10.0, 25);
  const Eigen::Vector3d lambda(0.2, 0.6, 1.0);
  Eigen::Vector3d x(1.0, 1.0, 1.0);
  for (long t = 1; t <= 25; ++t) {
    const double s = 0.5 * (lambda.array() * x.array().square()).sum() / (lambda.array().square() * x.array().square()).sum();
    x = (1.0 - s * lambda.array()) * x.array();
    CHECK((xs[std::size_t(t)] - Vec(x)).norm() <= 1e-13 * x.norm());
  }
}

TEST_CASE("sgd_polyak: gamma outside (0, 2) and a problem without F* are refused", "[optimizers]") {
  const Registry registry = builtin_registry();
  std::vector<std::string> errors;
  resolve_params(registry.info(ComponentKind::optimizer, "sgd_polyak").params, {{"gamma", "2"}}, "optimizer", errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "optimizer.gamma = 2 violates 0 < optimizer.gamma < 2");
  struct NoOptimum final : Problem {
    ProblemFacts facts_;
    Eigen::Index dim() const override { return 2; }
    const ProblemFacts& facts() const override { return facts_; }
    double value(ConstVecRef x) const override { return x.squaredNorm(); }
    void gradient(ConstVecRef x, VecRef g) const override { g = 2 * x; }
    std::unique_ptr<Oracle> make_oracle(RunStreams&) const override { return nullptr; }
  } no_optimum;
  auto opt = registry.make_optimizer("sgd_polyak", resolve(registry, ComponentKind::optimizer, "sgd_polyak", {}));
  CHECK_THROWS_WITH(opt->prepare(no_optimum), Catch::Contains("needs the problem's optimal value F*"));
}
