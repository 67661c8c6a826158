// `mpirun -n K ratelab run` (built with -DRATELAB_MPI=ON): one file, byte-identical in trace data to a
// single-process run; errors agreed on without hanging; interruption and resume. Registered with the
// ctest label `mpi`. Every mpirun is wrapped in `timeout`, so a hang fails the test instead of blocking.
#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <map>
#include <thread>

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab_test;

namespace {

// RATELAB_MPIRUN: mpirun with what a single machine (and root, in containers) needs (tests/CMakeLists.txt).
std::string mpirun(int ranks) { return "timeout 120 " + std::string(RATELAB_MPIRUN) + " -n " + std::to_string(ranks); }

const std::string kSweep =
    "run quickstart --quiet --set experiment.steps=3000 --set experiment.replicates=30 --set schedule.c=0.5,1";
// Long enough that an interrupt lands while runs are still going: with the fast paths (issue 16) the 80
// runs of 30000 steps finished in 0.8 s, before the SIGINT below arrived, and the test failed on an idle machine.
const std::string kLong =
    "run quickstart --quiet --set experiment.steps=150000 --set experiment.replicates=40 --set schedule.c=0.5,1";

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::int64_t root_int(const fs::path& file, const std::string& key) {
  auto data = ratelab::results::read_trace_file(file.string());
  for (const auto& [k, v] : data.layout.root)
    if (k == key) return std::get<std::int64_t>(v);
  FAIL("no root attribute " << key);
  return -1;
}

const std::vector<std::vector<unsigned char>>& reference(const std::string& sweep) {
  static std::map<std::string, std::vector<std::vector<unsigned char>>> cache;
  auto& bytes = cache[sweep];
  if (bytes.empty()) {
    auto ref = scratch("reference_" + std::to_string(cache.size()) + ".h5");
    auto o = run_cli(sweep + " --threads 2 -o " + ref.string());
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    bytes = trace_bytes(ref);
  }
  return bytes;
}

}  // namespace

TEST_CASE("mpirun -n 2 and -n 3 write one file whose trace data equal a single process's byte for byte", "[mpi]") {
  for (const auto& [ranks, threads] : {std::pair{2, 2}, std::pair{3, 1}}) {
    INFO(ranks << " ranks, " << threads << " threads each");
    auto out = scratch("mpi_" + std::to_string(ranks) + ".h5");
    auto o = run_cli(kSweep + " --threads " + std::to_string(threads) + " -o " + out.string(), "", mpirun(ranks));
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    CHECK(count(o.output, "wrote ") == 1);  // rank 0 alone reports
    CHECK_THAT(o.output, Catch::Contains("60 ok"));
    CHECK(!fs::exists(out.string() + ".journal"));
    CHECK(trace_bytes(out) == reference(kSweep));
    CHECK(root_int(out, "ranks") == ranks);
    CHECK(root_int(out, "threads") == threads);
  }
}

TEST_CASE("under mpirun, bad input exits 2 on every rank, says why once, and does not hang", "[mpi]") {
  auto out = scratch("mpi_bad.h5");
  // Every rank finds the error while validating.
  auto o = run_cli(kSweep + " --set optimizer.name=sdg -o " + out.string(), "", mpirun(3));
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK(count(o.output, "unknown optimizer 'sdg'; did you mean 'sgd'") == 1);
  CHECK(!fs::exists(out));
  // Only rank 0 finds it (its output file exists); the other ranks wait for it and exit with its code.
  REQUIRE(run_cli(kSweep + " -o " + out.string()).exit_code == 0);
  const auto before = trace_bytes(out);
  auto exists = run_cli(kSweep + " -o " + out.string(), "", mpirun(2));
  INFO(exists.output);
  CHECK(exists.exit_code == 2);
  CHECK(count(exists.output, "use --overwrite") == 1);
  CHECK(trace_bytes(out) == before);
  auto nothing = run_cli(kSweep + " --resume -o " + scratch("mpi_nothing.h5").string(), "", mpirun(2));
  CHECK(nothing.exit_code == 2);
  CHECK_THAT(nothing.output, Catch::Contains("nothing to resume"));
}

TEST_CASE("SIGINT to mpirun leaves a resumable result, and --resume under mpirun completes it identically",
          "[mpi]") {
  auto out = scratch("mpi_sigint.h5");
  const fs::path journal = out.string() + ".journal";
  fs::remove(journal);
  const std::string cmd = std::string(RATELAB_MPIRUN) + " -n 2 " + RATELAB_BINARY_DIR + "/tools/ratelab " + kLong +
                          " --threads 1 -o " + out.string() + " > " + out.string() + ".log 2>&1";
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Interrupt once some runs are in the journal (its header is 16 bytes), like a user pressing Ctrl-C.
  const auto start = std::chrono::steady_clock::now();
  std::error_code ec;
  while (!(fs::exists(journal, ec) && fs::file_size(journal, ec) > 16) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(60))
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  kill(pid, SIGINT);
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(90)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL("mpirun did not end after SIGINT");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // mpirun sends the ranks SIGTERM (then SIGKILL after a grace period): rank 0 commits a valid file with
  // the unfinished runs marked, or, if the grace period was too short, leaves the journal.
  REQUIRE((fs::exists(out) || fs::exists(journal)));
  auto resumed = run_cli(kLong + " --threads 1 --resume -o " + out.string(), "", mpirun(3));
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("recovered "));
  CHECK_THAT(resumed.output, !Catch::Contains("recovered 0 finished runs"));
  CHECK_THAT(resumed.output, !Catch::Contains("recovered 80 finished runs"));
  CHECK(trace_bytes(out) == reference(kLong));
}

TEST_CASE("under mpirun, a signal to rank 0, a time limit and a killed rank 0 are resumed identically", "[mpi]") {
  SECTION("SIGINT on rank 0: every rank exits 4, the file holds the finished runs, a single process resumes") {
    auto out = scratch("mpi_rank0_sigint.h5");
    auto o = run_cli(kLong + " --threads 1 -o " + out.string(), "RATELAB_FAULT_SIGNAL_AFTER_RUNS=5", mpirun(3));
    INFO(o.output);
    CHECK(o.exit_code == 4);
    CHECK_THAT(o.output, Catch::Contains("continue with:") && Catch::Contains("--resume"));
    REQUIRE(fs::exists(out));
    CHECK(!fs::exists(out.string() + ".journal"));
    auto resumed = run_cli(kLong + " --threads 2 --resume -o " + out.string());
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK(trace_bytes(out) == reference(kLong));
  }
  SECTION("--time-limit: exit 4, then --resume under mpirun") {
    auto out = scratch("mpi_time_limit.h5");
    auto o = run_cli(kLong + " --threads 1 --time-limit 0.3 -o " + out.string(), "", mpirun(2));
    INFO(o.output);
    CHECK(o.exit_code == 4);
    REQUIRE(fs::exists(out));
    auto resumed = run_cli(kLong + " --threads 1 --resume -o " + out.string(), "", mpirun(2));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK(trace_bytes(out) == reference(kLong));
  }
  SECTION("rank 0 killed (SIGKILL): the job ends, the journal has the finished runs, --resume completes it") {
    auto out = scratch("mpi_killed.h5");
    fs::remove(out.string() + ".journal");
    auto o = run_cli(kLong + " --threads 1 -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=5", mpirun(2));
    INFO(o.output);
    CHECK(o.exit_code != 0);
    CHECK(!fs::exists(out));
    REQUIRE(fs::exists(out.string() + ".journal"));
    auto resumed = run_cli(kLong + " --threads 1 --resume -o " + out.string(), "", mpirun(2));
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, Catch::Contains("recovered 5 finished runs"));
    CHECK(trace_bytes(out) == reference(kLong));
  }
}

TEST_CASE("under mpirun, run --reuse copies on rank 0, the other ranks compute the rest: the same trace data",
          "[mpi][reuse]") {
  // kSweep with 30 replicates grown from a file of 20: 40 runs reused, 20 computed by the ranks.
  const std::string old_sweep =
      "run quickstart --quiet --set experiment.steps=3000 --set experiment.replicates=20 --set schedule.c=0.5,1";
  const fs::path old_file = scratch("mpi_reuse_old.h5"), out = scratch("mpi_reuse.h5");
  REQUIRE(run_cli(old_sweep + " --threads 2 -o " + old_file.string()).exit_code == 0);
  auto dry = run_cli(kSweep + " --threads 1 --reuse " + old_file.string() + " --dry-run -o " + out.string(), "", mpirun(3));
  INFO(dry.output);
  REQUIRE(dry.exit_code == 0);
  CHECK(count(dry.output, "plan: ") == 1);  // rank 0 alone prints it, and nobody waits for the others
  CHECK_THAT(dry.output, Catch::Contains(": 40 reused, 20 to run"));
  CHECK(!fs::exists(out));
  auto o = run_cli(kSweep + " --threads 1 --reuse " + old_file.string() + " -o " + out.string(), "", mpirun(3));
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK(count(o.output, "plan: ") == 1);
  CHECK_THAT(o.output, Catch::Contains("60 ok"));
  CHECK(trace_bytes(out) == reference(kSweep));
}
