// Hitting times measured in the run loop (experiment.targets): the first step at which the target metric of
// the last iterate falls below each target, checked every target_check_every steps and at the checkpoints,
// and the best value so far at each checkpoint; from the run loop to the trace file and back.
//
// The ground truth is gradient descent on f(x) = x^2/2 from x_0 = 1 with a constant step eta: x_t = (1 - eta)^t,
// so f(x_t) = |1 - eta|^(2t) / 2 < eps first at t = floor(log(2 eps) / (2 log|1 - eta|)) + 1. The steps used
// here make |1 - eta| a power of two, so every iterate and value is exact in double and the comparison with
// the closed form (in log2, also exact for powers of two) is exact, targets hit exactly included.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "cli_support.hpp"
#include "core/registry.hpp"
#include "core/run.hpp"
#include "experiments/claims.hpp"
#include "experiments/experiment.hpp"
#include "experiments/run_to_file.hpp"
#include "problems/least_squares.hpp"
#include "results/journal.hpp"
#include "results/trace_file.hpp"
#include "results/trace_query.hpp"
#include "tools/fixed_target_commands.hpp"

using namespace ratelab;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

const Registry& registry() {
  static const Registry r = builtin_registry();
  return r;
}

ParamSet resolve(ComponentKind kind, const std::string& key, const std::map<std::string, std::string>& raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry().info(kind, key).params, raw, kind_name(kind), errors);
  INFO(key << ": " << (errors.empty() ? "" : errors.front()));
  REQUIRE(errors.empty());
  return p;
}

// f(x) = x^2/2 on R, x_0 = 1, exact gradients: the reference path (sgd's step-by-step loop).
std::shared_ptr<const Problem> half_square() {
  ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), ""};
  return registry().make_problem(
      "quadratic", resolve(ComponentKind::problem, "quadratic", {{"d", "1"}, {"mu", "1"}, {"L", "1"}}), ctx);
}

// f(x) = (x - 1)^2/2 as least squares with one row (a = 1, b = 1), x_0 = 0, f* = 0: the same sequence of
// values through the row oracle's fused SGD steps (and the fused lockstep steps of a group).
std::shared_ptr<const Problem> one_row() {
  RowMat A(1, 1);
  A(0, 0) = 1.0;
  Vec b(1);
  b[0] = 1.0;
  LeastSquaresOptions o;
  o.solve = false;
  o.estimate_L = false;
  return std::make_shared<LeastSquares>(std::move(A), std::move(b), o, 0.0);
}

std::unique_ptr<Optimizer> sgd() { return registry().make_optimizer("sgd", resolve(ComponentKind::optimizer, "sgd", {})); }

// The closed form: the first t with |1 - eta|^(2t) / 2 < eps.
double closed_form(double eta, double eps) {
  return std::floor(std::log2(2.0 * eps) / (2.0 * std::log2(std::abs(1.0 - eta)))) + 1.0;
}

RunPlan plan_with(std::vector<double> targets, long check_every, std::vector<Metric> metrics = {Metric::subopt}) {
  // 16 steps: the fast path's iterates 1 - (1 - eta)^t stay exact up to t = 17 (|1 - eta| = 1/8).
  RunPlan plan;
  plan.steps = 16;
  plan.checkpoints = log_checkpoints(plan.steps, 8);
  plan.metrics = std::move(metrics);
  plan.targets = std::move(targets);
  plan.target_check_every = check_every;
  return plan;
}

std::vector<RunResult> run_group(const Problem& problem, const Schedule& schedule, const RunPlan& plan, std::size_t n) {
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  std::vector<Optimizer*> pointers;
  std::vector<RunStreams> streams;
  std::vector<RunStreams*> stream_pointers;
  streams.reserve(n);
  for (std::size_t r = 0; r < n; ++r) {
    optimizers.push_back(sgd());
    pointers.push_back(optimizers.back().get());
    streams.emplace_back(4, r);
    stream_pointers.push_back(&streams.back());
  }
  return run_lockstep(problem, pointers, schedule, plan, stream_pointers);
}

}  // namespace

TEST_CASE("recorded hitting times of gradient descent on x^2/2 are the closed form, on the reference and fast paths",
          "[targets]") {
  const auto reference = half_square(), fast = one_row();
  for (double eta : {0.5, 0.75, 0.875, 1.5}) {
    // 1e-1, 1e-3, 1e-6 and a value hit exactly at t = 3 (|1 - eta|^6 / 2), which counts only from t = 4 (strict <).
    const double exact_hit = std::ldexp(std::pow(std::abs(1.0 - eta), 6.0), -1);
    const std::vector<double> targets{1e-1, 1e-3, 1e-6, exact_hit};
    const Schedule schedule{.kind = Schedule::Kind::constant, .c = eta};
    // subopt recorded (the checkpoints' values are folded in) or not (the loop evaluates it at checkpoints too).
    for (const auto& metrics : {std::vector<Metric>{Metric::subopt}, std::vector<Metric>{Metric::value}}) {
      const RunPlan plan = plan_with(targets, 1, metrics);
      std::vector<std::pair<std::string, RunResult>> results;
      RunStreams streams(4, 0);
      auto optimizer = sgd();
      results.emplace_back("reference", run_one(*reference, *optimizer, schedule, plan, streams));
      RunStreams fast_streams(4, 0);
      auto fast_optimizer = sgd();
      results.emplace_back("fused", run_one(*fast, *fast_optimizer, schedule, plan, fast_streams));
      for (auto& run : run_group(*fast, schedule, plan, 3)) results.emplace_back("lockstep", std::move(run));
      for (const auto& [path, result] : results) {
        INFO("eta = " << eta << ", " << path << " path, metrics " << metric_name(metrics.front()));
        REQUIRE(result.status == RunStatus::ok);
        REQUIRE(result.target_steps.size() == targets.size());
        for (std::size_t j = 0; j < targets.size(); ++j) {
          INFO("target " << targets[j]);
          CHECK(result.target_steps[j] == closed_form(eta, targets[j]));
          CHECK(result.target_gradient_evaluations[j] == result.target_steps[j]);  // batch 1: one sample a step
        }
        CHECK(result.target_steps[3] == 4.0);
        // best_so_far: the values decrease, so at checkpoint k it is the value there: |1 - eta|^(2t) / 2.
        REQUIRE(result.best_so_far.size() == plan.checkpoints.size());
        for (std::size_t k = 0; k < plan.checkpoints.size(); ++k)
          CHECK(result.best_so_far[k] == std::ldexp(std::pow(std::abs(1.0 - eta), 2.0 * double(plan.checkpoints[k])), -1));
      }
    }
  }
}

TEST_CASE("target checks every 7 steps find the first multiple of 7 at or after the true step", "[targets]") {
  const auto problem = half_square();
  const Schedule schedule{.kind = Schedule::Kind::constant, .c = 0.5};
  // Targets with true steps 1 .. 12 (eps just above the value at t: |0.5|^(2t) / 2 < eps first at t).
  std::vector<double> targets;
  for (int t = 1; t <= 12; ++t) targets.push_back(1.5 * std::ldexp(1.0, -2 * t - 1));
  for (long T : {100L, 30L}) {
    RunPlan plan = plan_with(targets, 7);
    plan.steps = T;
    plan.checkpoints = {0, T};  // no checkpoint between: only the checks see the crossings
    RunStreams streams(4, 0);
    auto optimizer = sgd();
    const RunResult result = run_one(*problem, *optimizer, schedule, plan, streams);
    REQUIRE(result.status == RunStatus::ok);
    for (std::size_t j = 0; j < targets.size(); ++j) {
      const double truth = closed_form(0.5, targets[j]);
      REQUIRE(truth == double(j + 1));
      INFO("T = " << T << ", true step " << truth);
      const double multiple = std::ceil(truth / 7.0) * 7.0;
      // Past the last check before T, the checkpoint at T is the next evaluated step.
      CHECK(result.target_steps[j] == (multiple <= double(T) ? multiple : double(T)));
    }
    CHECK(result.best_so_far[0] == 0.5);
    CHECK(result.best_so_far[1] == std::ldexp(1.0, -2 * int(T) - 1));
  }
  SECTION("the automatic interval on this problem is 10 (one evaluation costs one sample)") {
    RunPlan plan = plan_with(targets, 0);
    plan.steps = 100;
    plan.checkpoints = {0, 100};
    RunStreams streams(4, 0);
    auto optimizer = sgd();
    const RunResult result = run_one(*problem, *optimizer, schedule, plan, streams);
    for (std::size_t j = 0; j < targets.size(); ++j) CHECK(result.target_steps[j] == (j < 10 ? 10.0 : 20.0));
  }
}

TEST_CASE("a diverging run has +inf for the targets it did not reach", "[targets]") {
  const auto problem = half_square();
  const Schedule schedule{.kind = Schedule::Kind::constant, .c = 2.5};  // x_t = (-1.5)^t
  RunPlan plan = plan_with({1.0, 1e-3}, 1);
  plan.divergence_threshold = 1e2;  // |x_t| > 100 from t = 12
  RunStreams streams(4, 0);
  auto optimizer = sgd();
  const RunResult result = run_one(*problem, *optimizer, schedule, plan, streams);
  REQUIRE(result.status == RunStatus::diverged);
  CHECK(result.target_steps[0] == 0.0);  // f(x_0) = 0.5 < 1
  CHECK(result.target_gradient_evaluations[0] == 0.0);
  CHECK(result.target_steps[1] == kInf);
  CHECK(result.target_gradient_evaluations[1] == kInf);
  CHECK(result.best_so_far[0] == 0.5);
  CHECK(std::isnan(result.best_so_far.back()));  // a checkpoint after the run stopped
}

TEST_CASE("the automatic target check interval is max(1, ceil(10 c)), c the cost of one evaluation", "[targets]") {
  RunOptions options;
  options.targets = {1e-2};
  CHECK(half_square()->evaluation_cost() == 1.0);
  CHECK(target_check_interval(options, *half_square()) == 10);
  RowMat A = RowMat::Ones(4096, 2);
  Vec b = Vec::Zero(4096);
  LeastSquaresOptions o;
  o.solve = false;
  o.estimate_L = false;
  const LeastSquares rows(std::move(A), std::move(b), o, 0.0);
  CHECK(rows.evaluation_cost() == 4096.0);
  CHECK(target_check_interval(options, rows) == 40960);
  options.target_metric = Metric::dist2;  // never touches the data
  CHECK(target_check_interval(options, rows) == 10);
  options.target_check_every = 3;
  CHECK(target_check_interval(options, rows) == 3);
}

TEST_CASE("hitting times go through the journal and the trace file unchanged", "[targets]") {
  const auto problem = half_square();
  const Schedule schedule{.kind = Schedule::Kind::constant, .c = 0.5};
  const RunPlan plan = plan_with({1e-1, 1e-3, 1e-40}, 1);
  RunStreams streams(4, 0);
  auto optimizer = sgd();
  const RunResult result = run_one(*problem, *optimizer, schedule, plan, streams);
  REQUIRE(result.target_steps[2] == kInf);  // not reached in 16 steps

  std::vector<unsigned char> bytes;
  results::encode_record(bytes, 1, 2, result);
  const results::JournalRecord back = results::decode_record(bytes.data(), bytes.size());
  CHECK(back.result.target_steps == result.target_steps);
  CHECK(back.result.target_gradient_evaluations == result.target_gradient_evaluations);
  CHECK(back.result.best_so_far == result.best_so_far);

  results::TraceLayout layout;
  layout.experiment_name = "targets";
  layout.configurations.push_back({"0000000000000001", "one", {{"problem", std::string("quadratic")}}, {}, 0.0, "", "", ""});
  layout.replicates = 2;
  layout.checkpoints = plan.checkpoints;
  layout.views = {"last"};
  layout.metrics = {"subopt"};
  layout.targets = plan.targets;
  layout.target_metric = "subopt";
  const auto path = ratelab_test::scratch("targets_round_trip.h5");
  {
    results::TraceWriter writer(path.string(), layout, results::WriteMode::overwrite);
    writer.write_run(0, 0, result);
    RunResult unmeasured = result;  // written without target data (e.g. an error before the loop): NaN
    unmeasured.target_steps.clear();
    unmeasured.target_gradient_evaluations.clear();
    unmeasured.best_so_far.clear();
    writer.write_run(0, 1, unmeasured);
    writer.commit();
  }
  const results::TraceData data = results::read_trace_file(path.string());
  CHECK(data.layout.targets == plan.targets);
  CHECK(data.layout.target_metric == "subopt");
  REQUIRE(data.target_steps.size() == 2 * 3);
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(data.target_steps[j] == result.target_steps[j]);
    CHECK(data.target_gradient_evaluations[j] == result.target_gradient_evaluations[j]);
    CHECK(std::isnan(data.target_steps[3 + j]));
  }
  for (std::size_t k = 0; k < plan.checkpoints.size(); ++k) CHECK(data.best_so_far[k] == result.best_so_far[k]);
  results::TraceReader reader(path.string());
  const results::RunBlock block = reader.runs(0, 0, 1);
  CHECK(block.target_steps == result.target_steps);
  CHECK(block.best_so_far == result.best_so_far);
  const auto dims = results::dataset_dimensions(path.string(), "target_step");
  REQUIRE(dims.size() == 3);
  CHECK(dims[2].label == "target");
}

namespace {
const char* kExperiment = R"(
[experiment]
name = targets
steps = 40
replicates = 2
checkpoints = 6
metrics = subopt
targets = 1e-3, 0.0078125
target_check_every = 1
[problem]
name = quadratic
d = 1
mu = 1
L = 1
[optimizer]
name = sgd
[schedule]
name = constant
eta = 0.5
)";
}  // namespace

TEST_CASE("ratelab run records the hitting times in the file", "[targets]") {
  const auto ini = ratelab_test::scratch("targets.ini"), out = ratelab_test::scratch("targets.h5");
  std::ofstream(ini) << kExperiment;
  const auto o = ratelab_test::run_cli("run " + ini.string() + " -o " + out.string() + " --overwrite");
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const results::TraceData data = results::read_trace_file(out.string());
  CHECK(data.layout.targets == std::vector<double>{1e-3, 0.0078125});
  CHECK(data.layout.target_metric == "subopt");
  // t = 5 for 1e-3; 2^-7 is f(x_3) exactly, so it counts from t = 4.
  CHECK(data.target_steps == std::vector<double>{5, 4, 5, 4});
  CHECK(data.target_gradient_evaluations == std::vector<double>{5, 4, 5, 4});
  const std::size_t K = data.layout.checkpoints.size();
  for (std::size_t k = 0; k < K; ++k) CHECK(data.best_so_far[k] == data.trace(0, 0, 0, 0, k));

  SECTION("export carries them") {
    const auto csv = ratelab_test::scratch("targets.csv");
    REQUIRE(ratelab_test::run_cli("export " + out.string() + " -o " + csv.string()).exit_code == 0);
    std::ifstream in(csv);
    std::string header;
    std::getline(in, header);
    CHECK_THAT(header, Catch::Contains(",best_so_far,") && Catch::EndsWith(",target_step[subopt<0.001],target_gradient_evaluations[subopt<0.001],"
                                                                          "target_step[subopt<0.0078125],target_gradient_evaluations[subopt<0.0078125]"));
  }
}

TEST_CASE("a target metric the problem does not provide is refused, naming the fix", "[targets]") {
  std::string refused = kExperiment;
  refused.replace(refused.find("target_check_every = 1"), 22, "target_metric = gradnorm2");
  refused.replace(refused.find("L = 1\n"), 6, "L = 1\nregularizer = l1\nreg_weight = 0.01\n");
  const ExperimentPlan plan = plan_experiment(registry(), parse_ini(refused, "bad.ini"), {});
  try {
    PreparedExperiment prepared(registry(), plan, 1);
    FAIL("the experiment was accepted");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("experiment.target_metric = gradnorm2 is not available for problem 'quadratic'") &&
                                          Catch::Contains("set experiment.target_metric to one of these"));
  }
}

TEST_CASE("the run fingerprint leaves the target keys out when there are no targets", "[targets]") {
  std::string without = kExperiment;
  without.replace(without.find("targets = 1e-3, 0.0078125"), 25, "");
  const PreparedExperiment plain(registry(), plan_experiment(registry(), parse_ini(without, "plain.ini"), {}), 1);
  CHECK_THAT(run_fingerprint_inputs(plain, 0), !Catch::Contains("target"));
  const PreparedExperiment with(registry(), plan_experiment(registry(), parse_ini(kExperiment, "with.ini"), {}), 1);
  CHECK_THAT(run_fingerprint_inputs(with, 0), Catch::Contains("targets=") && Catch::Contains("target_metric="));
}

namespace {
// A hand table with recorded hits: checkpoints 0, 10, 100, target 1e-2 of subopt.
//   run 0: recorded at t = 3; at the checkpoints 1, 0.005, 0.001 (checkpoint hit 10); best so far 1, 0.004, 0.001
//   run 1: dips below at t = 8, back at 0.5 by t = 10, 0.001 at 100: recorded 8, checkpoint 100, best so far 10
//   run 2: never (0.5 throughout)
//   run 3: diverged after t = 10: never
// ERT with T = 100 charged to each unsuccessful run: recorded (3 + 8 + 200) / 2 = 105.5, checkpoint
// (10 + 100 + 200) / 2 = 155, best so far (10 + 10 + 200) / 2 = 110.
results::TraceData recorded_table() {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "hand";
  d.layout.replicates = 4;
  d.layout.checkpoints = {0, 10, 100};
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  d.layout.targets = {1e-2};
  d.layout.target_metric = "subopt";
  results::ConfigurationRecord rec;
  rec.id = "aaaa000011112222";
  rec.label = "sgd";
  rec.parameters = {{"optimizer", std::string("sgd")}, {"problem", std::string("quadratic")}};
  d.layout.configurations.push_back(rec);
  d.traces = {{1, 0.005, 0.001, 1, 0.5, 0.001, 1, 0.5, 0.5, 1, 0.3, kNaN}};
  d.best_so_far = {1, 0.004, 0.001, 1, 0.005, 0.001, 1, 0.5, 0.5, 1, 0.3, kNaN};
  d.target_steps = {3, 8, kInf, kInf};
  d.target_gradient_evaluations = {3, 8, kInf, kInf};
  d.status = {RunStatus::ok, RunStatus::ok, RunStatus::ok, RunStatus::diverged};
  d.stop_step = {100, 100, 100, 12};
  d.wall_seconds.assign(4, 0.0);
  d.eval_seconds.assign(4, 0.0);
  d.messages.assign(4, "");
  return d;
}

std::string ert_csv(const std::string& hits, std::vector<double> targets = {1e-2}) {
  tools::ErtOptions options;
  options.targets = std::move(targets);
  options.csv = true;
  options.bootstrap = 50;
  options.hits = hits;
  std::ostringstream out;
  REQUIRE(tools::ert(options, {recorded_table()}, {"hand.h5"}, out) == 0);
  return out.str();
}
}  // namespace

TEST_CASE("ert reads the recorded hitting times and says which hits it used", "[targets]") {
  // auto: the file has hits of subopt for 1e-2, so they are used.
  for (const char* hits : {"auto", "recorded"}) {
    const std::string csv = ert_csv(hits);
    INFO(csv);
    CHECK_THAT(csv, Catch::StartsWith("configuration,target,reached,runs,ert,ert_lo,ert_hi,") && Catch::Contains(",hits\n"));
    CHECK_THAT(csv, Catch::Contains("\nsgd,0.01,2/4,4,105.5,") && Catch::EndsWith(",recorded\n"));
  }
  CHECK_THAT(ert_csv("checkpoint"), Catch::Contains("\nsgd,0.01,2/4,4,155,") && Catch::EndsWith(",checkpoint\n"));
  CHECK_THAT(ert_csv("best_so_far"), Catch::Contains("\nsgd,0.01,2/4,4,110,") && Catch::EndsWith(",best_so_far\n"));
  // A target the run loop did not check: auto falls back to the checkpoints for every target (runs 0 and 1
  // at t = 100: (100 + 100 + 200) / 2).
  const std::string fallback = ert_csv("auto", {1e-2, 2e-3});
  CHECK_THAT(fallback, Catch::Contains("\nsgd,0.01,2/4,4,155,") && Catch::Contains("\nsgd,0.002,2/4,4,200,") &&
                           !Catch::Contains("recorded"));
  // ... and recorded asked for it is refused, naming the fix.
  tools::ErtOptions options;
  options.targets = {2e-3};
  options.hits = "recorded";
  std::ostringstream out;
  try {
    tools::ert(options, {recorded_table()}, {"hand.h5"}, out);
    FAIL("recorded hits of a target the file does not have were accepted");
  } catch (const ConfigError& e) {
    CHECK_THAT(std::string(e.what()), Catch::Contains("no recorded hitting times of subopt for target 0.002") &&
                                          Catch::Contains("use --hits checkpoint"));
  }
  options.targets = {1e-2};
  options.hits = "auto";
  REQUIRE(tools::ert(options, {recorded_table()}, {"hand.h5"}, out) == 0);
  CHECK_THAT(out.str(), Catch::Contains("hits recorded: the run's steps at the first step the run loop evaluated"));
}

TEST_CASE("ert and success claims take hits= and say which rule they used", "[targets][claims]") {
  const results::TraceData table = recorded_table();
  auto verdict = [&](const std::string& claim) {
    const auto list = claims::parse_claims(parse_ini("[claims]\nc = " + claim + "\n", "hits.ini"));
    const auto verdicts = claims::evaluate_claims(list, table, 1, 50);
    REQUIRE(verdicts.size() == 1);
    INFO(claims::format_verdict(verdicts[0]));
    return verdicts[0];
  };
  // The hand table's ERTs (above): recorded 105.5 (the default here: the file has hits for 1e-2), checkpoint
  // 155, best so far 110; the same numbers `ert --hits` prints.
  for (const char* hits : {"", " hits=auto", " hits=recorded"}) {
    const auto v = verdict(std::string("ert target=1e-2 expect=[105, 106]") + hits);
    CHECK(v.pass);
    CHECK(v.value == 105.5);
    CHECK_THAT(v.what, Catch::Contains("subopt[last] < 0.01") && Catch::Contains("hits recorded by the run loop"));
  }
  const auto checkpoint = verdict("ert target=1e-2 expect=[105, 106] hits=checkpoint");
  CHECK(!checkpoint.pass);
  CHECK(checkpoint.value == 155);
  CHECK_THAT(checkpoint.what, Catch::Contains("<= 0.01") && Catch::Contains("first stored checkpoint at or below"));
  CHECK(verdict("ert target=1e-2 expect=[109, 111] hits=best_so_far").value == 110);
  // success by t = 10: recorded hits 3 and 8 are in (2/4), the checkpoint rule sees run 0 only (1/4), best so
  // far runs 0 and 1 (2/4).
  CHECK(verdict("success target=1e-2 by=10 fraction=0.5").value == 0.5);
  CHECK(verdict("success target=1e-2 by=10 fraction=0.5 hits=checkpoint").value == 0.25);
  CHECK(verdict("success target=1e-2 by=10 fraction=0.5 hits=best_so_far").value == 0.5);
  // A target the run loop did not check: auto reads the checkpoints, recorded is refused naming the fix.
  CHECK(verdict("ert target=2e-3 expect=[199, 201]").value == 200);
  CHECK_THROWS_WITH(verdict("ert target=2e-3 expect=[0, 1000] hits=recorded"),
                    Catch::Contains("no recorded hitting times of subopt for target 0.002") &&
                        Catch::Contains("hits=checkpoint"));
  // Recorded hits are of the last iterate: another view is refused, and a misspelt rule names the choices.
  CHECK_THROWS_WITH(results::resolve_hit_source("recorded", {&table}, "subopt", "suffix", {1e-2}),
                    Catch::Contains("not of view suffix"));
  CHECK(results::resolve_hit_source("auto", {&table}, "subopt", "suffix", {1e-2}) == results::HitSource::checkpoint);
  CHECK_THROWS_WITH(claims::parse_claims(parse_ini("[claims]\nc = ert target=1e-2 expect=[0, 1] hits=first\n", "x.ini")),
                    Catch::Contains("hits=first is not one of auto, recorded, checkpoint, best_so_far"));
}
