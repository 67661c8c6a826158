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
