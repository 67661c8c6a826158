// experiment.steps as an axis (issue 25): runs of several horizons in one file, each configuration with its
// own T and the checkpoints up to it; the readers take each configuration's T; the final value against T.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "core/registry.hpp"
#include "experiments/claims.hpp"
#include "experiments/experiment.hpp"
#include "results/trace_query.hpp"
#include "results/trace_file.hpp"
#include "tools/plot.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

const Registry& registry() {
  static const Registry r = builtin_registry();
  return r;
}

ExperimentPlan plan_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return plan_experiment(registry(), parse_ini(text, "horizons.ini"), overrides);
}

const std::string kNoisy =
    "[experiment]\nname = horizons\nsteps = 100, 1000\nreplicates = 3\ncheckpoints = 6\nviews = last, uniform\n"
    "[problem]\nname = quadratic\nd = 8\nmu = 0.1\nL = 1\nnoise_scale = 0.5\n"
    "[optimizer]\nname = sgd\n[schedule]\nname = inv_sqrt\nc = 0.3\n";

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path file = scratch(name);
  std::ofstream(file) << text;
  return file;
}

}  // namespace

TEST_CASE("experiment.steps as an axis: a configuration per horizon, its own T, the union of the checkpoints",
          "[horizons]") {
  const ExperimentPlan plan = plan_of(kNoisy);
  REQUIRE(plan.configurations.size() == 2);
  const auto& short_run = plan.configurations[0];
  const auto& long_run = plan.configurations[1];
  CHECK(short_run.steps == 100);
  CHECK(long_run.steps == 1000);
  CHECK(short_run.horizon_varies);
  CHECK(short_run.id != long_run.id);
  CHECK(short_run.salt == long_run.salt);
  CHECK(short_run.label == "sgd steps=100");
  CHECK(long_run.label == "sgd steps=1000");
  CHECK(plan.run.steps == 1000);
  // The union of log_checkpoints(100, 6) and log_checkpoints(1000, 6): each horizon records what it would alone.
  std::vector<long> expected = log_checkpoints(100, 6);
  for (long t : log_checkpoints(1000, 6)) expected.push_back(t);
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  CHECK(plan.run.checkpoints == expected);
  CHECK_THAT(plan.resolved_text, Catch::Contains("steps = 100, 1000\n"));
  // Without common random numbers, the salt is still the parameters' alone: the horizons share their streams.
  const ExperimentPlan decorrelated = plan_of(kNoisy, {"experiment.common_random_numbers=false"});
  CHECK(decorrelated.configurations[0].salt == decorrelated.configurations[1].salt);
  CHECK(decorrelated.configurations[0].salt != 0);
  // The command line and formulas: --sweep, a range, steps = problem.T with T varying (refused before).
  CHECK(plan_of(kNoisy, {"experiment.steps=logspace(10, 1000, 3)"}).configurations.size() == 3);
  const std::string harvey = "[experiment]\nname = harvey_T\nsteps = problem.T\nreplicates = 1\ncheckpoints = 5\n"
                             "[problem]\nname = harvey_lip\nT = 64, 128\n"
                             "[optimizer]\nname = sgd\n[schedule]\nname = horizon\nc = 1\n";
  const ExperimentPlan from_problem = plan_of(harvey);
  REQUIRE(from_problem.configurations.size() == 2);
  CHECK(from_problem.configurations[0].steps == 64);
  CHECK(from_problem.configurations[1].steps == 128);
  CHECK(from_problem.run.checkpoints.back() == 128);
  // The horizon schedules read the configuration's own T.
  const PreparedExperiment prepared(registry(), from_problem, 1);
  CHECK(prepared.schedule(0)(1) == 1.0 * double(64) / std::pow(64.0, 1.5));
  CHECK(prepared.schedule(1)(1) == 1.0 * double(128) / std::pow(128.0, 1.5));
  CHECK(prepared.run_plan(0).steps == 64);
  CHECK(prepared.run_plan(1).steps == 128);
  // A repeated horizon is refused.
  CHECK_THROWS_WITH(plan_of(kNoisy, {"experiment.steps=100, 100"}), Catch::Contains("repeats a horizon"));
}

TEST_CASE("a swept file: each horizon's runs stop at their T, share the noise prefix, and the readers take each T",
          "[horizons]") {
  const fs::path file = write_file("horizons.ini", kNoisy), out = scratch("horizons.h5");
  const auto o = run_cli("run " + file.string() + " --quiet --threads 2 -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  const auto& cp = data.layout.checkpoints;
  const std::size_t K = cp.size(), V = 2, R = 3;
  REQUIRE(results::horizon(data, 0) == 100);
  REQUIRE(results::horizon(data, 1) == 1000);
  const std::size_t last_short = results::horizon_checkpoint(data, 0);
  CHECK(cp[last_short] == 100);
  CHECK(results::horizon_checkpoint(data, 1) == K - 1);
  for (const std::string metric : {"subopt", "dist2"}) {
    const std::size_t m = *data.metric_index(metric);
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t r = 0; r < R; ++r) {
        CHECK(data.status[r] == RunStatus::ok);
        CHECK(data.stop_step[r] == 100);
        CHECK(data.stop_step[R + r] == 1000);
        for (std::size_t k = 0; k < K; ++k) {
          INFO(metric << ", view " << v << ", replicate " << r << ", t = " << cp[k]);
          if (k <= last_short) CHECK(data.trace(m, 0, v, r, k) == data.trace(m, 1, v, r, k));  // bit for bit
          else CHECK(std::isnan(data.trace(m, 0, v, r, k)));                                 // beyond T = 100
        }
      }
  }
  // summary: each row's final value at its own T; the file's text says so.
  const auto summary = run_cli("summary " + out.string() + " --csv --views last");
  INFO(summary.output);
  REQUIRE(summary.exit_code == 0);
  const auto column_of = [&](const std::string& label, const std::string& column) {
    std::istringstream lines(summary.output);
    std::string header, line;
    std::getline(lines, header);
    std::vector<std::string> names, values;
    for (std::stringstream h(header); std::getline(h, line, ',');) names.push_back(line);
    while (std::getline(lines, line)) {
      if (line.rfind(label + ",", 0) != 0) continue;
      for (std::stringstream l(line); std::getline(l, header, ',');) values.push_back(header);
      return values.at(std::size_t(std::find(names.begin(), names.end(), column) - names.begin()));
    }
    return std::string("(no row)");
  };
  const std::size_t subopt = *data.metric_index("subopt");
  std::vector<double> finals;
  for (std::size_t r = 0; r < R; ++r) finals.push_back(data.trace(subopt, 0, 0, r, last_short));
  std::sort(finals.begin(), finals.end());
  CHECK(std::stod(column_of("sgd steps=100", "final_median")) == finals[1]);
  CHECK(std::stod(column_of("sgd steps=100", "final_finished")) == 3);
  // ert charges a run that never reaches the target its own T.
  const auto ert = run_cli("ert " + out.string() + " --targets 1e-300");
  INFO(ert.output);
  REQUIRE(ert.exit_code == 0);
  // export: a configuration's rows stop at its T.
  const fs::path csv = scratch("horizons.csv");
  const auto exported = run_cli("export " + out.string() + " -o " + csv.string());
  INFO(exported.output);
  REQUIRE(exported.exit_code == 0);
  CHECK_THAT(exported.output, Catch::Contains(std::to_string(V * R * (last_short + 1 + K)) + " rows"));
  // A claim's T is its configuration's.
  claims::Claim claim = claims::parse_claims(parse_ini("[claims]\nfinal = value where=problem.d=8 at=T expect=[0, 1]\n", "c"))[0];
  const auto verdicts = claims::evaluate_claims({claim}, data, 1);
  CHECK_THAT(verdicts[0].what, Catch::Contains("t=100") || Catch::Contains("t=1000"));
}

TEST_CASE("the final value against T: the log-log slope across horizons, exact on gradient descent with c / sqrt(T)",
          "[horizons]") {
  // f(x) = x^2 / 2 from x_0 = 1 without noise, T steps of eta = 1 / sqrt(T) (horizon_constant, c = 1):
  // x_T = (1 - eta)^T, as x - eta x step by step, and f(x_T) = x_T^2 / 2; every replicate the same.
  const std::vector<long> T{16, 64, 256, 1024};
  const std::string text = "[experiment]\nname = final_vs_T\nsteps = 16, 64, 256, 1024\nreplicates = 4\ncheckpoints = 4\n"
                           "[problem]\nname = quadratic\nd = 1\nmu = 1\nL = 1\nnoise_scale = 0\n"
                           "[optimizer]\nname = sgd\n[schedule]\nname = horizon_constant\nc = 1\n"
                           "[claims]\n"
                           "rate = slope over=horizon expect=[-1e9, 0]\n";
  const fs::path file = write_file("final_vs_T.ini", text), out = scratch("final_vs_T.h5");
  const auto o = run_cli("run " + file.string() + " --quiet -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  std::vector<double> log_T, log_f;
  for (long horizon : T) {
    const double eta = 1.0 / std::sqrt(double(horizon));
    double x = 1.0;
    for (long t = 0; t < horizon; ++t) x = x - eta * x;
    log_T.push_back(std::log(double(horizon)));
    log_f.push_back(std::log(0.5 * (1.0 * x * x)));
  }
  // Least squares by hand.
  const double mx = std::accumulate(log_T.begin(), log_T.end(), 0.0) / 4, my = std::accumulate(log_f.begin(), log_f.end(), 0.0) / 4;
  double sxy = 0, sxx = 0;
  for (std::size_t j = 0; j < 4; ++j) sxy += (log_T[j] - mx) * (log_f[j] - my), sxx += (log_T[j] - mx) * (log_T[j] - mx);
  const double slope = sxy / sxx;

  const auto data = results::read_trace_file(out.string());
  const auto series = results::horizon_series(data, {0, 1, 2, 3});
  REQUIRE(series.size() == 1);
  CHECK(series[0].horizons == T);
  CHECK(series[0].label == "sgd");
  const std::size_t subopt = *data.metric_index("subopt");
  for (std::size_t j = 0; j < 4; ++j)  // the final values themselves, bit for bit
    CHECK(std::log(data.trace(subopt, j, 0, 0, results::horizon_checkpoint(data, j))) == log_f[j]);
  const stats::ReplicateMatrix finals = results::horizon_finals(
      series[0], [&](std::size_t c) { return results::replicate_matrix(data, subopt, c, 0); }, data);
  const stats::RateFit fit =
      results::horizon_slope(data, series[0], finals, "last", "subopt", stats::Statistic::median(), {200, 0.95}, 1);
  // The same points, so the same line up to the order of the sums (a few ulps of the slope).
  CHECK(fit.fit.slope == Approx(slope).epsilon(1e-12));
  CHECK(fit.fit.points == 4);
  // Identical replicates: every resample gives the same slope.
  CHECK(fit.slope_ci.lo == fit.fit.slope);
  CHECK(fit.slope_ci.hi == fit.fit.slope);

  const auto summary = run_cli("summary " + out.string() + " --fit horizon");
  INFO(summary.output);
  REQUIRE(summary.exit_code == 0);
  CHECK_THAT(summary.output, Catch::Contains("final value against the horizon T") && Catch::Contains("16, 64, 256, 1024"));
  const auto verify = run_cli("verify " + out.string());
  INFO(verify.output);
  CHECK(verify.exit_code == 0);
  CHECK_THAT(verify.output, Catch::Contains("PASS rate: slope of median subopt[last] of 'sgd' (final value against T = 16 .. 1024, 4 horizons)"));
  // scale= multiplies each horizon's final values by its value there: with scale=T the points are
  // (log T, log f + log T), so the slope is exactly one more up to rounding.
  const auto scaled = claims::evaluate_claims(
      claims::parse_claims(parse_ini("[claims]\nscaled = slope over=horizon scale=T expect=[-1e9, 1e9]\n", "s.ini")), data,
      1, 200);
  REQUIRE(scaled.size() == 1);
  CHECK(scaled[0].value == Approx(slope + 1).epsilon(1e-12));
  CHECK_THAT(scaled[0].what, Catch::Contains("slope of (T) * median subopt[last] of 'sgd'"));
  // Along one run a constant scale cannot change a slope: refused, naming where it can.
  CHECK_THROWS_WITH(claims::parse_claims(parse_ini("[claims]\nc = slope scale=T expect=[-1, 0]\n", "s.ini")),
                    Catch::Contains("only over=horizon"));
  // Without several horizons there is nothing to fit across.
  const fs::path single = scratch("single_T.h5");
  REQUIRE(run_cli("run " + file.string() + " --quiet --set experiment.steps=64 -o " + single.string()).exit_code == 0);
  const auto refused = run_cli("summary " + single.string() + " --fit horizon");
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("sweep experiment.steps"));
}

TEST_CASE("a parameter equal to the horizon (Harvey's instance for T) is part of the horizon, not of the series",
          "[horizons]") {
  // Both ways of writing it: the instance follows the horizon, or the horizon is read from the instance. Either
  // way problem.T differs with experiment.steps, and the three configurations are one series of horizons.
  const std::string common = "replicates = 1\ncheckpoints = 4\n[optimizer]\nname = prox_sgd\n[schedule]\nname = inv_t\nc = 1\n";
  for (const std::string& sweep :
       {std::string("[experiment]\nname = h\nsteps = 16, 64, 256\n") + common + "[problem]\nname = harvey_sc\nT = experiment.steps\n",
        std::string("[experiment]\nname = h\nsteps = problem.T\n") + common + "[problem]\nname = harvey_sc\nT = 16, 64, 256\n"}) {
    INFO(sweep);
    const fs::path file = write_file("harvey_T.ini", sweep), out = scratch("harvey_T.h5");
    const auto o = run_cli("run " + file.string() + " --quiet --overwrite -o " + out.string());
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    const auto data = results::read_trace_file(out.string());
    REQUIRE(data.layout.configurations.size() == 3);
    const auto series = results::horizon_series(data, {0, 1, 2});
    REQUIRE(series.size() == 1);
    CHECK(series[0].horizons == std::vector<long>{16, 64, 256});
    CHECK(series[0].label.find("T=") == std::string::npos);
    CHECK(series[0].label.find("steps=") == std::string::npos);
    // Harvey et al.'s bound holds at each T: f(x_T) >= log T / (4 T) for the last iterate of 1/t steps.
    const std::size_t subopt = *data.metric_index("subopt");
    for (std::size_t j = 0; j < 3; ++j) {
      const double T = double(series[0].horizons[j]);
      CHECK(data.trace(subopt, series[0].configurations[j], 0, 0, results::horizon_checkpoint(data, series[0].configurations[j])) >=
            std::log(T) / (4 * T));
    }
    const auto summary = run_cli("summary " + out.string() + " --fit horizon");
    INFO(summary.output);
    CHECK(summary.exit_code == 0);
    CHECK_THAT(summary.output, Catch::Contains("16, 64, 256"));
  }
}

TEST_CASE("plot --x horizon draws each series's final values against T, and refuses a file of one horizon",
          "[horizons][plot]") {
  // Two series (c = 1, 2) of gradient descent with eta = c / sqrt(T) on x^2/2 from x0 = 1, no noise: at T the
  // value is (1 - c/sqrt(T))^(2T) / 2, a figure point per (series, T).
  const std::string text = "[experiment]\nname = gd_T\nsteps = 16, 64, 256\nreplicates = 2\ncheckpoints = 4\n"
                           "[problem]\nname = quadratic\nd = 1\nmu = 1\nL = 1\nnoise_scale = 0\n"
                           "[optimizer]\nname = sgd\n[schedule]\nname = horizon_constant\nc = 1, 2\n";
  const fs::path file = write_file("gd_T.ini", text), out = scratch("gd_T.h5");
  REQUIRE(run_cli("run " + file.string() + " --quiet --overwrite -o " + out.string()).exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  tools::PlotOptions options;
  options.x = "horizon";
  options.band = {};
  const tools::PlotData plot = tools::plot_data(options, data);
  CHECK(plot.t == std::vector<long>{16, 64, 256});
  CHECK(plot.x_label == "horizon T (each run's steps)");
  CHECK_THAT(plot.title, Catch::EndsWith("at t = T"));
  REQUIRE(plot.panels.size() == 1);
  REQUIRE(plot.panels[0].curves.size() == 2);
  for (const auto& curve : plot.panels[0].curves) {
    const double c = curve.label.find("c=2") != std::string::npos ? 2.0 : 1.0;
    CHECK(curve.label.find("steps=") == std::string::npos);
    for (std::size_t j = 0; j < 3; ++j) {
      const double T = double(plot.t[j]), eta = c / std::sqrt(T);
      double x = 1.0;
      for (long t = 0; t < long(T); ++t) x = x - eta * x;
      CHECK(curve.series[0].value[j] == 0.5 * (1.0 * x * x));  // the run loop's arithmetic, bit for bit
    }
  }
  // The same figure from the file read through a reader.
  const results::TraceReader reader(out.string());
  CHECK(tools::plot_data(options, reader).panels[0].curves[1].series[0].value == plot.panels[0].curves[1].series[0].value);
  // One horizon: nothing to draw against T, and the message says how to sweep it.
  const fs::path single = scratch("gd_one_T.h5");
  REQUIRE(run_cli("run " + file.string() + " --quiet --overwrite --set experiment.steps=64 -o " + single.string()).exit_code == 0);
  const auto refused = run_cli("plot " + single.string() + " --x horizon -o " + scratch("x.png").string());
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("sweep the horizon"));
}
