// ste_two_layer: the teacher-student two-layer network with Gaussian input of Yin, Lyu, Zhang, Osher, Qi &
// Xin, "Understanding Straight-Through Estimator in Training Activation Quantized Neural Nets" (ICLR 2019).
//
// Input Z in R^{m x n}, i.i.d. N(0, 1) (m patches of dimension n); the first-layer weights w in R^n are
// shared by the patches, the second layer is v in R^m; output v^T sigma(Z w) with sigma binary or the
// b-bit staircase (problems/quantized_nets.hpp). Teacher (instance stream, in this order): v* ~ N(0, I_m),
// then w* ~ N(0, I_n) normalized to ||w*|| = 1. Loss l(v, w; Z) = (1/2)(v^T sigma(Z w) - v*^T sigma(Z w*))^2.
// The variable is x = (v, w), dimension m + n.
//
// Oracle: for each of the `batch` draws, the m x n entries of Z row by row from the sampling stream;
//   g_v = (v^T sigma(Z w) - y*) sigma(Z w)                      (exact)
//   g_w = Z^T (mu'(Z w) .* v) (v^T sigma(Z w) - y*)             (coarse: mu' the STE's derivative)
// averaged over the batch. With weight quantization (problems/quantized_weights.hpp) both are evaluated at
// w_q = Proj_Q(w) and the float w is updated (BinaryConnect / coarse-gradient scheme).
//
// Population loss: binary activation, closed form (Yin et al., eq. (5)): with theta = angle(w, w*),
//   f(v, w) = (1/8) [v^T (I + 11^T) v - 2 v^T ((1 - 2 theta/pi) I + 11^T) v* + v*^T (I + 11^T) v*],
// from E[sigma(Zw) sigma(Zw)^T] = (I + 11^T)/4 and E[sigma(Zw) sigma(Zw*)^T] = ((1 - 2theta/pi) I + 11^T)/4.
// f* = 0 at the teacher; the exact gradient is (1/4)[(I + 11^T) v - ((1 - 2theta/pi) I + 11^T) v*] in v and
// (v^T v* / (2 pi)) grad_w theta in w (zero where sin theta = 0). Staircase: the mean loss over a fixed
// evaluation sample of `eval_samples` draws of Z from the instance stream (after the teacher), f* = 0 at
// the teacher for float weights. f depends on w only through theta (binary), so x* is a ray, not a point:
// dist2 is not offered; instead the extra metrics theta (of w_q) and w_norm (||w||, float) are recorded.
//
// Quantized weights: the discrete optimum over Q^n (n <= 16) is the w_q of smallest angle to w*, found by
// enumeration at set-up (the angle is scale-free, so it holds for fixed and fitted scales); with the binary
// activation, F* = min_v f(v, theta_opt) in closed form. Extra metric at_discrete_optimum (angle(w_q, w*)
// equals the optimal angle to 1e-12), run stat discrete_optimum_fraction over the oracle calls.
//
// Initialization: random (init stream: v ~ N(0, I_m / m), w ~ N(0, I_n)), or `spurious`: the critical
// point theta = pi, w = -w*, v = (I + 11^T)^{-1} (11^T - I) v* of Yin et al. (Lemma 2), each coordinate
// plus init_perturbation * N(0, 1) from the init stream.
#include <Eigen/Cholesky>
#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/registry.hpp"
#include "problems/quantized_nets.hpp"
#include "problems/quantized_weights.hpp"

namespace ratelab {
namespace {

struct SteTwoLayerOptions {
  enum class Init { random, spurious };
  long m = 10;
  long n = 10;
  ActivationOptions activation;
  long eval_samples = 20000;
  Init init = Init::random;
  double init_perturbation = 0.0;
  QuantizedWeightsOptions quantized_weights;

  static ParamTable<SteTwoLayerOptions> params() {
    using O = SteTwoLayerOptions;
    return ParamTable<O>{
        param(&O::m, "m", at_least(1), "number of patches (rows of Z) = width of the second layer v"),
        param(&O::n, "n", at_least(2), "patch dimension = size of the shared first-layer weights w"),
        applies_when(param(&O::eval_samples, "eval_samples", at_least(1),
                           "draws of Z in the fixed sample on which the staircase population loss is estimated"),
                     "activation", {"staircase"}),
        choice(&O::init, "init", {{"random", Init::random}, {"spurious", Init::spurious}},
               "random, or the spurious critical point theta = pi, v = (I + 11^T)^{-1}(11^T - I) v*"),
        param(&O::init_perturbation, "init_perturbation", nonnegative(),
              "standard deviation of the Gaussian perturbation added to every coordinate of the initial point"),
    }
        .with(&O::activation, ActivationOptions::params())
        .with(&O::quantized_weights, QuantizedWeightsOptions::params());
  }
};

class SteTwoLayer final : public Problem {
 public:
  SteTwoLayer(const SteTwoLayerOptions& o, ProblemContext& ctx)
      : options_(o), sigma_(o.activation), quantizer_(o.quantized_weights), m_(o.m), n_(o.n) {
    o.quantized_weights.validate();
    RandomStream& rng = ctx.instance;
    v_star_.resize(m_);
    w_star_.resize(n_);
    for (long i = 0; i < m_; ++i) v_star_[i] = rng.normal();
    for (long j = 0; j < n_; ++j) w_star_[j] = rng.normal();
    w_star_.normalize();
    w_star_unit_ = w_star_ / w_star_.norm();  // bit for bit what w / ||w|| gives for w = +-w*
    gram_ = Mat::Identity(m_, m_) + Mat::Ones(m_, m_);
    if (!binary()) {
      eval_Z_.resize(o.eval_samples * m_, n_);
      for (Eigen::Index r = 0; r < eval_Z_.rows(); ++r)
        for (long j = 0; j < n_; ++j) eval_Z_(r, j) = rng.normal();
      eval_y_ = outputs(v_star_, w_star_);
    }
    // Spurious critical point: (I + 11^T) v = (11^T - I) v*.
    v_spurious_ = gram_.llt().solve((Mat::Ones(m_, m_) - Mat::Identity(m_, m_)) * v_star_);

    if (!quantizer_.active()) {
      facts_.f_star = 0.0;
      facts_.f_star_method = binary() ? "closed form (teacher)" : "teacher (exact on the evaluation sample)";
    } else if (enumeration_size(quantizer_.levels(1.0).size(), n_) > 0) {
      optimal_w_q_ = enumerate_max_cosine(w_star_, quantizer_.levels(1.0), optimal_cosine_);
      if (binary()) {
        facts_.f_star = min_over_v(std::acos(std::clamp(optimal_cosine_, -1.0, 1.0)));
        facts_.f_star_method = "enumeration of Q^n (smallest angle to w*), closed-form minimum over v";
      }
    }
  }

  Eigen::Index dim() const override { return m_ + n_; }
  const ProblemFacts& facts() const override { return facts_; }
  bool binary() const { return options_.activation.kind == ActivationOptions::Kind::binary; }

  void initial_point(VecRef x0, RandomStream& init) const override {
    if (options_.init == SteTwoLayerOptions::Init::spurious) {
      x0.head(m_) = v_spurious_;
      x0.tail(n_) = -w_star_;
    } else {
      for (long i = 0; i < m_; ++i) x0[i] = init.normal() / std::sqrt(double(m_));
      for (long j = 0; j < n_; ++j) x0[m_ + j] = init.normal();
    }
    if (options_.init_perturbation > 0.0)
      for (Eigen::Index i = 0; i < x0.size(); ++i) x0[i] += options_.init_perturbation * init.normal();
  }

  double value(ConstVecRef x) const override {
    Vec wq(n_);
    quantizer_.project(x.tail(n_), wq);
    return loss(x.head(m_), wq);
  }

  // The exact gradient of the closed-form population loss (binary activation, float weights only).
  bool has_gradient() const override { return binary() && !quantizer_.active(); }
  void gradient(ConstVecRef x, VecRef g) const override {
    const auto v = x.head(m_);
    const auto w = x.tail(n_);
    const double wn = w.norm(), theta = angle(w), c = std::cos(theta), s = std::sin(theta);
    g.head(m_) = 0.25 * (gram_ * v - (1.0 - 2.0 * theta / std::numbers::pi) * v_star_ -
                         Vec::Constant(m_, v_star_.sum()));
    // w along w* or against it (theta = 0 or pi, extrema of theta): the gradient in w vanishes.
    if (wn == 0.0 || (w / wn - w_star_unit_).norm() == 0.0 || (w / wn + w_star_unit_).norm() == 0.0) {
      g.tail(n_).setZero();
      return;
    }
    // d theta / d w = -(w* - cos(theta) w/||w||) / (||w|| sin theta); df/dtheta = v^T v* / (2 pi).
    const double df_dtheta = v.dot(v_star_) / (2.0 * std::numbers::pi);
    g.tail(n_) = -df_dtheta / (wn * s) * (w_star_ - c * w / wn);
  }

  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override;
  // BinaryConnect's clip of the float first-layer weights (problems/quantized_weights.hpp).
  bool is_composite() const override { return quantizer_.clips(); }
  void prox(double, VecRef x) const override { quantizer_.clip(x.tail(n_)); }

  std::vector<std::string> extra_metric_names() const override {
    std::vector<std::string> names{"theta", "w_norm"};
    if (optimal_w_q_.size()) names.push_back("at_discrete_optimum");
    return names;
  }
  void extra_metrics(ConstMatRef X, MatRef out) const override {
    Vec wq(n_);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      quantizer_.project(X.col(j).tail(n_), wq);
      out(0, j) = angle(wq);
      out(1, j) = X.col(j).tail(n_).norm();
      if (optimal_w_q_.size()) out(2, j) = at_discrete_optimum(wq) ? 1.0 : 0.0;
    }
  }
  RunStats instance_stats() const override {
    RunStats s;
    if (optimal_w_q_.size()) s.emplace_back("discrete_optimal_theta", std::acos(std::clamp(optimal_cosine_, -1.0, 1.0)));
    return s;
  }

  // Angle between w and w*, in [0, pi]; pi/2 for w = 0 (no direction). Kahan's 2 atan2(|u - v|, |u + v|) of
  // the unit vectors, not acos of their dot product: acos loses half the digits near 0 and pi (an error of
  // sqrt(eps) = 1e-8 in theta at w = w*), and it is exact there (0 at w = w*, pi at w = -w*).
  double angle(ConstVecRef w) const {
    const double wn = w.norm();
    if (wn == 0.0) return std::numbers::pi / 2;
    return 2.0 * std::atan2((w / wn - w_star_unit_).norm(), (w / wn + w_star_unit_).norm());
  }
  bool at_discrete_optimum(ConstVecRef wq) const {
    const double wn = wq.norm();
    return wn > 0.0 && wq.dot(w_star_) / wn >= optimal_cosine_ - 1e-12;
  }

  // Population loss at (v, w) with w already quantized.
  double loss(ConstVecRef v, ConstVecRef w) const {
    if (binary()) {
      const double theta = angle(w);
      const double a = v.dot(gram_ * v);
      const double b = (1.0 - 2.0 * theta / std::numbers::pi) * v.dot(v_star_) + v.sum() * v_star_.sum();
      const double c = v_star_.dot(gram_ * v_star_);
      return (a - 2.0 * b + c) / 8.0;
    }
    const Vec y = outputs(v, w);
    return 0.5 * (y - eval_y_).squaredNorm() / double(y.size());
  }
  // min over v of the closed-form loss at angle theta: (1/8)[v*^T G v* - r^T G^{-1} r], r = ((1-2theta/pi) I + 11^T) v*.
  double min_over_v(double theta) const {
    const Vec r = (1.0 - 2.0 * theta / std::numbers::pi) * v_star_ + Vec::Constant(m_, v_star_.sum());
    return (v_star_.dot(gram_ * v_star_) - r.dot(gram_.llt().solve(r))) / 8.0;
  }

  const Vec& v_star() const { return v_star_; }
  const Vec& w_star() const { return w_star_; }

 private:
  // Network outputs v^T sigma(Z_k w) on the evaluation sample.
  Vec outputs(ConstVecRef v, ConstVecRef w) const {
    Vec pre = eval_Z_ * w;
    for (Eigen::Index i = 0; i < pre.size(); ++i) pre[i] = sigma_(pre[i]);
    Eigen::Map<const Mat> act(pre.data(), m_, pre.size() / m_);
    return act.transpose() * v;
  }

  class CoarseOracle;
  SteTwoLayerOptions options_;
  QuantizedActivation sigma_;
  WeightQuantizer quantizer_;
  long m_, n_;
  Vec v_star_, w_star_, v_spurious_;
  Vec w_star_unit_;  // w_star_ / ||w_star_||, so that angle() is exact at w = +-w*
  Mat gram_;  // I + 11^T
  Mat eval_Z_;  // eval_samples blocks of m rows (staircase only)
  Vec eval_y_;
  ProblemFacts facts_;
  Vec optimal_w_q_;  // empty when not enumerated
  double optimal_cosine_ = 0.0;
};

class SteTwoLayer::CoarseOracle final : public Oracle {
 public:
  CoarseOracle(const SteTwoLayer& p, RunStreams& streams)
      : p_(p), rng_(streams.sampling), Z_(p.m_, p.n_), wq_(p.n_), pre_(p.m_), pre_star_(p.m_), act_(p.m_),
        back_(p.m_) {}

  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    const long m = p_.m_, n = p_.n_;
    const auto v = x.head(m);
    p_.quantizer_.project(x.tail(n), wq_);
    if (p_.optimal_w_q_.size()) {
      ++calls_;
      if (p_.at_discrete_optimum(wq_)) ++at_optimum_;
    }
    g.setZero();
    for (int b = 0; b < batch; ++b) {
      for (long i = 0; i < m; ++i)
        for (long j = 0; j < n; ++j) Z_(i, j) = rng_.normal();
      pre_.noalias() = Z_ * wq_;
      pre_star_.noalias() = Z_ * p_.w_star_;
      double y_star = 0.0;
      for (long i = 0; i < m; ++i) {
        act_[i] = p_.sigma_(pre_[i]);
        y_star += p_.v_star_[i] * p_.sigma_(pre_star_[i]);
        back_[i] = p_.sigma_.ste_derivative(pre_[i]) * v[i];
      }
      const double r = v.dot(act_) - y_star;
      g.head(m) += r * act_;
      g.tail(n).noalias() += r * (Z_.transpose() * back_);
    }
    g /= double(batch);
  }
  void report(RunStats& stats) const override {
    if (calls_ > 0) stats.emplace_back("discrete_optimum_fraction", double(at_optimum_) / double(calls_));
  }

 private:
  const SteTwoLayer& p_;
  RandomStream& rng_;
  Mat Z_;
  Vec wq_, pre_, pre_star_, act_, back_;
  long calls_ = 0, at_optimum_ = 0;
};

std::unique_ptr<Oracle> SteTwoLayer::make_oracle(RunStreams& streams) const {
  return std::make_unique<CoarseOracle>(*this, streams);
}

}  // namespace
}  // namespace ratelab

using ratelab::SteTwoLayer;
using ratelab::SteTwoLayerOptions;
RATELAB_REGISTER_PROBLEM(ste_two_layer, SteTwoLayer, SteTwoLayerOptions,
                         "teacher-student two-layer net with binary/staircase activation, STE coarse gradient")
