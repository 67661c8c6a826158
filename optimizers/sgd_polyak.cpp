// SGD with Polyak's step size (Polyak, "Introduction to Optimization", 1987, sec. 5.3; capped as in
// Loizou, Vaswani, Laradji & Lacoste-Julien, "Stochastic Polyak step-size for SGD", AISTATS 2021):
//   x_{t+1} = x_t - s_t g_t,   s_t = min( gamma (F(x_t) - F*) / ||g_t||^2 , eta_t ),
// with g_t the stochastic gradient, F* the problem's declared optimal value and the schedule's eta_t as the
// cap. The objective gap is the exact one (Polyak's setting); only the direction is stochastic. On a
// noise-free quadratic with one eigenvalue lambda and gamma = 1 the step is 1/(2 lambda): x_{t+1} = x_t / 2.
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct SgdPolyakOptions {
  double gamma = 1.0;
  long batch = 1;
  static ParamTable<SgdPolyakOptions> params() {
    return {param(&SgdPolyakOptions::gamma, "gamma", in_open(0, 2), "multiplier of the Polyak step (0 < gamma < 2)"),
            batch_param(&SgdPolyakOptions::batch)};
  }
};

class SgdPolyak final : public Optimizer {
 public:
  explicit SgdPolyak(const SgdPolyakOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    if (!problem.facts().f_star)
      throw ConfigError("optimizer sgd_polyak needs the problem's optimal value F*, which this problem does not "
                        "declare; use sgd with a schedule instead");
    problem_ = &problem;
    f_star_ = *problem.facts().f_star;
    x_.resize(problem.dim());
    g_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }
  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    const double g2 = g_.squaredNorm();
    if (g2 == 0.0) return;  // a zero gradient: nothing to step along
    const double polyak = options_.gamma * (problem_->value(x_) - f_star_) / g2;
    x_ -= std::min(polyak, eta) * g_;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  SgdPolyakOptions options_;
  const Problem* problem_ = nullptr;
  double f_star_ = 0.0;
  Vec x_, g_;
};

}  // namespace
}  // namespace ratelab

using ratelab::SgdPolyak;
using ratelab::SgdPolyakOptions;
RATELAB_REGISTER_OPTIMIZER(sgd_polyak, SgdPolyak, SgdPolyakOptions,
                           "SGD with Polyak's step: s_t = min(gamma (F(x_t) - F*) / ||g_t||^2, eta_t)")
