// The `ratelab` executable end to end: exit codes, messages, output files, determinism across threads.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "results/trace_file.hpp"

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome run_cli(const std::string& args) {
  const std::string cmd = std::string(RATELAB_BINARY_DIR) + "/tools/ratelab " + args + " 2>&1";
  Outcome o;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe)) o.output.append(buf, n);
  const int status = pclose(pipe);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ratelab_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / name;
  fs::remove(p);
  fs::remove(p.string() + ".partial");
  return p;
}

const char* kSmall = "run quickstart --quiet --set experiment.steps=2000 --set experiment.replicates=6";

}  // namespace

TEST_CASE("ratelab run writes a trace file and says where", "[cli]") {
  auto out = scratch("small.h5");
  auto o = run_cli(std::string(kSmall) + " -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("wrote " + out.string()) && Catch::Contains("6 ok"));
  auto data = ratelab::results::read_trace_file(out.string());
  CHECK(data.layout.replicates == 6);
  CHECK(data.layout.checkpoints.back() == 2000);
  CHECK(data.layout.experiment_name == "quickstart");
  // Running again without --overwrite is refused and leaves the file alone.
  auto again = run_cli(std::string(kSmall) + " -o " + out.string());
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.output, Catch::Contains("--overwrite"));
  CHECK(run_cli(std::string(kSmall) + " --overwrite -o " + out.string()).exit_code == 0);
}

TEST_CASE("trace data are bit-for-bit identical with 1 and 2 threads", "[cli]") {
  auto one = scratch("t1.h5"), two = scratch("t2.h5");
  REQUIRE(run_cli(std::string(kSmall) + " --threads 1 -o " + one.string()).exit_code == 0);
  REQUIRE(run_cli(std::string(kSmall) + " --threads 2 -o " + two.string()).exit_code == 0);
  for (const char* metric : {"traces/subopt", "traces/dist2", "traces/value", "runs/status", "runs/stop_step"}) {
    INFO(metric);
    auto a = ratelab::results::read_dataset_bytes(one.string(), metric);
    auto b = ratelab::results::read_dataset_bytes(two.string(), metric);
    CHECK(!a.empty());
    CHECK(a == b);
  }
}

TEST_CASE("bad input: exit code 2, a message naming the problem, and no output file", "[cli]") {
  auto out = scratch("bad.h5");
  auto bad_file = scratch("bad.ini");
  std::ofstream(bad_file) << "[experiment]\nsteps = 10\nstepz = 3\n[problem]\nname = quadratic\n[optimizer]\nname = sgd\n"
                             "[schedule]\nname = constant\n";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases{
      {"quickstart --set optimizer.name=sdg", "unknown optimizer 'sdg'; did you mean 'sgd'"},
      {"quickstart --set problem.name=quadratik", "unknown problem 'quadratik'; did you mean 'quadratic'"},
      {bad_file.string(), "bad.ini:3: unknown experiment parameter 'stepz'; did you mean 'steps'"},
      {"quickstart --set optimizer.batch=0", "optimizer.batch = 0 violates optimizer.batch >= 1"},
      {"quickstart --set problem.d=abc", "problem.d = 'abc' is malformed"},
      {"quickstrat", "unknown preset 'quickstrat'; did you mean 'quickstart'"},
      {"quickstart --threads -3", "threads"},
  };
  for (const auto& c : cases) {
    auto o = run_cli("run " + c.args + " --quiet -o " + out.string());
    INFO(c.args << "\n" << o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains(c.expect));
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(out.string() + ".partial"));
  }
  // An output path that cannot be written: a directory below a regular file.
  auto blocker = scratch("plainfile");
  std::ofstream(blocker) << "x";
  auto o = run_cli(std::string(kSmall) + " -o " + (blocker / "sub" / "x.h5").string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains((blocker / "sub").string()));
  CHECK(!fs::exists(blocker / "sub"));
}

TEST_CASE("list and describe come from the declarations", "[cli]") {
  auto o = run_cli("list");
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("sgd") && Catch::Contains("quadratic") && Catch::Contains("inv_sqrt") &&
                           Catch::Contains("quickstart"));
  auto d = run_cli("describe quadratic");
  CHECK(d.exit_code == 0);
  CHECK_THAT(d.output, Catch::Contains("mu") && Catch::Contains("[mu > 0]") && Catch::Contains("noise_scale"));
  CHECK(run_cli("describe quadratik").exit_code == 2);
  CHECK(run_cli("frobnicate").exit_code == 2);
  CHECK(run_cli("run --help").exit_code == 0);
}
