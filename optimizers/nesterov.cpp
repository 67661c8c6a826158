// Stochastic Nesterov acceleration, in the momentum form of Sutskever, Martens, Dahl & Hinton ("On the
// importance of initialization and momentum in deep learning", ICML 2013, eqs. 3-4) with the stochastic
// gradient taken at the look-ahead point (Nesterov, "A method for solving the convex programming problem
// with convergence rate O(1/k^2)", 1983). Step t = 1, 2, ... maps x_{t-1} to x_t:
//   y_t = x_{t-1} + beta_t (x_{t-1} - x_{t-2}),   x_{-1} = x_0,
//   x_t = y_t - eta_t g(y_t),
// with beta_t = beta (momentum = constant, the strongly convex form) or beta_t = (t - 1)/(t + 2)
// (momentum = convex, the O(1/t^2) sequence of Beck & Teboulle's FISTA, SIAM J. Imaging Sci. 2009).
// The iterate the run loop sees is x_t, not the look-ahead point y_t.
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct NesterovOptions {
  enum class Momentum { constant, convex };
  double beta = 0.9;
  Momentum momentum = Momentum::constant;
  long batch = 1;
  static ParamTable<NesterovOptions> params() {
    return {
        param(&NesterovOptions::beta, "beta", in_closed_open(0, 1),
              "momentum coefficient (momentum = constant only)"),
        choice(&NesterovOptions::momentum, "momentum",
               {{"constant", Momentum::constant}, {"convex", Momentum::convex}},
               "constant: beta_t = beta; convex: beta_t = (t - 1)/(t + 2)"),
        batch_param(&NesterovOptions::batch),
    };
  }
};

class Nesterov final : public Optimizer {
 public:
  explicit Nesterov(const NesterovOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    previous_.resize(problem.dim());
    y_.resize(problem.dim());
    g_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    previous_ = x0;
  }
  void step(long t, double eta, Oracle& oracle) override {
    const double beta = options_.momentum == NesterovOptions::Momentum::constant
                            ? options_.beta
                            : double(t - 1) / double(t + 2);
    y_ = x_ + beta * (x_ - previous_);
    sample_minibatch(oracle, y_, g_, options_.batch);
    previous_ = x_;
    x_ = y_ - eta * g_;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  NesterovOptions options_;
  Vec x_, previous_, y_, g_;
};

}  // namespace
}  // namespace ratelab

using ratelab::Nesterov;
using ratelab::NesterovOptions;
RATELAB_REGISTER_OPTIMIZER(nesterov, Nesterov, NesterovOptions,
                           "Nesterov momentum: y_t = x_{t-1} + beta_t (x_{t-1} - x_{t-2}), x_t = y_t - eta_t g(y_t)")
