// The runs' costs per checkpoint: gradient evaluations (oracle samples, a minibatch of B counts B) and the
// step loop's elapsed time, from the run loop to the trace file and back.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <limits>

#include "core/fast_paths.hpp"
#include "core/registry.hpp"
#include "core/run.hpp"
#include "problems/least_squares.hpp"
#include "results/journal.hpp"
#include "results/trace_file.hpp"

using namespace ratelab;

namespace {

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

// The ground truth: an oracle that counts what is drawn from it, as Optimizer::gradient_evaluations defines
// it (batch B counts B; a block of s of d coordinates counts B s / d when the inner oracle's block gradients
// are cheap, B otherwise).
// Without cheap block gradients a block method draws a full gradient (sample_gradient) for each block.
struct CountingOracle final : Oracle, OracleFastPaths {
  Oracle& inner;
  OracleFastPaths* inner_cheap;  // the inner oracle's fast paths when its block gradients are cheap
  double samples = 0.0;
  Eigen::Index dim;
  CountingOracle(Oracle& o, Eigen::Index d) : inner(o), inner_cheap(o.fast_paths()), dim(d) {
    if (inner_cheap && !inner_cheap->has_cheap_block_gradient()) inner_cheap = nullptr;
  }
  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    samples += batch;
    inner.sample_gradient(x, g, batch);
  }
  OracleFastPaths* fast_paths() override { return this; }
  bool has_cheap_block_gradient() const override { return inner_cheap != nullptr; }
  void sample_block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g, int batch) override {
    samples += double(batch) * double(size) / double(dim);
    inner_cheap->sample_block_gradient(x, begin, size, g, batch);
  }
};

std::shared_ptr<const Problem> noisy_quadratic(long d) {
  ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), ""};
  return registry().make_problem(
      "quadratic", resolve(ComponentKind::problem, "quadratic", {{"d", std::to_string(d)}, {"noise_scale", "0.1"}}), ctx);
}

}  // namespace

TEST_CASE("every registered optimizer counts exactly the oracle samples it draws", "[run_costs]") {
  const auto problem = noisy_quadratic(8);
  for (const std::string& key : registry().keys(ComponentKind::optimizer)) {
    // batch 3 where the optimizer has a minibatch; heavy-ball also with 4 blocks of 2 (cyclic and random).
    std::vector<std::map<std::string, std::string>> settings{{}};
    const auto& params = registry().info(ComponentKind::optimizer, key).params;
    const bool has_batch = std::any_of(params.begin(), params.end(), [](const auto& p) { return p.key == "batch"; });
    if (has_batch) settings.push_back({{"batch", "3"}});
    if (key == "heavy_ball")
      for (const char* rule : {"cyclic", "random"}) settings.push_back({{"batch", "2"}, {"blocks", "4"}, {"block_rule", rule}});
    for (const auto& raw : settings) {
      INFO(key << " with " << raw.size() << " settings" << (raw.count("blocks") ? " (4 blocks)" : ""));
      std::unique_ptr<Optimizer> optimizer;
      try {
        optimizer = registry().make_optimizer(key, resolve(ComponentKind::optimizer, key, raw));
        optimizer->prepare(*problem);
      } catch (const ConfigError&) {
        continue;  // an optimizer this problem does not suit (it says why elsewhere)
      }
      RunStreams streams(3, 1);
      auto inner = problem->make_oracle(streams);
      CountingOracle oracle(*inner, problem->dim());
      Vec x0(problem->dim());
      streams.init.seek(0);
      problem->initial_point(x0, streams.init);
      optimizer->reset_gradient_evaluations();
      optimizer->start(x0, streams);
      const Schedule schedule{.kind = Schedule::Kind::constant, .c = 0.01};
      optimizer->steps(1, 37, schedule, streams, oracle);
      // Sums of small integers and of quarters: exact in double.
      CHECK(optimizer->gradient_evaluations() == oracle.samples);
      CHECK(oracle.samples > 0);
    }
  }
}

TEST_CASE("the run loop records gradient evaluations and elapsed time at every checkpoint", "[run_costs]") {
  const auto problem = noisy_quadratic(6);
  auto sgd = registry().make_optimizer("sgd", resolve(ComponentKind::optimizer, "sgd", {{"batch", "4"}}));
  RunPlan plan;
  plan.steps = 500;
  plan.checkpoints = log_checkpoints(plan.steps, 10);
  const std::size_t K = plan.checkpoints.size();
  RunStreams streams(5, 0);
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.1};
  const RunResult result = run_one(*problem, *sgd, schedule, plan, streams);
  REQUIRE(result.status == RunStatus::ok);
  REQUIRE(result.gradient_evaluations.size() == K);
  REQUIRE(result.elapsed_seconds.size() == K);
  for (std::size_t k = 0; k < K; ++k) {
    CHECK(result.gradient_evaluations[k] == 4.0 * double(plan.checkpoints[k]));
    CHECK(std::isfinite(result.elapsed_seconds[k]));
    if (k > 0) CHECK(result.elapsed_seconds[k] >= result.elapsed_seconds[k - 1]);
  }
  CHECK(result.elapsed_seconds[0] == 0.0);
  CHECK(result.elapsed_seconds[K - 1] <= result.wall_seconds);

  SECTION("a diverging run has NaN costs after the step it stopped at") {
    auto fast = registry().make_optimizer("sgd", resolve(ComponentKind::optimizer, "sgd", {}));
    const Schedule huge{.kind = Schedule::Kind::constant, .c = 1e3};  // far beyond 2/L: |x| grows geometrically
    RunPlan diverge = plan;
    diverge.divergence_threshold = 1e6;
    RunStreams s(5, 0);
    const RunResult r = run_one(*problem, *fast, huge, diverge, s);
    REQUIRE(r.status == RunStatus::diverged);
    for (std::size_t k = 0; k < K; ++k) {
      INFO("t = " << plan.checkpoints[k] << ", stop step " << r.stop_step);
      if (plan.checkpoints[k] < r.stop_step) {
        CHECK(r.gradient_evaluations[k] == double(plan.checkpoints[k]));
      } else if (plan.checkpoints[k] > r.stop_step) {
        CHECK(std::isnan(r.gradient_evaluations[k]));
        CHECK(std::isnan(r.elapsed_seconds[k]));
      }
    }
  }
}

TEST_CASE("fused and lockstep SGD steps count one sample per step", "[run_costs]") {
  RowMat A;
  Vec b;
  make_splitmix_instance(256, 12, 99, 0.1, A, b);
  LeastSquaresOptions o;
  o.solve = false;
  o.estimate_L = false;
  LeastSquares problem(A, b, o, 0.0);
  RunPlan plan;
  plan.steps = 2000;
  plan.divergence_check_every = 1000;  // long segments: the fused path runs
  plan.checkpoints = log_checkpoints(plan.steps, 8);
  plan.metrics = {Metric::value};
  const Schedule schedule{.kind = Schedule::Kind::inv_sqrt, .c = 0.2};
  std::vector<std::unique_ptr<Optimizer>> owned;
  std::vector<Optimizer*> optimizers;
  std::vector<std::unique_ptr<RunStreams>> owned_streams;
  std::vector<RunStreams*> streams;
  for (std::uint64_t r = 0; r < 3; ++r) {
    owned.push_back(registry().make_optimizer("sgd", resolve(ComponentKind::optimizer, "sgd", {})));
    optimizers.push_back(owned.back().get());
    owned_streams.push_back(std::make_unique<RunStreams>(11, r));
    streams.push_back(owned_streams.back().get());
  }
  const auto alone = run_one(problem, *optimizers[0], schedule, plan, *streams[0]);
  const auto group = run_lockstep(problem, optimizers, schedule, plan, streams);
  for (const RunResult* result : {&alone, &group[0], &group[1], &group[2]}) {
    REQUIRE(result->status == RunStatus::ok);
    for (std::size_t k = 0; k < plan.checkpoints.size(); ++k)
      CHECK(result->gradient_evaluations[k] == double(plan.checkpoints[k]));
  }
}

TEST_CASE("gradient evaluations and elapsed time go through the journal and the trace file unchanged", "[run_costs]") {
  const auto dir = std::filesystem::temp_directory_path() / "ratelab_run_costs";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  results::TraceLayout layout;
  layout.experiment_name = "costs";
  layout.replicates = 2;
  layout.checkpoints = {0, 1, 10, 100};
  layout.views = {"last"};
  layout.metrics = {"value"};
  layout.configurations.resize(1);
  layout.configurations[0].label = "a";
  RunResult run;
  run.status = RunStatus::ok;
  run.stop_step = 100;
  run.traces = {4.0, 3.0, 2.0, 1.0};
  run.gradient_evaluations = {0.0, 2.0, 20.0, 200.0};
  run.elapsed_seconds = {0.0, 0.25, 0.5, 1.5};

  SECTION("journal record") {
    const std::string path = (dir / "j").string();
    {
      results::Journal journal(path, 42);
      journal.append(0, 1, run);
    }
    const auto contents = results::read_journal(path);
    REQUIRE(contents.records.size() == 1);
    CHECK(contents.records[0].result.gradient_evaluations == run.gradient_evaluations);
    CHECK(contents.records[0].result.elapsed_seconds == run.elapsed_seconds);
  }
  SECTION("trace file: written where measured, NaN where not") {
    const std::string path = (dir / "t.h5").string();
    {
      results::TraceWriter writer(path, layout, results::WriteMode::create_new);
      writer.write_run(0, 1, run);
      RunResult unmeasured = run;  // a run read from an older file has no costs
      unmeasured.gradient_evaluations.clear();
      unmeasured.elapsed_seconds.clear();
      writer.write_run(0, 0, unmeasured);
      writer.commit();
    }
    const auto data = results::read_trace_file(path);
    REQUIRE(data.gradient_evaluations.size() == 8);
    REQUIRE(data.elapsed_seconds.size() == 8);
    for (std::size_t k = 0; k < 4; ++k) {
      CHECK(std::isnan(data.gradient_evaluations[k]));
      CHECK(std::isnan(data.elapsed_seconds[k]));
      CHECK(data.gradient_evaluations[4 + k] == run.gradient_evaluations[k]);
      CHECK(data.elapsed_seconds[4 + k] == run.elapsed_seconds[k]);
    }
    const auto block = results::TraceReader(path).runs(0, 1, 1);
    CHECK(block.gradient_evaluations == run.gradient_evaluations);
    CHECK(block.elapsed_seconds == run.elapsed_seconds);
  }
  std::filesystem::remove_all(dir);
}
