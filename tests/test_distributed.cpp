// The MPI-free parts of experiments/distributed.hpp: launcher detection and the run records ranks send
// (the journal's format). The mpirun tests themselves are in tests/mpi/ (label `mpi`).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <string>

#include "core/params.hpp"
#include "experiments/distributed.hpp"
#include "results/journal.hpp"

using namespace ratelab;

namespace {

// Sets launcher variables for the duration of a test and restores them after.
class LauncherEnv {
 public:
  LauncherEnv() {
    for (const char* name : kNames) {
      const char* v = std::getenv(name);
      saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
      unsetenv(name);
    }
  }
  ~LauncherEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) setenv(name, value->c_str(), 1);
      else unsetenv(name);
    }
  }
  void set(const char* name, const char* value) { setenv(name, value, 1); }

 private:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK",
                                           "PMIX_RANK"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

}  // namespace

TEST_CASE("an MPI launch is recognized from the launcher's environment alone", "[distributed]") {
  LauncherEnv env;
  CHECK(!distributed::detect_launch());
  CHECK(distributed::join_if_launched() == nullptr);  // a plain run never touches MPI
  env.set("OMPI_COMM_WORLD_SIZE", "3");
  env.set("OMPI_COMM_WORLD_RANK", "1");
  auto open_mpi = distributed::detect_launch();
  REQUIRE(open_mpi);
  CHECK(open_mpi->size == 3);
  CHECK(open_mpi->rank == 1);
  if (!distributed::built_with_mpi()) {
    // Without MPI, every process would run the whole sweep into the same file: refused; rank 0 says how
    // to fix it, the others exit with the same code quietly.
    CHECK_THROWS_AS(distributed::join_if_launched(), distributed::PeerFailure);
    env.set("OMPI_COMM_WORLD_RANK", "0");
    try {
      distributed::join_if_launched();
      FAIL("a launch with 3 processes was accepted without MPI");
    } catch (const ConfigError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("RATELAB_MPI=ON") && Catch::Contains("3 processes"));
    }
  }
  LauncherEnv pmix;
  pmix.set("PMIX_RANK", "2");
  auto from_pmix = distributed::detect_launch();
  REQUIRE(from_pmix);
  CHECK(from_pmix->rank == 2);
  CHECK(from_pmix->size == 0);  // unknown until MPI is up
}

TEST_CASE("a run record round-trips bit for bit and a damaged one is refused", "[distributed]") {
  RunResult r;
  r.status = RunStatus::diverged;
  r.stop_step = 1234;
  r.message = "diverged at step 1234";
  r.wall_seconds = 0.125;
  r.traces = {1.0, -0.0, std::numeric_limits<double>::quiet_NaN(), 1e-310, std::numeric_limits<double>::infinity()};
  r.stats = {{"noise_mean_sq_norm", 2.5}};
  r.extra_names = {"theta"};
  r.extra_traces = {0.5, std::nan("")};
  std::vector<unsigned char> bytes;
  results::encode_record(bytes, 7, 42, r);
  const results::JournalRecord back = results::decode_record(bytes.data(), bytes.size());
  CHECK(back.configuration == 7);
  CHECK(back.replicate == 42);
  CHECK(back.result.status == r.status);
  CHECK(back.result.stop_step == r.stop_step);
  CHECK(back.result.message == r.message);
  REQUIRE(back.result.traces.size() == r.traces.size());
  CHECK(std::memcmp(back.result.traces.data(), r.traces.data(), r.traces.size() * sizeof(double)) == 0);
  CHECK(back.result.stats == r.stats);
  CHECK(back.result.extra_names == r.extra_names);
  CHECK(std::memcmp(back.result.extra_traces.data(), r.extra_traces.data(), 2 * sizeof(double)) == 0);
  bytes[bytes.size() / 2] ^= 0x10;
  CHECK_THROWS_WITH(results::decode_record(bytes.data(), bytes.size()), Catch::Contains("CRC"));
  CHECK_THROWS(results::decode_record(bytes.data(), bytes.size() - 1));
}
