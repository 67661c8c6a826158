// Fixture, compiled only by the test registration_in_namespace_fails_to_compile: a registration line at
// column 0 inside a namespace (the scan reads it, but the generated registry would call a global function
// the line never defines), which the macro's static_assert must reject. The line at global scope compiles.
#include "core/registry.hpp"

namespace {

struct FixtureOptions {
  long batch = 1;
  static ratelab::ParamTable<FixtureOptions> params() {
    return {ratelab::param(&FixtureOptions::batch, "batch", ratelab::at_least(1), "unused")};
  }
};

class Fixture final : public ratelab::Optimizer {
 public:
  explicit Fixture(const FixtureOptions&) {}
  void prepare(const ratelab::Problem& problem) override { x_.resize(problem.dim()); }
  void start(ratelab::ConstVecRef x0, ratelab::RunStreams&) override { x_ = x0; }
  void step(long, double, ratelab::Oracle&) override {}
  ratelab::ConstVecRef iterate() const override { return x_; }

 private:
  ratelab::Vec x_;
};

}  // namespace

RATELAB_REGISTER_OPTIMIZER(global_fixture, Fixture, FixtureOptions, "at global scope: compiles")

namespace fixture {
RATELAB_REGISTER_OPTIMIZER(nested_fixture, Fixture, FixtureOptions, "inside a namespace: must not compile")
}  // namespace fixture
