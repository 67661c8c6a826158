// An optimizer that misbehaves: `throwing_sgd` throws from step 3 on (the run must end with status error
// and its message, the sweep must go on).
#include <stdexcept>
#include <string>

#include "core/plugin_sdk.hpp"

namespace {
using namespace ratelab;
struct ThrowingOptions {
  long fail_at = 3;
  static ParamTable<ThrowingOptions> params() {
    return {param(&ThrowingOptions::fail_at, "fail_at", at_least(1), "the step that throws")};
  }
};
class ThrowingSgd final : public Optimizer {
 public:
  explicit ThrowingSgd(const ThrowingOptions& o) : options_(o) {}
  void prepare(const Problem& p) override { x_.resize(p.dim()), g_.resize(p.dim()); }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long t, double eta, Oracle& oracle) override {
    if (t >= options_.fail_at) throw std::runtime_error("throwing_sgd: failed on purpose at step " + std::to_string(t));
    oracle.sample_gradient(x_, g_, 1);
    x_ -= eta * g_;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  ThrowingOptions options_;
  Vec x_, g_;
};
}  // namespace

RATELAB_PLUGIN("hostile", "0.1", RATELAB_PLUGIN_OPTIMIZER(throwing_sgd, ThrowingSgd, ThrowingOptions, "throws"))
