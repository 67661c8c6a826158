// Per-step cost of an optimizer called through the plugin boundary vs the same class built in.
//
// The example plugin's AdaGrad and randomized coordinate SGD (examples/plugin/example_optimizers.hpp) are
// registered twice: built in (compiled into this program) and loaded from the in-tree build of the plugin.
// For each, on d = 1000 quadratics (identity eigenbasis without noise: an O(d) step with no random draws, so
// the boundary's fixed cost is as visible as it can be; identity basis with gaussian gradient noise; a
// Haar-random basis with noise: an O(d^2) oracle, run for T/10 steps), the step loop is timed R times,
// alternating which of built-in and plugin goes first; the medians of ns/step are printed, and the final
// iterates of the two are compared bit for bit.
//   usage: ratelab_bench_plugin_step [T = 20000] [R = 7] [only this problem, e.g. identity/none]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/run.hpp"
#include "example_optimizers.hpp"
#include "experiments/plugins.hpp"

using namespace ratelab;

namespace {

std::shared_ptr<const Problem> quadratic(const Registry& registry, const std::string& basis, const std::string& noise) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry.info(ComponentKind::problem, "quadratic").params,
                              {{"d", "1000"}, {"mu", "0.01"}, {"L", "1"}, {"basis", basis}, {"noise", noise}, {"noise_scale", "0.1"}},
                              "problem", errors);
  if (!errors.empty()) throw ConfigError(errors);
  ProblemContext context{RandomStream(1, 0, StreamPurpose::instance), ""};
  return registry.make_problem("quadratic", p, context);
}

// Nanoseconds per step of T steps; the final iterate goes to `x_final`.
double time_steps(const Problem& problem, Optimizer& opt, long T, Vec& x_final) {
  RunStreams streams(3, 0);
  opt.prepare(problem);
  auto oracle = problem.make_oracle(streams);
  Vec x0(problem.dim());
  problem.initial_point(x0, streams.init);
  opt.start(x0, streams);
  const auto start = std::chrono::steady_clock::now();
  for (long t = 1; t <= T; ++t) {
    streams.seek(std::uint64_t(t));
    opt.step(t, 0.05, *oracle);
    (void)opt.iterate();
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  x_final = opt.iterate();
  return ns / double(T);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const long T = argc > 1 ? std::atol(argv[1]) : 20000;
  const int R = argc > 2 ? std::atoi(argv[2]) : 7;
  const std::string only = argc > 3 ? argv[3] : "";
  Registry registry = builtin_registry();
  registry.optimizer<example::AdaGrad, example::AdaGradOptions>("builtin_adagrad", "AdaGrad built in");
  registry.optimizer<example::CoordinateSgd, example::CoordinateSgdOptions>("builtin_coordinate_sgd", "RCD built in");
  LoadedPlugin plugin = load_plugin(registry, RATELAB_EXAMPLE_PLUGIN);
  std::printf("plugin: %s\nd = 1000, T = %ld steps, medians of %d runs\n", plugin.origin.c_str(), T, R);
  std::printf("%-16s %-18s %8s %12s %12s %8s %s\n", "optimizer", "problem", "steps", "built-in ns", "plugin ns",
              "ratio", "same bits");
  struct Setting {
    std::string basis, noise;
    long steps;
  };
  for (const Setting& setting : {Setting{"identity", "none", T}, Setting{"identity", "gaussian", T},
                                 Setting{"random", "gaussian", std::max(1L, T / 10)}}) {
    if (!only.empty() && only != setting.basis + "/" + setting.noise) continue;
    auto problem = quadratic(registry, setting.basis, setting.noise);
    for (const std::string key : {"adagrad", "coordinate_sgd"}) {
      std::vector<double> builtin_ns, plugin_ns;
      Vec xb, xp;
      for (int r = 0; r < R; ++r) {
        auto b = registry.make_optimizer("builtin_" + key, {});
        auto p = registry.make_optimizer(key, {});
        if (r % 2 == 0) {
          builtin_ns.push_back(time_steps(*problem, *b, setting.steps, xb));
          plugin_ns.push_back(time_steps(*problem, *p, setting.steps, xp));
        } else {
          plugin_ns.push_back(time_steps(*problem, *p, setting.steps, xp));
          builtin_ns.push_back(time_steps(*problem, *b, setting.steps, xb));
        }
      }
      const bool same = xb.size() == xp.size() && std::memcmp(xb.data(), xp.data(), std::size_t(xb.size()) * sizeof(double)) == 0;
      const double mb = median(builtin_ns), mp = median(plugin_ns);
      const std::string name = setting.basis + "/" + setting.noise;
      std::printf("%-16s %-18s %8ld %12.1f %12.1f %8.4f %s\n", key.c_str(), name.c_str(), setting.steps, mb, mp, mp / mb,
                  same ? "yes" : "NO");
    }
  }
  return 0;
}
