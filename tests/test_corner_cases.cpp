// Corner cases where ratelab's numbers were wrong or silently approximate (issue #17): constrained problems
// start feasible, entropic mirror descent keeps the simplex's radius, a run whose metric is not finite says so.
#include <catch2/catch.hpp>
#include <cmath>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/rng.hpp"
#include "core/run.hpp"

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

std::shared_ptr<const Problem> problem(const std::string& name, const Raw& raw) {
  ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), ""};
  return registry().make_problem(name, resolve(ComponentKind::problem, name, raw), ctx);
}

std::unique_ptr<Optimizer> optimizer(const std::string& key, const Raw& raw = {}) {
  return registry().make_optimizer(key, resolve(ComponentKind::optimizer, key, raw));
}

Vec start_of(const Problem& p) {
  Vec x0(p.dim());
  RandomStream init(1, 0, StreamPurpose::init);
  p.initial_point(x0, init);
  return x0;
}

}  // namespace

TEST_CASE("constrained problems start at a feasible point (the projection of their x0)", "[problems][corner]") {
  // quadratic's x0 = x* + 1 = (1, ..., 1) and least_squares' x0 = 0 both lie off the simplex of radius 2; the
  // projection of a constant vector onto {x >= 0, sum x = r} is (r/d, ..., r/d), exactly here (d = 4, r = 2).
  for (const std::string name : {"quadratic", "least_squares"}) {
    Raw raw{{"d", "4"}, {"regularizer", "simplex"}, {"reg_radius", "2"}};
    if (name == "least_squares") raw["n"] = "20";
    auto p = problem(name, raw);
    const Vec x0 = start_of(*p);
    INFO(name << ": x0 = " << x0.transpose());
    CHECK(x0 == Vec::Constant(4, 0.5));
    CHECK(std::isfinite(p->value(x0)));
  }
  // A random start is projected too: on the simplex, in the ball.
  auto random = problem("quadratic", {{"d", "6"}, {"init", "random"}, {"init_scale", "3"}, {"regularizer", "simplex"}});
  const Vec xr = start_of(*random);
  CHECK(xr.minCoeff() >= 0.0);
  CHECK(std::abs(xr.sum() - 1.0) <= 1e-15 * 6);
  auto ball = problem("quadratic", {{"d", "6"}, {"init_scale", "3"}, {"regularizer", "ball"}, {"reg_radius", "0.5"}});
  CHECK(start_of(*ball).norm() == Approx(0.5).epsilon(1e-15));
  // Penalties (not sets) keep the problem's own start.
  auto l1 = problem("quadratic", {{"d", "3"}, {"regularizer", "l1"}, {"reg_weight", "0.1"}});
  CHECK(start_of(*l1) == Vec::Ones(3));
}

TEST_CASE("prox_sgd geometry = entropy keeps the simplex's radius (reg_radius = 2)", "[optimizers][corner]") {
  // Deterministic exponentiated gradient on f(x) = 1/2 sum l_i x_i^2 over {x >= 0, sum x = 2}, recomputed here:
  // x_{t+1} = 2 x_t exp(-eta g_t) / sum(x_t exp(-eta g_t)), g = l * x. F is finite at every iterate (it was
  // inf: the iterates summed to 1), and the minimizer x_i = 2 (1/l_i) / sum(1/l_j) is reached.
  auto p = problem("quadratic", {{"d", "4"}, {"mu", "0.5"}, {"L", "2"}, {"noise_scale", "0"}, {"regularizer", "simplex"},
                                 {"reg_radius", "2"}});
  auto opt = optimizer("prox_sgd", {{"geometry", "entropy"}});
  RunPlan plan;
  plan.steps = 400;
  plan.checkpoints = log_checkpoints(plan.steps, 20);
  plan.metrics = {Metric::value, Metric::subopt};
  RunStreams streams(1, 0);
  const double eta = 0.3;
  RunResult r = run_one(*p, *opt, Schedule{.kind = Schedule::Kind::constant, .c = eta}, plan, streams);
  INFO(r.message);
  REQUIRE(r.status == RunStatus::ok);
  for (double v : r.traces) CHECK(std::isfinite(v));
  const Vec l = (Vec(4) << 0.5, 1.0, 1.5, 2.0).finished();  // linear spacing from mu to L
  Vec x = Vec::Constant(4, 0.5);
  for (long t = 1; t <= plan.steps; ++t) {
    Vec w = x.array() * (-eta * (l.array() * x.array())).exp();
    x = 2.0 * w / w.sum();
  }
  CHECK((opt->iterate() - x).norm() <= 1e-12);
  CHECK(std::abs(opt->iterate().sum() - 2.0) <= 1e-14);
  const Vec x_star = 2.0 * l.cwiseInverse() / l.cwiseInverse().sum();
  CHECK((x - x_star).norm() <= 1e-10);  // contraction per step well below 0.99 here: 400 steps reach 1e-10
  const std::size_t K = plan.checkpoints.size();
  CHECK(r.traces[2 * K - 1] >= -1e-12);  // subopt at T: F* from the problem's solver, F(x_T) at least that
  CHECK(r.traces[2 * K - 1] <= 1e-10);
}

TEST_CASE("a run whose metric is inf or NaN while its iterate stays finite has status nonfinite", "[core][corner]") {
  // Plain SGD ignores the simplex constraint: x_1 leaves the set, F(x_1) = inf although x stays bounded.
  auto p = problem("quadratic", {{"d", "3"}, {"noise_scale", "0"}, {"regularizer", "simplex"}});
  auto opt = optimizer("sgd");
  RunPlan plan;
  plan.steps = 10;
  plan.checkpoints = log_checkpoints(plan.steps, 5);
  plan.metrics = {Metric::subopt, Metric::value};
  plan.views = {View::last};
  RunStreams streams(1, 0);
  RunResult r = run_one(*p, *opt, Schedule{.kind = Schedule::Kind::constant, .c = 0.7}, plan, streams);
  CHECK(r.status == RunStatus::nonfinite);
  CHECK(std::string(status_name(r.status)) == "nonfinite");
  CHECK(r.message == "subopt of view last is inf at t = 1 (the iterate is finite)");
  CHECK(r.stop_step == 10);  // the run was not cut short: its numbers are kept
  CHECK(std::isfinite(r.traces[0]));  // t = 0: the projected start is feasible
}
