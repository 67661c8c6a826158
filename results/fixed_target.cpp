#include "results/fixed_target.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/params.hpp"

namespace ratelab::stats {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
}  // namespace

double hitting_time(std::span<const double> row, std::span<const double> budget, double target) {
  bool measured = false;
  for (std::size_t k = 0; k < row.size() && k < budget.size(); ++k) {
    if (std::isnan(row[k])) continue;
    measured = true;
    if (row[k] <= target) return budget[k];
  }
  return measured ? kInf : kNaN;
}

std::vector<double> hitting_times(const ReplicateMatrix& runs, const ReplicateMatrix& budgets, double target) {
  if (budgets.rows() != runs.rows() || budgets.cols() != runs.cols())
    throw ConfigError("hitting times: the budgets need the runs' shape (replicates x checkpoints)");
  std::vector<double> out(std::size_t(runs.rows()));
  const auto row = [](const ReplicateMatrix& m, Eigen::Index r) {
    return std::span<const double>(m.data() + r * m.cols(), std::size_t(m.cols()));
  };
  for (Eigen::Index r = 0; r < runs.rows(); ++r)
    out[std::size_t(r)] = hitting_time(row(runs, r), row(budgets, r), target);
  return out;
}

std::vector<double> run_horizons(const ReplicateMatrix& budgets) {
  std::vector<double> out(std::size_t(budgets.rows()), 0.0);
  for (Eigen::Index r = 0; r < budgets.rows(); ++r)
    for (Eigen::Index k = budgets.cols() - 1; k >= 0; --k)
      if (std::isfinite(budgets(r, k))) {
        out[std::size_t(r)] = budgets(r, k);
        break;
      }
  return out;
}

double expected_running_time(std::span<const double> hitting_times, std::span<const double> horizons) {
  if (horizons.size() != hitting_times.size())
    throw ConfigError("ERT: one horizon per run is needed");
  double spent = 0.0;
  long successes = 0;
  for (std::size_t r = 0; r < hitting_times.size(); ++r) {
    const double h = hitting_times[r];
    if (std::isnan(h)) continue;
    if (std::isfinite(h)) spent += h, ++successes;
    else spent += horizons[r];
  }
  return successes ? spent / double(successes) : kInf;
}

FixedTargetSummary fixed_target_summary(std::span<const double> hitting_times, std::span<const double> horizons,
                                        double q_low, double q_high, const BootstrapOptions& options,
                                        RandomStream& stream) {
  if (options.resamples < 1 || !(options.confidence > 0 && options.confidence < 1))
    throw ConfigError("bootstrap >= 1 and 0 < confidence < 1 are needed for the ERT interval");
  if (horizons.size() != hitting_times.size()) throw ConfigError("ERT: one horizon per run is needed");
  std::vector<double> present, spent;
  for (std::size_t r = 0; r < hitting_times.size(); ++r)
    if (!std::isnan(hitting_times[r])) present.push_back(hitting_times[r]), spent.push_back(horizons[r]);
  FixedTargetSummary out;
  out.runs = long(present.size());
  out.successes = long(count_finite(present));
  out.ert = expected_running_time(present, spent);
  out.median = median(present);
  out.q_low = quantile(present, q_low);
  out.q_high = quantile(present, q_high);
  out.ert_ci = {kNaN, kNaN};
  if (present.size() < 2) return out;
  std::vector<double> resample(present.size()), resample_spent(present.size()), draws;
  draws.reserve(std::size_t(options.resamples));
  for (long b = 0; b < options.resamples; ++b) {
    for (std::size_t i = 0; i < resample.size(); ++i) {
      const std::size_t run = stream.below(present.size());
      resample[i] = present[run];
      resample_spent[i] = spent[run];
    }
    draws.push_back(expected_running_time(resample, resample_spent));
  }
  std::sort(draws.begin(), draws.end());
  const double tail = (1.0 - options.confidence) / 2.0;
  out.ert_ci = {quantile_sorted(draws, tail), quantile_sorted(draws, 1.0 - tail)};
  return out;
}

Ecdf runtime_ecdf(const std::vector<double>& hitting_times, std::span<const double> budgets) {
  if (budgets.empty() || budgets.front() <= 0 || !std::is_sorted(budgets.begin(), budgets.end()))
    throw ConfigError("ECDF budgets must be increasing and > 0");
  Ecdf out;
  std::vector<double> sorted;
  for (double h : hitting_times)
    if (!std::isnan(h)) sorted.push_back(h);
  std::sort(sorted.begin(), sorted.end());
  out.pairs = long(sorted.size());
  for (double b : budgets) {
    const auto solved = std::upper_bound(sorted.begin(), sorted.end(), b) - sorted.begin();
    out.fraction.push_back(sorted.empty() ? kNaN : double(solved) / double(sorted.size()));
  }
  // F is right-continuous and constant on [b_j, b_{j+1}): the area is a sum of rectangles in log b.
  const double range = std::log(budgets.back()) - std::log(budgets.front());
  if (sorted.empty() || !(range > 0)) {
    out.auc = kNaN;
    return out;
  }
  double area = 0.0;
  for (std::size_t j = 0; j + 1 < budgets.size(); ++j)
    area += out.fraction[j] * (std::log(budgets[j + 1]) - std::log(budgets[j]));
  out.auc = area / range;
  return out;
}

std::vector<double> log_spaced_targets(double high, double low, long count) {
  if (!(low > 0 && low < high) || count < 2)
    throw ConfigError("targets from " + format_value(high) + " down to " + format_value(low) + ", " +
                      std::to_string(count) + " of them: need 0 < low < high and at least 2");
  std::vector<double> out;
  for (long i = 0; i < count; ++i)
    out.push_back(i == 0 ? high : i + 1 == count ? low
                                 : high * std::pow(low / high, double(i) / double(count - 1)));
  return out;
}

std::vector<std::vector<double>> performance_profile(const std::vector<std::vector<double>>& cost,
                                                     std::span<const double> taus) {
  const std::size_t solvers = cost.empty() ? 0 : cost.front().size();
  std::vector<std::vector<double>> out(solvers, std::vector<double>(taus.size(), 0.0));
  if (cost.empty()) return out;
  for (const auto& row : cost) {
    if (row.size() != solvers) throw ConfigError("performance profile: every problem needs one cost per solver");
    const double best = *std::min_element(row.begin(), row.end());
    if (!std::isfinite(best)) continue;  // no solver solved it
    for (std::size_t s = 0; s < solvers; ++s) {
      // best == 0 (solved at t = 0): a solver with cost 0 has ratio 1, any other +inf.
      const double ratio = row[s] == best ? 1.0 : best > 0 ? row[s] / best : kInf;
      for (std::size_t i = 0; i < taus.size(); ++i)
        if (ratio <= taus[i]) out[s][i] += 1.0;
    }
  }
  for (auto& solver : out)
    for (auto& v : solver) v /= double(cost.size());
  return out;
}

std::vector<std::vector<double>> data_profile(const std::vector<std::vector<double>>& cost,
                                              std::span<const double> budgets) {
  const std::size_t solvers = cost.empty() ? 0 : cost.front().size();
  std::vector<std::vector<double>> out(solvers, std::vector<double>(budgets.size(), 0.0));
  for (const auto& row : cost) {
    if (row.size() != solvers) throw ConfigError("data profile: every problem needs one cost per solver");
    for (std::size_t s = 0; s < solvers; ++s)
      for (std::size_t i = 0; i < budgets.size(); ++i)
        if (row[s] <= budgets[i]) out[s][i] += 1.0;
  }
  for (auto& solver : out)
    for (auto& v : solver) v /= double(cost.size());
  return out;
}

}  // namespace ratelab::stats
