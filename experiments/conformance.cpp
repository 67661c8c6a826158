#include "experiments/conformance.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include "core/run.hpp"
#include "experiments/allocation_counter.hpp"

namespace ratelab {

namespace {

using Raw = std::map<std::string, std::string>;
using Outcome = ConformanceCheck::Outcome;

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "; ") + l;
  return out;
}

ParamSet resolve_or_throw(const Registry& registry, ComponentKind kind, const std::string& key, const Raw& raw) {
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry.info(kind, key).params, raw, kind_name(kind), errors);
  if (!errors.empty()) throw ConfigError(errors);
  return p;
}

std::shared_ptr<const Problem> quadratic(const Registry& registry, const Raw& raw) {
  ProblemContext context{RandomStream(1, 0, StreamPurpose::instance), ""};
  return registry.make_problem("quadratic", resolve_or_throw(registry, ComponentKind::problem, "quadratic", raw),
                               context);
}

// The wrapped problem, with an oracle that throws at its n-th call (it exposes no fast paths, so every call
// of every optimizer goes through sample_gradient).
class FailingOracleProblem final : public Problem {
 public:
  FailingOracleProblem(std::shared_ptr<const Problem> inner, long fail_at) : inner_(std::move(inner)), fail_at_(fail_at) {}
  Eigen::Index dim() const override { return inner_->dim(); }
  const ProblemFacts& facts() const override { return inner_->facts(); }
  void initial_point(VecRef x0, RandomStream& init) const override { inner_->initial_point(x0, init); }
  double value(ConstVecRef x) const override { return inner_->value(x); }
  void values(ConstMatRef X, VecRef out) const override { inner_->values(X, out); }
  bool has_gradient() const override { return inner_->has_gradient(); }
  void gradient(ConstVecRef x, VecRef g) const override { inner_->gradient(x, g); }
  bool is_composite() const override { return inner_->is_composite(); }
  void prox(double eta, VecRef x) const override { inner_->prox(eta, x); }
  ConstVecRef x_star() const override { return inner_->x_star(); }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    struct Failing final : Oracle {
      std::unique_ptr<Oracle> inner;
      long calls = 0, fail_at;
      Failing(std::unique_ptr<Oracle> o, long n) : inner(std::move(o)), fail_at(n) {}
      void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
        if (++calls == fail_at) throw std::runtime_error("conformance: the oracle failed on purpose at call " + std::to_string(fail_at));
        inner->sample_gradient(x, g, batch);
      }
    };
    return std::make_unique<Failing>(inner_->make_oracle(streams), fail_at_);
  }

 private:
  std::shared_ptr<const Problem> inner_;
  long fail_at_;
};

// A value just outside each bound and choice list of the declaration; resolution must refuse each, naming it.
ConformanceCheck check_parameters(const ComponentInfo& info) {
  ConformanceCheck check{"rejects out-of-range parameters", Outcome::passed, ""};
  int tried = 0;
  std::vector<std::string> failures;
  for (const ParamSpec& spec : info.params) {
    std::vector<std::string> bad;
    const bool integer = spec.type == ParamType::integer;
    auto number = [&](double v) { return integer ? std::to_string(std::int64_t(v)) : format_value(v); };
    const bool numeric = spec.type == ParamType::real || spec.type == ParamType::integer || spec.type == ParamType::real_list;
    if (numeric && spec.constraint.lo)
      bad.push_back(number(spec.constraint.lo_open ? *spec.constraint.lo : *spec.constraint.lo - 1.0));
    if (numeric && spec.constraint.hi)
      bad.push_back(number(spec.constraint.hi_open ? *spec.constraint.hi : *spec.constraint.hi + 1.0));
    if ((spec.type == ParamType::choice || spec.type == ParamType::choice_list) && !spec.constraint.choices.empty())
      bad.push_back("not_a_declared_choice");
    for (const auto& text : bad) {
      ++tried;
      std::vector<std::string> errors;
      resolve_params(info.params, {{spec.key, text}}, "optimizer", errors);
      const std::string qualified = "optimizer." + spec.key;
      if (errors.empty() || errors[0].find(qualified) == std::string::npos)
        failures.push_back(qualified + " = " + text + " was " + (errors.empty() ? "accepted" : "refused as: " + errors[0]));
    }
  }
  if (!failures.empty()) {
    check.outcome = Outcome::failed;
    check.detail = joined(failures);
  } else {
    check.detail = std::to_string(tried) + " out-of-range values refused with the key named";
  }
  return check;
}

}  // namespace

bool ConformanceReport::passed() const {
  for (const auto& c : checks)
    if (c.outcome == Outcome::failed) return false;
  return true;
}

ConformanceReport check_optimizer_conformance(const Registry& registry, const std::string& key, const Raw& raw,
                                              const ConformanceOptions& options) {
  const ParamSet params = resolve_or_throw(registry, ComponentKind::optimizer, key, raw);
  ConformanceReport report;
  report.optimizer = key + (params.entries().empty() ? "" : " " + params.canonical());
  report.checks.push_back(check_parameters(registry.info(ComponentKind::optimizer, key)));

  auto clean = quadratic(registry, {{"d", "8"}, {"mu", "0.5"}, {"L", "1"}, {"noise", "none"}});
  auto noisy = quadratic(registry, {{"d", "8"}, {"mu", "0.5"}, {"L", "1"}, {"noise_scale", "0.2"}});
  const Schedule schedule{.kind = Schedule::Kind::constant, .c = options.eta};
  const long T = options.steps;
  RunPlan plan;
  plan.steps = T;
  plan.checkpoints = log_checkpoints(T, 12);
  plan.views = {View::last, View::uniform, View::polydecay};
  plan.metrics = {Metric::subopt, Metric::dist2};
  const std::size_t K = plan.checkpoints.size();
  auto make = [&] { return registry.make_optimizer(key, params); };
  auto guarded = [&](const std::string& name, auto&& body) {
    ConformanceCheck check{name, Outcome::failed, ""};
    try {
      body(check);
    } catch (const ConfigError& e) {
      check.outcome = Outcome::failed;
      check.detail = "ConfigError: " + joined(e.problems());
    } catch (const std::exception& e) {
      check.outcome = Outcome::failed;
      check.detail = std::string("exception: ") + e.what();
    }
    report.checks.push_back(std::move(check));
  };
  auto fmt = [](double v) {
    std::ostringstream s;
    s.precision(3);
    s << v;
    return s.str();
  };

  RunResult converged;
  guarded("converges on a well-conditioned quadratic", [&](ConformanceCheck& check) {
    RunStreams streams(5, 0);
    auto opt = make();
    converged = run_one(*clean, *opt, schedule, plan, streams);
    if (converged.status != RunStatus::ok) {
      check.detail = std::string("status ") + status_name(converged.status) + " " + converged.message;
      return;
    }
    const double initial = converged.traces[0], final_subopt = converged.traces[K - 1];
    const bool ok = initial > 0.1 && final_subopt < 1e-10 * initial;
    check.outcome = ok ? Outcome::passed : Outcome::failed;
    check.detail = "F(x_0) - F* = " + fmt(initial) + ", F(x_T) - F* = " + fmt(final_subopt) + " after T = " +
                   std::to_string(T) + " steps at eta = " + fmt(options.eta) + " (need < 1e-10 of the initial)";
  });

  guarded("same seed gives the same bits", [&](ConformanceCheck& check) {
    RunStreams s1(7, 2), s2(7, 2);
    auto a = make(), b = make();
    RunResult ra = run_one(*noisy, *a, schedule, plan, s1);
    RunResult rb = run_one(*noisy, *b, schedule, plan, s2);
    const bool same = ra.status == rb.status && ra.traces.size() == rb.traces.size() &&
                      std::memcmp(ra.traces.data(), rb.traces.data(), ra.traces.size() * sizeof(double)) == 0 &&
                      ra.stats == rb.stats && a->iterate().size() == b->iterate().size() &&
                      std::memcmp(a->iterate().data(), b->iterate().data(), std::size_t(a->iterate().size()) * sizeof(double)) == 0;
    check.outcome = same && ra.status == RunStatus::ok ? Outcome::passed : Outcome::failed;
    check.detail = same ? std::to_string(ra.traces.size()) + " trace values, " + std::to_string(ra.stats.size()) +
                              " run statistics and x_T identical (status " + status_name(ra.status) + ")"
                        : "two runs with seed 7, replicate 2 differ";
  });

  guarded("respects T exactly", [&](ConformanceCheck& check) {
    auto opt = make();
    RunStreams streams(5, 0);
    opt->prepare(*clean);
    auto oracle = clean->make_oracle(streams);
    Vec x0(clean->dim());
    streams.init.seek(0);
    clean->initial_point(x0, streams.init);
    opt->start(x0, streams);
    for (long t = 1; t <= T; ++t) {
      streams.seek(std::uint64_t(t));
      opt->step(t, schedule(t), *oracle);
    }
    // dist2 (metric 1) of the last view (view 0): the same expression per column as below, so equal bits
    // mean the same iterate.
    const double by_hand = (opt->iterate() - clean->x_star()).squaredNorm();
    const double recorded = converged.traces[(1 * plan.views.size() + 0) * K + K - 1];
    const bool ok = converged.stop_step == T && std::memcmp(&by_hand, &recorded, sizeof(double)) == 0;
    check.outcome = ok ? Outcome::passed : Outcome::failed;
    check.detail = "run_one stopped at " + std::to_string(converged.stop_step) + " of T = " + std::to_string(T) +
                   (ok ? "; its ||x_T - x*||^2 equals that of T hand-driven steps bit for bit" : "; its x_T differs from T hand-driven steps");
  });

  guarded("allocates nothing after prepare", [&](ConformanceCheck& check) {
    if (!allocations::counting_available()) {
      check.outcome = Outcome::skipped;
      check.detail = "allocation counting is unavailable in this build (sanitizer owns malloc)";
      return;
    }
    auto opt = make();
    RunStreams streams(7, 1);
    opt->prepare(*noisy);
    auto oracle = noisy->make_oracle(streams);
    Vec x0(noisy->dim());
    streams.init.seek(0);
    noisy->initial_point(x0, streams.init);
    opt->start(x0, streams);
    double sink = 0.0;
    allocations::arm();
    for (long t = 1; t <= 200; ++t) {
      streams.seek(std::uint64_t(t));
      opt->step(t, schedule(t), *oracle);
      sink += opt->iterate()[0];
    }
    const long count = allocations::disarm();
    check.outcome = count == 0 ? Outcome::passed : Outcome::failed;
    check.detail = std::to_string(count) + " heap allocations in 200 steps (x_200[0] = " + fmt(sink / 200.0) + " on average)";
  });

  guarded("reports a status", [&](ConformanceCheck& check) {
    FailingOracleProblem failing(noisy, 5);
    RunStreams streams(7, 0);
    auto opt = make();
    RunResult r = run_one(failing, *opt, schedule, plan, streams);
    const bool ok = converged.status == RunStatus::ok && r.status == RunStatus::error &&
                    r.message.find("the oracle failed on purpose") != std::string::npos;
    check.outcome = ok ? Outcome::passed : Outcome::failed;
    check.detail = std::string("normal run: ") + status_name(converged.status) + "; oracle failing at call 5: " +
                   status_name(r.status) + " (" + r.message + ")";
  });
  return report;
}

std::string format_report(const ConformanceReport& report) {
  std::string out = "optimizer " + report.optimizer + ": " + (report.passed() ? "conforms" : "FAILS") + "\n";
  for (const auto& c : report.checks) {
    const char* mark = c.outcome == Outcome::passed ? "ok  " : c.outcome == Outcome::skipped ? "skip" : "FAIL";
    out += std::string("  ") + mark + "  " + c.name + ": " + c.detail + "\n";
  }
  return out;
}

}  // namespace ratelab
