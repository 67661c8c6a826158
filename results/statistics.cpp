#include "results/statistics.hpp"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <limits>
#include <string>

#include "core/params.hpp"

namespace ratelab::stats {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Salt of every bootstrap stream, distinct from the run streams' default salt 0 ("bootstrp" in ASCII).
constexpr std::uint64_t kBootstrapSalt = 0x626f6f7473747270ULL;

void check_probability(double p) {
  if (!(p >= 0.0 && p <= 1.0))
    throw ConfigError("quantile level p = " + format_value(p) + " violates 0 <= p <= 1");
}

void check_options(const BootstrapOptions& options) {
  std::vector<std::string> errors;
  if (options.resamples < 1)
    errors.push_back("bootstrap = " + std::to_string(options.resamples) + " violates bootstrap >= 1");
  if (!(options.confidence > 0.0 && options.confidence < 1.0))
    errors.push_back("confidence = " + format_value(options.confidence) + " violates 0 < confidence < 1");
  if (!errors.empty()) throw ConfigError(errors);
}

void keep_present(std::span<const double> values, std::vector<double>& out) {
  out.clear();
  for (double v : values)
    if (!std::isnan(v)) out.push_back(v);
}

// x_lo + fraction (x_hi - x_lo) without inf - inf: towards +Inf is +Inf.
double interpolate(double x_lo, double x_hi, double fraction) {
  if (fraction == 0.0 || x_lo == x_hi) return x_lo;
  if (std::isinf(x_hi) || std::isinf(x_lo)) return x_hi > 0 && std::isinf(x_hi) ? x_hi : x_lo;
  return x_lo + fraction * (x_hi - x_lo);
}

// Definition 7 on an unsorted finite buffer, reordering it: the two order statistics it needs are found
// by selection, which gives exactly the values sorting would.
double quantile_in_place(std::vector<double>& buffer, double p) {
  const std::size_t n = buffer.size();
  if (n == 0) return kNaN;
  const double h = double(n - 1) * p;
  const std::size_t lo = std::min(std::size_t(std::floor(h)), n - 1);
  std::nth_element(buffer.begin(), buffer.begin() + std::ptrdiff_t(lo), buffer.end());
  const double x_lo = buffer[lo];
  if (lo + 1 >= n) return x_lo;
  const double x_hi = *std::min_element(buffer.begin() + std::ptrdiff_t(lo) + 1, buffer.end());
  return interpolate(x_lo, x_hi, h - double(lo));
}

double statistic_in_place(std::vector<double>& buffer, Statistic statistic) {
  if (statistic.kind == Statistic::Kind::quantile) return quantile_in_place(buffer, statistic.p);
  if (buffer.empty()) return kNaN;
  double sum = 0.0;
  for (double v : buffer) sum += v;
  return sum / double(buffer.size());
}

void check_statistic(Statistic statistic) {
  if (statistic.kind == Statistic::Kind::quantile) check_probability(statistic.p);
}

Interval percentile_interval(std::vector<double>& draws, double confidence) {
  if (draws.empty()) return {kNaN, kNaN};
  std::sort(draws.begin(), draws.end());
  const double tail = (1.0 - confidence) / 2.0;
  return {quantile_sorted(draws, tail), quantile_sorted(draws, 1.0 - tail)};
}
}  // namespace

double quantile_sorted(std::span<const double> sorted, double p) {
  check_probability(p);
  const std::size_t n = sorted.size();
  if (n == 0) return kNaN;
  const double h = double(n - 1) * p;
  const std::size_t lo = std::min(std::size_t(std::floor(h)), n - 1);
  if (lo + 1 >= n) return sorted[lo];
  return interpolate(sorted[lo], sorted[lo + 1], h - double(lo));
}

double quantile(std::span<const double> values, double p) {
  check_probability(p);
  std::vector<double> buffer;
  keep_present(values, buffer);
  return quantile_in_place(buffer, p);
}

double median(std::span<const double> values) { return quantile(values, 0.5); }

double mean(std::span<const double> values) {
  double sum = 0.0;
  std::size_t n = 0;
  for (double v : values)
    if (!std::isnan(v)) sum += v, ++n;
  return n ? sum / double(n) : kNaN;
}

double standard_error(std::span<const double> values) {
  const std::size_t n = count_present(values);
  if (n < 2) return kNaN;
  if (count_finite(values) < n) return std::numeric_limits<double>::infinity();
  const double m = mean(values);
  double ss = 0.0;
  for (double v : values)
    if (std::isfinite(v)) ss += (v - m) * (v - m);
  return std::sqrt(ss / double(n - 1) / double(n));
}

std::size_t count_finite(std::span<const double> values) {
  return std::size_t(std::count_if(values.begin(), values.end(), [](double v) { return std::isfinite(v); }));
}

std::size_t count_present(std::span<const double> values) {
  return std::size_t(std::count_if(values.begin(), values.end(), [](double v) { return !std::isnan(v); }));
}

double student_t_quantile(double p, double dof) {
  if (!(p > 0.0 && p < 1.0)) throw ConfigError("Student t quantile level p = " + format_value(p) + " violates 0 < p < 1");
  if (!(dof > 0.0)) throw ConfigError("Student t degrees of freedom = " + format_value(dof) + " violates dof > 0");
  return boost::math::quantile(boost::math::students_t_distribution<double>(dof), p);
}

MeanInterval mean_interval(std::span<const double> values, double confidence) {
  if (!(confidence > 0.0 && confidence < 1.0))
    throw ConfigError("confidence = " + format_value(confidence) + " violates 0 < confidence < 1");
  MeanInterval out{mean(values), standard_error(values), {kNaN, kNaN}, long(count_present(values))};
  if (out.n < 2) return out;
  if (std::isinf(out.mean)) {
    out.interval = {out.mean, out.mean};
    return out;
  }
  const double t = student_t_quantile((1.0 + confidence) / 2.0, double(out.n - 1));
  out.interval = {out.mean - t * out.se, out.mean + t * out.se};
  return out;
}

LineFit fit_line(std::span<const double> x, std::span<const double> y) {
  LineFit fit{kNaN, kNaN, kNaN, 0};
  const std::size_t n_all = std::min(x.size(), y.size());
  double sx = 0.0, sy = 0.0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < n_all; ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) sx += x[i], sy += y[i], ++n;
  fit.points = n;
  if (n < 2) return fit;
  const double mx = sx / double(n), my = sy / double(n);
  // Centered sums: far better conditioned than the raw-moment formula when log t is large.
  double sxx = 0.0, sxy = 0.0;
  for (std::size_t i = 0; i < n_all; ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      sxx += (x[i] - mx) * (x[i] - mx);
      sxy += (x[i] - mx) * (y[i] - my);
    }
  if (!(sxx > 0.0)) return fit;  // all x equal: no slope
  fit.slope = sxy / sxx;
  fit.intercept = my - fit.slope * mx;
  double ssr = 0.0;
  for (std::size_t i = 0; i < n_all; ++i)
    if (std::isfinite(x[i]) && std::isfinite(y[i])) {
      const double r = y[i] - fit.intercept - fit.slope * x[i];
      ssr += r * r;
    }
  fit.ssr = ssr;
  if (n >= 3) fit.slope_se = std::sqrt(ssr / double(n - 2) / sxx);
  return fit;
}

FitWindow last_decade(std::span<const long> checkpoints) {
  const double t_max = checkpoints.empty() ? 0.0 : double(checkpoints.back());
  return {t_max / 10.0, t_max};
}

namespace {
// The abscissa of each checkpoint inside the window, with its column index: log t (t > 0) for a power law,
// t itself (t >= 0) for a contraction.
void window_columns(std::span<const long> checkpoints, FitWindow window, std::vector<std::size_t>& columns,
                    std::vector<double>& log_t, RateModel model = RateModel::power) {
  columns.clear();
  log_t.clear();
  for (std::size_t k = 0; k < checkpoints.size(); ++k) {
    const double t = double(checkpoints[k]);
    const bool usable = model == RateModel::power ? t > 0.0 : t >= 0.0;
    if (usable && t >= window.t_min && t <= window.t_max) {
      columns.push_back(k);
      log_t.push_back(model == RateModel::power ? std::log(t) : t);
    }
  }
}

LineFit fit_log_values(const std::vector<double>& log_t, const std::vector<double>& values,
                       std::vector<double>& log_values) {
  log_values.resize(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    log_values[i] = values[i] > 0.0 && std::isfinite(values[i]) ? std::log(values[i]) : kNaN;
  return fit_line(log_t, log_values);
}
}  // namespace

namespace {
LineFit fit_log_curve(RateModel model, std::span<const long> checkpoints, std::span<const double> curve,
                      FitWindow window) {
  std::vector<std::size_t> columns;
  std::vector<double> abscissa, values, log_values;
  window_columns(checkpoints, window, columns, abscissa, model);
  for (std::size_t k : columns) values.push_back(k < curve.size() ? curve[k] : kNaN);
  return fit_log_values(abscissa, values, log_values);
}
}  // namespace

LineFit fit_loglog(std::span<const long> checkpoints, std::span<const double> curve, FitWindow window) {
  return fit_log_curve(RateModel::power, checkpoints, curve, window);
}

LineFit fit_log_linear(std::span<const long> checkpoints, std::span<const double> curve, FitWindow window) {
  return fit_log_curve(RateModel::contraction, checkpoints, curve, window);
}

ReplicateCurve replicate_curve(const ReplicateMatrix& runs, Statistic statistic) {
  check_statistic(statistic);
  ReplicateCurve curve;
  curve.replicates = long(runs.rows());
  curve.value.resize(std::size_t(runs.cols()));
  curve.used.resize(std::size_t(runs.cols()));
  curve.finite.resize(std::size_t(runs.cols()));
  std::vector<double> buffer;
  buffer.reserve(std::size_t(runs.rows()));
  for (Eigen::Index k = 0; k < runs.cols(); ++k) {
    buffer.clear();
    long finite = 0;
    for (Eigen::Index r = 0; r < runs.rows(); ++r)
      if (!std::isnan(runs(r, k))) buffer.push_back(runs(r, k)), finite += std::isfinite(runs(r, k)) ? 1 : 0;
    curve.used[std::size_t(k)] = long(buffer.size());
    curve.finite[std::size_t(k)] = finite;
    curve.value[std::size_t(k)] = statistic_in_place(buffer, statistic);
  }
  return curve;
}

std::uint64_t stable_hash(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

RandomStream bootstrap_stream(std::uint64_t seed, std::string_view key) {
  return RandomStream(seed, stable_hash(key), StreamPurpose::sampling, kBootstrapSalt);
}

double contraction_factor(const RateFit& fit) { return std::exp(fit.fit.slope); }
Interval contraction_interval(const RateFit& fit) { return {std::exp(fit.slope_ci.lo), std::exp(fit.slope_ci.hi)}; }

RateFit bootstrap_loglog_slope(const ReplicateMatrix& runs, std::span<const long> checkpoints,
                               FitWindow window, Statistic center, const BootstrapOptions& options,
                               RandomStream& stream) {
  return bootstrap_rate(RateModel::power, runs, checkpoints, window, center, options, stream);
}

RateFit bootstrap_contraction(const ReplicateMatrix& runs, std::span<const long> checkpoints, FitWindow window,
                              Statistic center, const BootstrapOptions& options, RandomStream& stream) {
  return bootstrap_rate(RateModel::contraction, runs, checkpoints, window, center, options, stream);
}

RateModel choose_rate_model(const ReplicateMatrix& runs, std::span<const long> checkpoints, FitWindow window,
                            Statistic center) {
  const ReplicateCurve curve = replicate_curve(runs, center);
  std::vector<double> log_t, t, log_center;
  for (std::size_t k = 0; k < checkpoints.size(); ++k) {
    const double tk = double(checkpoints[k]);
    const double v = curve.value[k];
    if (!(tk > 0.0 && tk >= window.t_min && tk <= window.t_max && v > 0.0 && std::isfinite(v))) continue;
    log_t.push_back(std::log(tk));
    t.push_back(tk);
    log_center.push_back(std::log(v));
  }
  const LineFit power = fit_line(log_t, log_center), contraction = fit_line(t, log_center);
  if (power.points < 3 || !std::isfinite(power.ssr) || !std::isfinite(contraction.ssr)) return RateModel::power;
  return contraction.ssr < power.ssr ? RateModel::contraction : RateModel::power;
}

RateFit bootstrap_rate(RateModel model, const ReplicateMatrix& runs, std::span<const long> checkpoints,
                       FitWindow window, Statistic center, const BootstrapOptions& options, RandomStream& stream) {
  check_statistic(center);
  check_options(options);
  std::vector<std::size_t> columns;
  std::vector<double> log_t;  // the abscissa: log t or t
  window_columns(checkpoints, window, columns, log_t, model);
  const Eigen::Index replicates = runs.rows();

  // Only the window's columns matter: copy them once, contiguous per checkpoint.
  Eigen::MatrixXd sub(replicates, Eigen::Index(columns.size()));
  for (std::size_t j = 0; j < columns.size(); ++j) sub.col(Eigen::Index(j)) = runs.col(Eigen::Index(columns[j]));

  std::vector<double> buffer, centers(columns.size()), log_values;
  buffer.reserve(std::size_t(replicates));
  auto center_curve = [&](auto row_of) {
    for (std::size_t j = 0; j < columns.size(); ++j) {
      buffer.clear();
      for (Eigen::Index i = 0; i < replicates; ++i) {
        const double v = sub(row_of(i), Eigen::Index(j));
        if (!std::isnan(v)) buffer.push_back(v);
      }
      centers[j] = statistic_in_place(buffer, center);
    }
    return fit_log_values(log_t, centers, log_values);
  };

  RateFit result;
  result.model = model;
  result.fit = center_curve([](Eigen::Index i) { return i; });
  result.slope_ci = {kNaN, kNaN};
  result.resamples_used = 0;
  // One run: every resample is that run, so a percentile interval would be a point; there is none.
  if (replicates < 2 || result.fit.points < 2) return result;

  // A quantile of a resample depends only on how many times it drew each replicate: each column is sorted
  // once (its non-NaN values with their rows), and a resample's order statistics are read off by walking
  // that order with the draws' multiplicities, instead of gathering and partially sorting the resample for
  // every column. The same two order statistics enter the same interpolation as quantile_in_place's, so the
  // intervals are the same bits, several times faster (summary of 5,000 replicates: 1,000 resamples per row).
  const bool by_counts = center.kind == Statistic::Kind::quantile;
  std::vector<std::vector<std::pair<double, Eigen::Index>>> sorted(by_counts ? columns.size() : 0);
  std::vector<std::vector<Eigen::Index>> missing(sorted.size());  // rows whose value is NaN, per column
  for (std::size_t j = 0; j < sorted.size(); ++j) {
    for (Eigen::Index i = 0; i < replicates; ++i) {
      const double v = sub(i, Eigen::Index(j));
      if (std::isnan(v)) missing[j].push_back(i);
      else sorted[j].emplace_back(v, i);
    }
    std::sort(sorted[j].begin(), sorted[j].end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  std::vector<std::uint32_t> draws(by_counts ? std::size_t(replicates) : 0);
  auto resample_quantile = [&](std::size_t j) {
    std::size_t n = std::size_t(replicates);
    for (Eigen::Index i : missing[j]) n -= draws[std::size_t(i)];
    if (n == 0) return kNaN;
    const double h = double(n - 1) * center.p;
    const std::size_t lo = std::min(std::size_t(std::floor(h)), n - 1);
    const auto& order = sorted[j];
    std::size_t at = 0, below = 0;  // below: draws of the values before order[at]
    while (below + draws[std::size_t(order[at].second)] <= lo) below += draws[std::size_t(order[at++].second)];
    const double x_lo = order[at].first;
    if (lo + 1 >= n) return x_lo;
    if (below + draws[std::size_t(order[at].second)] > lo + 1) return interpolate(x_lo, x_lo, h - double(lo));
    do ++at;
    while (draws[std::size_t(order[at].second)] == 0);
    return interpolate(x_lo, order[at].first, h - double(lo));
  };

  std::vector<Eigen::Index> rows(static_cast<std::size_t>(replicates));
  std::vector<double> slopes;
  slopes.reserve(std::size_t(options.resamples));
  for (long b = 0; b < options.resamples; ++b) {
    for (auto& row : rows) row = Eigen::Index(stream.below(std::uint64_t(replicates)));
    LineFit fit;
    if (by_counts) {
      std::fill(draws.begin(), draws.end(), 0u);
      for (Eigen::Index row : rows) ++draws[std::size_t(row)];
      for (std::size_t j = 0; j < columns.size(); ++j) centers[j] = resample_quantile(j);
      fit = fit_log_values(log_t, centers, log_values);
    } else {
      fit = center_curve([&](Eigen::Index i) { return rows[std::size_t(i)]; });
    }
    if (fit.points >= 2 && std::isfinite(fit.slope)) slopes.push_back(fit.slope);
  }
  result.resamples_used = long(slopes.size());
  result.slope_ci = percentile_interval(slopes, options.confidence);
  return result;
}

PairedDifference paired_difference(std::span<const double> a, std::span<const double> b,
                                   const BootstrapOptions& options, RandomStream& stream) {
  check_options(options);
  std::vector<double> d;
  double smaller = 0.0;
  for (std::size_t r = 0; r < std::min(a.size(), b.size()); ++r) {
    if (std::isnan(a[r]) || std::isnan(b[r])) continue;
    d.push_back(a[r] == b[r] ? 0.0 : a[r] - b[r]);  // both failed (+Inf): a tie, not inf - inf
    smaller += a[r] < b[r] ? 1.0 : a[r] == b[r] ? 0.5 : 0.0;
  }
  PairedDifference out;
  out.pairs = long(d.size());
  out.median = median(d);
  out.mean = mean(d);
  out.mean_se = standard_error(d);
  out.fraction_a_smaller = d.empty() ? kNaN : smaller / double(d.size());
  out.median_ci = {kNaN, kNaN};
  if (d.empty()) return out;

  std::vector<double> resample(d.size()), medians;
  medians.reserve(std::size_t(options.resamples));
  for (long i = 0; i < options.resamples; ++i) {
    for (auto& v : resample) v = d[stream.below(d.size())];
    medians.push_back(quantile_in_place(resample, 0.5));
  }
  out.median_ci = percentile_interval(medians, options.confidence);
  return out;
}

}  // namespace ratelab::stats
