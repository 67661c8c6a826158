// The trace query unit (results/trace_query.hpp): the questions every reader of a trace file asks, answered
// once, so `summary`, `compare` and `verify` agree on the same file.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "experiments/claims.hpp"
#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"

#include "csv_support.hpp"

using namespace ratelab;

using ratelab_test::csv_row;

namespace {

// One configuration, one view, R = 24 replicates at checkpoints 1 .. 1000 (1-2-5); replicate r's subopt
// is (1 + noise) / t with a noise fixed by (r, k), so the bootstrap of the slope has a non-trivial spread.
results::TraceData noisy_power_law() {
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "noisy";
  d.layout.replicates = 24;
  d.layout.checkpoints = {0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  results::ConfigurationRecord rec;
  rec.id = "0123456789abcdef";
  rec.label = "sgd";
  rec.parameters = {{"optimizer", std::string("sgd")}, {"schedule.c", 0.5}};
  d.layout.configurations.push_back(rec);
  const std::size_t R = 24, K = d.layout.checkpoints.size();
  d.traces.assign(1, std::vector<double>(R * K));
  RandomStream noise(7, 0, StreamPurpose::noise);
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t k = 0; k < K; ++k)
      d.traces[0][r * K + k] = (1.0 + 0.9 * noise.uniform()) / std::max(1.0, double(d.layout.checkpoints[k]));
  d.status.assign(R, RunStatus::ok);
  d.stop_step.assign(R, 1000);
  d.wall_seconds.assign(R, 0.0);
  d.eval_seconds.assign(R, 0.0);
  d.messages.assign(R, "");
  return d;
}

}  // namespace

TEST_CASE("summary and verify give bit-identical bootstrap intervals for the same slope", "[trace_query]") {
  const auto data = noisy_power_law();
  tools::SummaryOptions options;
  options.csv = true;
  options.fit_from = 10;
  options.fit_to = 1000;
  options.seed = 3;
  std::ostringstream out;
  REQUIRE(tools::summary(options, data, out) == 0);
  const auto row = csv_row(out.str());
  const double slope_lo = std::stod(row.at("slope_lo")), slope_hi = std::stod(row.at("slope_hi"));
  REQUIRE(slope_lo < slope_hi);  // a real interval, not a degenerate one

  const auto claim =
      claims::parse_claims(parse_ini("[claims]\nrate = slope window=[10, T] expect=[-2, 0]\n", "q.ini"));
  const auto verdicts = claims::evaluate_claims(claim, data, 3, options.bootstrap);
  REQUIRE(verdicts.size() == 1);
  // summary and claims share one sign convention (the log-log slope), so the numbers are the same; the CSV's
  // numbers round-trip exactly.
  CHECK(verdicts[0].value == std::stod(row.at("slope")));
  CHECK(verdicts[0].interval.lo == slope_lo);
  CHECK(verdicts[0].interval.hi == slope_hi);
}

TEST_CASE("trace queries: nearest checkpoint, status counts, run statistics, stream keys", "[trace_query]") {
  auto data = noisy_power_law();
  CHECK(results::nearest_checkpoint(data, 0) == 0);
  CHECK(results::nearest_checkpoint(data, 140) == 7);   // 100 (|40|) beats 200 (|60|)
  CHECK(results::nearest_checkpoint(data, 150) == 7);   // a tie goes to the earlier checkpoint
  CHECK(results::nearest_checkpoint(data, 1e9) == 10);
  data.status[1] = RunStatus::diverged;
  data.status[2] = RunStatus::error;
  data.status[3] = RunStatus::missing;
  data.status[4] = RunStatus::interrupted;
  const auto counts = results::status_counts(data, 0);
  CHECK(counts.ok == 20);
  CHECK(counts.diverged == 1);
  CHECK(counts.error == 1);
  CHECK(counts.other == 2);
  const auto runs = results::replicate_matrix(data, 0, 0, 0);
  CHECK(std::isfinite(runs(1, 3)));  // a diverged run keeps what it measured
  CHECK(runs(2, 3) == std::numeric_limits<double>::infinity());  // an error run failed: +inf (issue 26)
  CHECK(std::isnan(runs(3, 3)));     // a missing run has no measurements: not counted
  data.run_stats = {{"q_mean", std::vector<double>(24, 2.0)}};
  const auto q = results::run_statistic_column(data, "q_mean", 0);
  CHECK(q[0] == 2.0);
  CHECK(std::isnan(q[2]));
  CHECK_THROWS_WITH(results::run_statistic_column(data, "q_max", 0), Catch::Contains("run.q_mean"));
  // The stream is keyed by what is resampled: the same subject gives the same draws; another checkpoint
  // or view another stream.
  auto draw = [&](const results::BootstrapSubject& s) { return results::bootstrap_stream(data, 1, s).next_u64(); };
  CHECK(draw({{0}, "last", "subopt"}) == draw({{0}, "last", "subopt"}));
  CHECK(draw({{0}, "last", "subopt"}) != draw({{0}, "last", "subopt", 100}));
  CHECK(draw({{0}, "last", "subopt"}) != draw({{0}, "suffix", "subopt"}));
  CHECK(draw({{0}, "last", "subopt"}) == stats::bootstrap_stream(1, "0123456789abcdef|last|subopt").next_u64());
}
