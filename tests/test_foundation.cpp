// The foundation's end-to-end checks: SGD on the quadratic against exact recurrences, divergence as data,
// experiment files and sweep expansion.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "experiments/experiment.hpp"
#include "experiments/sweep.hpp"

using namespace ratelab;

namespace {

// Runs every (configuration, replicate) of an experiment given as INI text; results indexed [c][r].
std::vector<std::vector<RunResult>> run_text(const std::string& ini, ExperimentPlan* plan_out = nullptr,
                                             int threads = 2, int lockstep = int(kMaxLockstep)) {
  Registry registry = builtin_registry();
  ExperimentPlan plan = plan_experiment(registry, parse_ini(ini, "test.ini"), {});
  const PreparedExperiment prepared(registry, plan);
  std::vector<std::vector<RunResult>> out(prepared.plan().configurations.size(),
                                          std::vector<RunResult>(std::size_t(plan.options.replicates)));
  SweepOptions options;
  options.threads = threads;
  options.lockstep = lockstep;
  options.progress = SweepOptions::Progress::quiet;
  run_sweep(prepared, options, [&](std::size_t c, long r, const RunResult& result) { out[c][std::size_t(r)] = result; });
  if (plan_out) *plan_out = prepared.plan();
  return out;
}

std::size_t metric_pos(const ExperimentPlan& plan, Metric m) {
  return std::size_t(std::find(plan.run.metrics.begin(), plan.run.metrics.end(), m) - plan.run.metrics.begin());
}

double trace_at(const ExperimentPlan& plan, const RunResult& r, Metric m, std::size_t view, std::size_t k) {
  const std::size_t V = plan.run.views.size(), K = plan.run.checkpoints.size();
  return r.traces[(metric_pos(plan, m) * V + view) * K + k];
}

const char* kQuadraticSgd = R"(
[experiment]
steps = 300
replicates = REPLICATES
checkpoints = 12
seed = 11
[problem]
name = quadratic
d = 5
mu = 0.1
L = 1
noise_scale = SIGMA
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.1
)";

std::string with(std::string text, const std::string& key, const std::string& value) {
  text.replace(text.find(key), key.size(), value);
  return text;
}

}  // namespace

TEST_CASE("SGD on the noisy quadratic matches the exact second-moment recurrence", "[foundation]") {
  const double eta = 0.1, sigma = 0.3;
  const long R = 4000;
  ExperimentPlan plan;
  auto runs = run_text(with(with(kQuadraticSgd, "REPLICATES", std::to_string(R)), "SIGMA", "0.3"), &plan);
  const std::vector<double> l{0.1, 0.325, 0.55, 0.775, 1.0};
  for (std::size_t k = 1; k < plan.run.checkpoints.size(); k += 2) {
    const long t = plan.run.checkpoints[k];
    // Per eigen-direction: mean m = (1 - eta l)^t (x0 - x* = 1), variance v from
    // e_{t+1} = (1 - eta l)^2 e_t + eta^2 sigma^2; the coordinates are independent Gaussians, so
    // Var ||x_t - x*||^2 = sum_i 2 v_i^2 + 4 m_i^2 v_i, and the tolerance is 5 standard errors.
    double expected = 0, var = 0;
    for (double li : l) {
      const double a = (1 - eta * li) * (1 - eta * li);
      const double m = std::pow(1 - eta * li, double(t));
      const double v = eta * eta * sigma * sigma * (1 - std::pow(a, double(t))) / (1 - a);
      expected += m * m + v;
      var += 2 * v * v + 4 * m * m * v;
    }
    double mean = 0;
    for (const auto& r : runs[0]) mean += trace_at(plan, r, Metric::dist2, 0, k);
    mean /= double(R);
    INFO("t = " << t << " mean " << mean << " expected " << expected);
    CHECK(std::abs(mean - expected) < 5 * std::sqrt(var / double(R)));
  }
}

TEST_CASE("deterministic SGD on the quadratic equals the closed form to 1e-12", "[foundation]") {
  ExperimentPlan plan;
  auto runs = run_text(with(with(kQuadraticSgd, "REPLICATES", "2"), "SIGMA", "0"), &plan);
  const std::vector<double> l{0.1, 0.325, 0.55, 0.775, 1.0};
  for (std::size_t k = 0; k < plan.run.checkpoints.size(); ++k) {
    const long t = plan.run.checkpoints[k];
    double subopt = 0, dist2 = 0;
    for (double li : l) {
      const double e = std::pow(1 - 0.1 * li, 2.0 * double(t));
      dist2 += e;
      subopt += 0.5 * li * e;
    }
    for (const auto& r : runs[0]) {
      CHECK(trace_at(plan, r, Metric::dist2, 0, k) == Approx(dist2).epsilon(1e-12));
      CHECK(trace_at(plan, r, Metric::subopt, 0, k) == Approx(subopt).epsilon(1e-12));
    }
  }
}

TEST_CASE("a step above 2/L diverges as data, at the predicted step, and the sweep goes on", "[foundation]") {
  // d = 1, mu = L = 1: x_t = (1 - eta)^t. With eta = 2.5, |x_t| = 1.5^t exceeds 1e6 first at
  // t = ceil(log(1e6) / log(1.5)) = 35; eta = 0.5 converges.
  ExperimentPlan plan;
  auto runs = run_text(R"(
[experiment]
steps = 1000
replicates = 3
divergence_threshold = 1e6
[problem]
name = quadratic
d = 1
mu = 1
L = 1
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.5, 2.5
)",
                       &plan);
  REQUIRE(plan.configurations.size() == 2);
  for (const auto& r : runs[0]) {
    CHECK(r.status == RunStatus::ok);
    CHECK(r.stop_step == 1000);
  }
  for (const auto& r : runs[1]) {
    CHECK(r.status == RunStatus::diverged);
    CHECK(r.stop_step == 35);
    CHECK(std::isnan(trace_at(plan, r, Metric::subopt, 0, plan.run.checkpoints.size() - 1)));
    CHECK(trace_at(plan, r, Metric::subopt, 0, 0) == 0.5);
  }
}

TEST_CASE("experiment files: unknown keys and bad values are reported with line numbers, all at once",
          "[foundation][experiment]") {
  Registry registry = builtin_registry();
  const std::string ini = R"([experiment]
steps = 100
replicatez = 3
[problem]
name = quadratic
mu = -1
d = ten
[optimizer]
name = sgdd
[schedule]
name = constant
)";
  try {
    plan_experiment(registry, parse_ini(ini, "bad.ini"), {});
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const auto& p = e.problems();
    REQUIRE(p.size() == 4);
    CHECK_THAT(p[0], Catch::StartsWith("bad.ini:3: unknown experiment parameter 'replicatez'") &&
                         Catch::Contains("did you mean 'replicates'"));
    CHECK_THAT(p[1], Catch::StartsWith("bad.ini:6: ") && Catch::Contains("problem.mu = -1 violates problem.mu > 0"));
    CHECK_THAT(p[2], Catch::StartsWith("bad.ini:7: ") && Catch::Contains("problem.d = 'ten' is malformed"));
    CHECK_THAT(p[3], Catch::StartsWith("bad.ini:9: unknown optimizer 'sgdd'") && Catch::Contains("did you mean 'sgd'"));
  }
  CHECK_THROWS_WITH(parse_ini("[a]\nno equals sign\n", "x.ini"), Catch::Contains("x.ini:2: expected 'key = value'"));
}

TEST_CASE("checkpoints: log or linear spacing, or an explicit list validated against [0, T]", "[foundation][experiment]") {
  Registry registry = builtin_registry();
  const auto plan = [&](const std::string& experiment_lines) {
    return plan_experiment(registry,
                           parse_ini("[experiment]\nsteps = 1000\n" + experiment_lines +
                                         "[problem]\nname = quadratic\n[optimizer]\nname = sgd\n[schedule]\nname = constant\n",
                                     "cp.ini"),
                           {});
  };
  CHECK(plan("checkpoints = 5\n").run.checkpoints == std::vector<long>{0, 1, 10, 100, 1000});
  CHECK(plan("checkpoints = 5\ncheckpoint_spacing = linear\n").run.checkpoints ==
        std::vector<long>{0, 250, 500, 750, 1000});
  // 0 and T are always recorded.
  CHECK(plan("checkpoint_steps = 300, 600\n").run.checkpoints == std::vector<long>{0, 300, 600, 1000});
  CHECK(plan("checkpoint_steps = 0, 300, 1000\n").run.checkpoints == std::vector<long>{0, 300, 1000});
  try {
    plan("checkpoint_steps = 300, 200, 2.5, 1001, -1\n");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    const auto& p = e.problems();
    REQUIRE(p.size() == 4);
    CHECK_THAT(p[0], Catch::Contains("checkpoint_steps: 200 does not come after 300"));
    CHECK_THAT(p[1], Catch::Contains("checkpoint_steps: 2.5 is not a whole step in [0, T = 1000]"));
    CHECK_THAT(p[2], Catch::Contains("checkpoint_steps: 1001 is not a whole step in [0, T = 1000]"));
    CHECK_THAT(p[3], Catch::Contains("checkpoint_steps: -1 is not a whole step"));
  }
  CHECK_THROWS_WITH(plan("checkpoint_spacing = quadratic\n"), Catch::Contains("checkpoint_spacing"));
}

TEST_CASE("sweep axes: lists, logspace/linspace endpoints exact, ranges, zip, stable ids", "[foundation][experiment]") {
  CHECK(expand_axis("0.01, 0.1, 1", "") == std::vector<std::string>{"0.01", "0.1", "1"});
  auto logs = expand_axis("logspace(1e-3, 1, 4)", "");
  REQUIRE(logs.size() == 4);
  CHECK(std::stod(logs[0]) == 1e-3);
  CHECK(std::stod(logs[1]) == Approx(1e-2).epsilon(1e-15));
  CHECK(std::stod(logs[2]) == Approx(1e-1).epsilon(1e-15));
  CHECK(std::stod(logs[3]) == 1.0);
  CHECK_THROWS_WITH(expand_axis("logspace(-3, 0, 4)", "w: "), Catch::Contains("numpy.geomspace"));
  auto lin = expand_axis("linspace(0.1, 0.7, 3)", "");
  CHECK(std::stod(lin.front()) == 0.1);
  CHECK(std::stod(lin.back()) == 0.7);
  CHECK(expand_axis("range(1, 7, 3)", "") == std::vector<std::string>{"1", "4", "7"});
  CHECK_THROWS_WITH(expand_axis("range(5, 1)", "w: "), Catch::Contains("empty"));
  CHECK_THROWS_WITH(expand_axis("0.1,,1", "w: "), Catch::Contains("empty item"));

  Registry registry = builtin_registry();
  const std::string ini = R"(
[problem]
name = quadratic
d = 2, 3
mu = 0.1, 0.2
L = 1, 2
zip = mu, L
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.1
)";
  auto plan = plan_experiment(registry, parse_ini(ini, "s.ini"), {});
  REQUIRE(plan.configurations.size() == 4);  // d (2) x zip(mu, L) (2)
  auto again = plan_experiment(registry, parse_ini(ini, "s.ini"), {"experiment.replicates=3"});
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(plan.configurations[i].id == again.configurations[i].id);  // same parameters, same id
    CHECK(plan.configurations[i].id.size() == 16);
  }
  CHECK(plan.configurations[0].id != plan.configurations[1].id);
  CHECK(plan.configurations[0].label == "sgd d=2 mu=0.1 L=1");
  CHECK(plan.configurations[3].label == "sgd d=3 mu=0.2 L=2");
  CHECK_THROWS_WITH(plan_experiment(registry, parse_ini(ini, "s.ini"), {"problem.L=1,2,3"}),
                    Catch::Contains("different lengths"));
}

TEST_CASE("grids are bounded: counts must be finite integers, sizes are capped before expansion", "[foundation][experiment][grid]") {
  // Counts that are not finite integers (logspace(..., inf) used to run one configuration: the float-to-integer
  // conversion of inf is undefined).
  CHECK_THROWS_WITH(expand_axis("logspace(0.01, 1, inf)", "w: "), Catch::Contains("'inf' is not a finite number"));
  CHECK_THROWS_WITH(expand_axis("linspace(0, 1, nan)", "w: "), Catch::Contains("not a finite number"));
  CHECK_THROWS_WITH(expand_axis("linspace(0, 1, 2.5)", "w: "), Catch::Contains("finite integer >= 1"));
  CHECK_THROWS_WITH(expand_axis("linspace(0, inf, 3)", "w: "), Catch::Contains("not a finite number"));
  CHECK_THROWS_WITH(expand_axis("range(0, inf)", "w: "), Catch::Contains("not a finite number"));
  // A count above the cap is refused before any value is made (linspace(..., 1e9) used to grow without bound).
  CHECK_THROWS_WITH(expand_axis("linspace(0.01, 1, 1e9)", "w: "),
                    Catch::Contains("has 1e+09 values, more than the 100000 configurations allowed") &&
                        Catch::Contains("--max-configurations"));
  CHECK(expand_axis("linspace(0, 1, 100000)", "").size() == 100000);  // at the cap: allowed
  CHECK(expand_axis("linspace(0, 1, 11)", "", 11).size() == 11);
  CHECK_THROWS_WITH(expand_axis("range(1, 12)", "w: ", 11), Catch::Contains("has 12 values"));
  // A range where v + 1 == v (beyond 2^53) used to loop forever.
  CHECK_THROWS_WITH(expand_axis("range(9007199254740992, 9007199254740999)", "w: "), Catch::Contains("2^53"));
  CHECK(expand_axis("range(9007199254740990, 9007199254740992)", "") ==
        std::vector<std::string>{"9007199254740990", "9007199254740991", "9007199254740992"});
  CHECK_THROWS_WITH(expand_axis("range(1, 5, 0)", "w: "), Catch::Contains("step must be positive"));

  // The product of the axes is counted before the configurations are made.
  Registry registry = builtin_registry();
  const std::string ini = R"(
[experiment]
replicates = 10
[problem]
name = quadratic
d = 2, 3
mu = 0.1
L = 1, 2
[optimizer]
name = sgd
[schedule]
name = constant
eta = linspace(0.01, 0.1, 3)
)";  // 2 x 2 x 3 = 12 configurations, 120 runs
  CHECK(plan_experiment(registry, parse_ini(ini, "g.ini"), {}, PlanLimits{12, 120}).configurations.size() == 12);
  CHECK_THROWS_WITH(plan_experiment(registry, parse_ini(ini, "g.ini"), {}, PlanLimits{11, 1000}),
                    Catch::Contains("g.ini: the grid has 12 configurations, more than the 11 allowed") &&
                        Catch::Contains("--max-configurations"));
  CHECK_THROWS_WITH(plan_experiment(registry, parse_ini(ini, "g.ini"), {}, PlanLimits{12, 119}),
                    Catch::Contains("the experiment has 120 runs (12 configurations x 10 replicates), more than the 119") &&
                        Catch::Contains("--max-runs"));
  // Three axes of 1e5 values each: 1e15 configurations, refused at once by the count.
  CHECK_THROWS_WITH(plan_experiment(registry, parse_ini(ini, "g.ini"),
                                    {"problem.d=range(1, 100000)", "problem.L=linspace(1, 2, 100000)",
                                     "schedule.eta=linspace(0.01, 0.1, 100000)"}),
                    Catch::Contains("the grid has 1000000000000000 configurations"));
  // Repeated configurations are still found (now by a hash map: 1e5 configurations in linear time).
  CHECK_THROWS_WITH(plan_experiment(registry, parse_ini(ini, "g.ini"), {"problem.d=2, 2"}),
                    Catch::Contains("are identical"));
}

TEST_CASE("a component that refuses a configuration is reported before anything runs", "[foundation][experiment]") {
  Registry registry = builtin_registry();
  // L < mu is refused by the quadratic at set-up.
  ExperimentPlan plan = plan_experiment(registry, parse_ini(R"(
[problem]
name = quadratic
mu = 2
L = 1, 3
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.1
)",
                                                            "r.ini"),
                                        {});
  CHECK_THROWS_WITH(PreparedExperiment(registry, plan), Catch::Contains("configuration 0") && Catch::Contains("need mu <= L"));
  plan = plan_experiment(registry, parse_ini("[experiment]\nskip_invalid = true\n[problem]\nname = quadratic\nmu = 2\nL = 1, 3\n"
                                             "[optimizer]\nname = sgd\n[schedule]\nname = constant\n",
                                             "r.ini"),
                         {});
  const PreparedExperiment prepared(registry, plan);
  // Preparing keeps what it can run and leaves its input as it was.
  CHECK(prepared.plan().configurations.size() == 1);
  REQUIRE(prepared.plan().skipped.size() == 1);
  CHECK_THAT(prepared.plan().skipped[0], Catch::Contains("need mu <= L"));
  CHECK(plan.configurations.size() == 2);
  CHECK(plan.skipped.empty());
  CHECK(plan.run.metrics.empty());           // every metric the problems provide: resolved by preparing
  CHECK_FALSE(prepared.plan().run.metrics.empty());
}

TEST_CASE("an exception inside one run is recorded as status error and the sweep goes on", "[foundation][sweep]") {
  // A registry value of our own: the built-ins plus an optimizer whose step throws at step 3.
  struct Exploding final : Optimizer {
    Vec x;
    void prepare(const Problem& p) override { x.resize(p.dim()); }
    void start(ConstVecRef x0, RunStreams&) override { x = x0; }
    void step(long t, double, Oracle&) override {
      if (t == 3) throw std::runtime_error("boom at step 3");
    }
    ConstVecRef iterate() const override { return x; }
  };
  Registry registry = builtin_registry();
  registry.add_optimizer({ComponentKind::optimizer, "exploding", "throws at step 3", {}, "test"},
                         [](const ParamSet&) { return std::make_unique<Exploding>(); });
  ExperimentPlan plan = plan_experiment(registry, parse_ini(R"(
[experiment]
steps = 100
replicates = 4
[problem]
name = quadratic
[optimizer:a]
name = exploding
[optimizer:b]
name = sgd
[schedule]
name = constant
eta = 0.1
)",
                                                            "e.ini"),
                                        {});
  PreparedExperiment prepared(registry, plan);
  SweepOptions options;
  options.threads = 2;
  options.progress = SweepOptions::Progress::quiet;
  std::vector<RunResult> results(8);
  auto summary = run_sweep(prepared, options, [&](std::size_t c, long r, const RunResult& res) { results[c * 4 + std::size_t(r)] = res; });
  CHECK(summary.error == 4);
  CHECK(summary.ok == 4);
  for (int r = 0; r < 4; ++r) {
    CHECK(results[std::size_t(r)].status == RunStatus::error);
    CHECK(results[std::size_t(r)].message == "boom at step 3");
    CHECK(results[4 + std::size_t(r)].status == RunStatus::ok);
  }
  CHECK(plan.configurations[0].label == "exploding");
}

TEST_CASE("the sweep's time limit stops starting runs and interrupts the ones in flight", "[foundation][sweep]") {
  Registry registry = builtin_registry();
  ExperimentPlan plan = plan_experiment(registry, parse_ini(R"(
[experiment]
steps = 100000000
replicates = 8
[problem]
name = quadratic
d = 2
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.1
)",
                                                            "t.ini"),
                                        {});
  PreparedExperiment prepared(registry, plan);
  SweepOptions options;
  options.threads = 2;
  options.time_limit_seconds = 0.3;
  options.progress = SweepOptions::Progress::quiet;
  long written = 0;
  auto summary = run_sweep(prepared, options, [&](std::size_t, long, const RunResult& r) {
    CHECK(r.status == RunStatus::interrupted);
    CHECK(r.stop_step < 100000000);
    ++written;
  });
  CHECK(summary.cancelled);
  CHECK(summary.interrupted == written);
  CHECK(summary.interrupted + summary.not_started == 8);
  CHECK(summary.seconds < 5.0);
}

TEST_CASE("a sweep's results do not depend on how many runs step in lockstep, nor on the thread count",
          "[foundation][sweep]") {
  // The W1-heavy oracle (exact gradient + Student-t noise: runs of a configuration share one H X product),
  // two step sizes so groups are cut at configuration boundaries (37 replicates: groups of 8 and a
  // remainder, or whatever the threads take); at c = 70 some runs diverge, at different steps.
  const char* ini = R"(
[experiment]
steps = 400
replicates = 37
checkpoints = 10
seed = 3
divergence_threshold = 1e3
[problem]
name = least_squares
n = 200
d = 40
oracle = exact
noise = student_t
noise_scale = 2
[optimizer]
name = sgd
[schedule]
name = inv_sqrt
c = 0.5, 70
)";
  const auto reference = run_text(ini, nullptr, 1, 1);
  long diverged = 0;
  for (const RunResult& r : reference[1]) diverged += r.status == RunStatus::diverged;
  CHECK(diverged > 0);  // some runs leave their group early, the others go on
  CHECK(diverged < 37);
  for (auto [threads, lockstep] : {std::pair{1, 8}, std::pair{2, 8}, std::pair{2, 3}, std::pair{2, 1}}) {
    const auto results = run_text(ini, nullptr, threads, lockstep);
    for (std::size_t c = 0; c < reference.size(); ++c)
      for (std::size_t r = 0; r < reference[c].size(); ++r) {
        INFO("threads " << threads << ", lockstep " << lockstep << ", configuration " << c << ", replicate " << r);
        CHECK(results[c][r].status == reference[c][r].status);
        CHECK(results[c][r].stop_step == reference[c][r].stop_step);
        CHECK(results[c][r].stats == reference[c][r].stats);
        CHECK(std::memcmp(results[c][r].traces.data(), reference[c][r].traces.data(),
                          reference[c][r].traces.size() * sizeof(double)) == 0);
      }
  }
}
