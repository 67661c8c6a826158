// Honest statistics (issue 26, piece 1): a failed run counts as +infinity, every table says how many runs a
// number rests on, Student t intervals for means, no interval from one run, the contraction fit with its
// replicate-bootstrap interval, and claims that require the interval (not only the estimate) to hold.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "core/rng.hpp"
#include "experiments/claims.hpp"
#include "results/statistics.hpp"
#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"

#include "csv_support.hpp"

using namespace ratelab;

using ratelab_test::csv_row;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One configuration, one view, `replicates` runs at `checkpoints`; value(r, t) gives each entry.
template <class Value>
results::TraceData one_configuration(long replicates, std::vector<long> checkpoints, Value value,
                                     const std::string& experiment_text = "") {
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "honest";
  d.layout.experiment_text = experiment_text;
  d.layout.replicates = replicates;
  d.layout.checkpoints = std::move(checkpoints);
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  results::ConfigurationRecord rec;
  rec.id = "00112233445566ff";
  rec.label = "sgd eta=2";
  rec.parameters = {{"optimizer", std::string("sgd")}, {"schedule.eta", 2.0}};
  d.layout.configurations.push_back(rec);
  const std::size_t R = std::size_t(replicates), K = d.layout.checkpoints.size();
  d.traces.assign(1, std::vector<double>(R * K));
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t k = 0; k < K; ++k) d.traces[0][r * K + k] = value(r, d.layout.checkpoints[k]);
  d.status.assign(R, RunStatus::ok);
  d.stop_step.assign(R, d.layout.checkpoints.back());
  d.wall_seconds.assign(R, 0.0);
  d.eval_seconds.assign(R, 0.0);
  d.messages.assign(R, "");
  return d;
}

}  // namespace

TEST_CASE("a failed run is +inf: quantiles, means and standard errors count it", "[statistics][issue26]") {
  const std::vector<double> two_of_three{1.0, 2.0, kInf};
  CHECK(stats::median(two_of_three) == 2.0);
  CHECK(stats::quantile(two_of_three, 0.25) == 1.5);
  CHECK(stats::quantile(two_of_three, 0.75) == kInf);  // interpolating towards +inf is +inf
  CHECK(stats::quantile(two_of_three, 1.0) == kInf);
  CHECK(stats::median(std::vector<double>{1.0, kInf, kInf}) == kInf);
  CHECK(stats::median(std::vector<double>{kInf, kInf}) == kInf);  // no inf - inf
  CHECK(stats::mean(two_of_three) == kInf);
  CHECK(stats::standard_error(two_of_three) == kInf);
  // NaN is "not measured" (interrupted, missing): ignored, not counted.
  CHECK(stats::median(std::vector<double>{1.0, 2.0, 3.0, kNaN}) == 2.0);
  CHECK(stats::count_present(std::vector<double>{1.0, kInf, kNaN}) == 2);
  CHECK(stats::count_finite(std::vector<double>{1.0, kInf, kNaN}) == 1);
  // Paired: a failed side is the larger; both failed is a tie.
  RandomStream stream = stats::bootstrap_stream(1, "pairs");
  const auto d = stats::paired_difference(std::vector<double>{kInf, kInf, 1.0}, std::vector<double>{1.0, kInf, 2.0},
                                          {50, 0.95}, stream);
  CHECK(d.pairs == 3);
  CHECK(d.median == 0.0);                        // {+inf, 0, -1}
  CHECK(d.fraction_a_smaller == Approx(0.5));    // 0 + 1/2 + 1, over 3
}

TEST_CASE("37 of 40 runs diverged: the median is infinite and the table says 3/40 finished", "[analysis][issue26]") {
  // Replicates 0..36 diverged at t = 10 (NaN from there on, status diverged); 37..39 converge like 1/t.
  auto data = one_configuration(40, {1, 2, 5, 10, 20, 50, 100}, [](std::size_t r, long t) {
    return r < 37 && t >= 10 ? kNaN : (1.0 + 0.01 * double(r)) / double(t);
  });
  for (std::size_t r = 0; r < 37; ++r) data.status[r] = RunStatus::diverged;
  tools::SummaryOptions options;
  options.bootstrap = 50;
  std::ostringstream table;
  REQUIRE(tools::summary(options, data, table) == 0);
  INFO(table.str());
  CHECK_THAT(table.str(), Catch::Contains("3/40"));
  CHECK_THAT(table.str(), Catch::Contains("counts as +inf"));
  // The aligned row: final_median, both quantiles inf.
  CHECK_THAT(table.str(), Catch::Matches("(.|\n)*sgd eta=2 +last +inf +inf +inf(.|\n)*"));

  options.csv = true;
  std::ostringstream csv;
  REQUIRE(tools::summary(options, data, csv) == 0);
  const auto row = csv_row(csv.str());
  CHECK(row.at("final_n") == "40");
  CHECK(row.at("final_finished") == "3");
  CHECK(std::stod(row.at("final_median")) == kInf);
  CHECK(std::stod(row.at("final_mean")) == kInf);
  CHECK(row.at("diverged") == "37");

  // Fewer than half failed: the median is finite, the order statistic of all 40 (failed ones on top).
  for (std::size_t r = 0; r < 37; ++r) data.status[r] = r < 15 ? RunStatus::diverged : RunStatus::ok;
  for (std::size_t r = 15; r < 37; ++r)
    for (std::size_t k = 0; k < 7; ++k)
      data.traces[0][r * 7 + k] = (1.0 + 0.01 * double(r)) / double(data.layout.checkpoints[k]);
  std::ostringstream csv2;
  REQUIRE(tools::summary(options, data, csv2) == 0);
  const auto row2 = csv_row(csv2.str());
  CHECK(row2.at("final_finished") == "25");
  // Sorted finals: replicates 15..39 (25 finite values, increasing in r), then 15 at +inf: median = mean
  // of the 20th and 21st smallest (0-based 19, 20) = replicates 34 and 35.
  CHECK(std::stod(row2.at("final_median")) == Approx((1.34 + 1.35) / 2 / 100).epsilon(1e-12));
  // An errored run is +inf too; an interrupted one is not counted.
  data.status[39] = RunStatus::error;
  data.status[38] = RunStatus::interrupted;
  for (std::size_t k = 0; k < 7; ++k) data.traces[0][38 * 7 + k] = kNaN;
  const auto runs = results::replicate_matrix(data, 0, 0, 0);
  CHECK(runs(39, 6) == kInf);
  CHECK(std::isnan(runs(38, 6)));
  CHECK(runs(0, 0) == 1.0);  // a diverged run keeps what it measured before diverging
  CHECK(runs(0, 6) == kInf);
}

TEST_CASE("Student t quantiles for mean intervals", "[statistics][issue26]") {
  // Reference values from mpmath at 30 digits: t_{0.975, 9} is the root of I_{9/(9+x^2)}(4.5, 0.5)/2 = 0.025;
  // with 1 degree of freedom t is Cauchy: tan(0.475 pi).
  CHECK(stats::student_t_quantile(0.975, 9) == Approx(2.2621571627982055).epsilon(1e-12));
  CHECK(stats::student_t_quantile(0.975, 1) == Approx(12.706204736174693).epsilon(1e-12));
  CHECK(stats::student_t_quantile(0.5, 4) == Approx(0.0).margin(1e-15));
  // 1, 2, ..., 10: mean 5.5, sd sqrt(55/6), se sqrt(55/6)/sqrt(10).
  std::vector<double> x;
  for (int i = 1; i <= 10; ++i) x.push_back(i);
  const auto m = stats::mean_interval(x, 0.95);
  const double se = std::sqrt(55.0 / 6.0 / 10.0);
  CHECK(m.n == 10);
  CHECK(m.se == Approx(se).epsilon(1e-14));
  CHECK(m.interval.lo == Approx(5.5 - 2.2621571627982055 * se).epsilon(1e-12));
  CHECK(m.interval.hi == Approx(5.5 + 2.2621571627982055 * se).epsilon(1e-12));
  CHECK(std::isnan(stats::mean_interval(std::vector<double>{3.0}, 0.95).interval.lo));
  CHECK_THROWS_AS(stats::student_t_quantile(1.0, 3), ConfigError);
  // A value claim with stat=mean reports the t interval.
  auto data = one_configuration(4, {1, 10}, [](std::size_t r, long) { return double(r + 1); });  // 1, 2, 3, 4
  const auto claim = claims::parse_claims(parse_ini("[claims]\nm = value stat=mean expect=[0, 10]\n", "m.ini"));
  const auto v = claims::evaluate_claims(claim, data);
  const double se4 = std::sqrt((1.5 * 1.5 * 2 + 0.5 * 0.5 * 2) / 3.0 / 4.0);
  CHECK(v[0].interval.lo == Approx(2.5 - stats::student_t_quantile(0.975, 3) * se4).epsilon(1e-12));
  CHECK_THAT(v[0].measured, Catch::Contains("t-interval"));
}

TEST_CASE("summary with one run: n/a (one run), not a degenerate interval", "[analysis][issue26]") {
  auto data = one_configuration(1, {1, 10, 100, 1000}, [](std::size_t, long t) { return 1.0 / double(t); });
  tools::SummaryOptions options;
  options.bootstrap = 20;
  std::ostringstream table;
  REQUIRE(tools::summary(options, data, table) == 0);
  INFO(table.str());
  CHECK_THAT(table.str(), Catch::Contains("n/a (one run)"));
  CHECK_THAT(table.str(), !Catch::Contains("[-1, -1]"));
  options.csv = true;
  std::ostringstream csv;
  REQUIRE(tools::summary(options, data, csv) == 0);
  CHECK(std::isnan(std::stod(csv_row(csv.str()).at("slope_lo"))));
}

TEST_CASE("contraction fit: exact geometric sequence to 1e-9, summary --fit and the stored [summary] fit",
          "[statistics][issue26]") {
  const double rho = 0.97;
  std::vector<long> t;
  for (long k = 0; k <= 300; k += 10) t.push_back(k);
  auto data = one_configuration(5, t, [&](std::size_t r, long step) {
    return (1.0 + 0.5 * double(r)) * std::pow(rho, double(step));
  });
  const auto runs = results::replicate_matrix(data, 0, 0, 0);
  RandomStream stream = stats::bootstrap_stream(1, "geometric");
  const auto fit = stats::bootstrap_contraction(runs, t, {30, 300}, stats::Statistic::median(), {200, 0.95}, stream);
  CHECK(stats::contraction_factor(fit) == Approx(rho).margin(1e-9));
  CHECK(stats::contraction_interval(fit).lo == Approx(rho).margin(1e-9));  // every resample is exact
  CHECK(stats::contraction_interval(fit).hi == Approx(rho).margin(1e-9));
  CHECK(stats::choose_rate_model(runs, t, {30, 300}, stats::Statistic::median()) == stats::RateModel::contraction);
  auto power = one_configuration(5, {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
                                 [](std::size_t r, long step) { return (1.0 + double(r)) / double(step); });
  CHECK(stats::choose_rate_model(results::replicate_matrix(power, 0, 0, 0), power.layout.checkpoints, {100, 1000},
                                 stats::Statistic::median()) == stats::RateModel::power);

  tools::SummaryOptions options;
  options.csv = true;
  options.bootstrap = 100;
  options.fit = "contraction";
  std::ostringstream csv;
  REQUIRE(tools::summary(options, data, csv) == 0);
  auto row = csv_row(csv.str());
  CHECK(row.at("fit") == "contraction");
  CHECK(std::stod(row.at("rho")) == Approx(rho).margin(1e-9));
  options.fit = "auto";
  std::ostringstream csv_auto;
  REQUIRE(tools::summary(options, data, csv_auto) == 0);
  CHECK(csv_row(csv_auto.str()).at("fit") == "contraction");
  // A preset's [summary] fit (stored in the file's experiment text) is summary's default.
  options.fit = "";
  data.layout.experiment_text = "[experiment]\nname = honest\n\n[summary]\nfit = contraction\n";
  std::ostringstream csv_stored;
  REQUIRE(tools::summary(options, data, csv_stored) == 0);
  CHECK(csv_row(csv_stored.str()).at("fit") == "contraction");
  options.fit = "exponential";
  std::ostringstream ignored;
  CHECK_THROWS_WITH(tools::summary(options, data, ignored), Catch::Contains("power, contraction, auto"));
}

TEST_CASE("contraction interval covers the true rho in about 95% of 200 noisy data sets", "[statistics][issue26]") {
  // 40 replicates of 2 rho^t exp(0.5 z_r + 0.2 e_{r,k}) at t = 0, 5, ..., 100: every mean over replicates is
  // exactly C rho^t in the population, so the true contraction of the mean curve is rho. With exact 95%
  // coverage the count is Binomial(200, 0.95): mean 190, sd sqrt(200 * 0.95 * 0.05) = 3.08; accept
  // 181..199 (3 sd). Measured: see the INFO line.
  const double rho = 0.95;
  std::vector<long> t;
  for (long k = 0; k <= 100; k += 5) t.push_back(k);
  int covered = 0;
  for (int d = 0; d < 200; ++d) {
    RandomStream noise(20261206, std::uint64_t(d), StreamPurpose::noise);
    stats::ReplicateMatrix runs(40, Eigen::Index(t.size()));
    for (Eigen::Index r = 0; r < runs.rows(); ++r) {
      const double shift = 0.5 * noise.normal();
      for (Eigen::Index k = 0; k < runs.cols(); ++k)
        runs(r, k) = 2.0 * std::pow(rho, double(t[std::size_t(k)])) * std::exp(shift + 0.2 * noise.normal());
    }
    RandomStream stream = stats::bootstrap_stream(1, "contraction " + std::to_string(d));
    const auto fit = stats::bootstrap_contraction(runs, t, {0, 100}, stats::Statistic::mean(), {400, 0.95}, stream);
    const auto ci = stats::contraction_interval(fit);
    if (ci.lo <= rho && rho <= ci.hi) ++covered;
  }
  INFO("covered " << covered << " of 200");
  CHECK(covered >= 181);
  CHECK(covered <= 199);
}

TEST_CASE("claims: ci=within and ci=contains judge the interval, contraction intervals equal summary's",
          "[claims][issue26]") {
  // 24 noisy runs of (1 + u) 0.9^t: contraction about 0.9.
  RandomStream noise(3, 0, StreamPurpose::noise);
  std::vector<double> u;
  for (int i = 0; i < 24 * 11; ++i) u.push_back(noise.uniform());
  auto data = one_configuration(24, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, [&](std::size_t r, long t) {
    return (1.0 + 0.9 * u[r * 11 + std::size_t(t / 10)]) * std::pow(0.9, double(t));
  });
  const auto claims_list = claims::parse_claims(parse_ini(
      "[claims]\n"
      "point = value measure=contraction window=[10, T] expect=[0.89, 0.91]\n"
      "within = value measure=contraction window=[10, T] expect=[0.899, 0.901] ci=within\n"
      "contains = value measure=contraction window=[10, T] expect=0.9 ci=contains\n"
      "slope_contains = slope window=[10, T] expect=-5 ci=contains\n",
      "c.ini"));
  const auto v = claims::evaluate_claims(claims_list, data, 5, 300);
  REQUIRE(v.size() == 4);
  INFO(claims::format_verdict(v[0]) << "\n" << claims::format_verdict(v[1]) << "\n" << claims::format_verdict(v[2]));
  CHECK(v[0].pass);
  CHECK(v[0].interval.lo < v[0].value);
  CHECK(v[0].value < v[0].interval.hi);
  // The estimate lies in [0.899, 0.901] but the interval (24 noisy runs) does not.
  CHECK(std::abs(v[1].value - 0.9) < 0.001);
  CHECK_FALSE(v[1].pass);
  CHECK(v[2].pass == (v[2].interval.lo <= 0.9 && 0.9 <= v[2].interval.hi));
  CHECK_FALSE(v[3].pass);

  tools::SummaryOptions options;
  options.csv = true;
  options.fit = "contraction";
  options.fit_from = 10;
  options.seed = 5;
  options.bootstrap = 300;
  std::ostringstream csv;
  REQUIRE(tools::summary(options, data, csv) == 0);
  const auto row = csv_row(csv.str());
  CHECK(v[0].value == std::stod(row.at("rho")));
  CHECK(v[0].interval.lo == std::stod(row.at("rho_lo")));
  CHECK(v[0].interval.hi == std::stod(row.at("rho_hi")));

  CHECK_THROWS_WITH(claims::parse_claims(parse_ini("[claims]\nx = slope expect=-1\n", "x.ini")),
                    Catch::Contains("ci=contains"));
  CHECK_THROWS_WITH(claims::parse_claims(parse_ini("[claims]\nx = slope expect=[-1, 0] ci=sometimes\n", "x.ini")),
                    Catch::Contains("within"));
  CHECK_THROWS_WITH(claims::parse_claims(parse_ini("[claims]\nx = value expect=1 tol=0.1 ci=within\n", "x.ini")),
                    Catch::Contains("ci=within needs expect=[low, high]"));
}
