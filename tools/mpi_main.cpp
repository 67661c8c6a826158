// `ratelab-mpi`: the ratelab command line with MPI linked in. `ratelab run` started by an MPI launcher
// replaces itself with this program (found beside it, same arguments), so that ratelab itself never loads
// the MPI libraries: they cost every start about 0.03 s (experiments/distributed.hpp).
#include "experiments/distributed.hpp"
#include "tools/cli.hpp"

int main(int argc, char** argv) {
  ratelab::distributed::provide_mpi(&ratelab::distributed::join_mpi);
  return ratelab::cli::run(argc, argv);
}
