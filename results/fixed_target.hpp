// Fixed-target analyses (issue 26): how long until a run's metric first reaches a target, and the standard
// summaries built on it: success fractions, the expected running time (ERT), runtime ECDFs with their area,
// and Dolan-More performance profiles / More-Wild data profiles. Pure functions of numbers: the commands
// (tools/fixed_target_commands.hpp) read the runs through results/trace_query.hpp, so a failed run is +inf
// here as everywhere (results/statistics.hpp).
//
// Hitting time, from the stored checkpoints: the run's budget at the first stored checkpoint t_k whose value
// is <= the target. The budget is steps (t_k itself), gradient evaluations or elapsed seconds up to t_k
// (results::budget_matrix); the rule is the same for all three. It is conservative: the run may have crossed
// the target between two checkpoints (t_{k-1}, t_k], so the true first hitting step is <= t_k, never later.
// A run that never reaches the target (in particular a failed run after it failed) has hitting time +inf; a
// run not measured (NaN everywhere: interrupted before its first checkpoint, missing) has NaN and is not
// counted.
//
// What an unsuccessful run spent (its horizon, for ERT): its budget at its last checkpoint with a recorded
// budget. In steps every checkpoint has one, so every run is charged T, the steps it was given (a diverged
// run too); a recorded cost is NaN after the run stopped, so a diverged run is charged what it spent up to
// its last checkpoint before it stopped.
#pragma once

#include <span>
#include <vector>

#include "core/rng.hpp"
#include "results/statistics.hpp"

namespace ratelab::stats {

// budget[k] for the first checkpoint k with row[k] <= target (+inf if none; NaN if the row is all NaN, or if
// the budget there is not recorded).
double hitting_time(std::span<const double> row, std::span<const double> budget, double target);
// The hitting time of each run (a row of `runs`, replicates x checkpoints; `budgets` of the same shape).
std::vector<double> hitting_times(const ReplicateMatrix& runs, const ReplicateMatrix& budgets, double target);
// What each run spent: its last finite budget (0 for a run with none: nothing recorded, nothing spent).
std::vector<double> run_horizons(const ReplicateMatrix& budgets);

// ERT (Hansen et al., COCO; IOHanalyzer): the total budget spent by all runs, each successful run its
// hitting time and each unsuccessful run its horizon (horizons[r], run_horizons), divided by the number of
// successes (+inf with none). NaN hitting times are not runs and are skipped.
double expected_running_time(std::span<const double> hitting_times, std::span<const double> horizons);

struct FixedTargetSummary {
  long runs = 0;       // hitting times that count (not NaN)
  long successes = 0;  // finite ones
  double ert;
  Interval ert_ci;     // percentile bootstrap over runs (NaN with fewer than 2 runs); +inf bounds allowed
  double median, q_low, q_high;  // of the hitting times, unsuccessful runs at +inf (so the median is +inf
                                 // when fewer than half succeeded)
};
// The bootstrap resamples runs: (hitting time, horizon) pairs.
FixedTargetSummary fixed_target_summary(std::span<const double> hitting_times, std::span<const double> horizons,
                                        double q_low,
                                        double q_high, const BootstrapOptions& options, RandomStream& stream);

// Runtime ECDF over (run, target) pairs: at each budget b, the fraction of pairs whose hitting time is <= b.
// Hitting times of NaN are not pairs. Budgets increasing and > 0 (steps, evaluations or seconds).
struct Ecdf {
  std::vector<double> fraction;  // per budget
  long pairs = 0;
  double auc;  // the area under the step function over log(budget) from budgets.front() to budgets.back(),
               // divided by that log range: 1 = every pair solved by the first budget, 0 = none before the last
};
Ecdf runtime_ecdf(const std::vector<double>& hitting_times, std::span<const double> budgets);

// k targets geometrically spaced from `high` down to `low` (both included; k >= 2, 0 < low < high).
std::vector<double> log_spaced_targets(double high, double low, long count);

// Dolan & More (2002): cost[p][s] of solver s on problem p (+inf: not solved). The ratio r_ps = cost / min_s
// cost of p; rho_s(tau) = #{p : r_ps <= tau} / P. A problem no solver solves counts for none.
// Returns [solver][tau].
std::vector<std::vector<double>> performance_profile(const std::vector<std::vector<double>>& cost,
                                                     std::span<const double> taus);
// More & Wild (2009): d_s(b) = #{p : cost[p][s] <= b} / P, the fraction solved within budget b (here the
// cost itself is in the budget's unit, not normalized by the dimension). Returns [solver][budget].
std::vector<std::vector<double>> data_profile(const std::vector<std::vector<double>>& cost,
                                              std::span<const double> budgets);

}  // namespace ratelab::stats
