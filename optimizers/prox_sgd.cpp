// Proximal / mirror stochastic gradient for composite problems F = f + h.
//
// geometry = euclidean: proximal SGD (forward-backward splitting; Duchi & Singer, "Efficient online and
// batch learning using forward backward splitting", JMLR 2009; Rosasco, Villa & Vu, "Convergence of
// stochastic proximal gradient algorithm", Appl. Math. Optim. 2020):
//   x_{t+1} = prox_{eta_t h}(x_t - eta_t g_t),
// with the problem's own prox (Problem::prox; the identity when the problem has no composite part, which
// makes this plain SGD).
//
// geometry = entropy: stochastic mirror descent on the simplex {x >= 0, sum x = r} with the negative-entropy
// mirror map (exponentiated gradient; Nemirovski & Yudin 1983; Beck & Teboulle, "Mirror descent and
// nonlinear projected subgradient methods for convex optimization", Oper. Res. Lett. 2003; Nemirovski,
// Juditsky, Lan & Shapiro, SIAM J. Optim. 2009):
//   x_{t+1,i} = r x_{t,i} exp(-eta_t g_{t,i}) / sum_j x_{t,j} exp(-eta_t g_{t,j}).
// The radius r is the sum of the initial point, which must lie on the simplex (composite problems project
// their x0 onto their constraint set). It is computed in log space, w = log(x / r), normalized by
// log-sum-exp each step, so no weight over- or underflows however long the run. The simplex constraint is the geometry itself, so the problem's prox
// is not used; a problem whose facts().domain is not the simplex is refused in prepare().
#include <cmath>
#include <limits>

#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct ProxSgdOptions {
  enum class Geometry { euclidean, entropy };
  Geometry geometry = Geometry::euclidean;
  long batch = 1;
  static ParamTable<ProxSgdOptions> params() {
    return {choice(&ProxSgdOptions::geometry, "geometry",
                   {{"euclidean", Geometry::euclidean}, {"entropy", Geometry::entropy}},
                   "euclidean: prox_{eta h}(x - eta g); entropy: mirror descent on the simplex"),
            batch_param(&ProxSgdOptions::batch)};
  }
};

class ProxSgd final : public Optimizer {
 public:
  explicit ProxSgd(const ProxSgdOptions& options) : options_(options) {}

  void prepare(const Problem& problem) override {
    if (options_.geometry == ProxSgdOptions::Geometry::entropy && problem.facts().domain != Domain::simplex)
      throw ConfigError(std::string("optimizer.geometry = entropy is mirror descent on the probability simplex, "
                                    "but the problem's domain is ") +
                        domain_name(problem.facts().domain) + "; use geometry = euclidean");
    problem_ = &problem;
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    log_x_.resize(problem.dim());
  }

  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    if (options_.geometry == ProxSgdOptions::Geometry::entropy) {
      if ((x0.array() < 0.0).any() || !(x0.sum() > 0.0))
        throw ConfigError("optimizer.geometry = entropy needs a nonnegative initial point with positive sum");
      if (!std::isfinite(problem_->value(x0)))
        throw ConfigError("optimizer.geometry = entropy needs an initial point on the problem's simplex; F(x0) is "
                          "not finite there (sum x0 = " + std::to_string(x0.sum()) + ")");
      radius_ = x0.sum();
      log_x_ = (x0 / radius_).array().log();  // log 0 = -inf: a coordinate that starts at 0 stays at 0
      normalize();
    }
  }

  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    if (options_.geometry == ProxSgdOptions::Geometry::euclidean) {
      x_ -= eta * g_;
      problem_->prox(eta, x_);
    } else {
      log_x_ -= eta * g_;
      normalize();
    }
  }

  ConstVecRef iterate() const override { return x_; }

 private:
  // log_x <- log_x - logsumexp(log_x), x = r exp(log_x).
  void normalize() {
    const double top = log_x_.maxCoeff();
    const double log_sum = top + std::log((log_x_.array() - top).exp().sum());
    log_x_.array() -= log_sum;
    x_ = radius_ * log_x_.array().exp();
  }

  ProxSgdOptions options_;
  const Problem* problem_ = nullptr;
  Vec x_, g_, log_x_;
  double radius_ = 1.0;  // r of the simplex {x >= 0, sum x = r}: the sum of x0
};

}  // namespace
}  // namespace ratelab

using ratelab::ProxSgd;
using ratelab::ProxSgdOptions;
RATELAB_REGISTER_OPTIMIZER(prox_sgd, ProxSgd, ProxSgdOptions,
                           "proximal SGD x_{t+1} = prox_{eta_t h}(x_t - eta_t g_t), or entropic mirror descent")
