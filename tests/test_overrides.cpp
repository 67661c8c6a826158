// `--set` overrides: applied once, to the experiment document, before anything (components, claims, plot
// options) is read from it; what cannot apply is refused (issue 17, item 4).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "experiments/claims.hpp"
#include "experiments/experiment.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

// A small experiment (a second on one core) whose one claim holds: every run ends ok.
fs::path small_experiment() {
  const fs::path file = scratch("overrides.ini");
  std::ofstream(file) << "[experiment]\nname = overrides\nsteps = 200\nreplicates = 4\ncheckpoints = 10\n"
                         "[problem]\nname = quadratic\nd = 5\nnoise_scale = 0.1\n"
                         "[optimizer]\nname = sgd\n[schedule]\nname = inv_mu_t\nc = 1\nt0 = 10\n"
                         "[claims]\nclean = status diverged=0 error=0\n";
  return file;
}

const char* kQuickRun = "run quickstart --quiet --set experiment.steps=100 --set experiment.replicates=2";

}  // namespace

TEST_CASE("apply_overrides: keys, claims, and a section replaced by name", "[overrides]") {
  const IniDocument doc = parse_ini("[schedule]\nname = inv_mu_t\nc = 1\nt0 = 10\n[claims]\nr = status error=0\n", "a.ini");
  const IniDocument out =
      apply_overrides(doc, {"schedule.c=2", "claims.r=status ok=0", "claims.extra=status diverged=0", "optimizer=sgd"});
  REQUIRE(out.sections.size() == 3);
  CHECK(out.sections[0].entries[1].value == "2");
  CHECK(out.sections[0].entries[1].origin == "--set");
  CHECK(out.sections[1].entries[0].value == "status ok=0");
  CHECK(out.sections[1].entries[1].key == "extra");
  CHECK(out.sections[2].name == "optimizer");
  // schedule=constant: a fresh section holding only the name (t0 and c gone).
  const IniDocument fresh = apply_overrides(doc, {"schedule=constant"});
  REQUIRE(fresh.sections[0].entries.size() == 1);
  CHECK(fresh.sections[0].entries[0].key == "name");
  CHECK(fresh.sections[0].entries[0].value == "constant");
  CHECK_THROWS_WITH(apply_overrides(doc, {"steps"}), Catch::Contains("'steps' is malformed"));
  CHECK_THROWS_WITH(apply_overrides(doc, {"experiment=x"}), Catch::Contains("only a component section"));
  CHECK_THROWS_WITH(apply_overrides(doc, {"schedule="}), Catch::Contains("names no schedule"));
}

TEST_CASE("verify --set claims.NAME=... takes effect", "[overrides][cli]") {
  const fs::path file = small_experiment();
  auto held = run_cli("verify " + file.string() + " --threads 1");
  INFO(held.output);
  REQUIRE(held.exit_code == 0);
  // The same runs; the claim replaced by one that fails (every run is ok, so ok=0 cannot hold).
  auto replaced = run_cli("verify " + file.string() + " --threads 1 --set 'claims.clean=status ok=0'");
  INFO(replaced.output);
  CHECK(replaced.exit_code == 5);
  CHECK_THAT(replaced.output, Catch::Contains("FAIL clean") && Catch::Contains("FAILED: 0/1 claims hold"));
  // A claim added by --set is checked too.
  auto added = run_cli("verify " + file.string() + " --threads 1 --set 'claims.more=status ok=0'");
  CHECK(added.exit_code == 5);
  CHECK_THAT(added.output, Catch::Contains("FAIL more") && Catch::Contains("1/2 claims hold"));
}

TEST_CASE("run refuses a malformed claim given by --set before writing anything", "[overrides][cli]") {
  const auto out = scratch("claim.h5");
  struct Case {
    std::string claim, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"claims.x=slope view=nope expect=[-2, 0]", "--set: claim 'x': view=nope: unknown iterate view 'nope'"},
           {"claims.x=slope expect=[-2, 0] where=optimizer=adam", "--set: claim 'x': no configuration matches"},
           {"claims.x=slop expect=[-2, 0]", "unknown claim kind 'slop'"}}) {
    auto o = run_cli(std::string(kQuickRun) + " --set '" + c.claim + "' -o " + out.string());
    INFO(c.claim << "\n" << o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains(c.expect));
    CHECK(!fs::exists(out));
  }
  // A claim that fits is stored with the run, and verify of the file reads it.
  auto o = run_cli("run " + small_experiment().string() + " --quiet --set 'claims.x=status error=0' -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  auto v = run_cli("verify " + out.string());
  INFO(v.output);
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.output, Catch::Contains("PASS x") && Catch::Contains("2/2 claims hold"));
}

TEST_CASE("verify of a stored file: only claims.NAME=... overrides apply, others are refused", "[overrides][cli]") {
  const fs::path file = small_experiment();
  const auto out = scratch("stored.h5");
  REQUIRE(run_cli("run " + file.string() + " --quiet --threads 1 -o " + out.string()).exit_code == 0);
  for (const std::string& args : {"verify " + file.string() + " --from " + out.string(), "verify " + out.string()}) {
    auto refused = run_cli(args + " --set experiment.steps=5");
    INFO(args << "\n" << refused.output);
    CHECK(refused.exit_code == 2);
    CHECK_THAT(refused.output, Catch::Contains("--set 'experiment.steps=5' cannot apply to the stored trace file " +
                                               out.string()) &&
                                   Catch::Contains("ratelab verify EXPERIMENT --set 'experiment.steps=5'"));
    auto claim = run_cli(args + " --set 'claims.clean=status ok=0'");
    INFO(claim.output);
    CHECK(claim.exit_code == 5);
    CHECK_THAT(claim.output, Catch::Contains("FAIL clean"));
  }
}

TEST_CASE("overrides: section=NAME replaces a section, and a key of another section is named with it", "[overrides][cli]") {
  const auto out = scratch("replaced.h5");
  // quickstart's [schedule] is inv_mu_t with t0: renaming it keeps t0, which constant does not have.
  auto renamed = run_cli(std::string(kQuickRun) + " --set schedule.name=constant -o " + out.string());
  INFO(renamed.output);
  CHECK(renamed.exit_code == 2);
  CHECK_THAT(renamed.output, Catch::Contains("unknown schedule 'constant' parameter 'c'") &&
                                 Catch::Contains("--set schedule=constant replaces the whole section"));
  CHECK(!fs::exists(out));
  auto replaced =
      run_cli(std::string(kQuickRun) + " --set schedule=constant --set schedule.eta=0.05 -o " + out.string());
  INFO(replaced.output);
  REQUIRE(replaced.exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  const auto& parameters = data.layout.configurations.at(0).parameters;
  auto value = [&](const std::string& key) {
    for (const auto& [k, v] : parameters)
      if (k == key) return format_value(v);
    return std::string("absent");
  };
  CHECK(value("schedule") == "constant");
  CHECK(value("schedule.eta") == "0.05");
  CHECK(value("schedule.t0") == "absent");

  struct Case {
    std::string set, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"optimizer.lr=0.1", "The step size is set by the schedule: schedule.eta of a constant schedule"},
           {"optimizer.lr=0.1", "this experiment's [schedule] is 'inv_mu_t'"},
           {"optimizer.c=0.5", "'c' is a parameter of another section: write schedule.c"},
           {"experiment.batch=4", "'batch' is a parameter of another section: write optimizer.batch"},
           {"problem.replicates=4", "write experiment.replicates"},
           {"optimizer.lr=0.1 --set schedule=constant", "The step size is set by the schedule: write schedule.eta"}}) {
    auto o = run_cli(std::string(kQuickRun) + " --set " + c.set + " -o " + scratch("x.h5").string());
    INFO(c.set << "\n" << o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains(c.expect));
  }
}

TEST_CASE("overrides: plot.KEY reaches the plot of run --plot", "[overrides][cli]") {
  const auto out = scratch("plotted.h5");
  auto o = run_cli(std::string(kQuickRun) + " --plot --set plot.band=nonsense -o " + out.string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains("band"));
  CHECK(!fs::exists(out));
}
