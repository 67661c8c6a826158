// `ratelab-faults`: the `ratelab` command line with the crash tests' fault points installed
// (results/fault_points.hpp), built with the tests only; tests/cli_support.hpp runs it instead of ratelab
// when a test sets one of these variables:
//   RATELAB_FAULT_KILL_AFTER_RUNS=n    SIGKILL after the n-th run of the process is written
//   RATELAB_FAULT_SIGNAL_AFTER_RUNS=n  SIGINT after the n-th run
//   RATELAB_FAULT_KILL_IN_WRITE=n      SIGKILL in the middle of a trace file's n-th run write (traces
//                                      written, run fields not: the worst moment for the HDF5 file)
#include <csignal>
#include <cstdlib>

#include "experiments/distributed.hpp"
#include "results/fault_points.hpp"
#include "tools/cli.hpp"

namespace {

long kill_after_runs = 0, signal_after_runs = 0, kill_in_write = 0;

long from_environment(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : 0;
}

void after_run_written(long n) {
  if (n == kill_after_runs) std::raise(SIGKILL);
  if (n == signal_after_runs) std::raise(SIGINT);
}

void in_run_write(long n) {
  if (n == kill_in_write) std::raise(SIGKILL);
}

}  // namespace

int main(int argc, char** argv) {
  kill_after_runs = from_environment("RATELAB_FAULT_KILL_AFTER_RUNS");
  signal_after_runs = from_environment("RATELAB_FAULT_SIGNAL_AFTER_RUNS");
  kill_in_write = from_environment("RATELAB_FAULT_KILL_IN_WRITE");
  auto& points = ratelab::results::fault_points();
  if (kill_after_runs > 0 || signal_after_runs > 0) points.after_run_written = after_run_written;
  if (kill_in_write > 0) points.in_run_write = in_run_write;
#if RATELAB_FAULTS_WITH_MPI
  // The MPI crash tests run this program under mpirun: it links MPI itself, as ratelab-mpi does.
  ratelab::distributed::provide_mpi(&ratelab::distributed::join_mpi);
#endif
  return ratelab::cli::run(argc, argv);
}
