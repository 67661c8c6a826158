// The conformance suite every optimizer must pass, built-in or loaded from a plugin. Used by the Catch2
// test over the registry (tests/test_optimizers.cpp, tests/test_plugins.cpp) and by
// `ratelab check-plugin LIB`. Checks, on quadratics from the registry's `quadratic` problem (d = 8,
// mu = 0.5, L = 1):
//   parameters  every declared bound and choice list rejects a value just outside it, naming the key;
//   converges   noise-free, constant step eta: F(x_T) - F* < 1e-10 (F(x_0) - F*) within T steps;
//   same bits   two fresh optimizers with the same (seed, replicate) on the noisy quadratic give traces,
//               run statistics and final iterates identical bit for bit;
//   exact T     run_one stops at step T and its recorded ||x_T - x*||^2 equals that of the iterate after
//               exactly T step() calls of a hand-driven loop, bit for bit;
//   no alloc    zero heap allocations (malloc/calloc/realloc, any library) in 200 steps after prepare(),
//               make_oracle() and start() (experiments/allocation_counter.hpp), on the noisy quadratic
//               (identity basis: its gradient and value allocate nothing), with the scratch of Oracle's
//               default block access allocated before the loop instead of in the first step;
//   status      a run ends `ok` at T; a run whose oracle throws at its 5th call ends `error` with that
//               message (the optimizer passes failures through instead of swallowing them).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {

// Defined here, not in conformance.cpp: `ratelab check-plugin` checks these options in the production
// binary, which does not link the suite (it needs the counting malloc; tools/check_plugin_main.cpp).
struct ConformanceOptions {
  double eta = 0.5;  // constant step size of the convergence runs
  long steps = 2000;
  static ParamTable<ConformanceOptions> params() {
    return {param(&ConformanceOptions::eta, "eta", positive(), "constant step size of the convergence runs"),
            param(&ConformanceOptions::steps, "steps", at_least(20), "steps T of the convergence runs")};
  }
};

struct ConformanceCheck {
  std::string name;
  enum class Outcome { passed, failed, skipped } outcome = Outcome::failed;
  std::string detail;  // the measured numbers, or why it failed or was skipped
};

struct ConformanceReport {
  std::string optimizer;  // key and resolved parameters
  std::vector<ConformanceCheck> checks;
  bool passed() const;
};

// Runs every check on optimizer `key` with parameter overrides `raw`; never throws for a failing
// optimizer (a failure is a failed check), but throws ConfigError for an unknown key or bad overrides.
ConformanceReport check_optimizer_conformance(const Registry& registry, const std::string& key,
                                              const std::map<std::string, std::string>& raw,
                                              const ConformanceOptions& options = {});

std::string format_report(const ConformanceReport& report);

}  // namespace ratelab
