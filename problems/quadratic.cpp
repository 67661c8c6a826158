// Noisy strongly convex quadratic:
//   f(x) = 1/2 (x - x*)^T H (x - x*),   H = Q diag(l_1..l_d) Q^T,
// eigenvalues l_i from mu to L (linear or logarithmic spacing, or alternating mu, L, mu, ... as in the
// Laplacian-smoothing paper's test function, Osher et al. 2022, Sec. 4.1), Q the identity or a Haar-random orthogonal
// matrix from the instance stream. The oracle returns H (x - x*) plus gradient noise (gaussian with
// standard deviation s per coordinate by default). f* = 0, x* known, L, mu and sigma^2 = E||noise||^2
// declared. The textbook testbed for SGD rates (e.g. Bach & Moulines, NeurIPS 2011).
// With a regularizer (problems/composite.hpp) F = f + h and F*, x* come from FISTA at set-up; L and mu
// keep describing f.
#include <Eigen/QR>
#include <cmath>

#include "core/registry.hpp"
#include "problems/composite.hpp"
#include "problems/noise.hpp"

namespace ratelab {
namespace {

struct QuadraticOptions {
  enum class Spacing { linear, log, alternating };
  enum class Basis { identity, random };
  enum class Init { ones, random };
  long d = 10;
  double mu = 0.1;
  double L = 1.0;
  Spacing spacing = Spacing::linear;
  Basis basis = Basis::identity;
  bool random_minimizer = false;
  Init init = Init::ones;
  double init_scale = 1.0;
  NoiseOptions noise;
  RegularizerOptions regularizer;

  static ParamTable<QuadraticOptions> params() {
    return ParamTable<QuadraticOptions>{
        param(&QuadraticOptions::d, "d", at_least(1), "dimension"),
        param(&QuadraticOptions::mu, "mu", positive(), "smallest eigenvalue (strong convexity)"),
        param(&QuadraticOptions::L, "L", positive(), "largest eigenvalue (smoothness); must be >= mu"),
        choice(&QuadraticOptions::spacing, "spacing",
               {{"linear", Spacing::linear}, {"log", Spacing::log}, {"alternating", Spacing::alternating}},
               "spacing of the eigenvalues between mu and L (alternating: mu at even 0-based index, L at odd)"),
        choice(&QuadraticOptions::basis, "basis", {{"identity", Basis::identity}, {"random", Basis::random}},
               "eigenbasis: coordinate axes, or Haar-random from the instance stream"),
        param(&QuadraticOptions::random_minimizer, "random_minimizer", unconstrained(),
              "x* ~ N(0, I) from the instance stream instead of x* = 0"),
        choice(&QuadraticOptions::init, "init", {{"ones", Init::ones}, {"random", Init::random}},
               "x0 = x* + init_scale * (all-ones vector | N(0, I) from the init stream)"),
        param(&QuadraticOptions::init_scale, "init_scale", unconstrained(), "distance scale of x0 from x*"),
    }
        .with(&QuadraticOptions::noise, NoiseOptions::params())
        .with(&QuadraticOptions::regularizer, RegularizerOptions::params());
  }
};

class Quadratic final : public CompositeProblem {
 public:
  Quadratic(const QuadraticOptions& o, ProblemContext& ctx)
      : CompositeProblem(o.regularizer), options_(o), eig_(o.d), center_(Vec::Zero(o.d)) {
    if (o.L < o.mu) throw ConfigError("problem.L = " + std::to_string(o.L) + " is below problem.mu = " +
                                      std::to_string(o.mu) + "; need mu <= L");
    for (long i = 0; i < o.d; ++i) {
      const double s = o.d == 1 ? 0.0 : double(i) / double(o.d - 1);
      switch (o.spacing) {
        case QuadraticOptions::Spacing::linear: eig_[i] = o.mu + (o.L - o.mu) * s; break;
        case QuadraticOptions::Spacing::log: eig_[i] = o.mu * std::pow(o.L / o.mu, s); break;
        // The Laplacian-smoothing paper's test function sum_i ((x_i - 2)/c_i)^2 with c_i alternating 10, 1.
        case QuadraticOptions::Spacing::alternating: eig_[i] = i % 2 == 0 ? o.mu : o.L; break;
      }
    }
    RandomStream& rng = ctx.instance;
    if (o.basis == QuadraticOptions::Basis::random) {
      Mat G(o.d, o.d);
      for (long j = 0; j < o.d; ++j)
        for (long i = 0; i < o.d; ++i) G(i, j) = rng.normal();
      Eigen::HouseholderQR<Mat> qr(G);
      Mat Q = qr.householderQ();
      // Sign fix makes Q Haar-distributed (Mezzadri 2007).
      for (long j = 0; j < o.d; ++j)
        if (qr.matrixQR()(j, j) < 0) Q.col(j) *= -1.0;
      H_ = Q * eig_.asDiagonal() * Q.transpose();
      H_ = 0.5 * (H_ + H_.transpose());
    }
    if (o.random_minimizer)
      for (long i = 0; i < o.d; ++i) center_[i] = rng.normal();
    if (H_.size() != 0) h_center_ = H_ * center_;
    facts_.L = o.L;
    facts_.mu = o.mu;
    facts_.sigma2 = o.noise.variance(o.d);
    if (regularizer_.active()) {
      solve_composite(o.L);
    } else {
      facts_.f_star = 0.0;
      facts_.x_star_known = true;
      x_star_ = center_;
    }
  }

  Eigen::Index dim() const override { return options_.d; }

  // x0 is placed around the minimizer of f (the center), also for composite instances.
  void initial_point_before_projection(VecRef x0, RandomStream& init) const override {
    if (options_.init == QuadraticOptions::Init::ones) {
      x0 = center_.array() + options_.init_scale;
    } else {
      for (Eigen::Index i = 0; i < x0.size(); ++i) x0[i] = center_[i] + options_.init_scale * init.normal();
    }
  }

  double smooth_value(ConstVecRef x) const override {
    // Identity basis: one expression, no temporary vector, so value() may be called in a hot loop.
    if (H_.size() == 0) return 0.5 * (eig_.array() * (x - center_).array().square()).sum();
    Vec y = x - center_;
    return 0.5 * y.dot(H_ * y);
  }
  void smooth_values(ConstMatRef X, VecRef out) const override {
    Mat Y = X.colwise() - center_;
    if (H_.size() == 0) out = 0.5 * (Y.array().square().colwise() * eig_.array()).colwise().sum().transpose();
    else out = 0.5 * (Y.array() * (H_ * Y).array()).colwise().sum().transpose();
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    if (H_.size() == 0) g = eig_.array() * (x - center_).array();
    else {
      g.noalias() = H_ * x;  // H (x - c) as H x - H c, so no temporary is allocated per call
      g -= h_center_;
    }
  }

  // In the identity basis, block j of H (x - c) is l_j (x_j - c_j): computed on the block alone.
  bool has_block_gradient() const override { return H_.size() == 0; }
  void block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block) const override {
    g_block = eig_.segment(begin, size).array() * (x.segment(begin, size) - center_.segment(begin, size)).array();
  }

  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    // In the identity basis the gradient is eig .* (x - center): the fused steps compute it in their pass.
    DiagonalGradient diagonal;
    if (H_.size() == 0) diagonal = {eig_.data(), center_.data()};
    return std::make_unique<ExactGradientOracle>(*this, options_.noise, streams.noise, diagonal);
  }

 private:
  QuadraticOptions options_;
  Vec eig_;
  Vec center_;    // minimizer of f; x* = center_ unless a regularizer moves it
  Vec h_center_;
  Mat H_;  // empty in the identity basis: the diagonal eig_ is used directly
};

}  // namespace
}  // namespace ratelab

using ratelab::Quadratic;
using ratelab::QuadraticOptions;
RATELAB_REGISTER_PROBLEM(quadratic, Quadratic, QuadraticOptions,
                         "noisy strongly convex quadratic 1/2 (x-x*)^T H (x-x*), spectrum in [mu, L]")
