// The plugin SDK: export ordinary ratelab optimizers (an Options struct with params(), an Optimizer
// subclass: the same code as an in-tree component) from a shared library through the C ABI of
// core/plugin_abi.h, with one macro:
//
//   #include "core/plugin_sdk.hpp"
//   RATELAB_PLUGIN("my-plugin", "1.0.0",
//                  RATELAB_PLUGIN_OPTIMIZER(sign_sgd, SignSgd, SignSgdOptions, "x_{t+1} = x_t - eta sign(g_t)"))
//
// Several RATELAB_PLUGIN_OPTIMIZER entries may follow, comma-separated. Link the plugin with
// ratelab::plugin_sdk (CMake: find_package(ratelab)); it compiles ratelab's core (parameters, Philox
// streams) into the plugin and hides every symbol but the entry point.
//
// What the SDK does at the boundary: parameters arrive as canonical text and are resolved and validated
// by the component's own declaration (so a plugin rejects out-of-range values even if a host did not);
// the host's problem and oracle become a Problem and an Oracle that call back through C function pointers
// (the oracle's block access as its fast path, core/fast_paths.hpp);
// the run's Philox streams are rebuilt from (seed, replicate, salt) and positioned at step t before each
// step; every exception is caught and returned as a status code and a message the object owns.
#pragma once

#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/fast_paths.hpp"
#include "core/optimizer.hpp"
#include "core/params.hpp"
#include "core/plugin_abi.h"
#include "core/problem.hpp"
#include "core/rng.hpp"

namespace ratelab::plugin_sdk {

// A host callback reported a failure; the host holds the original exception and rethrows it.
struct HostCallbackFailed : std::runtime_error {
  HostCallbackFailed() : std::runtime_error("a ratelab host callback failed") {}
};

inline void check_host(int status) {
  if (status != RATELAB_OK) throw HostCallbackFailed();
}

// The host's problem, seen through the C struct.
class HostProblem final : public Problem {
 public:
  explicit HostProblem(const ratelab_problem& c) {
    const std::size_t n = c.struct_size < sizeof c_ ? c.struct_size : sizeof c_;
    std::memcpy(&c_, &c, n);  // fields a smaller (older) host struct lacks stay zero
    auto known = [&](std::uint32_t bit, double v) { return (c_.facts_known & bit) ? std::optional<double>(v) : std::nullopt; };
    facts_.f_star = known(RATELAB_FACT_F_STAR, c_.f_star);
    facts_.L = known(RATELAB_FACT_L, c_.L);
    facts_.mu = known(RATELAB_FACT_MU, c_.mu);
    facts_.G = known(RATELAB_FACT_G, c_.G);
    facts_.sigma2 = known(RATELAB_FACT_SIGMA2, c_.sigma2);
    facts_.D = known(RATELAB_FACT_D, c_.D);
    facts_.x_star_known = c_.x_star_known != 0 && c_.x_star != nullptr;
    facts_.domain = Domain(c_.domain);
  }
  Eigen::Index dim() const override { return Eigen::Index(c_.dim); }
  const ProblemFacts& facts() const override { return facts_; }
  double value(ConstVecRef x) const override {
    double out = 0.0;
    check_host(c_.value(c_.context, x.data(), &out));
    return out;
  }
  bool has_gradient() const override { return c_.has_gradient != 0; }
  void gradient(ConstVecRef x, VecRef g) const override { check_host(c_.gradient(c_.context, x.data(), g.data())); }
  bool has_block_gradient() const override { return c_.has_block_gradient != 0; }
  void block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block) const override {
    check_host(c_.block_gradient(c_.context, x.data(), begin, size, g_block.data()));
  }
  bool is_composite() const override { return c_.is_composite != 0; }
  void prox(double eta, VecRef x) const override { check_host(c_.prox(c_.context, eta, x.data())); }
  ConstVecRef x_star() const override {
    if (!facts_.x_star_known) return Problem::x_star();
    return Eigen::Map<const Vec>(c_.x_star, dim());
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams&) const override {
    throw std::logic_error("a plugin optimizer receives its oracle in step(); it cannot make one");
  }

 private:
  ratelab_problem c_{};
  ProblemFacts facts_;
};

// The host's oracle of the current run; re-pointed at every step (no allocation). Its one fast path is the
// C oracle's block access, cheap when the host says so (core/fast_paths.hpp).
class HostOracle final : public Oracle, public OracleFastPaths {
 public:
  void bind(const ratelab_oracle* c) { c_ = c; }
  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    check_host(c_->sample_gradient(c_->context, x.data(), g.data(), batch));
  }
  OracleFastPaths* fast_paths() override { return this; }
  bool has_cheap_block_gradient() const override { return c_->has_cheap_block_gradient != 0; }
  void sample_block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block,
                             int batch) override {
    check_host(c_->sample_block_gradient(c_->context, x.data(), begin, size, g_block.data(), batch));
  }

 private:
  const ratelab_oracle* c_ = nullptr;
};

// What the opaque ratelab_optimizer_object points at.
struct Object {
  std::unique_ptr<Optimizer> optimizer;
  std::optional<HostProblem> problem;
  std::optional<RunStreams> streams;
  HostOracle oracle;
  std::string error;
};

inline Object* object(ratelab_optimizer_object* o) { return reinterpret_cast<Object*>(o); }
inline const Object* object(const ratelab_optimizer_object* o) { return reinterpret_cast<const Object*>(o); }

// Runs f, turning any exception into a status code and the object's message.
template <class F>
int guarded(Object& o, F&& f) noexcept {
  try {
    f();
    return RATELAB_OK;
  } catch (const ConfigError& e) {
    try {
      o.error.clear();
      for (const auto& p : e.problems()) o.error += (o.error.empty() ? "" : "\n") + p;
    } catch (...) {
    }
    return RATELAB_CONFIG_ERROR;
  } catch (const std::exception& e) {
    try {
      o.error = e.what();
    } catch (...) {
    }
    return RATELAB_RUN_ERROR;
  } catch (...) {
    try {
      o.error = "unknown exception";
    } catch (...) {
    }
    return RATELAB_RUN_ERROR;
  }
}

// The C form of a parameter declaration, kept alive for the life of the library.
class CSpecs {
 public:
  explicit CSpecs(std::vector<ParamSpec> specs) : specs_(std::move(specs)) {
    defaults_.reserve(specs_.size());
    choices_.reserve(specs_.size());
    for (const auto& s : specs_) {
      defaults_.push_back(format_value(s.default_value));
      auto& ptrs = choices_.emplace_back();
      for (const auto& c : s.constraint.choices) ptrs.push_back(c.c_str());
    }
    for (std::size_t i = 0; i < specs_.size(); ++i) {
      const ParamSpec& s = specs_[i];
      ratelab_param_spec c{};
      c.key = s.key.c_str();
      c.type = std::int32_t(s.type);
      c.default_text = defaults_[i].c_str();
      c.has_lo = s.constraint.lo.has_value();
      c.has_hi = s.constraint.hi.has_value();
      c.lo = s.constraint.lo.value_or(0.0);
      c.hi = s.constraint.hi.value_or(0.0);
      c.lo_open = s.constraint.lo_open;
      c.hi_open = s.constraint.hi_open;
      c.choices = choices_[i].empty() ? nullptr : choices_[i].data();
      c.choice_count = choices_[i].size();
      c.doc = s.doc.c_str();
      c_.push_back(c);
    }
  }
  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ratelab_param_spec* data() const { return c_.data(); }
  std::size_t size() const { return c_.size(); }

 private:
  std::vector<ParamSpec> specs_;
  std::vector<std::string> defaults_;
  std::vector<std::vector<const char*>> choices_;
  std::vector<ratelab_param_spec> c_;
};

template <class Impl, class Options>
struct Component {
  static const CSpecs& specs() {
    static const CSpecs s(Options::params().specs());
    return s;
  }

  static ratelab_optimizer_object* create(const ratelab_param_value* values, std::size_t count, int* status) {
    Object* o = new (std::nothrow) Object;
    if (!o) {
      *status = RATELAB_RUN_ERROR;
      return nullptr;
    }
    *status = guarded(*o, [&] {
      std::map<std::string, std::string> raw;
      for (std::size_t i = 0; i < count; ++i) raw[values[i].key] = values[i].text;
      std::vector<std::string> errors;
      ParamSet params = resolve_params(specs().specs(), raw, "optimizer", errors);
      if (!errors.empty()) throw ConfigError(errors);
      o->optimizer = std::make_unique<Impl>(Options::params().bind(params));
    });
    return reinterpret_cast<ratelab_optimizer_object*>(o);
  }
  static void destroy(ratelab_optimizer_object* o) { delete object(o); }
  static const char* last_error(const ratelab_optimizer_object* o) { return object(o)->error.c_str(); }
  static int prepare(ratelab_optimizer_object* handle, const ratelab_problem* problem) {
    Object& o = *object(handle);
    return guarded(o, [&] {
      o.problem.emplace(*problem);
      o.optimizer->prepare(*o.problem);
    });
  }
  static int start(ratelab_optimizer_object* handle, const double* x0, std::uint64_t seed, std::uint64_t replicate,
                   std::uint64_t salt) {
    Object& o = *object(handle);
    return guarded(o, [&] {
      o.streams.emplace(seed, replicate, salt);
      o.optimizer->start(Eigen::Map<const Vec>(x0, o.problem->dim()), *o.streams);
    });
  }
  static int step(ratelab_optimizer_object* handle, std::int64_t t, double eta, const ratelab_oracle* oracle) {
    Object& o = *object(handle);
    return guarded(o, [&] {
      o.streams->seek(std::uint64_t(t));
      o.oracle.bind(oracle);
      o.optimizer->step(long(t), eta, o.oracle);
    });
  }
  static const double* iterate(const ratelab_optimizer_object* handle) {
    // iterate() returns a view of the optimizer's own storage (every Optimizer keeps x_t in a member).
    return object(handle)->optimizer->iterate().data();
  }
  static int report(const ratelab_optimizer_object* handle, ratelab_stat_sink sink, void* context) {
    Object& o = *const_cast<Object*>(object(handle));
    return guarded(o, [&] {
      RunStats stats;
      o.optimizer->report(stats);
      for (const auto& [name, value] : stats) sink(context, name.c_str(), value);
    });
  }

  static ratelab_optimizer_descriptor descriptor(const char* key, const char* summary) {
    ratelab_optimizer_descriptor d{};
    d.struct_size = sizeof d;
    d.key = key;
    d.summary = summary;
    d.params = specs().data();
    d.param_count = specs().size();
    d.create = &create;
    d.destroy = &destroy;
    d.last_error = &last_error;
    d.prepare = &prepare;
    d.start = &start;
    d.step = &step;
    d.iterate = &iterate;
    d.report = &report;
    return d;
  }
};

}  // namespace ratelab::plugin_sdk

#define RATELAB_PLUGIN_OPTIMIZER(key, Impl, Options, summary) \
  ::ratelab::plugin_sdk::Component<Impl, Options>::descriptor(#key, summary)

// The plugin's one exported symbol. Building the descriptors cannot let an exception escape into C: a
// failure returns NULL, which the host reports.
#define RATELAB_PLUGIN(name, version, ...)                                                                 \
  extern "C" __attribute__((visibility("default"))) const ratelab_plugin* ratelab_plugin_entry(void) {    \
    try {                                                                                                  \
      static const ratelab_optimizer_descriptor ratelab_optimizers_[] = {__VA_ARGS__};                     \
      static const ratelab_plugin ratelab_plugin_{RATELAB_PLUGIN_ABI_MAJOR,                                \
                                                  RATELAB_PLUGIN_ABI_MINOR,                                \
                                                  sizeof(ratelab_plugin),                                  \
                                                  name,                                                    \
                                                  version,                                                 \
                                                  ratelab_optimizers_,                                     \
                                                  sizeof ratelab_optimizers_ / sizeof ratelab_optimizers_[0]}; \
      return &ratelab_plugin_;                                                                             \
    } catch (...) {                                                                                        \
      return nullptr;                                                                                      \
    }                                                                                                      \
  }
