// Adam (Kingma & Ba, "Adam: A method for stochastic optimization", ICLR 2015, Algorithm 1), the standard
// bias-corrected form with the schedule's eta_t as the step alpha_t. Step t = 1, 2, ...:
//   m_t = beta1 m_{t-1} + (1 - beta1) g_t,        m_0 = 0,
//   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2,      v_0 = 0   (coordinate-wise square),
//   x_t = x_{t-1} - eta_t (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps).
#include <cmath>

#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  long batch = 1;
  static ParamTable<AdamOptions> params() {
    return {
        param(&AdamOptions::beta1, "beta1", in_closed_open(0, 1), "decay of the first-moment average"),
        param(&AdamOptions::beta2, "beta2", in_closed_open(0, 1), "decay of the second-moment average"),
        param(&AdamOptions::eps, "eps", positive(), "added to the root of the second moment"),
        batch_param(&AdamOptions::batch),
    };
  }
};

class Adam final : public Optimizer {
 public:
  explicit Adam(const AdamOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    m_.resize(problem.dim());
    v_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    m_.setZero();
    v_.setZero();
  }
  void step(long t, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    const double b1 = options_.beta1, b2 = options_.beta2;
    m_ = b1 * m_ + (1.0 - b1) * g_;
    v_ = b2 * v_ + (1.0 - b2) * g_.array().square().matrix();
    const double c1 = 1.0 - std::pow(b1, double(t)), c2 = 1.0 - std::pow(b2, double(t));
    x_.array() -= eta * (m_.array() / c1) / ((v_.array() / c2).sqrt() + options_.eps);
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  AdamOptions options_;
  Vec x_, g_, m_, v_;
};

}  // namespace
}  // namespace ratelab

using ratelab::Adam;
using ratelab::AdamOptions;
RATELAB_REGISTER_OPTIMIZER(adam, Adam, AdamOptions, "Adam (Kingma & Ba 2015), bias-corrected moment estimates")
