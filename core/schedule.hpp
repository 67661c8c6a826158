// Step-size schedules eta_t, t = 1, 2, ..., T. A schedule is a plain value (no virtual call per step).
#pragma once

#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

  // Inline: evaluated once per step of every run.
  double operator()(long t) const {
    switch (kind) {
      case Kind::constant: return c;
      case Kind::inv_sqrt: return c / std::sqrt(double(t));
      case Kind::inv_t: return c / double(t);
      case Kind::inv_mu_t: return c / (mu * (double(t) + t0));
      case Kind::horizon: return c * double(horizon - t + 1) / std::pow(double(horizon), 1.5);
      case Kind::step_decay: return c * std::pow(factor, double((t - 1) / every));
    }
    return c;
  }
};

// What a schedule may need from the experiment and the problem.
struct ScheduleContext {
  long steps = 1;
  std::optional<double> mu;
  // Where a schedule states the constants it settled on (e.g. "schedule_mu"), so the trace file records
  // the step sizes actually used; nullptr: nobody asks.
  std::vector<std::pair<std::string, double>>* resolved = nullptr;
};

class Registry;
void register_schedules(Registry& registry);

}  // namespace ratelab
