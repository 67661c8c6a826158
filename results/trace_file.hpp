// ratelab's HDF5 trace files: the writer (one thread only; HDF5 is not thread-safe) and the reader.
// The layout is documented in results/SCHEMA.md; this header is the only way into it, and HDF5 stays
// private to this folder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/params.hpp"
#include "core/run.hpp"

namespace ratelab::results {

// The version this build writes; it reads this one and kOldestReadableSchemaVersion .. kSchemaVersion.
inline constexpr int kSchemaVersion = 2;
inline constexpr int kOldestReadableSchemaVersion = 1;

using Attributes = std::vector<std::pair<std::string, ParamValue>>;

struct ConfigurationRecord {
  std::string id;     // stable: a hash of the canonical resolved parameters
  std::string label;  // human-readable ("sgd schedule.c=0.5")
  // Fully resolved parameters, qualified: "optimizer" -> "sgd", "optimizer.batch" -> 1, "problem.d" -> 10,
  // "schedule" -> "inv_sqrt", "schedule.c" -> 0.5, ...
  Attributes parameters;
  Attributes instance;  // what set-up measured (e.g. "condition_number")
  // The optimal value F* of the configuration's problem (nullopt: not known), how it was obtained
  // ("closed form", "given", "solved", "unknown"; "" when the file predates schema 2) and the problem's
  // own account of it ("cholesky on the normal equations + 1 refinement step, ...").
  std::optional<double> f_star;
  std::string f_star_source, f_star_method;
  // The configuration's run fingerprint (16 hex digits): a hash of everything that determines the bits of
  // its runs except the replicate index, listed in results/SCHEMA.md. Run (c, r) of one file and (c', r)
  // of another have the same trace data when the fingerprints agree. Empty in files written before it.
  std::string run_fingerprint;
  // The problem's dimension d, recorded with the iterates (TraceLayout::iterate_dimension > 0); 0 otherwise.
  long dimension = 0;
};

struct TraceLayout {
  std::string experiment_name;
  std::string experiment_text;  // the fully resolved experiment file: `ratelab run` on it reproduces the file
  std::vector<ConfigurationRecord> configurations;
  long replicates = 0;
  std::vector<long> checkpoints;
  std::vector<std::string> views;    // view names (core/run.hpp)
  std::vector<std::string> metrics;  // metric names (core/run.hpp)
  // Problem-specific metrics of the last iterate (Problem::extra_metric_names, e.g. theta, test_accuracy),
  // the union over the configurations; a configuration whose problem lacks one has NaN there.
  std::vector<std::string> extra_metrics;
  // The iterates themselves (experiment.record_iterates): D, the largest dimension of the configurations,
  // and the variable `iterate` [C, V, R, K, D] (a configuration of dimension d < D has NaN beyond d);
  // 0: not recorded.
  long iterate_dimension = 0;
  // Provenance and experiment-level parameters, written as attributes of /. `experiment_name` is written
  // from the field above (an entry here must agree with it); "schema_version" and "format" are reserved.
  // Read back, root holds every attribute of / except schema_version and format, experiment_name first.
  Attributes root;
};

enum class WriteMode { create_new, overwrite };

// The most a file's iterates may take (configurations x views x replicates x checkpoints x D x 8 bytes):
// recorded iterates grow with the dimension, and a study that would write more is refused before it runs.
inline constexpr std::uint64_t kMaxIterateBytes = std::uint64_t(1) << 30;
// Throws ConfigError when the layout's iterates exceed kMaxIterateBytes, naming each factor and the fixes.
void check_iterate_size(const TraceLayout& layout);

// Writes to PATH.partial and renames to PATH on commit(), so PATH is never a half-written file.
class TraceWriter {
 public:
  // Throws ConfigError (bad path, existing file without overwrite) before anything is written.
  TraceWriter(const std::string& path, const TraceLayout& layout, WriteMode mode);
  ~TraceWriter();  // without commit(): removes the partial file
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // Writes one (configuration, replicate): every trace row and the run fields. `result.traces` is either
  // empty (nothing to record: the traces keep their NaN fill) or holds metrics * views * checkpoints values.
  void write_run(std::size_t configuration, long replicate, const RunResult& result);
  void commit();  // flush, close, rename PATH.partial -> PATH

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The whole content of a trace file, as read back. Traces are [configuration][view][replicate][checkpoint].
// The run arrays hold every configuration, or the window [first_configuration, first_configuration +
// window) of read_trace_configurations; indices c below are always the file's own.
struct TraceData {
  int schema_version = 0;
  TraceLayout layout;
  std::size_t first_configuration = 0;
  std::vector<std::string> metric_units;
  // traces[metric] is a flat array of size C*V*R*K in row-major (C, V, R, K) order (use trace()).
  std::vector<std::vector<double>> traces;
  std::vector<RunStatus> status;  // [C*R]; `missing` for runs never written
  std::vector<long> stop_step;    // [C*R]; -1 for runs never written
  std::vector<double> wall_seconds, eval_seconds;  // [C*R]
  std::vector<std::string> messages;               // [C*R]
  std::vector<std::pair<std::string, std::vector<double>>> run_stats;  // name -> [C*R]
  std::vector<std::vector<double>> extra;  // per layout.extra_metrics: [C*R*K], row-major (C, R, K), NaN where not reported
  // The runs' costs up to each checkpoint, [C*R*K] row-major (C, R, K): oracle samples and step-loop seconds
  // (RunResult's fields of the same names); NaN where not reached and in files written before them.
  std::vector<double> gradient_evaluations, elapsed_seconds;
  // The recorded iterates, [C*V*R*K*D] row-major (C, V, R, K, D) with D = layout.iterate_dimension (use
  // iterate()); empty when the file has none, or when only some metrics were read (TraceReader::window).
  std::vector<double> iterates;

  double trace(std::size_t metric, std::size_t c, std::size_t v, std::size_t r, std::size_t k) const;
  std::optional<std::size_t> metric_index(const std::string& name) const;
  // Component i of view v's iterate at checkpoint k of run (c, r).
  double iterate(std::size_t c, std::size_t v, std::size_t r, std::size_t k, std::size_t i) const;
};

// One block of runs: configuration `configuration`, replicates [first_replicate, first_replicate + count).
// traces[metric] is [V, count, K] row-major; run arrays are [count]; extra[e] is [count, K].
struct RunBlock {
  std::size_t configuration = 0;
  long first_replicate = 0, count = 0;
  std::vector<std::vector<double>> traces;
  std::vector<RunStatus> status;
  std::vector<long> stop_step;
  std::vector<double> wall_seconds, eval_seconds;
  std::vector<std::string> messages;
  std::vector<std::pair<std::string, std::vector<double>>> run_stats;
  std::vector<std::vector<double>> extra;
  std::vector<double> gradient_evaluations, elapsed_seconds;  // [count, K]
};

// A trace file opened once for reading in parts: the outline (layout and run statuses) is read when it
// opens, then run data window by window, so memory is bounded by the window and not by the file.
class TraceReader {
 public:
  explicit TraceReader(const std::string& path);  // same checks and errors as read_trace_file
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  const TraceData& outline() const;  // layout and statuses; traces and run data left empty
  std::vector<std::string> run_statistics() const;  // the names of the run statistics the file holds
  // The run data of configurations [begin, end), as read_trace_configurations.
  TraceData configurations(std::size_t begin, std::size_t end) const;
  // Configurations [begin, end) as a file of their own, for commands that look at one configuration at a
  // time: layout.configurations holds only them (index 0 is the file's `begin`; first_configuration = 0),
  // and the run data only of the named metrics (layout.metrics and metric_units narrowed to those the file
  // has, in its order; the extra metrics only with `extra_metrics`). Memory is bounded by the window and
  // those metrics.
  TraceData window(std::size_t begin, std::size_t end, const std::vector<std::string>& metrics,
                   bool extra_metrics = false) const;
  // Whether the run data carry checksums (HDF5's Fletcher-32 filter, verified on every read; results/SCHEMA.md).
  bool checksummed() const;
  // The run data of replicates [first, first + count) of one configuration.
  RunBlock runs(std::size_t configuration, long first, long count) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Throws ConfigError for a missing file, a file that is not HDF5, or an HDF5 file that is not ratelab's.
TraceData read_trace_file(const std::string& path);
// The layout and the run statuses alone (traces, extra, stop_step, timings, messages and run stats left
// empty), with the same checks: what `merge` needs to plan its work without holding a file's traces.
TraceData read_trace_outline(const std::string& path);
// The run data of configurations [begin, end) only, with the same checks: memory bounded by the window, not
// by the file (`merge` copies large parts window by window). C below stands for end - begin.
TraceData read_trace_configurations(const std::string& path, std::size_t begin, std::size_t end);

// Raw bytes of one dataset (e.g. "subopt"), for byte-for-byte comparisons in tests and merges.
// Fixed-size types give the stored elements in the file's type; variable-length strings give each string
// followed by a NUL byte.
std::vector<unsigned char> read_dataset_bytes(const std::string& path, const std::string& dataset);

// Units of a metric's values, written as the `units` attribute of /<metric>.
const char* metric_units(Metric metric);

// One dimension of a dataset: its label and the paths of the dimension scales attached to it.
struct DimensionInfo {
  std::string label;
  std::vector<std::string> scales;  // e.g. {"/configuration"}
};
// For tests and tools that check the file is self-describing for h5py/xarray.
std::vector<DimensionInfo> dataset_dimensions(const std::string& path, const std::string& dataset);

// The attributes of the root group ("/") and of every variable in it, in creation order, without those the
// dimension-scale library manages (CLASS, NAME, REFERENCE_LIST, DIMENSION_LIST, DIMENSION_LABELS): what
// results/SCHEMA.md documents, for the test that compares the two.
std::vector<std::pair<std::string, std::vector<std::string>>> attribute_inventory(const std::string& path);

// Writes a valid HDF5 file that is not a ratelab trace file: the given root attributes and one small
// dataset. Lets tests check the reader's refusals without including HDF5 outside results/.
void write_plain_hdf5_file(const std::string& path, const Attributes& root_attributes);

}  // namespace ratelab::results
