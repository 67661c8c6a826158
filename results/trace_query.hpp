// The questions asked of a trace file's content (results/trace_file.hpp), answered once for every reader:
// the analysis commands (tools/analysis_commands.hpp) and the claims `verify` checks
// (experiments/claims.hpp) both ask them here, so the same question on the same file gets the same answer,
// down to the bootstrap resamples.
//
// Indexing: traces[metric] is (configuration, view, replicate, checkpoint) row-major; status and run
// statistics are (configuration, replicate). Every function throws ConfigError for a question the file
// cannot answer (unknown metric, view or filter key; nothing selected), naming what the file does hold.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/rng.hpp"
#include "results/statistics.hpp"
#include "results/trace_file.hpp"

namespace ratelab::results {

// ConfigError if the arrays' sizes disagree with the layout or the schema version is not ours.
void check_trace_data(const TraceData& data);

// Column indices by name; ConfigError listing the recorded names with the closest match.
std::size_t metric_column(const TraceData& data, const std::string& metric);
std::size_t view_column(const TraceData& data, const std::string& view);

// The index of run (configuration, replicate) in status, messages and run statistics.
std::size_t run_index(const TraceData& data, std::size_t configuration, std::size_t replicate);

// ---- configurations ----------------------------------------------------------------------------------

// Every parameter key present in some configuration, in first-seen order.
std::vector<std::string> parameter_keys(const TraceData& data);
// The configuration's value of `key` (nullptr: not set there).
const ParamValue* find_parameter(const ConfigurationRecord& config, const std::string& key);
// The text of `key` for a configuration: its label, its id, or a parameter's formatted value ("" if unset).
std::string key_value(const ConfigurationRecord& config, const std::string& key);
// Does `text` name `value`? Reals compare numerically ("0.5" matches 5e-1), booleans accept 1/0, yes/no, on/off.
bool value_matches(const ParamValue& value, const std::string& text);

// Configurations matching every `key=value` filter, in file order. The keys are the configurations'
// resolved parameters ("optimizer", "schedule.c") and the pseudo-keys "label" and "id". Several values of
// one key: either; different keys: all. Unknown key: ConfigError listing the available keys with the
// closest match; no match: ConfigError listing the values present.
std::vector<std::size_t> select_configurations(const TraceData& data, const std::vector<std::string>& where);

// ---- checkpoints, runs, replicates ----------------------------------------------------------------------

// The stored checkpoint closest to step t (|t_k - t| smallest; the earlier one on a tie). The file must
// hold at least one checkpoint.
std::size_t nearest_checkpoint(const TraceData& data, double t);

// A configuration's horizon T: its parameter experiment.steps where the file holds several horizons
// (`steps` swept: each configuration has its own T, and the file's checkpoints are the union of theirs), else
// the last checkpoint. Its runs have values at the checkpoints up to T, NaN beyond.
long horizon(const TraceData& data, std::size_t configuration);
// The index of the configuration's last checkpoint (the one at its horizon).
std::size_t horizon_checkpoint(const TraceData& data, std::size_t configuration);

// How a configuration's runs ended. `other` counts interrupted and missing runs.
struct StatusCounts {
  long ok = 0, diverged = 0, error = 0, nonfinite = 0, other = 0;
};
StatusCounts status_counts(const TraceData& data, std::size_t configuration);

// Whether run (configuration, replicate) has measurements: `error` and `missing` runs have none,
// whatever their arrays hold.
bool measured(const TraceData& data, std::size_t configuration, std::size_t replicate);

// Whether a run ended in failure: diverged, error or nonfinite. Its missing or non-finite values count as +Inf
// in every statistic (results/statistics.hpp), so a failed run is the worst outcome, never a dropped one.
bool run_failed(RunStatus status);

// Replicates x checkpoints of one (metric, configuration, view). A failed run (run_failed: diverged, error,
// nonfinite) holds what it measured while finite and +Inf where it has no finite value (after diverging,
// everywhere for an error); an interrupted or missing run holds what it measured and NaN elsewhere (not
// known: ignored, not counted).
stats::ReplicateMatrix replicate_matrix(const TraceData& data, std::size_t metric, std::size_t configuration,
                                        std::size_t view);

// What a run has spent up to each checkpoint (issue 26): steps t_k, or a cost the run loop recorded
// (TraceData::gradient_evaluations, elapsed_seconds). The budget of the fixed-target analyses and the x axis
// of `plot --x`.
enum class Budget { step, gradient_evaluations, elapsed_seconds };
inline const std::vector<std::string> kBudgetNames{"step", "gradient_evaluations", "elapsed_seconds"};
Budget parse_budget(const std::string& name);  // one of kBudgetNames; ConfigError naming them otherwise
const std::string& budget_name(Budget budget);
// The axis text: "steps", "gradient evaluations (oracle samples)", "elapsed time [s]".
std::string budget_label(Budget budget);

// Replicates x checkpoints of one configuration's budget. Steps: t_k in every row up to the configuration's
// horizon, whatever the run did (a run is given T steps), NaN beyond it. A recorded cost: the run's value, NaN where it did not reach the checkpoint (after
// it stopped), for an optimizer that does not count its samples, for runs without measurements, and in
// files written before the costs were recorded. ConfigError if a recorded budget has no finite value in any
// measured run of the configuration, naming the configuration and the fixes (`--budget step`, or a re-run
// with this version).
stats::ReplicateMatrix budget_matrix(const TraceData& data, std::size_t configuration, Budget budget);

// Hitting times the run loop recorded (experiment.targets; TraceData::target_steps, best_so_far): first
// evaluated step with the target metric of the last iterate < target. Whether the file has them for this
// metric and target (the target exactly as the experiment gave it).
bool has_recorded_hits(const TraceData& data, const std::string& metric, double target);
// Per replicate of a configuration: the recorded hitting time of `target` in steps or gradient evaluations;
// +inf where the run did not reach it (a failed run, an error included, never reaches what it did not
// record), NaN for a run not measured (interrupted, missing). ConfigError when the file has none for this
// target, or for --budget elapsed_seconds (not recorded at the hit), naming the fixes.
std::vector<double> recorded_hitting_times(const TraceData& data, std::size_t configuration, const std::string& metric,
                                           double target, Budget budget);
// Replicates x checkpoints of best_so_far (the lowest target metric over the evaluated steps up to each
// checkpoint), failed runs as in replicate_matrix. ConfigError when the file has no targets for `metric`.
stats::ReplicateMatrix best_so_far_matrix(const TraceData& data, std::size_t configuration, const std::string& metric);

// Where a hitting time comes from: the one rule `ert`, `ecdf`, `profile` (--hits) and the ert and success
// claims (hits=) share. recorded: the first step the run loop evaluated with metric < target (every
// target_check_every steps and at every checkpoint; experiment.targets); checkpoint: the first stored checkpoint
// with metric <= target (conservative: a crossing between checkpoints counts at the next one, and a noisy
// run that comes back above is missed); best_so_far: the first stored checkpoint whose best value so far
// (over the evaluated steps) is <= target.
enum class HitSource { recorded, checkpoint, best_so_far };
inline const std::vector<std::string> kHitSourceNames{"recorded", "checkpoint", "best_so_far"};
const std::string& hit_source_name(HitSource source);
// The option's choices: auto and kHitSourceNames, and what they mean (one text for --hits and hits=).
inline const std::vector<std::string> kHitSourceOptions{"auto", "recorded", "checkpoint", "best_so_far"};
extern const std::string kHitSourceDoc;
// An option resolved once for a set of files and targets: `auto` is recorded when every file recorded hitting
// times of `metric` for every target (they are of the last iterate, so only for view last), checkpoint
// otherwise. recorded or best_so_far with a view other than last is a ConfigError naming the fixes.
HitSource resolve_hit_source(const std::string& option, const std::vector<const TraceData*>& data,
                             const std::string& metric, const std::string& view, const std::vector<double>& targets);
// The replicates x checkpoints the checkpoint and best_so_far rules read hits from: the metric of the view,
// or its best value so far. (recorded reads recorded_hitting_times instead.)
stats::ReplicateMatrix hit_matrix(const TraceData& data, std::size_t configuration, const std::string& metric,
                                  const std::string& view, HitSource source);

// One run statistic (data.run_stats[name]) per replicate of a configuration; NaN for runs without
// measurements. ConfigError naming the recorded statistics if there is no such statistic.
std::vector<double> run_statistic_column(const TraceData& data, const std::string& name,
                                         std::size_t configuration);

// ---- the final value against the horizon -----------------------------------------------------------------

// A file of several horizons (experiment.steps swept): the configurations that differ only in their horizon
// (and in parameters equal to it in every configuration: Harvey's problem.T = experiment.steps) form a series, the final value of each against its T (a rate across horizons, as theorems about f(x_T) with
// T-dependent steps state it, not along one run).
struct HorizonSeries {
  std::vector<std::size_t> configurations;  // increasing horizon
  std::vector<long> horizons;
  std::string label;  // the first configuration's label without its steps=T
  // The parameters that are the horizon (experiment.steps, and those equal to it in every configuration).
  std::vector<std::string> horizon_parameters;
};
// The series among `configurations`, in order of their first configuration.
std::vector<HorizonSeries> horizon_series(const TraceData& data, const std::vector<std::size_t>& configurations);
// Replicates x horizons: each configuration's metric at its own horizon (row r: replicate r of every horizon,
// the same random numbers for the common prefix), failed runs +inf as in replicate_matrix. `column(c)` gives
// configuration c's replicate_matrix (the caller may read it from a window of the file).
stats::ReplicateMatrix horizon_finals(const HorizonSeries& series,
                                      const std::function<stats::ReplicateMatrix(std::size_t)>& column_source,
                                      const TraceData& data);
// The log-log slope of the center of horizon_finals against T over every horizon of the series, with the
// percentile bootstrap interval over whole replicates (a resample draws replicate r for every horizon at once,
// keeping their pairing); the stream is keyed by the series' configurations, the view and the metric.
// The final values against the horizon as a trace of its own, for the figure machinery (`plot --x horizon`):
// one configuration per horizon series (its parameters but the horizon ones, its series label), its steps the
// union of the series' horizons, and at step T replicate r's value of `metric` (each view) at that series's
// horizon T: replicate_matrix's value, failed runs +inf; NaN where a series has no such horizon. Every run is
// marked ok (a failure is in the values). ConfigError when no series has two horizons, naming the fix.
TraceData final_values_against_horizon(const TraceData& data, const std::string& metric);
stats::RateFit horizon_slope(const TraceData& data, const HorizonSeries& series, const stats::ReplicateMatrix& finals,
                             const std::string& view, const std::string& metric, stats::Statistic center,
                             const stats::BootstrapOptions& bootstrap, long seed);

// ---- bootstrap ----------------------------------------------------------------------------------------------

// What a bootstrap resamples, which is all its stream is keyed by: the configurations' ids (one, or two for a
// paired difference), the view(s) and the metric, and the checkpoint for a statistic taken at one step
// (absent for a fit over a window). The same question asked of the same file with the same seed draws the
// same resamples whichever command asks it (`summary`, `compare`, `verify`), and does not depend on which
// other configurations were selected.
struct BootstrapSubject {
  std::vector<std::size_t> configurations;
  std::string view;    // "last", or "last,suffix" when the two sides of a paired difference differ
  std::string metric;  // a metric name or run.NAME
  long checkpoint = -1;  // the step of a statistic at one checkpoint; -1: a fit over a window
};
RandomStream bootstrap_stream(const TraceData& data, long seed, const BootstrapSubject& subject);

}  // namespace ratelab::results
