// Running an experiment into a trace file: validation, the sweep, the single HDF5 writer, provenance.
// The CLI, the benchmarks and the tests all go through here.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "experiments/experiment.hpp"
#include "experiments/sweep.hpp"
#include "results/journal.hpp"
#include "results/trace_file.hpp"

namespace ratelab {

namespace distributed {
class Cluster;  // experiments/distributed.hpp
}

// How much run data the commands that copy runs from a trace file (resume, --reuse, merge) read at once: a
// window of configurations of about this size, at least one configuration's replicates.
inline constexpr std::size_t copy_window_bytes = std::size_t(64) << 20;

struct RunToFileOptions {
  std::string output_path;
  bool overwrite = false;
  // Continue an interrupted or killed sweep writing output_path: keep every finished run found in the
  // committed file and in its journal (after checking they belong to this experiment), run the rest.
  // With overwrite too: keep the journal's runs only and replace output_path whatever it holds (what a
  // `run --overwrite` stopped before its commit was doing).
  bool resume = false;
  // Run only share `shard_index` of `shard_count` (cluster job arrays): run j = configuration * R + replicate
  // belongs to share j mod shard_count, so every share holds every configuration's replicates in equal
  // numbers and the shares cost the same whatever the configurations cost; the same partition everywhere.
  int shard_index = 0;
  int shard_count = 1;
  // Trace files of earlier runs (`run --reuse`): every run of this experiment that one of them holds
  // finished under the same run fingerprint and replicate index is copied from the first such file instead
  // of run (streamed a window of configurations at a time). A file written by another ratelab build
  // (version, commit, compiler or flags differ) is refused unless reuse_other_builds.
  std::vector<std::string> reuse;
  bool reuse_other_builds = false;
  // What --resume and --reuse read of a trace file at once (tests force one configuration per window).
  std::size_t window_bytes = copy_window_bytes;
  // Print the plan (per configuration: runs kept by --resume, reused, to run) and stop: nothing is written.
  bool dry_run = false;
  SweepOptions sweep;
  std::string command_line;
  // The MPI job this process belongs to (distributed::join_if_launched), or null. With more than one
  // rank, every rank calls run_experiment_to_file: rank 0 writes the file and the others compute runs
  // for it (their sweep.threads are their own; their summary is rank 0's).
  distributed::Cluster* cluster = nullptr;
};

// Writing the output failed after the sweep started (disk full, I/O error), so the file was not committed.
// Nothing finished is lost: the journal holds `journaled_runs` finished runs, and `run ... --resume`
// continues once the cause is removed.
class OutputFailure : public std::runtime_error {
 public:
  OutputFailure(const std::string& what, std::string journal_path, long journaled_runs, bool disk_full)
      : std::runtime_error(what), journal_path(std::move(journal_path)), journaled_runs(journaled_runs), disk_full(disk_full) {}
  std::string journal_path;
  long journaled_runs;
  bool disk_full;
};

// Validates everything (ConfigError before any file is created), runs the sweep, and commits the file;
// an interrupted sweep still commits a valid file with the unfinished runs marked. Finished runs go to
// the journal (results/journal.hpp) before the HDF5 file, so a kill at any moment loses none of them.
SweepSummary run_experiment_to_file(const Registry& registry, const ExperimentPlan& plan,
                                    const RunToFileOptions& options);

// The file layout of a prepared experiment (configurations, checkpoints, views, metrics, provenance).
// `threads` are the worker threads of each of `ranks` processes (ranks > 1 under MPI).
results::TraceLayout trace_layout(const PreparedExperiment& experiment, int threads, int ranks,
                                  const std::string& command_line);

// Everything that determines the bits of a configuration's runs but the replicate index, one input a line
// (results/SCHEMA.md lists them): the fingerprint version and the RNG stream layout version, the
// configuration's components with their resolved parameters and origins (a plugin's library hash), the
// stream salt and common-random-number setting, the seed, the instance mode and the run-loop options, the
// checkpoints, views and metrics, and the contents of the data files the problem reads. Not in it: the
// experiment's name and description, replicates, threads, ranks, shards, the data directory's path, the
// other configurations, comments and the order of the sections.
std::string run_fingerprint_inputs(const PreparedExperiment& experiment, std::size_t configuration);
// Every configuration's run fingerprint: stable_id of its run_fingerprint_inputs (data files hashed once).
std::vector<std::string> run_fingerprints(const PreparedExperiment& experiment);

// A path to an experiment file: NAME itself if it is a file, else the preset NAME from the preset
// directories (RATELAB_PRESET_PATH, the installed presets, the source tree). Unknown: ConfigError listing
// the presets with the closest match.
std::string find_experiment(const std::string& name_or_path);
// What `run --resume` keeps, and where each run is read when it is copied (for_each_kept_run): the plan
// only, no run data, so a resume of 100,000 runs holds a few bytes per run and not the runs.
struct ResumeState {
  std::vector<bool> done;  // [configuration * R + replicate]: a finished run is kept
  long kept = 0;           // how many
  std::string note;        // what was recovered, for the user
  std::string file;        // the committed file its kept runs are read from ("": none)
  // The journal its kept runs are read from (null: none), open since it was scanned: its offsets stay valid
  // after the new journal replaced the path.
  std::shared_ptr<results::JournalReader> journal;
  // [configuration * R + replicate]: the byte offset of the run's last finished record in the journal (kept
  // over the file's copy), or no_record.
  static constexpr std::uint64_t no_record = ~std::uint64_t(0);
  std::vector<std::uint64_t> journal_record;
  std::vector<std::size_t> journal_only;  // runs finished in the journal alone, in the order it first names them
};
ResumeState recover_finished_runs(const std::string& path, const results::TraceLayout& layout, bool journal_only = false);
// Passes every run `state` keeps to `visit` (configuration, replicate, run), one at a time: the committed
// file's runs a window of about `window_bytes` at a time in (configuration, replicate) order (the journal's
// copy where it has one), then the journal's other runs in its order.
void for_each_kept_run(const ResumeState& state, const results::TraceLayout& layout, std::size_t window_bytes,
                       const results::RunVisitor& visit);

// Merges files of one experiment (shards, partial runs) into `output`: checks they belong to the same
// experiment, refuses runs finished in two inputs (overlap), and without allow_partial refuses a result
// with runs missing, naming the missing shares. Trace data equal a single-machine run's byte for byte; a
// partial merge marks the missing runs, and `run --resume` on the output completes it.
struct MergeReport {
  long finished = 0, missing = 0;
};
// Each part is copied a window of configurations at a time, of about `window_bytes` of run data (at least
// one configuration). When *cancel becomes true (SIGINT, SIGTERM), the merge stops between two runs,
// removes its OUTPUT.partial and throws MergeInterrupted: nothing is written. A stale OUTPUT.partial that
// a killed merge left (no OUTPUT.journal beside it: that would be a `run`'s) is removed once the lock is held.
class MergeInterrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
MergeReport merge_trace_files(const std::vector<std::string>& inputs, const std::string& output, bool overwrite,
                              bool allow_partial, std::size_t window_bytes = copy_window_bytes,
                              const std::atomic<bool>* cancel = nullptr);

struct PresetInfo {
  std::string name, path, description;
};
std::vector<PresetInfo> list_presets();

}  // namespace ratelab
