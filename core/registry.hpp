// The component registry: optimizers, problems and schedules under stable string keys.
//
// A registry is a value: `builtin_registry()` returns one filled with every in-tree component (a list of
// registration calls that CMake generates from the RATELAB_REGISTER_* lines, so no linker tricks and no
// static-initialization order), tests build their own, and plugins add to one. Unknown keys give an error
// that lists what exists and the closest match; duplicate keys give an error naming both origins.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "core/optimizer.hpp"
#include "core/params.hpp"
#include "core/problem.hpp"
#include "core/schedule.hpp"

namespace ratelab {

enum class ComponentKind { optimizer, problem, schedule };
const char* kind_name(ComponentKind kind);

// What a problem factory may use besides its parameters.
struct ProblemContext {
  RandomStream instance;       // the instance stream of (master seed, instance replicate)
  std::string data_directory;  // where data sets are looked up
  // For set-up work made of independent pieces (the values of a generated instance), so the result does not
  // depend on the split: the sweep's threads when the experiments layer builds the problem, else serial.
  ParallelFor parallel_for = serial_for;
  // The build, for problems that cache a slow solve on disk beside their data (problems/solution_cache.hpp):
  // a cached solution is used only by the build that wrote it. Empty: no cache (problems made outside an
  // experiment, e.g. in tests).
  std::string solution_cache_build;
};

using OptimizerFactory = std::function<std::unique_ptr<Optimizer>(const ParamSet&)>;
using ProblemFactory = std::function<std::shared_ptr<const Problem>(const ParamSet&, ProblemContext&)>;
using ScheduleFactory = std::function<Schedule(const ParamSet&, const ScheduleContext&)>;

struct ComponentInfo {
  ComponentKind kind;
  std::string key;
  std::string summary;
  std::vector<ParamSpec> params;
  std::string origin = "built-in";  // or the plugin library it came from
  // Optimizers: when the step-size schedule applies (empty: always); declared by the options struct as
  // `static AppliesWhen schedule_applies()`. Where it does not, a configuration has no schedule.
  std::optional<AppliesWhen> schedule_applies{};  // an initializer: aggregates that leave it out do not warn
};

class Registry {
 public:
  void add_optimizer(ComponentInfo info, OptimizerFactory make);
  void add_problem(ComponentInfo info, ProblemFactory make);
  void add_schedule(ComponentInfo info, ScheduleFactory make);

  // Typed registration from an options struct with a static params() table.
  template <class Impl, class Options>
  void optimizer(std::string key, std::string summary) {
    ComponentInfo info{ComponentKind::optimizer, std::move(key), std::move(summary), Options::params().specs()};
    if constexpr (requires { Options::schedule_applies(); }) info.schedule_applies = Options::schedule_applies();
    add_optimizer(std::move(info),
                  [](const ParamSet& p) -> std::unique_ptr<Optimizer> {
                    return std::make_unique<Impl>(Options::params().bind(p));
                  });
  }
  template <class Impl, class Options>
  void problem(std::string key, std::string summary) {
    add_problem({ComponentKind::problem, std::move(key), std::move(summary), Options::params().specs()},
                [](const ParamSet& p, ProblemContext& ctx) -> std::shared_ptr<const Problem> {
                  return std::make_shared<Impl>(Options::params().bind(p), ctx);
                });
  }

  const ComponentInfo& info(ComponentKind kind, const std::string& key) const;  // throws ConfigError
  bool contains(ComponentKind kind, const std::string& key) const;
  std::vector<std::string> keys(ComponentKind kind) const;
  std::vector<const ComponentInfo*> components(ComponentKind kind) const;

  std::unique_ptr<Optimizer> make_optimizer(const std::string& key, const ParamSet& params) const;
  std::shared_ptr<const Problem> make_problem(const std::string& key, const ParamSet& params,
                                              ProblemContext& context) const;
  Schedule make_schedule(const std::string& key, const ParamSet& params, const ScheduleContext& context) const;

 private:
  struct Entry {
    ComponentInfo info;
    OptimizerFactory optimizer;
    ProblemFactory problem;
    ScheduleFactory schedule;
  };
  void add(Entry entry);
  const Entry& entry(ComponentKind kind, const std::string& key) const;
  std::map<std::string, Entry> entries_[3];
};

// Every in-tree component. Defined in a source file CMake generates from the registration lines.
Registry builtin_registry();

}  // namespace ratelab

// One registration line per component, at global scope (outside any namespace) in its own source file:
//   RATELAB_REGISTER_OPTIMIZER(sgd, Sgd, SgdOptions, "x_{t+1} = x_t - eta_t g_t")
// CMake scans for these lines and generates the call list behind builtin_registry(); it calls
// ::ratelab_register_KIND_KEY, so a line inside a namespace would define a function nobody calls. The
// static_assert makes that a compile error: inside a namespace the macro's redeclaration of
// ratelab_registration_scope declares a new type that hides the global one.
struct ratelab_registration_scope;
using ratelab_global_registration_scope = ratelab_registration_scope;
#define RATELAB_REGISTRATION_AT_GLOBAL_SCOPE(kind, key)                                            \
  struct ratelab_registration_scope;                                                              \
  static_assert(std::is_same_v<ratelab_registration_scope, ::ratelab_global_registration_scope>, \
                kind "(" #key ", ...) must be at global scope, outside any namespace: the "        \
                "generated registry calls ::ratelab_register_*_" #key)
#define RATELAB_REGISTER_OPTIMIZER(key, Impl, Options, summary)                  \
  RATELAB_REGISTRATION_AT_GLOBAL_SCOPE("RATELAB_REGISTER_OPTIMIZER", key);       \
  void ratelab_register_optimizer_##key(::ratelab::Registry& registry) {         \
    registry.optimizer<Impl, Options>(#key, summary);                            \
  }
#define RATELAB_REGISTER_PROBLEM(key, Impl, Options, summary)                    \
  RATELAB_REGISTRATION_AT_GLOBAL_SCOPE("RATELAB_REGISTER_PROBLEM", key);         \
  void ratelab_register_problem_##key(::ratelab::Registry& registry) {           \
    registry.problem<Impl, Options>(#key, summary);                              \
  }
