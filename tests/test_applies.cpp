// Parameters that apply only under a condition on another parameter (ParamSpec::applies, issue 17 item 5):
// labels, records, fingerprints, validation and `describe` all follow the one declaration.
#include <catch2/catch.hpp>

#include "core/registry.hpp"
#include "experiments/experiment.hpp"

#include "cli_support.hpp"

using namespace ratelab;

namespace {

ExperimentPlan plan_of(const std::string& text) {
  static const Registry registry = builtin_registry();
  return plan_experiment(registry, parse_ini(text, "applies.ini"));
}

bool recorded(const Configuration& c, const std::string& key) {
  for (const auto& [k, v] : configuration_record(c).parameters)
    if (k == key) return true;
  return false;
}

const char* kQuadratic = "[experiment]\nsteps = 10\n[problem]\nname = quadratic\nd = 4\nmu = 0.1\nL = 1\n";

}  // namespace

TEST_CASE("heavy_ball with tuning = polyak: no schedule needed, none recorded, no beta in its label", "[applies]") {
  // Before: "optimizer section [optimizer] has no step-size schedule", though polyak ignores it.
  const ExperimentPlan alone = plan_of(std::string(kQuadratic) + "[optimizer]\nname = heavy_ball\ntuning = polyak\n");
  REQUIRE(alone.configurations.size() == 1);
  const Configuration& c = alone.configurations[0];
  CHECK(c.schedule.key.empty());
  CHECK(!recorded(c, "schedule"));
  CHECK(!recorded(c, "optimizer.beta"));
  CHECK(recorded(c, "optimizer.tuning"));
  CHECK(c.canonical.find("|schedule=none") != std::string::npos);

  // tuning as an axis with a schedule axis: the schedule's values multiply the manual configurations only
  // (before: two polyak configurations with identical bits, labelled with the eta they ignore).
  const ExperimentPlan grid = plan_of(std::string(kQuadratic) +
                                      "[optimizer]\nname = heavy_ball\ntuning = manual, polyak\n"
                                      "[schedule]\nname = constant\neta = 0.5, 1\n");
  REQUIRE(grid.configurations.size() == 3);
  CHECK(grid.configurations[0].label == "heavy_ball beta=0.9 tuning=manual constant eta=0.5");
  CHECK(grid.configurations[1].label == "heavy_ball beta=0.9 tuning=manual constant eta=1");
  CHECK(grid.configurations[2].label == "heavy_ball tuning=polyak");
  // Where beta and the schedule apply, the fingerprint is the one of every earlier version: all parameters.
  CHECK(grid.configurations[0].canonical ==
        "problem=quadratic;" + grid.configurations[0].problem.params.canonical() +
            "|optimizer=heavy_ball;beta=0.9;tuning=manual;blocks=1;block_rule=cyclic;batch=1|schedule=constant;eta=0.5");

  // A parameter set for no configuration it applies to is a mistake, named with its condition.
  CHECK_THROWS_WITH(plan_of(std::string(kQuadratic) + "[optimizer]\nname = heavy_ball\ntuning = polyak\nbeta = 0.5\n"),
                    Catch::Contains("applies.ini:11: optimizer.beta does nothing here: it applies when tuning = manual"));
}

TEST_CASE("noise parameters of another law are not recorded, and keep the fingerprint at their default", "[applies]") {
  const ExperimentPlan plan = plan_of(std::string(kQuadratic) +
                                      "noise = gaussian, student_t\nnoise_nu = 1.5\nnoise_scale = 1\n"
                                      "[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 0.1\n");
  REQUIRE(plan.configurations.size() == 2);
  const Configuration& gaussian = plan.configurations[0];
  const Configuration& student = plan.configurations[1];
  CHECK(!recorded(gaussian, "problem.noise_nu"));  // before: noise_nu=1.5 on a Gaussian configuration
  CHECK(recorded(student, "problem.noise_nu"));
  CHECK(!recorded(student, "problem.noise_alpha"));
  CHECK(gaussian.label == "sgd noise=gaussian");
  CHECK(student.label == "sgd noise=student_t noise_nu=1.5");  // recorded for some quadratics only: it varies
  // The Gaussian configuration's fingerprint is the one it had without noise_nu set (the default 2.5).
  const ExperimentPlan plain = plan_of(std::string(kQuadratic) +
                                       "noise = gaussian\nnoise_scale = 1\n"
                                       "[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 0.1\n");
  CHECK(plain.configurations[0].id == gaussian.id);
  CHECK(gaussian.canonical.find("noise_nu=2.5") != std::string::npos);
  CHECK(student.canonical.find("noise_nu=1.5") != std::string::npos);
}

TEST_CASE("the binary activation records neither activation_bits nor eval_samples", "[applies]") {
  const ExperimentPlan plan = plan_of(
      "[experiment]\nsteps = 10\n[problem]\nname = ste_two_layer\nm = 3\nn = 3\nactivation = binary, staircase\n"
      "[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 0.1\n");
  REQUIRE(plan.configurations.size() == 2);
  for (const char* key : {"problem.activation_bits", "problem.activation_step", "problem.eval_samples"}) {
    INFO(key);
    CHECK(!recorded(plan.configurations[0], key));
    CHECK(recorded(plan.configurations[1], key));
  }
}

TEST_CASE("describe states when a parameter and the schedule apply", "[applies][cli]") {
  auto o = ratelab_test::run_cli("describe heavy_ball");
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("(applies when tuning = manual)") &&
                           Catch::Contains("step-size schedule: used when tuning = manual"));
  auto q = ratelab_test::run_cli("describe quadratic");
  CHECK_THAT(q.output, Catch::Contains("(applies when noise = student_t)"));
}
