// One record per configuration (experiments/experiment.hpp's configuration_record): what the trace file
// stores, what labels vary over and what claims are checked against before a run are the same keys.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/registry.hpp"
#include "experiments/claims.hpp"
#include "experiments/experiment.hpp"
#include "results/trace_query.hpp"

using namespace ratelab;

namespace {

std::pair<int, std::string> run_cli(const std::string& arguments) {
  const std::string cmd = std::string(RATELAB_BINARY_DIR) + "/tools/ratelab " + arguments + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("a claim filtering on stream_salt is judged the same before the run and on the file",
          "[claims][cli][record]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ratelab_record_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string h5 = (dir / "x.h5").string();
  auto write_ini = [&](const std::string& claim) {
    const fs::path file = dir / "x.ini";
    std::ofstream(file) << "[experiment]\nname = x\nsteps = 50\nreplicates = 4\ncheckpoints = 5\n"
                           "[problem]\nname = quadratic\nd = 3\n[optimizer]\nname = sgd\n"
                           "[schedule]\nname = constant\neta = 0.1\n[claims]\n"
                        << claim << "\n";
    return file.string();
  };
  // Under common random numbers every configuration's stream salt is 0.
  const std::string good = write_ini("clean = status where=stream_salt=0 error=0");
  const auto [run_ok, run_out] = run_cli("verify " + good + " -o " + h5 + " --threads 1");
  CHECK(run_ok == 0);
  CHECK_THAT(run_out, Catch::Contains("PASS clean"));
  const auto [file_ok, file_out] = run_cli("verify " + good + " --from " + h5);
  CHECK(file_ok == 0);
  CHECK_THAT(file_out, Catch::Contains("PASS clean"));

  const std::string bad = write_ini("clean = status where=stream_salt=7 error=0");
  const auto [run_bad, run_bad_out] = run_cli("verify " + bad + " --threads 1");
  CHECK(run_bad == 2);
  CHECK_THAT(run_bad_out, Catch::Contains("no configuration matches where = stream_salt=7"));
  const auto [file_bad, file_bad_out] = run_cli("verify " + bad + " --from " + h5);
  CHECK(file_bad == 2);
  CHECK_THAT(file_bad_out, Catch::Contains("no configuration matches where = stream_salt=7"));
  fs::remove_all(dir);
}

TEST_CASE("the record a plan checks claims against is the record the file stores", "[claims][record]") {
  const Registry registry = builtin_registry();
  const ExperimentPlan plan = plan_experiment(
      registry,
      parse_ini("[experiment]\nname = r\nsteps = 10\nreplicates = 2\ncommon_random_numbers = false\n"
                "[problem]\nname = quadratic\nd = 2\nmu = 0.5, 1\n[optimizer]\nname = sgd\n"
                "[schedule]\nname = constant\n",
                "r.ini"),
      {});
  const results::TraceData before = claims::layout_of(plan);
  REQUIRE(before.layout.configurations.size() == 2);
  for (std::size_t c = 0; c < 2; ++c) {
    const auto record = configuration_record(plan.configurations[c]);
    CHECK(before.layout.configurations[c].parameters == record.parameters);
    CHECK(before.layout.configurations[c].label == plan.configurations[c].label);
    // Without common random numbers the salt is the id read as a number: it varies, but the label is made of
    // what the user set, so it does not show it.
    CHECK(results::key_value(record, "stream_salt") == std::to_string(std::stoull(record.id, nullptr, 16)));
  }
  CHECK(plan.configurations[0].label == "sgd mu=0.5");
  CHECK(plan.configurations[1].label == "sgd mu=1");
}
