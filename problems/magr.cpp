// magr_layer: the l_inf-regularized layer reconstruction of MagR (A. Zhang, N. Wang, Y. Deng, X. Li, Z. Yang
// & P. Yin, "MagR: weight magnitude reduction for enhancing post-training quantization", NeurIPS 2024):
//   F(w') = ||X w' - X w||^2 / (2n) + alpha ||w'||_inf,   started at w' = w,
// solved by proximal gradient (prox_sgd with the exact gradient; the l_inf prox is problems/composite.hpp's).
// Shrinking the largest weight while keeping the layer's output X w makes round-to-nearest quantization,
// whose grid step is max|w'| / (2^(b-1) - 1), more accurate.
//
// Synthetic layer (instance stream): w_j ~ N(0, 1/d) with `outliers` coordinates (evenly spaced indices) set
// to
// +-outlier_scale / sqrt(d); calibration features X = Z diag(s) Q^T / c with Z ~ N(0, 1) (n x d),
// s_j = condition^(-j/(d-1)) (a decaying spectrum, like the activations of a trained net), Q Haar-random, and
// c chosen so that L = lambda_max(X^T X / n) = 1. f* and x* by FISTA at set-up.
// The oracle is the exact gradient H (w' - w), H = X^T X / n (full-batch, as in MagR).
// Run statistics, measured at the last point the oracle was queried (x_{T-1}; the claims are about a
// converged reconstruction, where x_{T-1} and x_T agree):
//   max_abs_ratio      max|w'| / max|w|
//   quant_error_ratio  ||X (Q_b(w') - w')||^2 / ||X (Q_b(w) - w)||^2, Q_b b-bit symmetric round-to-nearest on
//   the
//                      grid max|v| k / (2^(b-1) - 1), k = -(2^(b-1) - 1) .. 2^(b-1) - 1
//   output_change      ||X (w' - w)||^2 / ||X w||^2
//   quantized_output_error  ||X Q_b(w') - X w||^2 / ||X Q_b(w) - X w||^2 (the end-to-end effect)
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <algorithm>
#include <cmath>

#include "core/registry.hpp"
#include "problems/composite.hpp"

namespace ratelab {
namespace {

struct MagrOptions {
  long n = 256;
  long d = 64;
  long outliers = 4;
  double outlier_scale = 8.0;
  double condition = 1000.0;
  double alpha = 0.05;
  long bits = 4;

  static ParamTable<MagrOptions> params() {
    return {
        param(&MagrOptions::n, "n", at_least(1), "calibration samples (rows of X)"),
        param(&MagrOptions::d, "d", at_least(2), "input features (length of w)"),
        param(&MagrOptions::outliers, "outliers", at_least(0), "outlier weights (must be <= d)"),
        param(&MagrOptions::outlier_scale, "outlier_scale", positive(),
              "outliers are +-outlier_scale/sqrt(d)"),
        param(&MagrOptions::condition, "condition", at_least(1), "spread s_1/s_d of the feature scales"),
        param(&MagrOptions::alpha, "alpha", positive(), "weight of alpha ||w'||_inf"),
        param(&MagrOptions::bits, "bits", in_closed(2, 16), "bits b of the reported round-to-nearest error")};
  }
};

RegularizerOptions linf(double alpha) {
  RegularizerOptions o;
  o.kind = RegularizerOptions::Kind::linf;
  o.weight = alpha;
  return o;
}

// b-bit symmetric round-to-nearest with the max-abs scale, into `out`.
void round_to_nearest(ConstVecRef v, long bits, VecRef out) {
  const double levels = std::pow(2.0, double(bits - 1)) - 1.0;
  const double scale = v.cwiseAbs().maxCoeff();
  if (scale == 0.0) {
    out.setZero();
    return;
  }
  const double step = scale / levels;
  for (Eigen::Index i = 0; i < v.size(); ++i) out[i] = step * std::nearbyint(v[i] / step);
}

class MagrLayer final : public CompositeProblem {
 public:
  MagrLayer(const MagrOptions& o, ProblemContext& ctx)
      : CompositeProblem(linf(o.alpha)), options_(o), w_(o.d) {
    if (o.outliers > o.d)
      throw ConfigError("problem.outliers = " + std::to_string(o.outliers) +
                        " exceeds problem.d = " + std::to_string(o.d) + "; need outliers <= d");
    RandomStream& rng = ctx.instance;
    const double inv_sqrt_d = 1.0 / std::sqrt(double(o.d));
    for (long j = 0; j < o.d; ++j) w_[j] = inv_sqrt_d * rng.normal();
    for (long k = 0; k < o.outliers; ++k) {
      const long j = (k * o.d) / std::max(1L, o.outliers);
      w_[j] = (rng.uniform() < 0.5 ? -1.0 : 1.0) * o.outlier_scale * inv_sqrt_d;
    }
    Mat G(o.d, o.d);
    for (long j = 0; j < o.d; ++j)
      for (long i = 0; i < o.d; ++i) G(i, j) = rng.normal();
    Eigen::HouseholderQR<Mat> qr(G);
    Mat Q = qr.householderQ();
    for (long j = 0; j < o.d; ++j)  // sign fix: Haar-distributed (Mezzadri 2007)
      if (qr.matrixQR()(j, j) < 0) Q.col(j) *= -1.0;
    Mat Z(o.n, o.d);
    for (long j = 0; j < o.d; ++j)
      for (long i = 0; i < o.n; ++i) Z(i, j) = rng.normal();
    Vec s(o.d);
    for (long j = 0; j < o.d; ++j) s[j] = std::pow(o.condition, -double(j) / double(o.d - 1));
    const Mat X = Z * s.asDiagonal() * Q.transpose();
    H_ = X.transpose() * X / double(o.n);
    H_ = 0.5 * (H_ + H_.transpose());
    Eigen::SelfAdjointEigenSolver<Mat> eigen(H_, Eigen::EigenvaluesOnly);
    const double lmax = eigen.eigenvalues().maxCoeff();
    H_ /= lmax;  // L = 1, so prox_sgd with eta = 1 is the textbook step 1/L
    h_w_ = H_ * w_;
    facts_.L = 1.0;
    facts_.mu = std::max(0.0, eigen.eigenvalues().minCoeff() / lmax);
    solve_composite(1.0);
  }

  Eigen::Index dim() const override { return options_.d; }
  void initial_point_before_projection(VecRef x0, RandomStream&) const override { x0 = w_; }

  double smooth_value(ConstVecRef x) const override {
    const Vec y = x - w_;
    return 0.5 * y.dot(H_ * y);
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    g.noalias() = H_ * x;
    g -= h_w_;
  }

  // ||X v||^2 / n = v^T H v (up to the common normalization, which cancels in every ratio reported).
  double output_energy(ConstVecRef v) const { return v.dot(H_ * v); }
  const Vec& weights() const { return w_; }
  long bits() const { return options_.bits; }

  std::unique_ptr<Oracle> make_oracle(RunStreams&) const override {
    return std::make_unique<LayerOracle>(*this);
  }

 private:
  class LayerOracle final : public Oracle {
   public:
    explicit LayerOracle(const MagrLayer& p) : p_(p), last_(p.w_) {}
    void sample_gradient(ConstVecRef x, VecRef g, int) override {
      p_.gradient(x, g);
      last_ = x;  // same size: no allocation
    }
    void report(RunStats& stats) const override {
      const Vec& w = p_.weights();
      Vec qx(w.size()), qw(w.size());
      round_to_nearest(last_, p_.bits(), qx);
      round_to_nearest(w, p_.bits(), qw);
      stats.emplace_back("max_abs_ratio", last_.cwiseAbs().maxCoeff() / w.cwiseAbs().maxCoeff());
      stats.emplace_back("quant_error_ratio", p_.output_energy(qx - last_) / p_.output_energy(qw - w));
      stats.emplace_back("output_change", p_.output_energy(last_ - w) / p_.output_energy(w));
      stats.emplace_back("quantized_output_error", p_.output_energy(qx - w) / p_.output_energy(qw - w));
    }

   private:
    const MagrLayer& p_;
    Vec last_;
  };

  MagrOptions options_;
  Vec w_;
  Vec h_w_;
  Mat H_;
};

}  // namespace
}  // namespace ratelab

using ratelab::MagrLayer;
using ratelab::MagrOptions;
RATELAB_REGISTER_PROBLEM(magr_layer, MagrLayer, MagrOptions,
                         "MagR layer reconstruction ||Xw' - Xw||^2/2n + alpha ||w'||_inf from w' = w")
