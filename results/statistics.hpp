// Statistics shared by `plot`, `summary`, `compare` and `verify`: one definition of each quantity, so a
// number in a figure, in a table and in a verification verdict is the same number.
//
// Quantiles: Hyndman & Fan (1996), "Sample quantiles in statistical packages", definition 7 (numpy's
// default method "linear", R's default type 7). For sorted x_0 <= ... <= x_{n-1} and p in [0, 1]:
//   h = (n - 1) p,  Q(p) = x_floor(h) + (h - floor(h)) (x_{floor(h)+1} - x_floor(h)),
// so Q(0) = min, Q(1) = max, Q(1/2) = the usual median.
//
// Missing and failed runs (README "Diverged runs count as +infinity", results/SCHEMA.md): NaN marks a value
// that was never measured (an interrupted or missing run) and is ignored; +Inf marks a run that diverged,
// ended with an error or produced a non-finite metric (results::replicate_matrix writes it), and counts as
// the worst possible outcome: it sorts above every finite value in quantiles (so the median is +Inf when more
// than half of the runs failed), makes a mean +Inf, and is skipped only by the log-log and contraction fits
// (a logarithm of +Inf is no point on a line). The curve functions report how many entries each number
// rests on and how many of them are finite ("3/40 finished").
//
// Least squares: ordinary least squares of y on x, slope b = Sxy / Sxx, with the textbook standard error
// se(b) = sqrt(SSR / (n - 2) / Sxx) (valid for independent homoscedastic errors; across checkpoints of
// one curve the errors are correlated, which is why the confidence interval comes from the bootstrap).
//
// Rate fits: the slope of log(center curve) on log(t) over a window of checkpoints, where the center
// curve is a statistic over replicates (median, mean or a quantile) at each checkpoint. A metric that
// behaves like C t^(-p) has slope -p.
//
// Bootstrap: Efron's nonparametric bootstrap with percentile intervals (Efron & Tibshirani 1993, "An
// Introduction to the Bootstrap", ch. 13). Whole replicates are resampled with replacement, so the
// dependence between checkpoints of one run is kept. Draws come from a RandomStream, so an interval is
// reproducible from its seed on any machine.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <vector>

#include "core/rng.hpp"

namespace ratelab::stats {

// ---- descriptive statistics (NaN entries ignored, +-Inf counted; NaN when nothing is left) -----------

// Definition 7 on data already sorted increasingly without NaN (+Inf allowed: interpolating towards it
// gives +Inf). p outside [0, 1]: ConfigError.
double quantile_sorted(std::span<const double> sorted, double p);
double quantile(std::span<const double> values, double p);
double median(std::span<const double> values);
double mean(std::span<const double> values);  // +Inf when an entry is +Inf
// Sample standard deviation (denominator n - 1) over sqrt(n); NaN for fewer than 2 entries, +Inf when an
// entry is infinite.
double standard_error(std::span<const double> values);
std::size_t count_finite(std::span<const double> values);
std::size_t count_present(std::span<const double> values);  // entries that are not NaN (finite or +-Inf)

// Student's t quantile with `dof` degrees of freedom (Boost.Math), e.g. 2.262 for p = 0.975, dof = 9.
double student_t_quantile(double p, double dof);

// ---- least squares ------------------------------------------------------------------------------------

struct LineFit {
  double slope;
  double intercept;
  double slope_se;     // NaN with fewer than 3 points
  std::size_t points;  // pairs used; slope and intercept are NaN with fewer than 2
  double ssr = std::numeric_limits<double>::quiet_NaN();  // residual sum of squares (with >= 2 points)
};

// Pairs with a non-finite x or y are skipped.
LineFit fit_line(std::span<const double> x, std::span<const double> y);

// Closed window of steps [t_min, t_max] over which a rate is fitted.
struct FitWindow {
  double t_min;
  double t_max;
};
// [T/10, T] with T the last checkpoint: the last decade of t.
FitWindow last_decade(std::span<const long> checkpoints);

// Least squares of log(curve[k]) on log(t[k]) over the k with t[k] in the window, t[k] > 0 and curve[k]
// finite and > 0 (a log-log fit has no other meaning).
LineFit fit_loglog(std::span<const long> checkpoints, std::span<const double> curve, FitWindow window);
// Least squares of log(curve[k]) on t[k] over the k with t[k] in the window and curve[k] finite and > 0:
// log C + t log rho, the point estimate of bootstrap_contraction's line (the same columns, the same bits).
LineFit fit_log_linear(std::span<const long> checkpoints, std::span<const double> curve, FitWindow window);

// ---- statistics over replicates -----------------------------------------------------------------------

// Replicates x checkpoints, one run per row.
using ReplicateMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// What is taken over replicates at each checkpoint.
struct Statistic {
  enum class Kind { mean, quantile };
  Kind kind = Kind::quantile;
  double p = 0.5;  // for quantile
  static Statistic median() { return {Kind::quantile, 0.5}; }
  static Statistic mean() { return {Kind::mean, 0.0}; }
  static Statistic quantile(double p) { return {Kind::quantile, p}; }
};

struct ReplicateCurve {
  std::vector<double> value;  // the statistic over the non-NaN entries of each column (NaN if none)
  std::vector<long> used;     // how many replicates it rests on at each checkpoint (not NaN; +Inf counts)
  std::vector<long> finite;   // how many of those were finite ("finished": finite[k]/used[k])
  long replicates = 0;        // rows of the matrix: replicates - used[k] runs were missing at k
};

ReplicateCurve replicate_curve(const ReplicateMatrix& runs, Statistic statistic);

// ---- bootstrap ----------------------------------------------------------------------------------------

struct Interval {
  double lo;
  double hi;
};

// The mean with a Student t interval: mean +- t_{(1 + confidence)/2, n - 1} se over the non-NaN entries (NaN
// interval for fewer than 2; [+Inf, +Inf] when an entry is +Inf).
struct MeanInterval {
  double mean;
  double se;
  Interval interval;
  long n;  // entries used
};
MeanInterval mean_interval(std::span<const double> values, double confidence);

struct BootstrapOptions {
  long resamples = 1000;     // >= 1
  double confidence = 0.95;  // in (0, 1)
};

// The stream a bootstrap draws from: keyed by the user's seed and a stable hash (FNV-1a) of `key` (the
// configuration id, view and metric), so an interval does not depend on which other configurations were
// selected, and with a salt of its own so it never coincides with a run's stream.
RandomStream bootstrap_stream(std::uint64_t seed, std::string_view key);
std::uint64_t stable_hash(std::string_view text);  // FNV-1a, 64 bit

// Which straight line a rate fit draws through log(center curve): against log t (a power law C t^slope,
// sublinear convergence) or against t (a contraction C rho^t, linear convergence, rho = exp(slope)).
enum class RateModel { power, contraction };

struct RateFit {
  LineFit fit;           // slope of log(center) on log(t) (power) or on t (contraction) over the window
  Interval slope_ci;     // percentile bootstrap interval of that slope (NaN with fewer than 2 replicates)
  long resamples_used;   // resamples with at least 2 points in the window (the others are skipped)
  RateModel model = RateModel::power;
};
// rho = exp(slope) and its interval, for a contraction fit (exp is increasing, so percentiles map over).
double contraction_factor(const RateFit& fit);
Interval contraction_interval(const RateFit& fit);

// The slope of the center curve (a statistic over replicates) in log-log coordinates over `window`,
// with a percentile bootstrap interval from resampling whole replicates (rows of `runs`).
RateFit bootstrap_loglog_slope(const ReplicateMatrix& runs, std::span<const long> checkpoints,
                               FitWindow window, Statistic center, const BootstrapOptions& options,
                               RandomStream& stream);
// The same with log(center) against t: rho = exp(slope) per step, with the replicate-bootstrap interval
// (whole runs resampled, so the correlation between checkpoints of a run is kept; the OLS standard error
// across checkpoints would assume it away). t = 0 counts when the window holds it.
RateFit bootstrap_contraction(const ReplicateMatrix& runs, std::span<const long> checkpoints, FitWindow window,
                              Statistic center, const BootstrapOptions& options, RandomStream& stream);
RateFit bootstrap_rate(RateModel model, const ReplicateMatrix& runs, std::span<const long> checkpoints,
                       FitWindow window, Statistic center, const BootstrapOptions& options, RandomStream& stream);

// `auto` model choice: fit both lines to log(center) over the window's checkpoints with t > 0 (the same
// points and the same y for both) and take the one with the smaller residual sum of squares; power on a tie
// or when neither fits (fewer than 3 points).
RateModel choose_rate_model(const ReplicateMatrix& runs, std::span<const long> checkpoints, FitWindow window,
                            Statistic center);

// Paired differences d_r = a_r - b_r between two configurations run on the same replicates (common random
// numbers: replicate r of both saw the same instance and the same random inputs). Pairs where either side
// is NaN (not measured) are dropped and not counted in `pairs`; a failed side is +Inf: d = +-Inf, and a tie
// (d = 0) when both failed.
struct PairedDifference {
  long pairs = 0;
  double median;
  Interval median_ci;         // percentile bootstrap over pairs
  double mean;
  double mean_se;
  double fraction_a_smaller;  // fraction of pairs with a_r < b_r, ties counted one half
};

PairedDifference paired_difference(std::span<const double> a, std::span<const double> b,
                                   const BootstrapOptions& options, RandomStream& stream);

}  // namespace ratelab::stats
