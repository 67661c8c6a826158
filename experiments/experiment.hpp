// Experiment files and their expansion into configurations.
//
// An experiment file uses Boost.Program_options' config-file syntax (INI): `[section]`, `key = value`,
// `#` comments. Sections: [experiment] (size, seed, what to record), [problem], [optimizer] and [schedule]
// with `name = <registry key>` and that component's parameters. Several optimizers or problems in one file
// take labels: [optimizer:hb], [optimizer:sgd]; a schedule section [schedule:hb] belongs to optimizer hb,
// a plain [schedule] to every optimizer without its own.
//
// Any scalar parameter may be an axis: `0.01, 0.1, 1`, `logspace(1e-3, 1, 4)` (geometric, endpoints given),
// `linspace(a, b, k)`, `range(a, b[, step])` (integers a, a+step, ... <= b), or several of these joined in
// order (`linspace(3.0, 3.1, 11), linspace(3.4, 3.5, 11)`). Axes combine as a Cartesian product; `zip = key1,
// key2` in a section varies its listed axes together; `[pair:NAME]` sections (problem = LABEL, optimizer =
// LABEL, zip = problem.T, schedule.c) name the combinations to run instead of the full product of problems
// and optimizers, and may zip axes of their sections. A real or integer value may be a formula of other
// parameters of the same configuration (core/formula.hpp: `eta = 1/problem.L`, `steps = problem.T`),
// evaluated after the grid is expanded and validated like a number. Every configuration has a stable id
// derived from its fully resolved parameters.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/run.hpp"
#include "results/trace_file.hpp"

namespace ratelab {

struct IniEntry {
  std::string key, value;
  int line = 0;
  std::string origin;  // where an override came from ("--set", "quickstart.ini [quick]"); empty: line of the file
};
struct IniSection {
  std::string name;  // "optimizer" or "optimizer:hb"
  int line = 0;
  std::vector<IniEntry> entries;
  std::string origin;  // as IniEntry::origin, for a section an override created or replaced
};
struct IniDocument {
  std::string source;  // file name for messages
  std::vector<IniSection> sections;
};

// Throws ConfigError "source:line: ..." for malformed lines and repeated keys.
IniDocument parse_ini(const std::string& text, const std::string& source);
IniDocument read_ini_file(const std::string& path);

struct ExperimentOptions {
  enum class Instance { shared, per_replicate };
  std::string name = "experiment";
  std::string description;
  RunOptions run;  // steps and the run loop's parameters (core/run.hpp declares them)
  long replicates = 16;
  long seed = 1;
  long checkpoints = 40;
  enum class Spacing { log, linear };
  Spacing checkpoint_spacing = Spacing::log;
  std::vector<double> checkpoint_steps;  // explicit steps; empty: `checkpoints` spread by `checkpoint_spacing`
  std::vector<std::string> views{"last"};
  std::vector<std::string> metrics;  // empty: every metric the problem provides
  bool common_random_numbers = true;
  Instance instance = Instance::shared;
  std::string data_directory;
  bool skip_invalid = false;

  static ParamTable<ExperimentOptions> params();
};

// The checkpoint steps the options ask for (increasing, 0 and T included); the problems of an explicit list
// (a step that is not a whole number, outside [0, T], or not increasing) are appended to `problems`.
std::vector<long> checkpoint_steps(const ExperimentOptions& options, std::vector<std::string>& problems);

struct ComponentChoice {
  std::string key;  // registry key; empty for a schedule the optimizer does not use (ComponentInfo::schedule_applies)
  ParamSet params;  // fully resolved; a parameter that does not apply (ParamSpec::applies) holds its default
  std::vector<std::string> inactive;  // the parameters that do not apply: not recorded, not in the label
};

struct Configuration {
  std::size_t index = 0;
  std::string id;     // 16 hex digits, hash of `canonical`
  std::string label;  // "sgd c=0.5" (the parameters that vary across configurations)
  std::string canonical;
  ComponentChoice problem, optimizer, schedule;
  std::uint64_t salt = 0;  // stream salt: 0 under common random numbers
  // The parameters whose value a formula gave ("schedule.eta" -> "1/problem.L"): the label shows both,
  // `eta=0.1 (= 1/problem.L)`; the record, the id and the run hold the value alone.
  std::map<std::string, std::string> formulas;
  // The configuration's horizon T: experiment.steps, which may be an axis (`steps = 100, 1000, 10000`) or a
  // formula giving each configuration its own (`steps = problem.T`). When the horizons differ
  // (horizon_varies), T is recorded as the parameter experiment.steps and is part of the id (not of the
  // stream salt: replicate r of every horizon sees the same random numbers).
  long steps = 0;
  bool horizon_varies = false;
};

// What a trace file records of a configuration: its id and label, and under qualified keys the component
// keys ("problem", "optimizer", "schedule"), every resolved parameter that applies ("problem.mu") and
// "stream_salt" (no schedule entries when the optimizer uses none).
// The one place these keys are made: labels, the trace layout and the claims checked before a run all
// read this record, so a `key=value` filter means the same before the run and on the file.
results::ConfigurationRecord configuration_record(const Configuration& configuration);

struct ExperimentPlan {
  ExperimentOptions options;
  ParamSet experiment_params;
  std::vector<Configuration> configurations;
  std::vector<std::string> skipped;  // configurations a component refused, with the reason (skip_invalid)
  // Views, metrics and the run options shared by every run; `steps` is the longest horizon and `checkpoints`
  // the union of every horizon's checkpoints (a configuration of horizon T records those <= T).
  RunPlan run;
  std::string resolved_text;         // the experiment file with every parameter resolved
  // The [plot] section as written (overrides applied), `key = value` lines: stored with the runs so
  // `ratelab plot FILE` draws what `run --plot` drew. Not in resolved_text: a figure option is no reason to
  // refuse resuming or merging runs.
  std::string plot_text;
};

// Where named data sets are looked up: experiment.data_directory, else $RATELAB_DATA_DIR, else the data/
// folder that scripts/setup.sh fills in the source tree, else ./data.
std::string data_directory(const ExperimentOptions& options);

// The worker threads a request for `requested` threads gets: 0 means every core this process may use (TBB's
// default concurrency, which honours the CPU affinity a batch system sets), and a request above what TBB
// allows (its max_allowed_parallelism, by default that same number) gets that many: more would not run, TBB
// would only warn. The one rule, for the sweep, the set-up of shared instances and the file's `threads`
// attribute, which so records the threads that ran (not a requested 100000).
int resolve_threads(int requested);

// Overrides (`--set`, a [quick] section) applied to an experiment document: the one place they are applied,
// before anything (components, claims, plot options) is read from it. Each is one of
//   section.key=value   sets a key of [section] (created if absent), e.g. optimizer.batch=4, plot.theory=true
//   claims.NAME=CLAIM   sets (or adds) the claim NAME
//   section=NAME        replaces a component section ([problem], [optimizer], [schedule], labelled too) by a
//                       fresh one holding only name = NAME: every other key back to its default
// `origin` names them in messages. Throws ConfigError listing every malformed override.
IniDocument apply_overrides(IniDocument document, const std::vector<std::string>& overrides,
                            const std::string& origin = "--set");

// How large a grid plan_experiment accepts: sizes are counted before anything is expanded, so a sweep
// such as linspace(0, 1, 1e9) is refused at once instead of filling memory. The CLI overrides them with
// --max-configurations and --max-runs (run, verify, slurm).
struct PlanLimits {
  long max_configurations = 100'000;
  long max_runs = 10'000'000;  // configurations x replicates
};

// Expands and validates an experiment; every problem found is reported at once (ConfigError).
// `overrides` are applied first by apply_overrides (plan_experiment(r, apply_overrides(d, o)) is the same).
ExperimentPlan plan_experiment(const Registry& registry, const IniDocument& document,
                               const std::vector<std::string>& overrides = {}, const PlanLimits& limits = {});

// Problem instances and schedules for the runs of a plan, built once and shared by all threads.
class PreparedExperiment {
 public:
  // Builds the instances and schedules, and dry-runs Optimizer::prepare on each configuration so that a
  // component refusing a problem is reported before anything runs (ConfigError listing every refusal).
  // `plan` is not changed: plan() is what was kept, the configurations no component refused (renumbered;
  // the refused ones listed in skipped under skip_invalid) with the metrics resolved (empty: every metric
  // all the problems provide). `threads` (0: resolve_threads's default) build the shared instances, as
  // ProblemContext::parallel_for.
  PreparedExperiment(const Registry& registry, const ExperimentPlan& plan, int threads = 0);

  const ExperimentPlan& plan() const { return plan_; }
  const Registry& registry() const { return *registry_; }
  // The problem instance for a run: shared by all replicates unless instance = per_replicate.
  std::shared_ptr<const Problem> problem(std::size_t configuration, long replicate) const;
  const Schedule& schedule(std::size_t configuration) const { return schedules_[configuration]; }
  std::unique_ptr<Optimizer> optimizer(std::size_t configuration) const;
  // The run plan of a configuration's runs: plan().run with the configuration's horizon.
  const RunPlan& run_plan(std::size_t configuration) const { return horizon_plans_[horizon_plan_[configuration]]; }
  // Runs one (configuration, replicate); never throws.
  RunResult run(std::size_t configuration, long replicate, const std::atomic<bool>* cancel) const;
  // Runs up to kMaxLockstep replicates of one configuration in lockstep (core/run.hpp's run_lockstep):
  // the results, in the order of `replicates`, are bit for bit those of run() one by one.
  std::vector<RunResult> run_lockstep(std::size_t configuration, std::span<const long> replicates,
                                      const std::atomic<bool>* cancel) const;
  // What set-up measured about a configuration's instance (condition number, ...).
  const RunStats& instance_stats(std::size_t configuration) const { return instance_stats_[configuration]; }
  // A configuration's F*: its value (nullopt: unknown), how it was obtained ("closed form", "given",
  // "solved", "unknown") and the problem's account of it (ProblemFacts::f_star_method). Under
  // instance = per_replicate, an F* that is not a closed form differs between replicates: unknown here.
  struct FStar {
    std::optional<double> value;
    std::string source, method;
  };
  const FStar& f_star(std::size_t configuration) const { return f_stars_[configuration]; }
  const std::vector<std::string>& metric_names() const { return metric_names_; }

 private:
  std::shared_ptr<const Problem> build_problem(const Configuration& c, long replicate,
                                              const ParallelFor& parallel_for = serial_for) const;

  const Registry* registry_;
  ExperimentPlan plan_;
  std::vector<std::shared_ptr<const Problem>> problems_;  // per configuration (shared instances)
  std::vector<Schedule> schedules_;
  std::vector<RunPlan> horizon_plans_;     // one per distinct horizon
  std::vector<std::size_t> horizon_plan_;  // per configuration: its index in horizon_plans_
  std::vector<RunStats> instance_stats_;
  std::vector<FStar> f_stars_;
  std::vector<std::string> metric_names_;
};

// Axis expressions: "0.1, 1" / "logspace(1e-3, 1, 4)" / "linspace(0, 1, 5)" / "range(1, 9, 2)"; a plain value
// gives one item. Throws ConfigError (with `where`) for malformed expressions, empty axes, counts that are
// not finite integers, ranges beyond the exactly representable integers (|v| <= 2^53), and axes of more
// than `max_items` values (counted before any is made).
std::vector<std::string> expand_axis(const std::string& text, const std::string& where,
                                     long max_items = PlanLimits{}.max_configurations);

// How the values and sections of an experiment file combine into configurations (axes, zip, formulas,
// pairings), as `ratelab describe experiment` prints it below the [experiment] keys.
const char* experiment_file_syntax();

// FNV-1a 64-bit hash as 16 lowercase hex digits: the configuration id of a canonical string.
std::string stable_id(const std::string& canonical);

}  // namespace ratelab
