// Experiments that say what the theorem says (issue 25): components that set their own steps need no
// schedule, schedules that know the horizon T, parameter values that are formulas of other parameters,
// and pairings instead of the full product.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/registry.hpp"
#include "experiments/experiment.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

const Registry& registry() {
  static const Registry r = builtin_registry();
  return r;
}

ExperimentPlan plan_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return plan_experiment(registry(), parse_ini(text, "studies.ini"), overrides);
}

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    plan_of(text, overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string recorded(const Configuration& c, const std::string& key) {
  for (const auto& [k, v] : configuration_record(c).parameters)
    if (k == key) return format_value(v);
  return "absent";
}

const std::string kQuadratic =
    "[experiment]\nname = studies\nsteps = 100\nreplicates = 2\ncheckpoints = 5\n"
    "[problem]\nname = quadratic\nd = 4\nmu = 0.1\nL = 1\nnoise_scale = 0\n";

}  // namespace

TEST_CASE("heavy_ball with tuning = polyak runs from a file without a schedule section", "[studies][cli]") {
  const fs::path file = scratch("polyak_no_schedule.ini"), out = scratch("polyak_no_schedule.h5");
  std::ofstream(file) << kQuadratic << "[optimizer]\nname = heavy_ball\ntuning = polyak\n";
  const auto o = run_cli("run " + file.string() + " --quiet -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  REQUIRE(data.layout.configurations.size() == 1);
  for (const auto& [k, v] : data.layout.configurations[0].parameters) CHECK(k.rfind("schedule", 0) != 0);
  const std::size_t subopt = *data.metric_index("subopt");
  const std::size_t K = data.layout.checkpoints.size();
  for (std::size_t r = 0; r < 2; ++r) {
    CHECK(data.status[r] == RunStatus::ok);
    // Polyak's heavy ball contracts ||x - x*|| by (sqrt(10) - 1)/(sqrt(10) + 1) = 0.52 per step (kappa = 10):
    // after 100 steps F - F* is below 1e-20 of its start, whatever the polynomial transient.
    CHECK(data.trace(subopt, 0, 0, r, K - 1) < 1e-20 * data.trace(subopt, 0, 0, r, 0));
  }
}

TEST_CASE("an optimizer that needs a schedule and has none is refused naming the fix", "[studies]") {
  const std::string plain = error_of(kQuadratic + "[optimizer]\nname = sgd\n");
  CHECK_THAT(plain, Catch::Contains("studies.ini:12: optimizer section [optimizer] (sgd) needs a step-size schedule: "
                                    "add a [schedule] section with name = one of ") &&
                        Catch::Contains("horizon_constant") && Catch::Contains("step_decay (e.g. name = constant and eta = 0.1)"));
  CHECK_THAT(plain, !Catch::Contains("[schedule:]"));  // before: "add [schedule] (or [schedule:])"
  // A labelled heavy_ball that uses a schedule for some of its configurations: its own or the shared one.
  const std::string labelled = error_of(kQuadratic + "[optimizer:hb]\nname = heavy_ball\ntuning = manual, polyak\n");
  CHECK_THAT(labelled, Catch::Contains("optimizer section [optimizer:hb] (heavy_ball) needs a step-size schedule "
                                       "(heavy_ball uses a schedule when tuning = manual): add a [schedule:hb] "
                                       "section (its own) or a [schedule] section"));
}

TEST_CASE("horizon schedules know T: Zamani-Glineur and c / sqrt(T) against their formulas", "[studies][schedule]") {
  const std::string text = kQuadratic +
                           "[optimizer:zg]\nname = sgd\n[schedule:zg]\nname = horizon\nc = 2\n"
                           "[optimizer:flat]\nname = sgd\n[schedule:flat]\nname = horizon_constant\nc = 0.5\n";
  for (const long T : {100L, 1000L, 777L}) {
    const ExperimentPlan plan = plan_of(text, {"experiment.steps=" + std::to_string(T)});
    const PreparedExperiment prepared(registry(), plan, 1);
    REQUIRE(prepared.plan().configurations.size() == 2);
    const double dT = double(T);
    for (const long t : {1L, 2L, T / 2, T - 1, T}) {
      INFO("T = " << T << ", t = " << t);
      // The same operations in the same order as the formula: exact.
      CHECK(prepared.schedule(0)(t) == 2.0 * double(T - t + 1) / std::pow(dT, 1.5));
      CHECK(prepared.schedule(1)(t) == 0.5 / std::sqrt(dT));
    }
    CHECK(prepared.schedule(0)(T) == 2.0 / std::pow(dT, 1.5));  // the last step: eta / T^(3/2)
    bool stated = false;  // the constant step actually used is recorded with the runs
    for (const auto& [name, value] : prepared.instance_stats(1))
      if (name == "schedule_eta") stated = value == 0.5 / std::sqrt(dT);
    CHECK(stated);
  }
}

// ---- parameter values that are formulas of other parameters ----------------------------------------------

namespace {
const std::string kSgd = "[optimizer]\nname = sgd\n";
}  // namespace

TEST_CASE("formula parameters resolve per configuration, after the grid is expanded", "[studies][formulas]") {
  const ExperimentPlan plan =
      plan_of(kQuadratic + kSgd + "[schedule]\nname = constant\neta = 1/problem.L\n", {"problem.L=2, 4"});
  REQUIRE(plan.configurations.size() == 2);
  CHECK(std::get<double>(plan.configurations[0].schedule.params.at("eta")) == 0.5);
  CHECK(std::get<double>(plan.configurations[1].schedule.params.at("eta")) == 0.25);
  CHECK(recorded(plan.configurations[0], "schedule.eta") == "0.5");  // the file records the value
  CHECK(plan.configurations[0].label == "sgd L=2 eta=0.5 (= 1/problem.L)");
  CHECK(plan.configurations[1].label == "sgd L=4 eta=0.25 (= 1/problem.L)");
  // The fingerprint holds the value alone: the same configuration as the literal.
  const ExperimentPlan literal = plan_of(kQuadratic + kSgd + "[schedule]\nname = constant\neta = 0.5\n", {"problem.L=2"});
  CHECK(literal.configurations[0].id == plan.configurations[0].id);

  // Unqualified names where one component has them, formulas in an axis beside numbers, and a formula that
  // reads another formula's value (whatever the order they are written in).
  const ExperimentPlan mixed = plan_of(kQuadratic + kSgd +
                                       "[schedule]\nname = inv_mu_t\nc = 2*t0/(t0 + 1), 1\nt0 = 2*L/problem.mu\n");
  REQUIRE(mixed.configurations.size() == 2);
  const double t0 = 2.0 * 1.0 / 0.1;
  CHECK(std::get<double>(mixed.configurations[0].schedule.params.at("t0")) == t0);
  CHECK(std::get<double>(mixed.configurations[0].schedule.params.at("c")) == 2.0 * t0 / (t0 + 1.0));
  CHECK(std::get<double>(mixed.configurations[1].schedule.params.at("c")) == 1.0);
  CHECK(mixed.configurations[0].label == "sgd c=1.9047619047619047 (= 2*t0/(t0 + 1))");
  CHECK(mixed.configurations[1].label == "sgd c=1");

  // An integer parameter takes a whole value; T is experiment.steps.
  const ExperimentPlan whole = plan_of(kQuadratic + kSgd + "[schedule]\nname = step_decay\nevery = T/4\n");
  CHECK(std::get<std::int64_t>(whole.configurations[0].schedule.params.at("every")) == 25);
}

TEST_CASE("experiment.steps = problem.T: the horizon from the problem, checkpoints and schedule follow",
          "[studies][formulas]") {
  const std::string harvey = "[experiment]\nname = harvey_T\nsteps = problem.T\nreplicates = 1\ncheckpoints = 5\n"
                             "[problem]\nname = harvey_lip\nT = 64\n"
                             "[optimizer]\nname = sgd\n[schedule]\nname = horizon\nc = 1\n";
  const ExperimentPlan plan = plan_of(harvey);
  CHECK(plan.options.run.steps == 64);
  CHECK(plan.run.checkpoints.back() == 64);
  CHECK_THAT(plan.resolved_text, Catch::Contains("steps = problem.T  # = 64\n"));
  const PreparedExperiment prepared(registry(), plan, 1);
  CHECK(prepared.schedule(0)(1) == 1.0 * double(64 - 1 + 1) / std::pow(64.0, 1.5));
  // --set works too (it was malformed), and so does a formula of the experiment's own parameters.
  CHECK(plan_of(harvey, {"experiment.steps=2*problem.T"}).run.checkpoints.back() == 128);
  CHECK(plan_of(harvey, {"experiment.replicates=steps/16"}).options.replicates == 4);
  // [experiment] holds one value for all configurations, but for the horizon (tests/test_horizons.cpp).
  CHECK(plan_of(harvey, {"problem.T=64, 128"}).configurations.size() == 2);
  CHECK_THAT(error_of(harvey, {"problem.T=64, 128", "experiment.replicates=steps/16"}),
             Catch::Contains("experiment.replicates = steps/16 is 4 for configuration 0 and 8 for "
                             "configuration 1: [experiment] holds one value for every configuration"));
}

TEST_CASE("formula parameters are validated like numbers, naming the formula and its value", "[studies][formulas]") {
  const std::string schedule = kQuadratic + kSgd + "[schedule]\nname = constant\n";
  // A negative step: the formula, the names it read and its value.
  CHECK_THAT(error_of(schedule + "eta = 1 - problem.L\n", {"problem.L=0.5, 10"}),
             Catch::Contains("studies.ini:16: schedule.eta = 1 - problem.L gives -9 (problem.L = 10); "
                             "schedule.eta = -9 violates schedule.eta > 0"));
  // Said once, however many configurations it fails in.
  const std::string twice = error_of(schedule + "eta = -problem.L\n", {"problem.L=1, 2, 3"});
  CHECK_THAT(twice, Catch::Contains("schedule.eta = -problem.L gives -1 (problem.L = 1); schedule.eta = -1 violates "
                                    "schedule.eta > 0 (and in 2 more configurations)"));
  // Unknown names are found with the file's other mistakes, before anything is expanded.
  try {
    plan_of(schedule + "eta = 1/nu\n[problem:second]\nname = quadratic\nd = ten\n");
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    REQUIRE(e.problems().size() == 2);
    CHECK_THAT(e.problems()[1], Catch::StartsWith("studies.ini:16: schedule.eta = 1/nu: unknown name 'nu' (T = "
                                                  "experiment.steps, R = experiment.replicates, experiment.KEY, or a "
                                                  "parameter of this file's components"));
    // A bare word is still a malformed number (problems are listed section kind by section kind).
    CHECK_THAT(e.problems()[0], Catch::StartsWith("studies.ini:19: problem:second.d = 'ten' is malformed: expected an "
                                                  "integer such as 100 or 1e5, or a formula of other parameters such "
                                                  "as 1/problem.L ('ten' names no parameter)"));
  }
  CHECK_THAT(error_of(schedule + "eta = 1/problem.noise\n"), Catch::Contains("parameter 'problem.noise' is not a number (gaussian)"));
  CHECK_THAT(error_of(schedule + "eta = 1/(problem.L\n"),
             Catch::Contains("schedule.eta = '1/(problem.L' is malformed: expected a real number such as 0.5 or 1e-3, or a "
                             "formula of other parameters such as 1/problem.L (schedule.eta: formula '1/(problem.L': "
                             "missing ')')"));
  CHECK_THAT(error_of(kQuadratic + kSgd + "[schedule]\nname = step_decay\nevery = T/3\n"),
             Catch::Contains("schedule.every = T/3 gives 33.333333333333336 (T = 100), not a whole number: round it"));
  CHECK_THAT(error_of(kQuadratic + kSgd + "[schedule]\nname = inv_mu_t\nc = 2*t0\nt0 = c/2\n"),
             Catch::Contains("the formulas schedule.c = 2*t0, schedule.t0 = c/2 refer to each other; give one of them a value"));
  // A formula that reads a failed one is not evaluated (its value would be the default's): one message.
  const std::string chained =
      error_of(kQuadratic + kSgd + "[schedule]\nname = inv_mu_t\nc = 2*t0\nt0 = 1/problem.noise\n");
  CHECK_THAT(chained, Catch::Contains("schedule.t0 = 1/problem.noise: formula '1/problem.noise': parameter "
                                      "'problem.noise' is not a number (gaussian)") &&
                          !Catch::Contains("schedule.c = 2*t0"));
  CHECK_THAT(error_of(kQuadratic + kSgd + "[schedule]\nname = inv_mu_t\nc = 1/mu\n"),
             Catch::Contains("name 'mu' is ambiguous: qualify it (problem.mu or schedule.mu)"));
  // A parameter of the same section, given by --set.
  const ExperimentPlan own = plan_of(schedule + "eta = 0.1\n", {"problem.mu=1/d"});
  CHECK(std::get<double>(own.configurations[0].problem.params.at("mu")) == 0.25);
}

TEST_CASE("formula parameters round-trip through the trace file: --resume and verify FILE accept it",
          "[studies][formulas][cli]") {
  const fs::path file = scratch("formulas.ini"), out = scratch("formulas.h5");
  std::ofstream(file) << "[experiment]\nname = formulas\nsteps = problem.T\nreplicates = 3\ncheckpoints = 6\n"
                         "[problem]\nname = harvey_lip\nT = 120\n"
                         "[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 1/sqrt(T), 2/sqrt(T)\n"
                         "[claims]\nclean = status diverged=0 error=0\nhorizon = value metric=value at=problem.T "
                         "expect=[0, 1]\n";
  const auto first = run_cli("run " + file.string() + " --quiet -o " + out.string());
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  REQUIRE(data.layout.configurations.size() == 2);
  CHECK(data.layout.checkpoints.back() == 120);
  CHECK(data.layout.configurations[0].label == "sgd eta=" + format_value(ParamValue(1 / std::sqrt(120.0))) +
                                                   " (= 1/sqrt(T))");
  // The stored text plans the same configurations (same ids and values) as the file it came from.
  const ExperimentPlan replanned = plan_experiment(registry(), parse_ini(data.layout.experiment_text, "stored"));
  REQUIRE(replanned.configurations.size() == 2);
  for (std::size_t c = 0; c < 2; ++c) {
    CHECK(replanned.configurations[c].id == data.layout.configurations[c].id);
    CHECK(replanned.configurations[c].label == data.layout.configurations[c].label);
  }
  CHECK(replanned.run.checkpoints == data.layout.checkpoints);
  const auto resumed = run_cli("run " + file.string() + " --quiet --resume -o " + out.string());
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  const auto verified = run_cli("verify " + out.string());
  INFO(verified.output);
  CHECK(verified.exit_code == 0);
  CHECK_THAT(verified.output, Catch::Contains("OK: 2/2 claims hold"));
}

TEST_CASE("joined ranges make one axis, and commas inside a formula's parentheses do not split it", "[studies][axes]") {
  const auto joined = expand_axis("linspace(3.0, 3.1, 11), linspace(3.4, 3.5, 11)", "x0: ");
  REQUIRE(joined.size() == 22);
  CHECK(joined.front() == "3");
  CHECK(joined[10] == "3.1");
  CHECK(joined[11] == "3.4");
  CHECK(joined.back() == "3.5");
  CHECK(expand_axis("range(1, 3), 10, logspace(100, 1000, 2)", "") ==
        std::vector<std::string>{"1", "2", "3", "10", "100", "1000"});
  CHECK(expand_axis("min(1, 2/problem.L), 0.5", "") == std::vector<std::string>{"min(1, 2/problem.L)", "0.5"});
  CHECK_THROWS_WITH(expand_axis("linspace(0, 1, 3),", "w: "), Catch::Contains("empty item"));
  CHECK_THROWS_WITH(expand_axis("linspace(0, 1, 60), linspace(2, 3, 50)", "w: ", 100),
                    Catch::Contains("more than the 100 configurations allowed"));
  // In a file: the configurations are the joined values, in order.
  const ExperimentPlan plan = plan_of(kQuadratic + "[optimizer]\nname = sgd\n[schedule]\nname = constant\n"
                                                   "eta = linspace(0.1, 0.2, 2), linspace(0.5, 0.6, 2), min(1, 2/L)\n");
  REQUIRE(plan.configurations.size() == 5);
  CHECK(recorded(plan.configurations[2], "schedule.eta") == "0.5");
  CHECK(plan.configurations[4].label == "sgd eta=1 (= min(1, 2/L))");
}

// ---- pairings ------------------------------------------------------------------------------------------

namespace {
// Heavy ball on Lessard's instance beside gradient descent on a quadratic: the two pairs, and not the
// other two combinations (gradient descent with eta = 1/problem.L has no L on Lessard's instance).
const std::string kPaired = "[experiment]\nname = paired\nsteps = 50\nreplicates = 2\ncheckpoints = 5\n"
                            "[problem:lessard]\nname = lessard\nx0 = linspace(3.0, 3.1, 2), linspace(3.4, 3.5, 2)\n"
                            "[problem:quad]\nname = quadratic\nd = 4\nmu = 0.1\nL = 1, 2\nnoise_scale = 0\n"
                            "[optimizer:hb]\nname = heavy_ball\ntuning = polyak\n"
                            "[optimizer:gd]\nname = sgd\n[schedule:gd]\nname = constant\neta = 1/problem.L\n";
}  // namespace

TEST_CASE("a paired experiment creates exactly the named configurations", "[studies][pairs]") {
  // Without pairings every problem meets every optimizer, and the formula has no L on Lessard's instance.
  CHECK_THAT(error_of(kPaired), Catch::Contains("schedule.eta = 1/problem.L: formula '1/problem.L': unknown name "
                                                "'problem.L'"));
  const ExperimentPlan plan =
      plan_of(kPaired + "[pair:cycle]\nproblem = lessard\noptimizer = hb\n[pair:gd]\nproblem = quad\noptimizer = gd\n");
  REQUIRE(plan.configurations.size() == 6);  // 4 starting points x heavy ball, then 2 values of L x sgd
  const std::vector<std::string> x0{"3", "3.1", "3.4", "3.5"};
  for (std::size_t c = 0; c < 4; ++c) {
    CHECK(plan.configurations[c].problem.key == "lessard");
    CHECK(plan.configurations[c].optimizer.key == "heavy_ball");
    CHECK(plan.configurations[c].schedule.key.empty());
    CHECK(recorded(plan.configurations[c], "problem.x0") == x0[c]);
  }
  for (std::size_t c = 4; c < 6; ++c) {
    CHECK(plan.configurations[c].problem.key == "quadratic");
    CHECK(plan.configurations[c].optimizer.key == "sgd");
    CHECK(recorded(plan.configurations[c], "problem.L") == (c == 4 ? "1" : "2"));
    CHECK(recorded(plan.configurations[c], "schedule.eta") == (c == 4 ? "1" : "0.5"));
  }
  // A pair's configurations are those of the same sections in a file of their own: same ids.
  const ExperimentPlan alone = plan_of(
      "[experiment]\nname = paired\nsteps = 50\nreplicates = 2\ncheckpoints = 5\n"
      "[problem]\nname = quadratic\nd = 4\nmu = 0.1\nL = 1, 2\nnoise_scale = 0\n"
      "[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 1/problem.L\n");
  CHECK(alone.configurations[0].id == plan.configurations[4].id);
  CHECK(alone.configurations[1].id == plan.configurations[5].id);
  CHECK_THAT(plan.resolved_text, Catch::Contains("\n[pair:cycle]\nproblem = lessard\noptimizer = hb\n"));
}

TEST_CASE("zip across sections in a pairing varies axes of different sections together", "[studies][pairs]") {
  const std::string harvey = "[experiment]\nname = zipped\nsteps = 256\nreplicates = 1\ncheckpoints = 5\n"
                             "[problem]\nname = harvey_lip\nT = 16, 64, 256\n"
                             "[optimizer]\nname = sgd\nbatch = 1, 2\n"
                             "[schedule]\nname = horizon_constant\nc = 1, 2, 4\n";
  const ExperimentPlan plan = plan_of(harvey + "[pair:zipped]\nproblem = problem\noptimizer = optimizer\n"
                                               "zip = problem.T, schedule.c\n");
  REQUIRE(plan.configurations.size() == 6);  // (T, c) in step, times the untied batch axis
  const std::vector<std::string> T{"16", "16", "64", "64", "256", "256"}, c{"1", "1", "2", "2", "4", "4"},
      batch{"1", "2", "1", "2", "1", "2"};
  for (std::size_t k = 0; k < 6; ++k) {
    CHECK(recorded(plan.configurations[k], "problem.T") == T[k]);
    CHECK(recorded(plan.configurations[k], "schedule.c") == c[k]);
    CHECK(recorded(plan.configurations[k], "optimizer.batch") == batch[k]);
  }
  CHECK(plan_of(harvey).configurations.size() == 18);  // the full product without the pairing
  // The stored text holds the pairing and plans the same configurations.
  CHECK_THAT(plan.resolved_text, Catch::Contains("\n[pair:zipped]\nproblem = problem\noptimizer = optimizer\n"
                                                 "zip = problem.T, schedule.c\n"));
  const ExperimentPlan replanned = plan_of(plan.resolved_text);
  REQUIRE(replanned.configurations.size() == 6);
  for (std::size_t k = 0; k < 6; ++k) CHECK(replanned.configurations[k].id == plan.configurations[k].id);

  // Mistakes, each named with its line.
  const std::string e1 = error_of(harvey + "[pair:x]\nproblem = harvey\noptimizer = optimizer\nzip = problem.T, schedule.eta\n"
                                           "colour = red\n");
  CHECK_THAT(e1, Catch::Contains("studies.ini:16: [pair:x] problem = harvey names no problem section; this file has "
                                 "[problem] (write the label, or the section's name)"));
  CHECK_THAT(e1, Catch::Contains("studies.ini:19: unknown [pair:x] key 'colour'"));
  const std::string e2 = error_of(harvey + "[pair:x]\nproblem = problem\noptimizer = optimizer\nzip = problem.T, schedule.eta\n");
  CHECK_THAT(e2, Catch::Contains("studies.ini:18: [pair:x] zip names 'schedule.eta', which is not an axis (a parameter "
                                 "with several values) of [schedule]"));
  const std::string e3 = error_of(harvey + "[pair:x]\nproblem = problem\noptimizer = optimizer\nzip = problem.T, optimizer.batch\n");
  CHECK_THAT(e3, Catch::Contains("[pair:x] zip axes 'T' and 'batch' have different lengths (3 and 2)"));
  const std::string e4 = error_of(kPaired + "[pair:cycle]\nproblem = lessard\noptimizer = hb\n");
  CHECK_THAT(e4, Catch::Contains("studies.ini:9: [problem:quad] is in no [pair:...] section: with pairings only the "
                                 "named combinations run; pair it or remove it") &&
                     Catch::Contains("[optimizer:gd] is in no [pair:...] section"));
  const std::string e5 = error_of(kPaired + "[pair:cycle]\noptimizer = hb\n");
  CHECK_THAT(e5, Catch::Contains("[pair:cycle] needs 'problem = LABEL' naming one of [problem:lessard], [problem:quad]"));
}

// ---- horizons ----------------------------------------------------------------------------------------------

TEST_CASE("runs of different horizons share their random numbers: replicate r of T = 100 and of T = 1000 agree "
          "bit for bit over the first 100 steps",
          "[studies][horizons]") {
  // What a horizon sweep rests on: the streams are keyed by (seed, replicate, purpose) and positioned at the
  // step, never by T, so a longer run repeats the shorter one's steps (gradient noise, sampling, optimizer
  // draws) exactly before it goes on. Schedules that do not depend on T keep the iterates equal too.
  const std::string text = "[experiment]\nname = horizons\nreplicates = 3\ncheckpoint_steps = 1, 7, 50, 100\n"
                           "views = last, uniform\n"
                           "[problem]\nname = quadratic\nd = 8\nmu = 0.1\nL = 1\nnoise_scale = 0.5\n"
                           "[optimizer:sgd]\nname = sgd\n"
                           "[optimizer:hb]\nname = heavy_ball\nbeta = 0.5\nblocks = 2\nblock_rule = random\n"
                           "[schedule]\nname = inv_sqrt\nc = 0.3\n";
  const PreparedExperiment short_runs(registry(), plan_of(text, {"experiment.steps=100"}), 1);
  const PreparedExperiment long_runs(registry(), plan_of(text, {"experiment.steps=1000"}), 1);
  const auto& checkpoints = long_runs.plan().run.checkpoints;  // 0, 1, 7, 50, 100, 1000
  REQUIRE(short_runs.plan().run.checkpoints == std::vector<long>(checkpoints.begin(), checkpoints.end() - 1));
  const std::size_t K_short = checkpoints.size() - 1, K_long = checkpoints.size(), V = 2;
  const std::size_t M = short_runs.metric_names().size();
  for (std::size_t c = 0; c < 2; ++c)
    for (long r = 0; r < 3; ++r) {
      const RunResult a = short_runs.run(c, r, nullptr), b = long_runs.run(c, r, nullptr);
      REQUIRE(a.status == RunStatus::ok);
      REQUIRE(b.status == RunStatus::ok);
      for (std::size_t m = 0; m < M; ++m)
        for (std::size_t v = 0; v < V; ++v)
          for (std::size_t k = 0; k < K_short; ++k) {
            INFO("configuration " << c << ", replicate " << r << ", metric " << m << ", view " << v << ", t = "
                                  << checkpoints[k]);
            CHECK(a.traces[(m * V + v) * K_short + k] == b.traces[(m * V + v) * K_long + k]);
          }
      // and the long run goes on: its last value is not the short run's.
      CHECK(b.traces[K_long - 1] != a.traces[K_short - 1]);
    }
}
