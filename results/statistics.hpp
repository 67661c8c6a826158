// Statistics shared by `plot`, `summary`, `compare` and `verify`: one definition of each quantity, so a
// number in a figure, in a table and in a verification verdict is the same number.
//
// Quantiles: Hyndman & Fan (1996), "Sample quantiles in statistical packages", definition 7 (numpy's
// default method "linear", R's default type 7). For sorted x_0 <= ... <= x_{n-1} and p in [0, 1]:
//   h = (n - 1) p,  Q(p) = x_floor(h) + (h - floor(h)) (x_{floor(h)+1} - x_floor(h)),
// so Q(0) = min, Q(1) = max, Q(1/2) = the usual median.
//
// Missing values: every function here ignores non-finite entries (NaN after a divergence, +-Inf), and the
// curve functions report how many entries they used, so a diverged run is counted, never silently lost.
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
#include <span>
#include <string_view>
#include <vector>

#include "core/rng.hpp"

namespace ratelab::stats {

// ---- descriptive statistics (non-finite entries ignored; NaN when nothing is left) -------------------

// Definition 7 on data already sorted increasingly and all finite. p outside [0, 1]: ConfigError.
double quantile_sorted(std::span<const double> sorted, double p);
double quantile(std::span<const double> values, double p);
double median(std::span<const double> values);
double mean(std::span<const double> values);
// Sample standard deviation (denominator n - 1) over sqrt(n); NaN for fewer than 2 finite values.
double standard_error(std::span<const double> values);
std::size_t count_finite(std::span<const double> values);

// ---- least squares ------------------------------------------------------------------------------------

struct LineFit {
  double slope;
  double intercept;
  double slope_se;     // NaN with fewer than 3 points
  std::size_t points;  // pairs used; slope and intercept are NaN with fewer than 2
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
  std::vector<double> value;  // the statistic over the finite entries of each column (NaN if none)
  std::vector<long> used;     // how many replicates were finite at each checkpoint
  long replicates = 0;        // rows of the matrix: replicates - used[k] runs were missing at k
};

ReplicateCurve replicate_curve(const ReplicateMatrix& runs, Statistic statistic);

// ---- bootstrap ----------------------------------------------------------------------------------------

struct Interval {
  double lo;
  double hi;
};

struct BootstrapOptions {
  long resamples = 1000;     // >= 1
  double confidence = 0.95;  // in (0, 1)
};

// The stream a bootstrap draws from: keyed by the user's seed and a stable hash (FNV-1a) of `key` (the
// configuration id, view and metric), so an interval does not depend on which other configurations were
// selected, and with a salt of its own so it never coincides with a run's stream.
RandomStream bootstrap_stream(std::uint64_t seed, std::string_view key);
std::uint64_t stable_hash(std::string_view text);  // FNV-1a, 64 bit

struct RateFit {
  LineFit fit;           // slope of log(center) on log(t) over the window
  Interval slope_ci;     // percentile bootstrap interval of that slope
  long resamples_used;   // resamples with at least 2 points in the window (the others are skipped)
};

// The slope of the center curve (a statistic over replicates) in log-log coordinates over `window`,
// with a percentile bootstrap interval from resampling whole replicates (rows of `runs`).
RateFit bootstrap_loglog_slope(const ReplicateMatrix& runs, std::span<const long> checkpoints,
                               FitWindow window, Statistic center, const BootstrapOptions& options,
                               RandomStream& stream);

// Paired differences d_r = a_r - b_r between two configurations run on the same replicates (common random
// numbers: replicate r of both saw the same instance and the same random inputs). Pairs where either side
// is non-finite are dropped and not counted in `pairs`.
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
