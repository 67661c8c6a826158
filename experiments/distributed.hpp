// One sweep over several processes started by an MPI launcher (`mpirun -n K ratelab run ...`), in a build
// with -DRATELAB_MPI=ON. MPI stays behind this header: no MPI type appears here, and only
// experiments/distributed_mpi.cpp includes <mpi.h>.
//
// Rank 0 does everything a single process does (validation, resume, journal, the one HDF5 writer,
// signals, the summary) and computes runs with its own threads; it hands out the other runs in chunks on
// request, guided (a chunk is a share of what remains, so chunks shrink as the work runs out and a rank
// that finishes early asks again and takes more). Ranks > 0 compute the chunks with their TBB threads and
// send every finished run back; rank 0's sink writes it exactly as in a single process, so the trace data
// are byte-identical to a single-process run whatever the number of ranks and threads.
//
// Only the main thread of a process makes MPI calls (MPI_THREAD_FUNNELED), and it never blocks inside
// MPI while waiting: it polls and sleeps, so waiting ranks leave the cores to the ranks that compute.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "experiments/sweep.hpp"

namespace ratelab::distributed {

// Whether this build can run one sweep over several MPI ranks (-DRATELAB_MPI=ON).
bool built_with_mpi();

// What the launcher's environment says, without touching MPI: OMPI_COMM_WORLD_SIZE/RANK (Open MPI),
// PMI_SIZE/PMI_RANK (MPICH, srun --mpi=pmi2), PMIX_RANK (PMIx: srun --mpi=pmix). nullopt: not started by
// an MPI launcher. size is 0 when only the rank is known.
struct Launch {
  int rank = 0;
  int size = 0;
};
std::optional<Launch> detect_launch();

// Thrown on the ranks that were fine when another rank failed before the sweep started; that rank
// printed the reason, this one exits quietly with `exit_code`.
struct PeerFailure : std::runtime_error {
  explicit PeerFailure(int code) : std::runtime_error("another rank failed"), exit_code(code) {}
  int exit_code;
};

// This process's membership of the MPI job. Created once, on the main thread, which is then the only
// thread that calls into it.
class Cluster {
 public:
  virtual ~Cluster() = default;  // MPI_Finalize
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // Before the sweep, every rank passes the same agreement points in the same order; a rank that fails
  // before one passes it through fail() instead. A point where every rank is fine returns; otherwise it
  // throws PeerFailure (with the first failing rank's code) on the ranks that were fine.
  //   point 1: every rank validated the experiment; point 2: rank 0 opened its output files.
  // `threads` is this rank's worker thread count (for sizing the chunks).
  virtual void agree(int threads) = 0;
  // Called by the error handler of a rank that failed with `exit_code`; `report` prints the error. Before
  // the sweep started this is the failing rank's agreement point, and it reports on rank 0, and on the
  // others only when rank 0 was fine (an error every rank hits, such as a bad --set, is printed once).
  // Once the sweep has started the other ranks may be waiting for this one, so after reporting it ends
  // the whole job (MPI_Abort with `exit_code`); finished runs are in rank 0's journal.
  virtual void fail(int exit_code, const std::function<void()>& report) = 0;

  // Rank 0, after agreement point 2: the sweep, sharing the runs `options.skip` leaves with the other
  // ranks; `sink` receives every run, local or remote, on this thread.
  virtual SweepSummary coordinate(const PreparedExperiment& experiment, const SweepOptions& options,
                                  const RunSink& sink) = 0;
  // Rank 0, after its file is committed: tells the other ranks the outcome, so every rank exits with the
  // same code.
  virtual void release(const SweepSummary& summary) = 0;
  // Ranks > 0, after agreement point 2: computes what rank 0 hands out until it says there is no more
  // (or stop); returns rank 0's summary of the whole sweep.
  virtual SweepSummary work(const PreparedExperiment& experiment, const SweepOptions& options) = 0;
};

// MPI lives in its own executable, ratelab-mpi (tools/mpi_main.cpp), so that `ratelab` does not load the
// MPI libraries at every start (a 1-step run's fixed cost): under a launcher, `ratelab run` replaces itself
// with ratelab-mpi from its own directory (tools/cli.cpp), whose main provides join_mpi here.
using JoinMpi = std::unique_ptr<Cluster> (*)();
void provide_mpi(JoinMpi join);
bool mpi_provided();  // this executable links MPI (ratelab-mpi)
// distributed_mpi.cpp, linked into ratelab-mpi only: MPI_Init_thread and the cluster.
std::unique_ptr<Cluster> join_mpi();

// Joins the MPI job (MPI_Init_thread) when this process was started by an MPI launcher; nullptr when it
// was not (a plain `ratelab run` never touches MPI). Without MPI support, a launch with more than one
// process is refused (each process would run the whole sweep into the same file): a ConfigError on rank
// 0, PeerFailure(2) on the others. In a build with MPI, only ratelab-mpi may call it under a launcher.
std::unique_ptr<Cluster> join_if_launched();

}  // namespace ratelab::distributed
