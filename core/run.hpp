// The run loop: one (configuration, replicate) run of an optimizer on a problem.
//
// When to log and what to log are separate: the checkpoint schedule (log-spaced, shared by every
// replicate, t = 0 and t = T included) says when; the views (which iterate) times the metrics (which
// quantity) say what. Iterates of every view are stored at the checkpoints and evaluated after the loop as
// one block (Problem::values), so the data is streamed once per run and evaluation is not timed.
#pragma once

#include <atomic>
#include <span>
#include <string>
#include <vector>

#include "core/optimizer.hpp"
#include "core/params.hpp"
#include "core/problem.hpp"
#include "core/schedule.hpp"

namespace ratelab {

enum class View { last, uniform, suffix, polydecay, best };
enum class Metric { value, subopt, dist2, gradnorm2 };
// nonfinite: the run finished with a finite iterate, but some recorded metric is NaN or inf (e.g. F(x) = inf
// outside a constraint set): its numbers are data, but not the numbers of a converging run.
enum class RunStatus : signed char { ok = 0, diverged = 1, error = 2, interrupted = 3, missing = 4, nonfinite = 5 };

const char* view_name(View view);
const char* metric_name(Metric metric);
const char* metric_doc(Metric metric);
// What the view is, as `describe` and `list` show it: which iterates, which weights, whether x_0 is in.
const char* view_doc(View view);
const char* status_name(RunStatus status);
const std::vector<std::string>& all_view_names();
const std::vector<std::string>& all_metric_names();
View view_from_name(const std::string& name);      // throws ConfigError
Metric metric_from_name(const std::string& name);  // throws ConfigError

// Log-spaced checkpoints: 0, then count-1 steps from 1 to T by t_k = max(t_{k-1} + 1, round(T^(k/(count-2)))),
// so t = 0, 1 and T are always present. Fewer when T is small (every step is then a checkpoint).
std::vector<long> log_checkpoints(long steps, long count);
// Evenly spaced checkpoints, for linear convergence (a straight line on a log-y, linear-t axis):
// t_k = round(k T / (count - 1)), k = 0 .. count-1, duplicates dropped (every step when T < count - 1).
std::vector<long> linear_checkpoints(long steps, long count);

// Metrics a problem can provide.
std::vector<Metric> available_metrics(const Problem& problem);

// The run loop's own parameters, declared once: the experiment file's [experiment] section takes them
// through this table (ExperimentOptions embeds it), and every run reads them from its RunPlan. A new
// run-loop parameter is a field and a table line here, and its use in run.cpp.
struct RunOptions {
  long steps = 1000;
  double suffix_alpha = 0.5;            // suffix view: mean of the last ceil(alpha t) iterates
  double polydecay_k = 3.0;             // polynomial-decay averaging parameter k >= 0
  double divergence_threshold = 1e100;  // ||x|| above this (or NaN/Inf) ends the run as `diverged`
  long divergence_check_every = 1;      // steps between divergence checks
  bool record_iterates = false;         // keep x of every view at every checkpoint (RunResult::iterates)
  static ParamTable<RunOptions> params();
};

// What every run of an experiment shares: the run options, and the checkpoints, views and metrics
// resolved from the experiment's names and its problems.
struct RunPlan : RunOptions {
  std::vector<long> checkpoints;   // increasing, first 0, last `steps`
  std::vector<View> views{View::last};
  std::vector<Metric> metrics{Metric::subopt};
};

struct RunResult {
  RunStatus status = RunStatus::missing;
  long stop_step = 0;    // last step executed; for `diverged`, the step at which divergence was detected
  std::string message;   // for `error`; for `nonfinite`, the first metric that is not finite
  double wall_seconds = 0.0;  // the step loop only (evaluation excluded)
  double eval_seconds = 0.0;
  // metric-major: traces[(m * views + v) * checkpoints + k]; NaN after divergence or interruption.
  std::vector<double> traces;
  // The run's cost up to each checkpoint k (NaN where not reached): oracle samples drawn
  // (Optimizer::gradient_evaluations; NaN throughout for an optimizer that does not count them) and
  // the step loop's elapsed time (a lockstep group's time shared equally, as wall_seconds).
  std::vector<double> gradient_evaluations, elapsed_seconds;
  RunStats stats;
  // Problem::extra_metrics of the last iterate: extra_traces[e * checkpoints + k] for extra_names[e]
  // (NaN where not recorded). Their values at the final iterate are also appended to `stats` as
  // "final_<name>", so run-level writers persist them without knowing about extra metrics.
  std::vector<std::string> extra_names;
  std::vector<double> extra_traces;
  // With RunOptions::record_iterates: the iterate of every view at every checkpoint, view-major,
  // iterates[(v * checkpoints + k) * d + i] for component i of the problem's d (NaN at checkpoints not
  // reached); empty otherwise. The run loop stores these iterates anyway (the metrics are evaluated from
  // them after the loop), so recording them copies nothing inside the step loop.
  std::vector<double> iterates;
};

// Runs steps 1..T. Never throws: an exception inside the run is returned as status `error`.
// `cancel`, when set by another thread, ends the run early with status `interrupted`.
RunResult run_one(const Problem& problem, Optimizer& optimizer, const Schedule& schedule, const RunPlan& plan,
                  RunStreams& streams, const std::atomic<bool>* cancel = nullptr);

// Several runs of one configuration on one problem instance, stepped in lockstep: optimizers[k] (same class
// and options) with streams[k], 1 <= k <= kMaxLockstep. Each result is bit for bit what run_one gives that
// run alone; wall_seconds is the group's step-loop time divided by the number of runs. Never throws for
// errors inside runs (status `error` on the run concerned).
std::vector<RunResult> run_lockstep(const Problem& problem, std::span<Optimizer* const> optimizers,
                                    const Schedule& schedule, const RunPlan& plan,
                                    std::span<RunStreams* const> streams, const std::atomic<bool>* cancel = nullptr);

// Evaluates the metrics of the iterates stored column-wise in X (one column per (view, checkpoint)).
void evaluate_metrics(const Problem& problem, const std::vector<Metric>& metrics, ConstMatRef X,
                      std::vector<double>& out_metric_major);

}  // namespace ratelab
