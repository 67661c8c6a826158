// The part of experiments/distributed.hpp that needs no MPI: launcher detection, and the refusal to run
// under a launcher in a build without MPI.
#include "experiments/distributed.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/params.hpp"

namespace ratelab::distributed {

bool built_with_mpi() { return RATELAB_WITH_MPI != 0; }

namespace {
JoinMpi g_join_mpi = nullptr;
}
void provide_mpi(JoinMpi join) { g_join_mpi = join; }
bool mpi_provided() { return g_join_mpi != nullptr; }

namespace {
std::optional<int> env_int(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < 0) return std::nullopt;
  return int(n);
}
}  // namespace

std::optional<Launch> detect_launch() {
  const std::pair<const char*, const char*> launchers[] = {
      {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"}, {"PMI_SIZE", "PMI_RANK"}, {nullptr, "PMIX_RANK"}};
  for (const auto& [size_var, rank_var] : launchers) {
    const auto size = size_var ? env_int(size_var) : std::nullopt;
    const auto rank = env_int(rank_var);
    if (size || rank) return Launch{rank.value_or(0), size.value_or(0)};
  }
  return std::nullopt;
}

std::unique_ptr<Cluster> join_if_launched() {
  const auto launch = detect_launch();
  if (!launch) return nullptr;
  if (g_join_mpi) return g_join_mpi();
  if (built_with_mpi())
    throw std::logic_error("join_if_launched under an MPI launcher in an executable without MPI: `ratelab run` "
                           "should have run ratelab-mpi instead");
  if (launch->rank > 0) throw PeerFailure(2);  // rank 0 says why, once
  if (launch->size > 1)
    throw ConfigError("this process was started by an MPI launcher (" + std::to_string(launch->size) +
                      " processes), but this ratelab was built without MPI, so every process would run the whole sweep into "
                      "the same file. Rebuild with -DRATELAB_MPI=ON (the release preset does; needs Debian's "
                      "libopenmpi-dev), or run without mpirun (--shard i/N and `ratelab merge` split a sweep over "
                      "machines without MPI)");
  return nullptr;
}

}  // namespace ratelab::distributed
