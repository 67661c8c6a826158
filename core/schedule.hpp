// Step-size schedules eta_t, t = 1, 2, ..., T. A schedule is a plain value (no virtual call per step).
#pragma once

#include <optional>

namespace ratelab {

struct Schedule {
  enum class Kind { constant, inv_sqrt, inv_t, inv_mu_t, horizon, step_decay };
  Kind kind = Kind::constant;
  double c = 0.1;       // multiplier (constant: the step itself)
  double t0 = 0.0;      // inv_mu_t offset
  double mu = 1.0;      // inv_mu_t strong convexity constant (resolved from the problem when not given)
  double factor = 0.5;  // step_decay factor
  long every = 1000;    // step_decay period
  long horizon = 1;     // T, for the known-horizon schedule

  double operator()(long t) const;
};

// What a schedule may need from the experiment and the problem.
struct ScheduleContext {
  long steps = 1;
  std::optional<double> mu;
};

class Registry;
void register_schedules(Registry& registry);

}  // namespace ratelab
