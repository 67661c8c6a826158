// Regularized logistic and multinomial (softmax) regression, the standard smooth finite-sum problems
// (e.g. Bottou, Curtis & Nocedal, "Optimization methods for large-scale machine learning", SIAM Review 2018).
//
// logistic: f(x) = (1/n) sum_i log(1 + exp(-y_i a_i^T x)) + (lambda/2) ||x||^2, y_i in {-1, +1}.
//   Synthetic (instance stream): a_i ~ N(0, I_d), teacher w ~ uniform on the unit sphere,
//   P(y_i = +1) = sigmoid(separability * a_i^T w): large separability approaches separable data.
//   Or a two-class data set (labels mapped to -1/+1 in increasing order).
//   L = lambda_max(A^T A / n) / 4 + lambda, mu = lambda.
// softmax: W in R^{d x K} stored column-major as x = vec(W),
//   f(W) = (1/n) sum_i [log sum_k exp(w_k^T a_i) - w_{y_i}^T a_i] + (lambda/2) ||W||_F^2.
//   Synthetic: a_i ~ N(0, I_d), teacher columns ~ N(0, I_d / d), y_i ~ softmax(separability * W*^T a_i).
//   Or a data set with K classes (labels mapped to 0..K-1). L <= lambda_max(A^T A / n) / 2 + lambda
//   (the softmax Jacobian diag(p) - p p^T has norm at most 1/2), mu = lambda.
// Oracle: B examples uniform with replacement from the sampling stream, the average of their gradients
// plus the lambda term, plus the gradient-noise model. f* and x* by Newton's method with backtracking
// (Armijo) until ||grad f|| < 1e-12 (or the attained norm is recorded); with a regularizer, FISTA.
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cmath>
#include <cstdio>

#include "core/fast_paths.hpp"
#include "core/packet_passes.hpp"
#include "core/registry.hpp"
#include "problems/composite.hpp"
#include "problems/data.hpp"
#include "problems/noise.hpp"
#include "problems/solution_cache.hpp"
#include "problems/step_rows.hpp"

namespace ratelab {
namespace {

double softplus(double z) { return z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z)); }
double sigmoid(double z) {
  if (z >= 0) return 1.0 / (1.0 + std::exp(-z));
  const double e = std::exp(z);
  return e / (1.0 + e);
}

// One options struct for both problems; `Multiclass` only decides whether `classes` is a parameter.
template <bool Multiclass>
struct ClassificationOptions {
  long n = 1000;
  long d = 20;
  long classes = 3;  // softmax only
  double separability = 5.0;
  double lambda = 1e-3;
  std::string dataset;
  bool standardize = true;
  bool intercept = false;
  NoiseOptions noise;
  RegularizerOptions regularizer;
  static ParamTable<ClassificationOptions> params();
};

template <bool Multiclass>
ParamTable<ClassificationOptions<Multiclass>> ClassificationOptions<Multiclass>::params() {
  using O = ClassificationOptions<Multiclass>;
  const bool multiclass = Multiclass;
  std::vector<Field<O>> fields{
      param(&O::n, "n", at_least(1), "number of examples (synthetic)"),
      param(&O::d, "d", at_least(1), "number of features (synthetic)"),
  };
  if (multiclass) fields.push_back(param(&O::classes, "classes", at_least(2), "number of classes (synthetic)"));
  fields.push_back(param(&O::separability, "separability", nonnegative(),
                         "labels drawn from the teacher's probabilities at this inverse temperature (synthetic)"));
  fields.push_back(param(&O::lambda, "lambda", positive(), "l2 weight (lambda/2)||x||^2; > 0 makes x* unique"));
  fields.push_back(param(&O::dataset, "dataset", unconstrained(),
                         multiclass ? "digits | path to a LIBSVM or .csv file; empty: synthetic"
                                    : "breast_cancer | path to a two-class LIBSVM or .csv file; empty: synthetic"));
  fields.push_back(param(&O::standardize, "standardize", unconstrained(), "standardize the data set's features"));
  fields.push_back(param(&O::intercept, "intercept", unconstrained(), "append a constant-1 feature"));
  return ParamTable<O>(fields).with(&O::noise, NoiseOptions::params()).with(&O::regularizer, RegularizerOptions::params());
}

using LogisticOptions = ClassificationOptions<false>;
using SoftmaxOptions = ClassificationOptions<true>;

template <bool Multiclass>
void validate(const ClassificationOptions<Multiclass>& o) {
  if (o.dataset.empty() && o.intercept)
    throw ConfigError("problem.intercept = true applies to data sets only; set problem.dataset or remove it");
}

template <bool Multiclass>
Dataset load_features(const ClassificationOptions<Multiclass>& o, ProblemContext& ctx) {
  Dataset data = load_dataset(o.dataset, ctx.data_directory, o.standardize);
  if (o.intercept) {
    RowMat X(data.X.rows(), data.X.cols() + 1);
    X << data.X, RowMat::Ones(data.X.rows(), 1);
    data.X = std::move(X);
  }
  return data;
}

// The cache key of a data-set problem's Newton solve: everything its x* depends on besides the data and
// the build (problem, lambda, preprocessing, the solver); no key (no cache) for synthetic instances.
template <bool Multiclass>
SolutionCacheKey newton_cache_key(const ClassificationOptions<Multiclass>& o, const ProblemContext& ctx) {
  if (o.dataset.empty()) return {};
  char lambda[40];
  std::snprintf(lambda, sizeof lambda, "%a", o.lambda);
  return {dataset_files(o.dataset, ctx.data_directory),
          std::string(Multiclass ? "softmax" : "logistic") + " dataset=" + o.dataset + " lambda=" + lambda +
              " standardize=" + (o.standardize ? "1" : "0") + " intercept=" + (o.intercept ? "1" : "0") +
              " solver=newton-armijo-1e-12",
          ctx.solution_cache_build};
}

double gram_lambda_max(const RowMat& A) {
  Mat G = Mat::Zero(A.cols(), A.cols());
  G.selfadjointView<Eigen::Lower>().rankUpdate(A.transpose(), 1.0 / double(A.rows()));
  Eigen::SelfAdjointEigenSolver<Mat> eig(G, Eigen::EigenvaluesOnly);
  return eig.eigenvalues().maxCoeff();
}

// Newton's method with Armijo backtracking on a smooth strongly convex problem; returns ||grad|| reached.
template <class Hessian>
double newton(const CompositeProblem& p, Vec& x, Hessian hessian, long& iterations) {
  const Eigen::Index d = p.dim();
  Vec g(d), g_trial(d), step(d), trial(d);
  Mat H(d, d);
  double gn = 0;
  for (iterations = 0; iterations < 200; ++iterations) {
    p.gradient(x, g);
    gn = g.norm();
    if (gn < 1e-12) break;
    hessian(x, H);
    step = H.ldlt().solve(-g);
    const double f0 = p.smooth_value(x), slope = g.dot(step);
    double t = 1.0;
    trial = x + step;
    // Near x* the decrease g^T H^-1 g falls below the rounding of f itself, so the full step is also
    // accepted when it reduces the gradient norm (the quantity the stopping rule measures).
    bool accept = p.smooth_value(trial) <= f0 + 1e-4 * slope;
    if (!accept) {
      p.gradient(trial, g_trial);
      accept = g_trial.norm() < 0.5 * gn;
    }
    while (!accept && t > 1e-12) {
      t *= 0.5;
      trial = x + t * step;
      accept = p.smooth_value(trial) <= f0 + 1e-4 * t * slope;
    }
    if (trial == x) break;  // no representable progress: rounding floor reached
    x = trial;
  }
  return gn;
}

// Shared by logistic and softmax: where Newton's method ended is x*, and how accurately is recorded.
class NewtonSolvedProblem : public CompositeProblem {
 protected:
  using CompositeProblem::CompositeProblem;
  // x* from `solve(x, iterations)` (Newton from x = 0; returns ||grad||), or, for a data set, from the
  // on-disk cache of an earlier solve by this build (problems/solution_cache.hpp): the same bits either way.
  template <class Solve>
  void solve_or_read_cache(const SolutionCacheKey& key, Eigen::Index dim, Solve solve) {
    if (auto cached = read_cached_solution(key); cached && cached->x.size() == dim) {
      record_newton_solution(cached->x, cached->gradient_norm, cached->iterations);
      return;
    }
    Vec x = Vec::Zero(dim);
    long iterations = 0;
    const double gn = solve(x, iterations);
    record_newton_solution(x, gn, iterations);
    write_cached_solution(key, {x, gn, iterations});
  }
  void record_newton_solution(const Vec& x, double gradient_norm, long iterations) {
    x_star_ = x;
    facts_.f_star = smooth_value(x);
    facts_.x_star_known = true;
    char buf[160];
    std::snprintf(buf, sizeof buf, "newton (armijo), ||grad|| = %.3g after %ld iterations", gradient_norm, iterations);
    facts_.f_star_method = buf;
    instance_stats_.emplace_back("f_star_gradient_norm", gradient_norm);
  }
};

class Logistic final : public NewtonSolvedProblem {
 public:
  Logistic(const LogisticOptions& o, ProblemContext& ctx) : NewtonSolvedProblem(o.regularizer), options_(o) {
    validate(o);
    if (o.dataset.empty()) {
      RandomStream& rng = ctx.instance;
      A_.resize(o.n, o.d);
      for (long i = 0; i < o.n; ++i)
        for (long j = 0; j < o.d; ++j) A_(i, j) = rng.normal();
      Vec w(o.d);
      for (long j = 0; j < o.d; ++j) w[j] = rng.normal();
      w /= w.norm();
      y_.resize(o.n);
      for (long i = 0; i < o.n; ++i)
        y_[i] = rng.uniform() < sigmoid(o.separability * A_.row(i).dot(w)) ? 1.0 : -1.0;
    } else {
      Dataset data = load_features(o, ctx);
      if (index_labels(data.y) != 2)
        throw ConfigError("problem.dataset = '" + o.dataset + "' does not have exactly two classes; logistic needs two "
                          "(use softmax for more)");
      A_ = std::move(data.X);
      y_ = 2.0 * data.y.array() - 1.0;
    }
    const double n = double(A_.rows());
    facts_.L = gram_lambda_max(A_) / 4.0 + o.lambda;
    facts_.mu = o.lambda;
    if (regularizer_.active()) {
      solve_composite(*facts_.L);
      return;
    }
    solve_or_read_cache(newton_cache_key(o, ctx), A_.cols(), [&](Vec& x, long& iterations) {
      return newton(*this, x,
                             [&](const Vec& at, Mat& H) {
                               const Vec m = A_ * at;
                               Vec w(A_.rows());
                               for (Eigen::Index i = 0; i < A_.rows(); ++i) {
                                 const double s = sigmoid(y_[i] * m[i]);
                                 w[i] = s * (1 - s) / n;
                               }
                               H = A_.transpose() * w.asDiagonal() * A_;
                               H.diagonal().array() += options_.lambda;
                             },
                             iterations);
    });
    const Vec& x = x_star_;
    // One-example variance at x*: the per-example loss gradients l_i a_i around their mean.
    const Vec m = A_ * x;
    Vec mean = Vec::Zero(A_.cols());
    double second = 0;
    for (Eigen::Index i = 0; i < A_.rows(); ++i) {
      const double l = -y_[i] * sigmoid(-y_[i] * m[i]);
      mean += l * A_.row(i).transpose() / n;
      second += l * l * A_.row(i).squaredNorm() / n;
    }
    facts_.sigma2 = second - mean.squaredNorm();
    if (auto extra = o.noise.variance(dim())) *facts_.sigma2 += *extra;
    else facts_.sigma2.reset();
  }

  Eigen::Index dim() const override { return A_.cols(); }
  double evaluation_cost() const override { return double(A_.rows()); }  // F streams the n rows
  double smooth_value(ConstVecRef x) const override {
    const Vec m = A_ * x;
    double s = 0;
    for (Eigen::Index i = 0; i < m.size(); ++i) s += softplus(-y_[i] * m[i]);
    return s / double(A_.rows()) + 0.5 * options_.lambda * x.squaredNorm();
  }
  void smooth_values(ConstMatRef X, VecRef out) const override {
    const Mat M = A_ * X;  // one pass over A for the block
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      double s = 0;
      for (Eigen::Index i = 0; i < M.rows(); ++i) s += softplus(-y_[i] * M(i, j));
      out[j] = s / double(A_.rows()) + 0.5 * options_.lambda * X.col(j).squaredNorm();
    }
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    thread_local Vec w;
    w.resize(A_.rows());
    w.noalias() = A_ * x;
    for (Eigen::Index i = 0; i < w.size(); ++i) w[i] = -y_[i] * sigmoid(-y_[i] * w[i]) / double(A_.rows());
    g.noalias() = A_.transpose() * w;
    g += options_.lambda * x;
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<SampleOracle>(*this, streams);
  }

 private:
  // Its fast paths (core/fast_paths.hpp) give the plain path's bits without noise: with batch 1 the
  // gradient is lambda x + coef a_i, coef = -y_i sigmoid(-y_i a_i . x), so a step needs one pass over x for
  // the dot product and one for the update (fused SGD: the update of step t and the dot product of step t + 1
  // in the same pass, the divergence check's squared norm too).
  class SampleOracle final : public Oracle, public OracleFastPaths {
   public:
    SampleOracle(const Logistic& p, RunStreams& s)
        : p_(p),
          sampling_(s.sampling),
          noise_stream_(s.noise),
          noise_(p.options_.noise, p.dim()),
          row_of_step_(p.A_, s.sampling) {}
    void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
      g = p_.options_.lambda * x;
      const double w = 1.0 / double(batch);
      for (int b = 0; b < batch; ++b) {
        const Eigen::Index i = Eigen::Index(sampling_.below(std::uint64_t(p_.A_.rows())));
        const auto a = p_.A_.row(i);
        const double yi = p_.y_[i];
        g.noalias() += (-w * yi * sigmoid(-yi * a.dot(x))) * a.transpose();
      }
      noise_.apply(g, batch, noise_stream_);
    }
    void report(RunStats& stats) const override { noise_.report(stats); }
    OracleFastPaths* fast_paths() override { return this; }

    const double* gradient_row(long t) override {
      return noise_.active() ? nullptr : p_.A_.row(row_of_step_(std::uint64_t(t))).data();
    }
    void row_gradient_of_dot(long t, double dot, RowGradient& out) override {
      const Eigen::Index i = row_of_step_(std::uint64_t(t));
      out = {p_.A_.row(i).data(), coefficient(i, dot), p_.options_.lambda,
             p_.A_.row(row_of_step_(std::uint64_t(t + 1))).data()};
    }
    bool fused_sgd_steps(VecRef x, long t_first, long t_last, const Schedule& schedule) override {
      return !noise_.active() && (fused_sgd<false>(x, t_first, t_last, schedule, 0.0), true);
    }
    long fused_sgd_steps_checked(VecRef x, long t_first, long t_last, const Schedule& schedule,
                                 double limit2) override {
      return noise_.active() ? -1 : fused_sgd<true>(x, t_first, t_last, schedule, limit2);
    }

   private:
    // sample_gradient's coefficient of a_i with batch 1 (w = 1), given a_i . x.
    double coefficient(Eigen::Index i, double dot) const {
      const double yi = p_.y_[i];
      return -yi * sigmoid(-yi * dot);
    }
    // x_j - eta (lambda x_j + coef a_j), the arithmetic of sample_gradient and sgd's x -= eta g; with Checked,
    // returns the first step whose iterate fails the check, or 0 (OracleFastPaths::fused_sgd_steps_checked).
    template <bool Checked>
    long fused_sgd(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2) {
      using namespace Eigen::internal;
      const ConstVecRef xc = x;  // the dot product as sample_gradient computes it
      double* xd = x.data();
      const Eigen::Index d = x.size();
      const double lambda = p_.options_.lambda;
      Eigen::Index i = row_of_step_(std::uint64_t(t_first));
      double dot = p_.A_.row(i).dot(xc);
      for (long t = t_first;; ++t) {
        const double eta = schedule(t), coef = coefficient(i, dot);
        const double* a = p_.A_.row(i).data();
        const Eigen::Index next = t == t_last ? i : row_of_step_(std::uint64_t(t + 1));
        const double* an = p_.A_.row(next).data();
        // The update of step t and the dot product of step t + 1 (and the squared norm) in one pass.
        const auto sums = packet_passes::sweep_and_sum<Checked ? 2 : 1>(d, [&]<class T>(Eigen::Index j, T* terms) {
          const T xj = ploadu<T>(xd + j);
          const T g = padd(pmul(pset1<T>(lambda), xj), pmul(pset1<T>(coef), ploadu<T>(a + j)));
          const T xn = psub(xj, pmul(pset1<T>(eta), g));
          pstoreu(xd + j, xn);
          if constexpr (Checked) terms[0] = pmul(ploadu<T>(an + j), xn), terms[1] = pmul(xn, xn);
          else terms[0] = pmul(ploadu<T>(an + j), xn);
        });
        if constexpr (Checked)
          if (!(sums[1] <= limit2)) return t;
        if (t == t_last) return 0;
        dot = sums[0];
        i = next;
      }
    }

    const Logistic& p_;
    RandomStream& sampling_;
    RandomStream& noise_stream_;
    GradientNoise noise_;
    StepRows row_of_step_;  // the row of each step for the fast paths
  };

  LogisticOptions options_;
  RowMat A_;
  Vec y_;
};

// One column of softmax's fused SGD update: w_j <- w_j - eta (lambda w_j + z a_j) for j < d, the arithmetic
// of sample_gradient and sgd's x -= eta g element by element; returns the sum of the new w_j^2 in eight
// interleaved partial sums, an order of its own (packet_passes::squared_norm_within decides the check). Plain
// loops the compiler vectorizes, compiled for AVX2 too and chosen when the program loads where the CPU has
// it: an element-wise update has the same bits at any vector width (no multiply-add is contracted).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
double softmax_column_update(double* w, const double* a, double z, double eta, double lambda, Eigen::Index d) {
  double partial[8] = {};
  Eigen::Index j = 0;
  for (; j + 8 <= d; j += 8)
    for (int l = 0; l < 8; ++l) {
      const double wn = w[j + l] - eta * (lambda * w[j + l] + z * a[j + l]);
      w[j + l] = wn;
      partial[l] += wn * wn;
    }
  double tail = 0.0;
  for (; j < d; ++j) {
    const double wn = w[j] - eta * (lambda * w[j] + z * a[j]);
    w[j] = wn;
    tail += wn * wn;
  }
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + ((partial[4] + partial[5]) + (partial[6] + partial[7])) +
         tail;
}

class Softmax final : public NewtonSolvedProblem {
 public:
  Softmax(const SoftmaxOptions& o, ProblemContext& ctx) : NewtonSolvedProblem(o.regularizer), options_(o) {
    validate(o);
    if (o.dataset.empty()) {
      RandomStream& rng = ctx.instance;
      K_ = o.classes;
      A_.resize(o.n, o.d);
      for (long i = 0; i < o.n; ++i)
        for (long j = 0; j < o.d; ++j) A_(i, j) = rng.normal();
      Mat teacher(o.d, K_);
      for (long k = 0; k < K_; ++k)
        for (long j = 0; j < o.d; ++j) teacher(j, k) = rng.normal() / std::sqrt(double(o.d));
      labels_.resize(o.n);
      Vec logits(K_);
      for (long i = 0; i < o.n; ++i) {
        logits = o.separability * (teacher.transpose() * A_.row(i).transpose());
        const double u = rng.uniform();
        logits.array() = (logits.array() - logits.maxCoeff()).exp();
        double cumulative = 0;
        labels_[i] = int(K_ - 1);
        for (long k = 0; k < K_; ++k) {
          cumulative += logits[k] / logits.sum();
          if (u < cumulative) {
            labels_[i] = int(k);
            break;
          }
        }
      }
    } else {
      Dataset data = load_features(o, ctx);
      K_ = index_labels(data.y);
      if (K_ < 2)
        throw ConfigError("problem.dataset = '" + o.dataset + "' has a single class; softmax needs at least two");
      A_ = std::move(data.X);
      labels_.resize(A_.rows());
      for (Eigen::Index i = 0; i < A_.rows(); ++i) labels_[i] = int(data.y[i]);
    }
    d_ = A_.cols();
    const double n = double(A_.rows());
    facts_.L = gram_lambda_max(A_) / 2.0 + o.lambda;
    facts_.mu = o.lambda;
    if (regularizer_.active()) {
      solve_composite(*facts_.L);
      return;
    }
    solve_or_read_cache(newton_cache_key(o, ctx), d_ * K_, [&](Vec& x, long& iterations) {
      return newton(*this, x,
                             [&](const Vec& at, Mat& H) {
                               const Mat P = probabilities(at);  // n x K
                               H.setZero();
                               Vec c(A_.rows());
                               for (Eigen::Index k = 0; k < K_; ++k)
                                 for (Eigen::Index l = 0; l <= k; ++l) {
                                   c = -P.col(k).cwiseProduct(P.col(l));
                                   if (k == l) c += P.col(k);
                                   c /= n;
                                   H.block(k * d_, l * d_, d_, d_) = A_.transpose() * c.asDiagonal() * A_;
                                   if (k != l) H.block(l * d_, k * d_, d_, d_) = H.block(k * d_, l * d_, d_, d_).transpose();
                                 }
                               H.diagonal().array() += options_.lambda;
                             },
                             iterations);
    });
    const Vec& x = x_star_;
    // One-example variance at x*: per-example gradients a_i (p_i - e_{y_i})^T around their mean.
    Mat P = probabilities(x);
    for (Eigen::Index i = 0; i < P.rows(); ++i) P(i, labels_[i]) -= 1.0;
    const Mat mean = A_.transpose() * P / n;
    facts_.sigma2 = (A_.rowwise().squaredNorm().array() * P.rowwise().squaredNorm().array()).sum() / n -
                    mean.squaredNorm();
    if (auto extra = o.noise.variance(dim())) *facts_.sigma2 += *extra;
    else facts_.sigma2.reset();
  }

  Eigen::Index dim() const override { return d_ * K_; }
  double evaluation_cost() const override { return double(A_.rows()); }  // F streams the n rows
  long classes() const { return K_; }

  double smooth_value(ConstVecRef x) const override {
    const Eigen::Map<const Mat> W(x.data(), d_, K_);
    const Mat Z = A_ * W;  // n x K logits
    return loss(Z) + 0.5 * options_.lambda * x.squaredNorm();
  }
  void smooth_values(ConstMatRef X, VecRef out) const override {
    // The block of iterates as one d x (K m) matrix [W_1 ... W_m]: one product streams A once.
    const Mat packed = X;  // contiguous copy (X may have an outer stride)
    const Eigen::Map<const Mat> Ws(packed.data(), d_, K_ * X.cols());
    const Mat Z = A_ * Ws;
    for (Eigen::Index j = 0; j < X.cols(); ++j)
      out[j] = loss(Z.middleCols(j * K_, K_)) + 0.5 * options_.lambda * X.col(j).squaredNorm();
  }
  void gradient(ConstVecRef x, VecRef g) const override {
    Mat P = probabilities(x);
    for (Eigen::Index i = 0; i < P.rows(); ++i) P(i, labels_[i]) -= 1.0;
    Eigen::Map<Mat> G(g.data(), d_, K_);
    G.noalias() = A_.transpose() * P / double(A_.rows());
    g += options_.lambda * x;
  }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override {
    return std::make_unique<SampleOracle>(*this, streams);
  }

 private:
  Mat probabilities(ConstVecRef x) const {
    const Eigen::Map<const Mat> W(x.data(), d_, K_);
    Mat Z = A_ * W;
    for (Eigen::Index i = 0; i < Z.rows(); ++i) {
      Z.row(i).array() = (Z.row(i).array() - Z.row(i).maxCoeff()).exp();
      Z.row(i) /= Z.row(i).sum();
    }
    return Z;
  }
  template <class Logits>
  double loss(const Logits& Z) const {
    double s = 0;
    for (Eigen::Index i = 0; i < Z.rows(); ++i) {
      const double m = Z.row(i).maxCoeff();
      s += m + std::log((Z.row(i).array() - m).exp().sum()) - Z(i, labels_[i]);
    }
    return s / double(Z.rows());
  }

  // Its fused SGD steps (core/fast_paths.hpp) give the plain path's bits without noise: with batch 1 the
  // gradient is lambda x + vec(a_i z^T), so a step is the product z = W^T a_i (the same Eigen expression)
  // and one pass over x for the update and the divergence check's squared norm.
  class SampleOracle final : public Oracle, public OracleFastPaths {
   public:
    SampleOracle(const Softmax& p, RunStreams& s)
        : p_(p),
          sampling_(s.sampling),
          noise_stream_(s.noise),
          noise_(p.options_.noise, p.dim()),
          z_(p.K_),
          row_of_step_(p.A_, s.sampling) {}
    void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
      g = p_.options_.lambda * x;
      const Eigen::Map<const Mat> W(x.data(), p_.d_, p_.K_);
      Eigen::Map<Mat> G(g.data(), p_.d_, p_.K_);
      const double w = 1.0 / double(batch);
      for (int b = 0; b < batch; ++b) {
        const Eigen::Index i = Eigen::Index(sampling_.below(std::uint64_t(p_.A_.rows())));
        const auto a = p_.A_.row(i);
        z_.noalias() = W.transpose() * a.transpose();
        z_.array() = (z_.array() - z_.maxCoeff()).exp();
        z_ /= z_.sum();
        z_[p_.labels_[i]] -= 1.0;
        G.noalias() += w * a.transpose() * z_.transpose();
      }
      noise_.apply(g, batch, noise_stream_);
    }
    void report(RunStats& stats) const override { noise_.report(stats); }
    OracleFastPaths* fast_paths() override { return this; }

    bool fused_sgd_steps(VecRef x, long t_first, long t_last, const Schedule& schedule) override {
      return !noise_.active() && (fused_sgd<false>(x, t_first, t_last, schedule, 0.0), true);
    }
    long fused_sgd_steps_checked(VecRef x, long t_first, long t_last, const Schedule& schedule,
                                 double limit2) override {
      return noise_.active() ? -1 : fused_sgd<true>(x, t_first, t_last, schedule, limit2);
    }

   private:
    // x_{jk} - eta (lambda x_{jk} + z_k a_j) over x = vec(W) in storage order, the arithmetic of
    // sample_gradient (batch 1: w = 1, G += a z^T adds z_k a_j) and sgd's x -= eta g; with Checked, returns
    // the first step whose iterate fails the check, or 0 (OracleFastPaths::fused_sgd_steps_checked).
    template <bool Checked>
    long fused_sgd(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2) {
      const Eigen::Index d = p_.d_;
      const double lambda = p_.options_.lambda;
      double* xd = x.data();
      for (long t = t_first; t <= t_last; ++t) {
        const Eigen::Index i = row_of_step_(std::uint64_t(t));
        const auto a_row = p_.A_.row(i);
        {
          const Eigen::Map<const Mat> W(xd, d, p_.K_);
          z_.noalias() = W.transpose() * a_row.transpose();
        }
        z_.array() = (z_.array() - z_.maxCoeff()).exp();
        z_ /= z_.sum();
        z_[p_.labels_[i]] -= 1.0;
        const double eta = schedule(t);
        const double* a = a_row.data();
        // Column k of W is x[k d .. k d + d - 1].
        double norm2 = 0.0;
        for (Eigen::Index k = 0; k < p_.K_; ++k) norm2 += softmax_column_update(xd + k * d, a, z_[k], eta, lambda, d);
        if constexpr (Checked)
          if (!packet_passes::squared_norm_within(norm2, x, limit2)) return t;
      }
      return 0;
    }

    const Softmax& p_;
    RandomStream& sampling_;
    RandomStream& noise_stream_;
    GradientNoise noise_;
    Vec z_;
    StepRows row_of_step_;  // the row of each step for the fast paths
  };

  SoftmaxOptions options_;
  RowMat A_;
  std::vector<int> labels_;
  Eigen::Index d_ = 0, K_ = 0;
};

}  // namespace
}  // namespace ratelab

using ratelab::Logistic;
using ratelab::LogisticOptions;
using ratelab::Softmax;
using ratelab::SoftmaxOptions;
RATELAB_REGISTER_PROBLEM(logistic, Logistic, LogisticOptions,
                         "l2-regularized logistic regression, synthetic (teacher, separability) or a data set")
RATELAB_REGISTER_PROBLEM(softmax, Softmax, SoftmaxOptions,
                         "l2-regularized multinomial logistic regression, synthetic or a multi-class data set")
