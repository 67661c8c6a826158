// Fixed-target analyses (issue 26, piece 2): hitting times from the stored checkpoints, ERT with unsuccessful
// runs, runtime ECDF step heights and area, Dolan-More performance and More-Wild data profiles, all against
// values worked out by hand; the commands on several files, and a label clash between files.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "experiments/claims.hpp"
#include "results/fixed_target.hpp"
#include "results/trace_query.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/fixed_target_commands.hpp"

using namespace ratelab;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The hand table: checkpoints 0 1 2 5 10 20 50 100, five runs of one configuration, target 1e-2.
//   run 0: first <= 1e-2 at t = 10                       -> 10
//   run 1: first <= 1e-2 at t = 20                       -> 20
//   run 2: never below (stays at 0.5)                    -> +inf, spends the horizon 100
//   run 3: diverged at t = 5 (NaN from there), was 0.3   -> +inf, spends 100
//   run 4: exactly 1e-2 at t = 5 (at or below counts)    -> 5
// ERT = (10 + 20 + 5 + 100 + 100) / 3 = 235 / 3; reached 3/5; sorted hitting times 5 10 20 inf inf: median 20.
const std::vector<long> kCheckpoints{0, 1, 2, 5, 10, 20, 50, 100};
const std::vector<double> kSteps{0, 1, 2, 5, 10, 20, 50, 100};
const std::vector<std::vector<double>> kRuns{
    {1, 0.5, 0.2, 0.05, 0.008, 0.004, 0.001, 0.0005},
    {1, 0.5, 0.2, 0.05, 0.02, 0.009, 0.001, 0.0005},
    {1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5},
    {1, 0.5, 0.3, kNaN, kNaN, kNaN, kNaN, kNaN},
    {1, 0.5, 0.2, 0.01, 0.02, 0.005, 0.001, 0.0005},
};

results::TraceData hand_table(const std::string& optimizer = "sgd", const std::string& id = "aaaa000011112222",
                              const std::string& label = "sgd") {
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "hand";
  d.layout.replicates = long(kRuns.size());
  d.layout.checkpoints = kCheckpoints;
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  results::ConfigurationRecord rec;
  rec.id = id;
  rec.label = label;
  rec.parameters = {{"optimizer", optimizer}, {"problem", std::string("quadratic")}};
  d.layout.configurations.push_back(rec);
  for (const auto& run : kRuns) d.traces.resize(1), d.traces[0].insert(d.traces[0].end(), run.begin(), run.end());
  const std::size_t R = kRuns.size();
  d.status.assign(R, RunStatus::ok);
  d.status[3] = RunStatus::diverged;
  d.stop_step.assign(R, 100);
  d.wall_seconds.assign(R, 0.0);
  d.eval_seconds.assign(R, 0.0);
  d.messages.assign(R, "");
  return d;
}

// The hand table with recorded costs, as the run loop writes them: a minibatch of `batch` per step, so
// gradient evaluations batch * t_k, and elapsed seconds t_k (r + 1) / 100 for replicate r; NaN after a run
// stopped (run 3 diverged at t = 5: recorded up to t = 2).
results::TraceData hand_table_with_costs(long batch) {
  auto d = hand_table();
  const std::size_t K = kCheckpoints.size();
  d.gradient_evaluations.assign(kRuns.size() * K, kNaN);
  d.elapsed_seconds.assign(kRuns.size() * K, kNaN);
  for (std::size_t r = 0; r < kRuns.size(); ++r)
    for (std::size_t k = 0; k < K; ++k) {
      if (r == 3 && kCheckpoints[k] >= 5) continue;
      d.gradient_evaluations[r * K + k] = double(batch * kCheckpoints[k]);
      d.elapsed_seconds[r * K + k] = double(kCheckpoints[k]) * double(r + 1) / 100.0;
    }
  return d;
}

std::vector<std::map<std::string, std::string>> csv_rows(const std::string& csv) {
  std::istringstream in(csv);
  std::string header_line;
  std::getline(in, header_line);
  std::vector<std::string> header;
  std::istringstream h(header_line);
  for (std::string name; std::getline(h, name, ',');) header.push_back(name);
  std::vector<std::map<std::string, std::string>> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::istringstream v(line);
    std::map<std::string, std::string> row;
    std::size_t j = 0;
    for (std::string value; std::getline(v, value, ',') && j < header.size(); ++j) row[header[j]] = value;
    out.push_back(row);
  }
  return out;
}

}  // namespace

TEST_CASE("hitting times: the first stored checkpoint at or below the target", "[fixed_target]") {
  const auto d = hand_table();
  const auto runs = results::replicate_matrix(d, 0, 0, 0);
  std::vector<double> hits;
  for (Eigen::Index r = 0; r < runs.rows(); ++r)
    hits.push_back(stats::hitting_time(std::span<const double>(runs.data() + r * runs.cols(), std::size_t(runs.cols())),
                                       kSteps, 1e-2));
  CHECK(hits == std::vector<double>{10, 20, kInf, kInf, 5});
  const auto steps = results::budget_matrix(d, 0, results::Budget::step);
  CHECK(stats::hitting_times(runs, steps, 1e-2) == hits);
  CHECK(stats::run_horizons(steps) == std::vector<double>(5, 100.0));  // in steps every run is given T
  // Below, back above, below again: the first crossing counts (the checkpoint, not the last one).
  const std::vector<double> bouncing{1, 0.5, 0.009, 0.02, 0.001, 0.001, 0.001, 0.001};
  CHECK(stats::hitting_time(bouncing, kSteps, 1e-2) == 2);
  CHECK(stats::hitting_time(std::vector<double>{1, 1}, std::vector<double>{0, 1}, 1.0) == 0);  // hit at t = 0
  CHECK(std::isnan(stats::hitting_time(std::vector<double>{kNaN, kNaN}, std::vector<double>{0, 1}, 1.0)));
}

TEST_CASE("ERT with unsuccessful runs, against the hand table", "[fixed_target]") {
  const std::vector<double> hits{10, 20, kInf, kInf, 5};
  const std::vector<double> horizons(5, 100.0);
  CHECK(stats::expected_running_time(hits, horizons) == Approx(235.0 / 3.0).epsilon(1e-15));
  CHECK(stats::expected_running_time(std::vector<double>{kInf, kInf}, std::vector<double>{100, 100}) == kInf);
  CHECK(stats::expected_running_time(std::vector<double>{4, kNaN}, std::vector<double>{100, 100}) == 4);  // NaN: not a run
  RandomStream stream = stats::bootstrap_stream(1, "ert");
  const auto s = stats::fixed_target_summary(hits, horizons, 0.1, 0.9, {500, 0.95}, stream);
  CHECK(s.runs == 5);
  CHECK(s.successes == 3);
  CHECK(s.median == 20);
  CHECK(s.q_high == kInf);
  CHECK(s.ert_ci.lo <= s.ert);
  CHECK(s.ert <= s.ert_ci.hi);

  // The command: the same numbers, per target.
  tools::ErtOptions options;
  options.targets = {1e-2, 1e-3};
  options.csv = true;
  options.bootstrap = 200;
  std::ostringstream out;
  REQUIRE(tools::ert(options, {hand_table()}, {"hand.h5"}, out) == 0);
  const auto rows = csv_rows(out.str());
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].at("reached") == "3/5");
  CHECK(std::stod(rows[0].at("ert")) == Approx(235.0 / 3.0).epsilon(1e-15));
  CHECK(std::stod(rows[0].at("hit_median")) == 20);
  // 1e-3: runs 0, 1, 4 at t = 50: (50 * 3 + 200) / 3.
  CHECK(rows[1].at("reached") == "3/5");
  CHECK(std::stod(rows[1].at("ert")) == Approx(350.0 / 3.0).epsilon(1e-15));
  std::ostringstream table;
  options.csv = false;
  REQUIRE(tools::ert(options, {hand_table()}, {"hand.h5"}, table) == 0);
  CHECK_THAT(table.str(), Catch::Contains("hits at checkpoints: the run's steps at the first stored checkpoint with metric <= target"));
  CHECK_THAT(table.str(), Catch::Contains("spends T steps"));
  CHECK_THAT(table.str(), Catch::Contains("3/5"));
  options.targets.clear();
  CHECK_THROWS_WITH(tools::ert(options, {hand_table()}, {"hand.h5"}, table), Catch::Contains("--targets"));
}

TEST_CASE("runtime ECDF: step heights and area over log budget", "[fixed_target]") {
  // Pairs solved at 1, 2, 4 and never, budgets 1 2 4 8: F = 1/4, 2/4, 3/4, 3/4. Area over log b from 1 to 8:
  // (1/4 + 2/4 + 3/4) ln 2 / (3 ln 2) = 1/2. A NaN is no pair; a hit at t = 0 counts from the first budget.
  const std::vector<double> budgets{1, 2, 4, 8};
  const auto e = stats::runtime_ecdf({1, 2, 4, kInf, kNaN}, budgets);
  CHECK(e.pairs == 4);
  CHECK(e.fraction == std::vector<double>{0.25, 0.5, 0.75, 0.75});
  CHECK(e.auc == Approx(0.5).epsilon(1e-15));
  CHECK(stats::runtime_ecdf({0, 2, 4, kInf}, budgets).fraction.front() == 0.25);
  const auto targets = stats::log_spaced_targets(1e-1, 1e-3, 3);
  CHECK(targets[0] == 1e-1);
  CHECK(targets[1] == Approx(1e-2).epsilon(1e-14));
  CHECK(targets[2] == 1e-3);

  // The command on the hand table, 2 targets 1e-2 and 1e-3: the hitting times {10, 20, inf, inf, 5} and
  // {50, 50, inf, inf, 50} are 10 pairs; budgets 1 2 5 10 20 50 100.
  tools::EcdfOptions options;
  options.from = 1e-2;
  options.to = 1e-3;
  options.count = 2;
  options.csv = true;
  const std::string data_file = (std::filesystem::temp_directory_path() / "ratelab_ecdf_test.csv").string();
  options.data = data_file;
  std::ostringstream out;
  REQUIRE(tools::ecdf(options, {hand_table()}, {"hand.h5"}, out) == 0);
  const auto rows = csv_rows(out.str().substr(out.str().find('\n') + 1));  // after "wrote ..."
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].at("pairs") == "10");
  CHECK(std::stod(rows[0].at("solved_at_T")) == 0.6);
  // F: b=1,2: 0; 5: 1/10; 10: 2/10; 20: 3/10; 50: 6/10; 100: 6/10. Area / ln(100):
  const double area = 0.1 * std::log(10.0 / 5) + 0.2 * std::log(20.0 / 10) + 0.3 * std::log(50.0 / 20) +
                      0.6 * std::log(100.0 / 50);
  CHECK(std::stod(rows[0].at("auc")) == Approx(area / std::log(100.0)).epsilon(1e-14));
  std::ifstream written(data_file);
  const std::string curve((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  CHECK_THAT(curve, Catch::Contains("sgd,50,0.6"));
  std::filesystem::remove(data_file);
}

TEST_CASE("performance and data profiles on a 3-solver x 4-problem table (Dolan & More's definition)",
          "[fixed_target]") {
  // cost[p][s]; p4 is solved by no one. Ratios to the best: p1 1 2 4; p2 1 1 2; p3 inf 1 2; p4 none.
  const std::vector<std::vector<double>> cost{{1, 2, 4}, {5, 5, 10}, {kInf, 3, 6}, {kInf, kInf, kInf}};
  const std::vector<double> taus{1, 2, 4};
  const auto rho = stats::performance_profile(cost, taus);
  CHECK(rho[0] == std::vector<double>{0.5, 0.5, 0.5});
  CHECK(rho[1] == std::vector<double>{0.5, 0.75, 0.75});
  CHECK(rho[2] == std::vector<double>{0.0, 0.5, 0.75});
  const std::vector<double> budgets{1, 3, 5, 10};
  const auto d = stats::data_profile(cost, budgets);
  CHECK(d[0] == std::vector<double>{0.25, 0.25, 0.5, 0.5});
  CHECK(d[1] == std::vector<double>{0.0, 0.5, 0.75, 0.75});
  CHECK(d[2] == std::vector<double>{0.0, 0.0, 0.25, 0.75});
}

TEST_CASE("several files: configurations told apart by label, a clash names both files", "[fixed_target]") {
  const auto a = hand_table("sgd", "aaaa000011112222", "sgd");
  const auto b = hand_table("adam", "bbbb000011112222", "adam");
  tools::ProfileOptions options;
  options.targets = {1e-2};
  options.csv = true;
  std::ostringstream out;
  REQUIRE(tools::profile(options, {a, b}, {"a.h5", "b.h5"}, out) == 0);
  const auto rows = csv_rows(out.str());
  REQUIRE(rows.size() == 2);  // two solvers, one problem x one target
  CHECK(rows[0].at("solver") == "sgd");
  CHECK(rows[1].at("solver") == "adam");
  CHECK(std::stod(rows[0].at("best")) == 1.0);  // equal ERT: both are the best

  const auto twin = hand_table("sgd", "cccc000011112222", "sgd");
  tools::ErtOptions ert_options;
  ert_options.targets = {1e-2};
  std::ostringstream ignored;
  CHECK_THROWS_WITH(tools::ert(ert_options, {a, twin}, {"old.h5", "new.h5"}, ignored),
                    Catch::Contains("old.h5") && Catch::Contains("new.h5") && Catch::Contains("--where id="));
  ert_options.where = {"id=cccc000011112222"};
  CHECK(tools::ert(ert_options, {a, twin}, {"old.h5", "new.h5"}, ignored) == 0);
}

TEST_CASE("claims ert and success", "[fixed_target][claims]") {
  const auto d = hand_table();
  const auto list = claims::parse_claims(parse_ini(
      "[claims]\n"
      "fast = ert target=1e-2 expect=[70, 80]\n"
      "often = success target=1e-2 by=20 fraction=0.6\n"
      "always = success target=1e-2 by=T fraction=0.8\n",
      "e.ini"));
  const auto v = claims::evaluate_claims(list, d, 1, 200);
  REQUIRE(v.size() == 3);
  CHECK(v[0].pass);
  CHECK(v[0].value == Approx(235.0 / 3.0).epsilon(1e-15));
  CHECK(v[1].pass);  // 3/5 by t = 20
  CHECK_THAT(v[1].measured, Catch::Contains("3/5"));
  CHECK_FALSE(v[2].pass);  // 3/5 < 0.8
}

TEST_CASE("compare --a accepts key=value selectors as --where does", "[fixed_target][analysis]") {
  auto d = hand_table();
  results::ConfigurationRecord clipped = d.layout.configurations[0];
  clipped.id = "dddd000011112222";
  clipped.label = "clipped_sgd";
  clipped.parameters = {{"optimizer", std::string("clipped_sgd")}, {"problem", std::string("quadratic")}};
  d.layout.configurations.push_back(clipped);
  const auto first = d.traces[0];
  d.traces[0].insert(d.traces[0].end(), first.begin(), first.end());
  for (auto* v : {&d.stop_step}) v->insert(v->end(), v->begin(), v->end());
  d.status.insert(d.status.end(), d.status.begin(), d.status.end());
  d.wall_seconds.assign(10, 0.0);
  d.eval_seconds.assign(10, 0.0);
  d.messages.assign(10, "");
  tools::CompareOptions options;
  options.a = "optimizer=clipped_sgd";
  options.b = "optimizer=sgd";
  std::ostringstream out;
  REQUIRE(tools::compare(options, d, out) == 0);
  CHECK_THAT(out.str(), Catch::Contains("A: clipped_sgd") && Catch::Contains("B: sgd"));
  options.a = "problem=quadratic";
  CHECK_THROWS_WITH(tools::compare(options, d, out), Catch::Contains("selects 2 configurations"));
}

TEST_CASE("budgets: hitting times and ERT in gradient evaluations and seconds (issue 26)", "[fixed_target]") {
  // Batch 4, target 1e-2. Hits at t = 10, 20, -, -, 5 cost 40, 80, -, -, 20 evaluations. Run 2 never reaches
  // it and spent 4 * 100 = 400; run 3 diverged at t = 5 and spent 4 * 2 = 8 (its last recorded checkpoint).
  // ERT = (40 + 80 + 20 + 400 + 8) / 3 = 548 / 3, not 4 x the ERT in steps (4 * 235 / 3 = 940 / 3): in steps
  // the diverged run is charged the T = 100 steps it was given, in evaluations what it spent before it stopped.
  const auto d = hand_table_with_costs(4);
  const auto runs = results::replicate_matrix(d, 0, 0, 0);
  const auto evaluations = results::budget_matrix(d, 0, results::Budget::gradient_evaluations);
  CHECK(stats::hitting_times(runs, evaluations, 1e-2) == std::vector<double>{40, 80, kInf, kInf, 20});
  CHECK(stats::run_horizons(evaluations) == std::vector<double>{400, 400, 400, 8, 400});
  tools::ErtOptions options;
  options.targets = {1e-2, 1e-3};
  options.csv = true;
  options.bootstrap = 200;
  std::map<std::string, std::vector<std::map<std::string, std::string>>> by_budget;
  for (const std::string budget : {"step", "gradient_evaluations", "elapsed_seconds"}) {
    options.budget = budget;
    std::ostringstream out;
    REQUIRE(tools::ert(options, {d}, {"hand.h5"}, out) == 0);
    by_budget[budget] = csv_rows(out.str());
    REQUIRE(by_budget[budget].size() == 2);
  }
  CHECK(std::stod(by_budget["step"][0].at("ert")) == Approx(235.0 / 3.0).epsilon(1e-15));
  CHECK(std::stod(by_budget["gradient_evaluations"][0].at("ert")) == Approx(548.0 / 3.0).epsilon(1e-15));
  CHECK(std::stod(by_budget["gradient_evaluations"][0].at("hit_median")) == 80);
  CHECK(std::stod(by_budget["gradient_evaluations"][0].at("horizon")) == 400);
  // 1e-3: runs 0, 1, 4 at t = 50 (200 evaluations each): (3 * 200 + 400 + 8) / 3.
  CHECK(std::stod(by_budget["gradient_evaluations"][1].at("ert")) == Approx(1008.0 / 3.0).epsilon(1e-15));
  // Seconds t (r + 1) / 100: hits 0.1 (run 0 at t = 10), 0.4 (run 1 at 20), 0.25 (run 4 at 5); run 2 spent
  // 3.0 (t = 100), run 3 0.08 (t = 2).
  CHECK(std::stod(by_budget["elapsed_seconds"][0].at("ert")) ==
        Approx((0.1 + 0.4 + 0.25 + 3.0 + 0.08) / 3.0).epsilon(1e-14));
  CHECK(by_budget["elapsed_seconds"][0].at("reached") == "3/5");

  // The ECDF over evaluations: pairs hit at {40, 80, -, -, 20} and {200, 200, -, -, 200}; the budgets are
  // every recorded positive value, 4 8 20 40 80 200 400. F: 0 0 .1 .2 .3 .6 .6; the area over log b is the
  // area in steps (every budget is 4 t).
  tools::EcdfOptions ecdf_options;
  ecdf_options.from = 1e-2;
  ecdf_options.to = 1e-3;
  ecdf_options.count = 2;
  ecdf_options.csv = true;
  ecdf_options.budget = "gradient_evaluations";
  const std::string data_file = (std::filesystem::temp_directory_path() / "ratelab_ecdf_budget_test.csv").string();
  ecdf_options.data = data_file;
  std::ostringstream ecdf_out;
  REQUIRE(tools::ecdf(ecdf_options, {d}, {"hand.h5"}, ecdf_out) == 0);
  const auto rows = csv_rows(ecdf_out.str().substr(ecdf_out.str().find('\n') + 1));
  REQUIRE(rows.size() == 1);
  const double area = 0.1 * std::log(40.0 / 20) + 0.2 * std::log(80.0 / 40) + 0.3 * std::log(200.0 / 80) +
                      0.6 * std::log(400.0 / 200);
  CHECK(std::stod(rows[0].at("auc")) == Approx(area / std::log(400.0 / 4)).epsilon(1e-14));
  std::ifstream written(data_file);
  const std::string curve((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  CHECK(curve == "group,gradient_evaluations,fraction,hits\nsgd,4,0,checkpoint\nsgd,8,0,checkpoint\nsgd,20,0.1,checkpoint\n"
                 "sgd,40,0.2,checkpoint\nsgd,80,0.3,checkpoint\nsgd,200,0.6,checkpoint\nsgd,400,0.6,checkpoint\n");
  std::filesystem::remove(data_file);

  // Profiles: batch 1 against batch 4 in evaluations, ERT 137 / 3 against 548 / 3: the ratio is 4.
  auto small = hand_table_with_costs(1);
  auto large = hand_table_with_costs(4);
  large.layout.configurations[0] = results::ConfigurationRecord{};
  large.layout.configurations[0].id = "bbbb000011112222";
  large.layout.configurations[0].label = "sgd_b4";
  large.layout.configurations[0].parameters = {{"optimizer", std::string("sgd")},
                                               {"optimizer.batch", 4L},
                                               {"problem", std::string("quadratic")}};
  small.layout.configurations[0].parameters.emplace_back("optimizer.batch", 1L);
  tools::ProfileOptions profile_options;
  profile_options.targets = {1e-2};
  profile_options.csv = true;
  profile_options.budget = "gradient_evaluations";
  std::ostringstream profile_out;
  REQUIRE(tools::profile(profile_options, {small, large}, {"b1.h5", "b4.h5"}, profile_out) == 0);
  const auto solvers = csv_rows(profile_out.str());
  REQUIRE(solvers.size() == 2);
  CHECK(solvers[0].at("solver") == "optimizer.batch=1");
  CHECK(std::stod(solvers[0].at("best")) == 1.0);
  CHECK(std::stod(solvers[1].at("best")) == 0.0);
  CHECK(std::stod(solvers[1].at("within_2x")) == 0.0);  // 4 x the best
  profile_options.budget = "step";  // in steps the two are equal
  std::ostringstream steps_out;
  REQUIRE(tools::profile(profile_options, {small, large}, {"b1.h5", "b4.h5"}, steps_out) == 0);
  CHECK(std::stod(csv_rows(steps_out.str())[1].at("best")) == 1.0);
}

TEST_CASE("budgets: a file without recorded costs names the fix", "[fixed_target]") {
  // hand_table() has no costs, as a file written before they were recorded (read back as NaN).
  auto d = hand_table();
  d.gradient_evaluations.assign(kRuns.size() * kCheckpoints.size(), kNaN);
  tools::ErtOptions options;
  options.targets = {1e-2};
  options.budget = "gradient_evaluations";
  std::ostringstream out;
  CHECK_THROWS_WITH(tools::ert(options, {d}, {"old.h5"}, out),
                    Catch::Contains("configuration 'sgd'") && Catch::Contains("no gradient_evaluations recorded") &&
                        Catch::Contains("--budget step") && Catch::Contains("re-run"));
  tools::EcdfOptions ecdf_options;
  ecdf_options.budget = "elapsed_seconds";
  CHECK_THROWS_WITH(tools::ecdf(ecdf_options, {hand_table()}, {"old.h5"}, out),
                    Catch::Contains("no elapsed_seconds recorded"));
  CHECK_THROWS_WITH(results::parse_budget("evaluations"), Catch::Contains("gradient_evaluations"));
}
