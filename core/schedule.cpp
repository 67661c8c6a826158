#include "core/schedule.hpp"

#include <cmath>

#include "core/registry.hpp"

namespace ratelab {

namespace {
struct ConstantOptions {
  double eta = 0.01;
  static ParamTable<ConstantOptions> params() {
    return {param(&ConstantOptions::eta, "eta", positive(), "the constant step size")};
  }
};
struct MultiplierOptions {
  double c = 0.1;
  static ParamTable<MultiplierOptions> params() {
    return {param(&MultiplierOptions::c, "c", positive(), "multiplier c")};
  }
};
struct InvMuTOptions {
  double c = 1.0;
  double t0 = 0.0;
  double mu = 0.0;
  static ParamTable<InvMuTOptions> params() {
    return {param(&InvMuTOptions::c, "c", positive(), "multiplier c"),
            param(&InvMuTOptions::t0, "t0", nonnegative(), "offset t0 (delays the decay)"),
            param(&InvMuTOptions::mu, "mu", nonnegative(),
                  "strong convexity constant; 0 takes the problem's declared mu")};
  }
};
struct StepDecayOptions {
  double eta = 0.1;
  double factor = 0.5;
  long every = 1000;
  static ParamTable<StepDecayOptions> params() {
    return {param(&StepDecayOptions::eta, "eta", positive(), "initial step size"),
            param(&StepDecayOptions::factor, "factor", in_open_closed(0, 1), "multiplier applied every period"),
            param(&StepDecayOptions::every, "every", at_least(1), "period in steps")};
  }
};

template <class Options>
void add(Registry& r, const char* key, const char* summary,
         Schedule (*make)(const Options&, const ScheduleContext&)) {
  r.add_schedule({ComponentKind::schedule, key, summary, Options::params().specs()},
                 [make](const ParamSet& p, const ScheduleContext& ctx) { return make(Options::params().bind(p), ctx); });
}
}  // namespace

void register_schedules(Registry& r) {
  using K = Schedule::Kind;
  add<ConstantOptions>(r, "constant", "eta_t = eta", [](const ConstantOptions& o, const ScheduleContext&) {
    return Schedule{.kind = K::constant, .c = o.eta};
  });
  add<MultiplierOptions>(r, "inv_sqrt", "eta_t = c / sqrt(t)", [](const MultiplierOptions& o, const ScheduleContext&) {
    return Schedule{.kind = K::inv_sqrt, .c = o.c};
  });
  add<MultiplierOptions>(r, "inv_t", "eta_t = c / t", [](const MultiplierOptions& o, const ScheduleContext&) {
    return Schedule{.kind = K::inv_t, .c = o.c};
  });
  add<InvMuTOptions>(r, "inv_mu_t", "eta_t = c / (mu (t + t0)); mu from the problem unless given",
                     [](const InvMuTOptions& o, const ScheduleContext& ctx) {
                       double mu = o.mu;
                       if (mu == 0.0) {
                         if (!ctx.mu || *ctx.mu <= 0.0)
                           throw ConfigError(
                               "schedule inv_mu_t needs mu: the problem declares no strong convexity "
                               "constant; set schedule.mu");
                         mu = *ctx.mu;
                       }
                       if (ctx.resolved) ctx.resolved->emplace_back("schedule_mu", mu);
                       return Schedule{.kind = K::inv_mu_t, .c = o.c, .t0 = o.t0, .mu = mu};
                     });
  // Schedules for a known horizon T = experiment.steps (ScheduleContext::steps: the configuration's own).
  add<MultiplierOptions>(r, "horizon",
                         "eta_t = c (T - t + 1) / T^(3/2) for the known horizon T (Zamani & Glineur 2023: the "
                         "last iterate of subgradient descent at the rate of the average)",
                         [](const MultiplierOptions& o, const ScheduleContext& ctx) {
                           return Schedule{.kind = K::horizon, .c = o.c, .horizon = ctx.steps};
                         });
  add<MultiplierOptions>(r, "horizon_constant", "eta_t = c / sqrt(T) at every step, for the known horizon T",
                         [](const MultiplierOptions& o, const ScheduleContext& ctx) {
                           const double eta = o.c / std::sqrt(double(ctx.steps));
                           if (ctx.resolved) ctx.resolved->emplace_back("schedule_eta", eta);
                           return Schedule{.kind = K::constant, .c = eta};
                         });
  add<StepDecayOptions>(r, "step_decay", "eta_t = eta * factor^floor((t - 1) / every)",
                        [](const StepDecayOptions& o, const ScheduleContext&) {
                          return Schedule{.kind = K::step_decay, .c = o.eta, .factor = o.factor, .every = o.every};
                        });
}

}  // namespace ratelab
