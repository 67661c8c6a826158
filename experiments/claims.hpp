// Claims: checkable statements about the output of an experiment, read from its [claims] section and
// evaluated by `ratelab verify` on a trace file. A preset with claims is a regression test of the theory
// against the code.
//
// One claim per line, `name = kind field=value field=value ...`. A value is a bare token, a "quoted
// string" (may hold spaces) or a [bracketed pair] (may hold spaces and commas). The full syntax, the kinds
// and the formula language are documented in README.md ("Claims"); in short:
//
//   slope     the log-log slope of stat(metric) over window lies in expect=[a, b] (bootstrap CI reported;
//             ci=within: the whole CI lies in [a, b]; ci=contains: the CI contains expect=VALUE)
//   value     stat(metric) at t (measure=at, default) or the per-step contraction factor over a window
//             (measure=contraction: exp of the slope of log stat against t) lies in expect=[a, b], or
//             within tol (relative) / atol (absolute) / se (standard errors of the mean) of expect=FORMULA
//   compare   quantity of a= vs quantity of b= (measure=at or slope): expect=a<b or a>b, factor=k
//             (a < b / k, resp. a > k b)
//   converges the metric at t is below below=FORMULA in at least fraction= of the replicates
//   fails     the metric stays above above=FORMULA at every checkpoint of the window (a diverged run
//             counts as failing) in at least fraction= of the replicates
//   status    counts of diverged / error / ok runs lie in the given intervals
//   ert       the expected running time to metric <= target= (results/fixed_target.hpp: first stored
//             checkpoint at or below it) lies in expect=[a, b] (ci=within: its bootstrap interval does)
//   success   at least fraction= of the runs reach metric <= target= by step by= (default T)
//
// Statistics (quantiles, bootstrap slopes, paired differences) come from results/statistics.hpp and
// configurations are selected, columns read and bootstrap streams keyed by results/trace_query.hpp, so a
// verdict uses the same numbers (and the same bootstrap resamples) as `summary`, `compare` and `plot`.
#pragma once

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/formula.hpp"
#include "experiments/experiment.hpp"
#include "results/statistics.hpp"
#include "results/trace_file.hpp"

namespace ratelab::claims {

// Formulas of a configuration's constants (core/formula.hpp): the names T (last checkpoint), R
// (replicates), t (in scale=, the checkpoint measured) and the configuration's parameters (qualified
// "problem.mu", or unqualified "mu" when only one component has it).
using ratelab::Formula;

// ConfigError for an unknown name or a string-valued parameter. `t` (the checkpoint a statistic is taken at)
// is a name only when given (scale= of a measurement at one t).
double evaluate(const Formula& formula, const results::TraceData& data, std::size_t configuration,
                double t = std::numeric_limits<double>::quiet_NaN());

struct Claim {
  enum class Kind { slope, value, compare, converges, fails, status, ert, success };
  enum class Measure { at, slope, contraction };
  std::string name, text, source;
  int line = 0;
  Kind kind = Kind::slope;

  std::vector<std::string> where, a, b;  // configuration filters (key=value, label=..., id=...)
  std::string metric = "subopt", view = "last", a_view, b_view;
  stats::Statistic statistic = stats::Statistic::median();
  std::string statistic_text = "median";
  Measure measure = Measure::at;
  // ci=: point (default: the estimate decides), within (the whole interval lies in expect=[a, b]), contains
  // (the interval contains expect=VALUE). slope and value claims with an interval (slope, contraction, mean,
  // median); so a small study cannot pass by luck of its point estimate.
  enum class IntervalMode { point, within, contains };
  IntervalMode interval_mode = IntervalMode::point;
  Formula at, scale, window_from, window_to;  // defaults: T, 1, T/10, T
  // slope over=horizon: the final value of each configuration against its T (experiment.steps swept), across
  // the selected configurations that differ only in their horizon; over=t (default): along each run.
  bool over_horizon = false;
  // at= must be a stored checkpoint; checkpoint=nearest reads the stored one closest to it instead.
  bool at_nearest = false;
  // Bounds: expect=[lo, hi] (formulas), or expect=FORMULA with tol / atol.
  Formula expect_low, expect_high, expect_target;
  double tol = -1, atol = -1, se = -1;  // slack: relative, absolute, standard errors of the mean
  bool a_less = true;                   // compare: a<b or a>b
  Formula factor;                       // compare: default 1
  Formula threshold;                    // converges below= / fails above=
  Formula target, budget;               // ert, success: target= (metric <= target), by= (success budget; T)
  // ert, success: hits= where the hitting times come from (results::HitSource; auto: the run loop's recorded
  // hits when the file has them for the target, else the first stored checkpoint at or below it).
  std::string hits = "auto";
  double fraction = 1.0;
  Formula diverged_low, diverged_high, error_low, error_high, ok_low, ok_high, nonfinite_low, nonfinite_high;  // status
};

// Reads the [claims] section (if any). Every malformed claim is reported at once: ConfigError with
// "file:line: claim 'name': ...".
std::vector<Claim> parse_claims(const IniDocument& document);

// The `--quick` variant of an experiment: the [quick] section's `section.key = value` entries as overrides
// for apply_overrides (`claims.NAME = ...` replaces or adds a claim).
std::vector<std::string> quick_overrides(const IniDocument& document);

// An experiment as `run`, `verify` and `slurm` load it: the overrides applied once, before anything is read
// (the [quick] section's first when `quick`, then `overrides`, so --set wins), then the plan and the claims
// from that one document. Malformed claims are a ConfigError, and so is a claim an override wrote that does
// not fit the plan (it was written for this run); the file's own claims are checked against the plan by
// verify (check_claims), not by run, which may change the size or the components they select.
struct LoadedExperiment {
  IniDocument document;  // with every override applied: [plot] and the stored text come from here
  ExperimentPlan plan;
  std::vector<Claim> claims;
};
LoadedExperiment load_experiment(const Registry& registry, const IniDocument& document,
                                 const std::vector<std::string>& overrides, bool quick = false,
                                 const PlanLimits& limits = {});

// The claims of `document` to check on the runs already made in `trace_file` (verify --from, or verify of a
// trace file with its stored experiment text): the [quick] section's claims when `quick` (its sizes say how
// the file was made) and `overrides` applied. Only claims.NAME=... overrides can apply to a stored file: any
// other is a ConfigError saying so and how to verify the changed experiment instead.
std::vector<Claim> claims_for_stored_runs(const IniDocument& document, const std::string& trace_file,
                                          const std::vector<std::string>& overrides, bool quick = false,
                                 const PlanLimits& limits = {});

// The [plot] section as `key=value` strings for the plot options (empty if there is none).
std::vector<std::pair<std::string, std::string>> plot_section(const IniDocument& document);

// The configuration records a plan will write (no instances built), to check claims before running.
results::TraceData layout_of(const ExperimentPlan& plan);

// Checks selectors, metric/view names, formula names and selection sizes against the file's layout, so a
// wrong claim is reported before a long run. ConfigError listing every problem.
void check_claims(const std::vector<Claim>& claims, const results::TraceData& data, bool check_metrics);

struct Verdict {
  std::string name;
  bool pass = false;
  std::string what;      // "slope of median subopt[last] for sgd"
  std::string measured;  // "-0.512 CI [-0.53, -0.49]"
  std::string bound;     // "in [-0.6, -0.4]"
  double margin = 0;     // distance to the bound in units of its width (< 0: beyond it); picks the line shown
  // The numbers behind `measured` for slope and value claims (NaN for the other kinds): the quantity and
  // its interval, for callers that compare them with another command's.
  double value = std::numeric_limits<double>::quiet_NaN();
  stats::Interval interval{std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN()};
};

// Evaluates every claim; `seed` keys the bootstrap streams. Throws ConfigError for claims that do not fit
// the file (unknown metric, empty selection).
std::vector<Verdict> evaluate_claims(const std::vector<Claim>& claims, const results::TraceData& data,
                                     long seed = 1, long resamples = 1000);

// The metrics whose run data the claims read (not the run statistics, which every read of a file holds), each
// once: what `verify FILE` and the report read of a file instead of all of it.
std::vector<std::string> claim_metrics(const std::vector<Claim>& claims);

std::string format_verdict(const Verdict& verdict);

}  // namespace ratelab::claims
