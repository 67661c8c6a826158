// Running an experiment into a trace file: validation, the sweep, the single HDF5 writer, provenance.
// The CLI, the benchmarks and the tests all go through here.
#pragma once

#include <atomic>
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
struct ResumeState {
  std::vector<results::JournalRecord> finished;  // runs to keep
  std::vector<bool> done;                        // [configuration * R + replicate]
  std::string note;                              // what was recovered, for the user
};
// What a previous sweep writing `path` left: the committed file and/or PATH.journal, checked against
// `layout`. Throws ConfigError if neither exists or either belongs to a different experiment (saying how
// to recover the journal's runs when only the file is foreign). With journal_only, the file is not read.
ResumeState recover_finished_runs(const std::string& path, const results::TraceLayout& layout, bool journal_only = false);

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
                              bool allow_partial, std::size_t window_bytes = std::size_t(64) << 20,
                              const std::atomic<bool>* cancel = nullptr);

struct PresetInfo {
  std::string name, path, description;
};
std::vector<PresetInfo> list_presets();

}  // namespace ratelab
