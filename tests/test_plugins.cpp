// Optimizer plugins: the example plugin (examples/plugin/, built in-tree as ratelab_example_plugin) loaded
// through the C ABI behaves exactly like the same classes built in; the conformance suite passes on its
// components; load failures are ConfigErrors that leave the registry untouched. The out-of-tree build,
// the CLI, provenance in the trace file and the ABI-mismatch/collision/throwing plugins are checked by
// the ctest test plugin_example (tests/plugin_example.sh).
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/registry.hpp"
#include "core/run.hpp"
#include "examples/plugin/example_optimizers.hpp"
#include "experiments/allocation_counter.hpp"
#include "experiments/conformance.hpp"
#include "experiments/plugins.hpp"
#include "cli_support.hpp"

using namespace ratelab;

namespace {

const std::string kPlugin = RATELAB_EXAMPLE_PLUGIN;

std::string temp_file(const std::string& name, const std::string& contents) {
  const auto path = std::filesystem::temp_directory_path() / ("ratelab_test_plugins_" + name);
  std::ofstream(path, std::ios::binary) << contents;
  return path.string();
}

std::shared_ptr<const Problem> quadratic(const Registry& registry, const std::map<std::string, std::string>& raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry.info(ComponentKind::problem, "quadratic").params, raw, "problem", errors);
  REQUIRE(errors.empty());
  ProblemContext context{RandomStream(2, 0, StreamPurpose::instance), ""};
  return registry.make_problem("quadratic", p, context);
}

}  // namespace

TEST_CASE("fnv1a64_of_file matches the published FNV-1a 64 test vectors", "[plugins]") {
  CHECK(fnv1a64_of_file(temp_file("fnv_empty", "")) == "cbf29ce484222325");   // the offset basis
  CHECK(fnv1a64_of_file(temp_file("fnv_a", "a")) == "af63dc4c8601ec8c");
  CHECK(fnv1a64_of_file(temp_file("fnv_foobar", "foobar")) == "85944171f73967e8");
}

TEST_CASE("a plugin registers its optimizers with their declarations and its origin", "[plugins]") {
  Registry registry = builtin_registry();
  const std::size_t builtins = registry.keys(ComponentKind::optimizer).size();
  LoadedPlugin plugin = load_plugin(registry, kPlugin);
  CHECK(plugin.name == "example-optimizers");
  CHECK(plugin.version == "1.0.0");
  CHECK(plugin.optimizers == std::vector<std::string>{"adagrad", "coordinate_sgd"});
  CHECK(plugin.hash == "fnv1a64 " + fnv1a64_of_file(kPlugin));
  CHECK(plugin.origin == "plugin example-optimizers 1.0.0 (" + kPlugin + ", " + plugin.hash + ")");
  CHECK(registry.keys(ComponentKind::optimizer).size() == builtins + 2);

  // The declaration crossed the C boundary intact: every field of every ParamSpec.
  const ComponentInfo& info = registry.info(ComponentKind::optimizer, "adagrad");
  CHECK(info.origin == plugin.origin);
  const std::vector<ParamSpec> expected = example::AdaGradOptions::params().specs();
  REQUIRE(info.params.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO(expected[i].key);
    CHECK(info.params[i].key == expected[i].key);
    CHECK(info.params[i].type == expected[i].type);
    CHECK(info.params[i].default_value == expected[i].default_value);
    CHECK(info.params[i].constraint.lo == expected[i].constraint.lo);
    CHECK(info.params[i].constraint.hi == expected[i].constraint.hi);
    CHECK(info.params[i].constraint.lo_open == expected[i].constraint.lo_open);
    CHECK(info.params[i].constraint.hi_open == expected[i].constraint.hi_open);
    CHECK(info.params[i].constraint.choices == expected[i].constraint.choices);
    CHECK(info.params[i].doc == expected[i].doc);
  }
  // Host-side validation from that declaration, and the plugin's own when a host skips it.
  std::vector<std::string> errors;
  resolve_params(info.params, {{"eps", "0"}}, "optimizer", errors);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "optimizer.eps = 0 violates optimizer.eps > 0");
  ParamSet unchecked;
  unchecked.set("batch", std::int64_t(0));
  CHECK_THROWS_AS(registry.make_optimizer("coordinate_sgd", unchecked), ConfigError);
  CHECK_THROWS_WITH(registry.make_optimizer("coordinate_sgd", unchecked),
                    Catch::Contains("optimizer.batch = 0 violates optimizer.batch >= 1"));
}

TEST_CASE("a plugin optimizer draws the same bits as the same class built in", "[plugins]") {
  Registry registry = builtin_registry();
  load_plugin(registry, kPlugin);
  registry.optimizer<example::AdaGrad, example::AdaGradOptions>("builtin_adagrad", "");
  registry.optimizer<example::CoordinateSgd, example::CoordinateSgdOptions>("builtin_coordinate_sgd", "");
  // Noisy (sampling and noise streams in the host's oracle) and, for coordinate_sgd, the optimizer stream
  // rebuilt inside the plugin from (seed, replicate, salt); salt != 0 checks that it crosses too.
  auto problem = quadratic(registry, {{"d", "12"}, {"mu", "0.2"}, {"L", "1"}, {"noise_scale", "0.3"}});
  RunPlan plan;
  plan.steps = 500;
  plan.checkpoints = log_checkpoints(plan.steps, 10);
  plan.views = {View::last, View::uniform};
  plan.metrics = {Metric::subopt, Metric::dist2};
  const Schedule schedule{.kind = Schedule::Kind::constant, .c = 0.3};
  for (const std::string key : {"adagrad", "coordinate_sgd"}) {
    INFO(key);
    RunStreams s_plugin(11, 3, 5), s_builtin(11, 3, 5);
    auto from_plugin = registry.make_optimizer(key, {});
    auto built_in = registry.make_optimizer("builtin_" + key, {});
    RunResult a = run_one(*problem, *from_plugin, schedule, plan, s_plugin);
    RunResult b = run_one(*problem, *built_in, schedule, plan, s_builtin);
    REQUIRE(a.status == RunStatus::ok);
    REQUIRE(b.status == RunStatus::ok);
    REQUIRE(a.traces.size() == b.traces.size());
    CHECK(std::memcmp(a.traces.data(), b.traces.data(), a.traces.size() * sizeof(double)) == 0);
    CHECK(a.stats == b.stats);
    CHECK(std::memcmp(from_plugin->iterate().data(), built_in->iterate().data(), 12 * sizeof(double)) == 0);
    // And a different replicate differs (the streams are really used).
    RunStreams s_other(11, 4, 5);
    auto other = registry.make_optimizer(key, {});
    RunResult c = run_one(*problem, *other, schedule, plan, s_other);
    CHECK(std::memcmp(a.traces.data(), c.traces.data(), a.traces.size() * sizeof(double)) != 0);
  }
  // coordinate_sgd's statistic crosses the boundary: on the noisy quadratic (no cheap blocks) each step
  // costs d coordinates.
  RunStreams streams(1, 0);
  auto opt = registry.make_optimizer("coordinate_sgd", {});
  RunResult r = run_one(*problem, *opt, schedule, plan, streams);
  double coordinates = -1;
  for (const auto& [name, value] : r.stats)
    if (name == "gradient_coordinates") coordinates = value;
  CHECK(coordinates == 500.0 * 12.0);
}

TEST_CASE("the conformance suite passes on the plugin's optimizers", "[plugins]") {
  Registry registry = builtin_registry();
  LoadedPlugin plugin = load_plugin(registry, kPlugin);
  for (const auto& key : plugin.optimizers) {
    const ConformanceReport report = check_optimizer_conformance(registry, key, {});
    INFO(format_report(report));
    CHECK(report.passed());
    REQUIRE(report.checks.size() == 6);
    // The allocation check really ran (a skipped check would also "pass"), except under a sanitizer.
    CHECK(report.checks[4].name == "allocates nothing after prepare");
    CHECK(report.checks[4].outcome == (allocations::counting_available() ? ConformanceCheck::Outcome::passed
                                                                         : ConformanceCheck::Outcome::skipped));
  }
}

TEST_CASE("plugin load failures are ConfigErrors and leave the registry as it was", "[plugins]") {
  Registry registry = builtin_registry();
  const auto before = registry.keys(ComponentKind::optimizer);
  CHECK_THROWS_WITH(load_plugin(registry, "/nonexistent/libnothing.so"),
                    Catch::Contains("plugin '/nonexistent/libnothing.so' not found"));
  const std::string text = temp_file("garbage.so", "this is not an ELF file\n");
  CHECK_THROWS_WITH(load_plugin(registry, text), Catch::Contains("is not a loadable shared library"));
  CHECK(registry.keys(ComponentKind::optimizer) == before);

  // Loading it twice collides on its first key; the registry's message names both origins.
  LoadedPlugin plugin = load_plugin(registry, kPlugin);
  const auto with_plugin = registry.keys(ComponentKind::optimizer);
  CHECK_THROWS_WITH(load_plugin(registry, kPlugin),
                    Catch::Contains("optimizer key 'adagrad' is registered twice: by " + plugin.origin + " and by " +
                                    plugin.origin));
  CHECK(registry.keys(ComponentKind::optimizer) == with_plugin);
  // load_plugins skips a file it has already loaded under another spelling of its path.
  Registry fresh = builtin_registry();
  const std::string dotted = std::filesystem::path(kPlugin).parent_path().string() + "/./" +
                             std::filesystem::path(kPlugin).filename().string();
  CHECK(load_plugins(fresh, {kPlugin, dotted}).size() == plugin_path_libraries().size() + 1);
}

TEST_CASE("the allocation counter sees operator new, Eigen and allocations inside a plugin", "[plugins]") {
  // The conformance check "allocates nothing after prepare" is only as good as this counter.
  if (!allocations::counting_available()) {
    SUCCEED("allocation counting is unavailable under a sanitizer");
    return;
  }
  allocations::arm();
  auto boxed = std::make_unique<int>(3);
  const long after_new = allocations::disarm();
  CHECK(after_new == 1);
  allocations::arm();
  Vec v(1000);
  const long after_eigen = allocations::disarm();
  CHECK(after_eigen == 1);
  struct alignas(64) Line {
    double v[8];
  };
  allocations::arm();
  auto line = std::make_unique<Line>();  // aligned operator new
  const long after_aligned = allocations::disarm();
  CHECK(after_aligned == 1);
  line->v[0] = 1.0;
  Registry registry = builtin_registry();
  load_plugin(registry, kPlugin);
  allocations::arm();
  auto opt = registry.make_optimizer("adagrad", {});  // the SDK object and the optimizer, inside the plugin
  const long in_plugin = allocations::disarm();
  CHECK(in_plugin >= 3);
  CHECK(*boxed + int(v.size()) == 1003);
}

TEST_CASE("ratelab check-plugin checks its options itself and runs the suite in ratelab-check-plugin", "[plugins]") {
  // The production binary carries no counting malloc (ctest ratelab_has_no_malloc_interposer), yet the
  // command's allocation check runs: ratelab execs ratelab-check-plugin, which has it.
  const ratelab_test::Outcome o = ratelab_test::run_cli("check-plugin " + kPlugin);
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("optimizer adagrad") && Catch::Contains("conforms"));
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  CHECK_THAT(o.output, Catch::Contains("ok    allocates nothing after prepare: 0 heap allocations"));
#endif
  // A bad option is refused by ratelab before anything is executed, naming it.
  const ratelab_test::Outcome bad = ratelab_test::run_cli("check-plugin " + kPlugin + " --steps 5");
  INFO(bad.output);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("ratelab check-plugin") && Catch::Contains("steps"));
}
