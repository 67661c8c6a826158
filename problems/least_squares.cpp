#include "problems/least_squares.hpp"

#include "core/schedule.hpp"

#include <algorithm>
#include <array>
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <span>
#include <vector>

#include "core/fast_paths.hpp"
#include "core/registry.hpp"
#include "problems/least_squares_kernels.hpp"
#include "problems/step_rows.hpp"

namespace ratelab {

ParamTable<LeastSquaresOptions> LeastSquaresOptions::params() {
  using O = LeastSquaresOptions;
  return ParamTable<O>{
      param(&O::n, "n", at_least(1), "number of rows (synthetic instance)"),
      param(&O::d, "d", at_least(1), "dimension (synthetic instance)"),
      param(&O::noise_std, "noise_std", nonnegative(), "b = A x_true + noise_std N(0, 1)"),
      param(&O::condition, "condition", at_least(1),
            "target condition number of A^T A / n by column scaling (1: plain Gaussian A)"),
      choice(&O::generator, "generator", {{"philox", Generator::philox}, {"splitmix", Generator::splitmix}},
             "synthetic A, b from the instance stream, or the benchmark's portable SplitMix64/Box-Muller recipe"),
      param(&O::generator_seed, "generator_seed", at_least(0), "seed of the splitmix generator (W1 uses 12345)"),
      choice(&O::sampling, "sampling",
             {{"with_replacement", Sampling::with_replacement}, {"without_replacement", Sampling::without_replacement}},
             "row sampling of the oracle: i.i.d. uniform, or a fresh random permutation every epoch"),
      choice(&O::oracle, "oracle", {{"sampled", OracleKind::sampled}, {"exact", OracleKind::exact}},
             "sampled rows, or the exact gradient H x - c (plus the noise model)"),
      param(&O::dataset, "dataset", unconstrained(),
            "breast_cancer | digits | diabetes | path to a LIBSVM or .csv file; empty: synthetic"),
      param(&O::standardize, "standardize", unconstrained(), "standardize the data set's features"),
      param(&O::intercept, "intercept", unconstrained(), "append a constant-1 feature to the data set"),
      param(&O::solve, "solve", unconstrained(), "compute x*, f*, L, mu at set-up by an exact solve"),
      param(&O::estimate_L, "estimate_L", unconstrained(),
            "compute L (and mu): eigenvalues of H with solve, power iteration without (the benchmark turns it off)"),
      choice(&O::evaluation, "evaluation", {{"auto", Evaluation::automatic}, {"direct", Evaluation::direct}},
             "checkpoint values: auto = f* + (x - x*)^T H (x - x*) / 2 when x* is solved and d < n (d^2 instead "
             "of n d flops per iterate), direct = ||A x - b||^2 / (2n)"),
  }
      .with(&O::noise, NoiseOptions::params())
      .with(&O::regularizer, RegularizerOptions::params())
      .with(&O::quantized_weights, QuantizedWeightsOptions::params());
}

namespace {

void synthesize(const LeastSquaresOptions& o, ProblemContext& ctx, RowMat& A, Vec& b) {
  RandomStream& rng = ctx.instance;
  if (o.generator == LeastSquaresOptions::Generator::splitmix) {
    make_splitmix_instance(o.n, o.d, std::uint64_t(o.generator_seed), o.noise_std, A, b, ctx.parallel_for);
    return;
  }
  A.resize(o.n, o.d);
  const double s = 1.0 / std::sqrt(double(o.d));
  for (long i = 0; i < o.n; ++i)
    for (long j = 0; j < o.d; ++j) A(i, j) = s * rng.normal();
  if (o.condition > 1.0 && o.d > 1)
    for (long j = 0; j < o.d; ++j) A.col(j) *= std::pow(o.condition, -double(j) / (2.0 * double(o.d - 1)));
  Vec x_true(o.d);
  for (long j = 0; j < o.d; ++j) x_true[j] = rng.normal();
  b = A * x_true;
  for (long i = 0; i < o.n; ++i) b[i] += o.noise_std * rng.normal();
}

}  // namespace

namespace {
void validate(const LeastSquaresOptions& o) {
  std::vector<std::string> errors;
  if (o.generator == LeastSquaresOptions::Generator::splitmix && o.condition != 1.0)
    errors.push_back("problem.condition = " + std::to_string(o.condition) +
                     " is not part of the splitmix recipe; use generator = philox for column scaling");
  if (!o.dataset.empty() && o.condition != 1.0)
    errors.push_back("problem.condition = " + std::to_string(o.condition) +
                     " applies to the synthetic instance only; remove it or remove problem.dataset");
  if (o.dataset.empty() && o.intercept)
    errors.push_back("problem.intercept = true applies to data sets only; set problem.dataset or remove it");
  if (o.oracle == LeastSquaresOptions::OracleKind::exact &&
      o.sampling == LeastSquaresOptions::Sampling::without_replacement)
    errors.push_back("problem.sampling = without_replacement has no effect with problem.oracle = exact; use "
                     "oracle = sampled or drop sampling");
  if (!errors.empty()) throw ConfigError(errors);
}
}  // namespace

void make_splitmix_instance(long n, long d, std::uint64_t seed, double noise_std, RowMat& A, Vec& b,
                            const ParallelFor& parallel_for) {
  // Draw k of the SplitMix64 stream uses the state seed + (k + 1) * golden, so every Box-Muller pair can be
  // computed on its own, in any order, on any thread: the same bits as the sequential recipe.
  constexpr std::uint64_t golden = 0x9E3779B97F4A7C15ULL;
  auto uniform = [seed](std::uint64_t draw) {
    std::uint64_t z = seed + (draw + 1) * golden;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double(z >> 11) + 0.5) * 0x1.0p-53;
  };
  const std::size_t count = std::size_t(n) * std::size_t(d) + std::size_t(d) + std::size_t(n);
  std::vector<double> z(count + 1);  // + 1: an odd count still fills whole Box-Muller pairs
  parallel_for(long((count + 1) / 2), [&](long first_pair, long end_pair) {
    for (std::size_t k = 2 * std::size_t(first_pair); k < 2 * std::size_t(end_pair); k += 2) {
      const double u1 = uniform(k), u2 = uniform(k + 1);
      const double r = std::sqrt(-2.0 * std::log(u1)), theta = 2.0 * std::numbers::pi * u2;
      z[k] = r * std::cos(theta);
      z[k + 1] = r * std::sin(theta);
    }
  });
  A.resize(n, d);
  b.resize(n);
  const double s = 1.0 / std::sqrt(double(d));
  for (long i = 0; i < n; ++i)
    for (long j = 0; j < d; ++j) A(i, j) = z[std::size_t(i) * std::size_t(d) + std::size_t(j)] * s;
  const double* x_true = z.data() + std::size_t(n) * std::size_t(d);
  const double* e = x_true + d;
  for (long i = 0; i < n; ++i) {
    double acc = 0;  // the recipe's summation order: j = 0, 1, ..., d-1
    for (long j = 0; j < d; ++j) acc += A(i, j) * x_true[j];
    b[i] = acc + noise_std * e[i];
  }
}

LeastSquares::LeastSquares(const LeastSquaresOptions& o, ProblemContext& ctx)
    : CompositeProblem(o.regularizer), options_(o) {
  validate(o);
  if (o.dataset.empty()) {
    synthesize(o, ctx, A_, b_);
  } else {
    Dataset data = load_dataset(o.dataset, ctx.data_directory, o.standardize);
    if (o.intercept) {
      A_.resize(data.X.rows(), data.X.cols() + 1);
      A_ << data.X, RowMat::Ones(data.X.rows(), 1);
    } else {
      A_ = std::move(data.X);
    }
    b_ = std::move(data.y);
  }
  set_up({});
}

LeastSquares::LeastSquares(RowMat A, Vec b, const LeastSquaresOptions& o, std::optional<double> known_f_star)
    : CompositeProblem(o.regularizer), options_(o), A_(std::move(A)), b_(std::move(b)) {
  if (A_.rows() != b_.size())
    throw ConfigError("least_squares: A has " + std::to_string(A_.rows()) + " rows but b has " +
                      std::to_string(b_.size()) + " entries");
  options_.n = A_.rows();
  options_.d = A_.cols();
  set_up(known_f_star);
}

void LeastSquares::set_up(std::optional<double> known_f_star) {
  const Eigen::Index n = A_.rows(), d = A_.cols();
  options_.n = n;
  options_.d = d;
  const bool need_h = options_.solve || options_.oracle == LeastSquaresOptions::OracleKind::exact;
  if (need_h) {
    H_ = Mat::Zero(d, d);
    H_.selfadjointView<Eigen::Lower>().rankUpdate(A_.transpose(), 1.0 / double(n));
    H_.triangularView<Eigen::StrictlyUpper>() = H_.transpose();
    c_ = A_.transpose() * b_ / double(n);
  }
  if (options_.solve && options_.estimate_L) {
    Eigen::SelfAdjointEigenSolver<Mat> eig(H_, Eigen::EigenvaluesOnly);
    const double lmax = eig.eigenvalues().maxCoeff(), lmin = eig.eigenvalues().minCoeff();
    facts_.L = lmax;
    const bool regular = n >= d && lmin > 1e-12 * lmax;
    if (regular) facts_.mu = lmin;
    instance_stats_.emplace_back("hessian_lambda_max", lmax);
    instance_stats_.emplace_back("hessian_lambda_min", lmin);
    if (regular) instance_stats_.emplace_back("condition_number", lmax / lmin);
  } else if (options_.estimate_L) {
    // Power iteration on H = A^T A / n without forming H: L to about 1e-8 relative.
    Vec v = Vec::Ones(d) / std::sqrt(double(d)), w(d);
    double lambda = 0.0;
    for (int k = 0; k < 1000; ++k) {
      w.noalias() = A_.transpose() * (A_ * v) / double(n);
      const double next = w.norm();
      v = w / next;
      const bool done = std::abs(next - lambda) <= 1e-9 * next;
      lambda = next;
      if (done) break;
    }
    facts_.L = lambda;
  }
  if (regularizer_.active()) {
    if (!options_.solve && known_f_star) {
      facts_.f_star = known_f_star;
      facts_.f_star_method = "given";
    } else {
      solve_composite(*facts_.L);
    }
  } else if (options_.solve) {
    double gradient_norm;
    Eigen::LLT<Mat> llt(H_);
    // Without the eigenvalues (estimate_L = false) a successful Cholesky factorization decides.
    const bool regular = (facts_.mu.has_value() || (!options_.estimate_L && n >= d)) && llt.info() == Eigen::Success;
    Vec x;
    if (regular) {
      x = llt.solve(c_);
      // One step of iterative refinement with the residual computed from A itself.
      const Vec r = b_ - A_ * x;
      x += llt.solve(A_.transpose() * r / double(n));
      x_star_ = x;
      facts_.x_star_known = true;
    } else {
      Eigen::CompleteOrthogonalDecomposition<Mat> cod{Mat(A_)};
      x = cod.solve(b_);
    }
    Vec g(d);
    gradient(x, g);
    gradient_norm = g.norm();
    facts_.f_star = smooth_value(x);
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s, ||grad f(x*)|| = %.3g",
                  regular ? "cholesky on the normal equations + 1 refinement step"
                          : "complete orthogonal decomposition of A (minimum-norm x, not unique)",
                  gradient_norm);
    facts_.f_star_method = buf;
    instance_stats_.emplace_back("f_star_gradient_norm", gradient_norm);
    if (!regular) x_star_ = x;
    // f(x) = f(x*) + (x - x*)^T H (x - x*) / 2 exactly, up to grad f(x*)^T (x - x*), which the refined
    // solve makes negligible: a checkpoint costs a d x d product instead of streaming A (n x d).
    gram_values_ = regular && options_.evaluation == LeastSquaresOptions::Evaluation::automatic && d < n;
  } else if (known_f_star) {
    facts_.f_star = known_f_star;
    facts_.f_star_method = "given";
  }
  // Row-sampling variance at x*: E||a_i r_i - grad f(x*)||^2 = (1/n) sum ||a_i||^2 r_i^2 - ||grad f(x*)||^2.
  if (facts_.x_star_known && options_.oracle == LeastSquaresOptions::OracleKind::sampled) {
    const Vec r = A_ * x_star_ - b_;
    Vec g(d);
    gradient(x_star_, g);
    const double second = (A_.rowwise().squaredNorm().array() * r.array().square()).sum() / double(n);
    facts_.sigma2 = second - g.squaredNorm();
    if (auto extra = options_.noise.variance(d)) *facts_.sigma2 += *extra;
    else facts_.sigma2.reset();
  } else if (options_.oracle == LeastSquaresOptions::OracleKind::exact) {
    facts_.sigma2 = options_.noise.variance(d);
  }
}

double LeastSquares::smooth_value(ConstVecRef x) const {
  return 0.5 * (A_ * x - b_).squaredNorm() / double(A_.rows());
}

void LeastSquares::smooth_values(ConstMatRef X, VecRef out) const {
  if (gram_values_) {
    const Mat E = X.colwise() - x_star_;
    const Mat HE = H_ * E;
    out = (0.5 * E.cwiseProduct(HE).colwise().sum()).transpose().array() + *facts_.f_star;
    return;
  }
  // One matrix product for the whole block: A is streamed once, not once per iterate.
  Mat R = A_ * X;
  R.colwise() -= b_;
  out = (0.5 / double(A_.rows())) * R.colwise().squaredNorm().transpose();
}

void LeastSquares::gradient(ConstVecRef x, VecRef g) const {
  if (H_.size() != 0) {
    g.noalias() = H_ * x;
    g -= c_;
    return;
  }
  thread_local Vec residual;
  residual.resize(A_.rows());
  residual.noalias() = A_ * x;
  residual -= b_;
  g.noalias() = A_.transpose() * residual;
  g /= double(A_.rows());
}

// The plain oracle draws its rows from the sampling stream as it goes. Its fast paths (core/fast_paths.hpp)
// give the same bits faster: fused SGD steps over a segment, with the row indices of many steps drawn at
// once and each row prefetched ahead of its use (sampled rows), and the H X product of a lockstep group
// (exact oracle).
class LeastSquares::RowOracle final : public Oracle, public OracleFastPaths {
 public:
  RowOracle(const LeastSquares& p, RunStreams& streams)
      : p_(p),
        sampling_(streams.sampling),
        noise_stream_(streams.noise),
        noise_(p.options_.noise, p.dim()),
        row_of_step_(p.A_, streams.sampling) {
    if (p.options_.sampling == LeastSquaresOptions::Sampling::without_replacement) {
      permutation_.resize(std::size_t(p.A_.rows()));
      for (std::size_t i = 0; i < permutation_.size(); ++i) permutation_[i] = Eigen::Index(i);
      cursor_ = permutation_.size();  // the first call draws the first epoch's permutation
    }
    if (p.options_.oracle == LeastSquaresOptions::OracleKind::exact) lockstep_gradient_.resize(p.dim());
  }

  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    if (p_.options_.oracle == LeastSquaresOptions::OracleKind::exact) {
      p_.gradient(x, g);
    } else {
      for (int k = 0; k < batch; ++k) {
        const Eigen::Index i = next_row();
        const auto a = p_.A_.row(i);
        const double r = a.dot(x) - p_.b_[i];
        if (k == 0) g.noalias() = r * a.transpose();
        else g.noalias() += r * a.transpose();
      }
      if (batch > 1) g /= double(batch);
    }
    noise_.apply(g, batch, noise_stream_);
  }
  void report(RunStats& stats) const override { noise_.report(stats); }
  OracleFastPaths* fast_paths() override { return this; }

  // The step-by-step loop's arithmetic, x_j - eta * (r * a_ij), with row i of step t the first draw of the
  // sampling stream at step t (row_of_step_) and no per-step virtual call, seek or gradient vector.
  bool fused_sgd_steps(VecRef x, long t_first, long t_last, const Schedule& schedule) override {
    return has_fused_sgd() && (fused_sgd<false>(x, t_first, t_last, schedule, 0.0), true);
  }
  long fused_sgd_steps_checked(VecRef x, long t_first, long t_last, const Schedule& schedule,
                               double limit2) override {
    return has_fused_sgd() ? fused_sgd<true>(x, t_first, t_last, schedule, limit2) : -1;
  }

  // The runs of a lockstep group with the exact oracle: H X is one product that reads H once for all runs
  // (from L2, the cost of a single run's H x), then each run's step as in the step-by-step loop: g = H x - c,
  // the noise drawn from the run's noise stream at step t, x - eta g. Sampled rows gained nothing from
  // lockstep (their step is bound by the core's loads, which interleaving runs does not reduce; measured in
  // bench/README.md), so they keep fused_sgd_steps run by run.
  bool fused_sgd_steps_lockstep(std::span<Oracle* const> oracles, std::span<double* const> xs, long t_first,
                                long t_last, const Schedule& schedule) override {
    if (p_.options_.oracle != LeastSquaresOptions::OracleKind::exact || p_.H_.size() == 0 ||
        oracles.size() > kMaxLockstep)
      return false;
    std::array<RowOracle*, kMaxLockstep> group{};  // all of this class and problem (OracleFastPaths)
    for (std::size_t k = 0; k < oracles.size(); ++k) group[k] = static_cast<RowOracle*>(oracles[k]);
    const std::size_t m = oracles.size();
    const Eigen::Index d = p_.dim();
    std::array<double*, kMaxLockstep> gs{};
    for (std::size_t k = 0; k < m; ++k) gs[k] = group[k]->lockstep_gradient_.data();
    const std::span<const double* const> x_columns(xs.data(), m);
    for (long t = t_first; t <= t_last; ++t) {
      const double eta = schedule(t);
      gemv_columns_as_eigen(p_.H_, x_columns, {gs.data(), m});
      for (std::size_t k = 0; k < m; ++k) {
        RowOracle& o = *group[k];
        Eigen::Map<Vec> g(gs[k], d);
        g -= p_.c_;
        o.noise_stream_.seek(std::uint64_t(t));
        o.noise_.apply(g, 1, o.noise_stream_);
        Eigen::Map<Vec>(xs[k], d) -= eta * g;
      }
    }
    return true;
  }

 private:
  bool has_fused_sgd() const {
    return p_.options_.oracle == LeastSquaresOptions::OracleKind::sampled && permutation_.empty() && !noise_.active();
  }
  // With Checked, returns the first step whose iterate fails the divergence check, or 0
  // (OracleFastPaths::fused_sgd_steps_checked), its squared norm summed in the update pass.
  template <bool Checked>
  long fused_sgd(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2) {
    const ConstVecRef xc = x;  // the dot product as sample_gradient computes it
    double* xd = x.data();
    const Eigen::Index d = x.size();
    Eigen::Index i = row_of_step_(std::uint64_t(t_first));
    double r = p_.A_.row(i).dot(xc) - p_.b_[i];
    for (long t = t_first;; ++t) {
      const double eta = schedule(t);
      const double* ad = p_.A_.row(i).data();
      if (t == t_last) {
        if constexpr (Checked) {
          const double norm2 = packet_passes::sweep_and_sum<1>(d, [&]<class T>(Eigen::Index j, T* terms) {
            using namespace Eigen::internal;
            const T xj = psub(ploadu<T>(xd + j), pmul(pset1<T>(eta), pmul(pset1<T>(r), ploadu<T>(ad + j))));
            pstoreu(xd + j, xj);
            terms[0] = pmul(xj, xj);
          })[0];
          if (!(norm2 <= limit2)) return t;
        } else {
          for (Eigen::Index j = 0; j < d; ++j) xd[j] -= eta * (r * ad[j]);
        }
        return 0;
      }
      // The update of step t and the dot product of step t + 1 in one pass: x is read once per step.
      const Eigen::Index next = row_of_step_(std::uint64_t(t + 1));
      if constexpr (Checked) {
        const double* next_row = p_.A_.row(next).data();
        const auto [dot, norm2] = packet_passes::two_wide::kTwoWideIsEigensOrder
                                      ? least_squares_kernels::update_then_dot_and_norm_two_wide(xd, ad, eta, r, next_row, d)
                                      : least_squares_kernels::update_then_dot<true>(xd, ad, eta, r, next_row, d);
        if (!(norm2 <= limit2)) return t;
        r = dot - p_.b_[next];
      } else {
        r = least_squares_kernels::update_then_dot(xd, ad, eta, r, p_.A_.row(next).data(), d) - p_.b_[next];
      }
      i = next;
    }
  }

  Eigen::Index next_row() {
    if (permutation_.empty()) return Eigen::Index(sampling_.below(std::uint64_t(p_.A_.rows())));
    if (cursor_ == permutation_.size()) {
      // Fisher-Yates with the sampling stream of the step at which the epoch starts.
      for (std::size_t i = permutation_.size() - 1; i > 0; --i)
        std::swap(permutation_[i], permutation_[sampling_.below(i + 1)]);
      cursor_ = 0;
    }
    return permutation_[cursor_++];
  }

  const LeastSquares& p_;
  RandomStream& sampling_;
  RandomStream& noise_stream_;
  GradientNoise noise_;
  std::vector<Eigen::Index> permutation_;
  std::size_t cursor_ = 0;
  StepRows row_of_step_;  // the row of each step for the fused steps
  Vec lockstep_gradient_;  // g of this run in a lockstep group with the exact oracle
};

std::unique_ptr<Oracle> LeastSquares::make_oracle(RunStreams& streams) const {
  return std::make_unique<RowOracle>(*this, streams);
}

}  // namespace ratelab

using ratelab::LeastSquaresOptions;
using ratelab::QuantizableLeastSquares;  // LeastSquares, wrapped when problem.quantized_weights is set
RATELAB_REGISTER_PROBLEM(least_squares, QuantizableLeastSquares, LeastSquaresOptions,
                         "least squares (1/(2n))||Ax - b||^2, Gaussian or data-set A, row-sampling oracle")
