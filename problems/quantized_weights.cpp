#include "problems/quantized_weights.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/registry.hpp"
#include "problems/least_squares.hpp"

namespace ratelab {

ParamTable<QuantizedWeightsOptions> QuantizedWeightsOptions::params() {
  using O = QuantizedWeightsOptions;
  return ParamTable<O>{
      choice(&O::kind, "quantized_weights",
             {{"none", Kind::none}, {"binary", Kind::binary}, {"ternary", Kind::ternary}, {"bits", Kind::bits}},
             "weights restricted to Q: none | binary {-a,a} | ternary {-a,0,a} | bits (2^b-level grid on [-a,a]); "
             "gradients at Proj_Q(w), float weights updated (BinaryConnect)"),
      param(&O::bits, "weight_bits", in_closed(1, 8), "b for quantized_weights = bits"),
      choice(&O::scale_mode, "weight_scale_mode", {{"fixed", Scale::fixed}, {"fitted", Scale::fitted}},
             "a fixed (weight_scale), or fitted to w_f at every projection (binary: mean|w|; ternary: TWN; "
             "bits: max|w|)"),
      param(&O::scale, "weight_scale", positive(), "a, the largest weight level, for weight_scale_mode = fixed"),
      param(&O::clip, "weight_clip", nonnegative(),
            "c > 0: float weights clipped to [-c, c] after each step (BinaryConnect) by optimizers that apply the "
            "problem's prox (prox_sgd); 0: no clip"),
  };
}

void QuantizedWeightsOptions::validate() const {
  if (clip > 0.0 && kind == Kind::none)
    throw ConfigError("problem.weight_clip = " + std::to_string(clip) +
                      " needs problem.quantized_weights (binary, ternary or bits); remove it or set one");
}

WeightQuantizer::WeightQuantizer(const QuantizedWeightsOptions& options) : options_(options) {
  using K = QuantizedWeightsOptions::Kind;
  switch (options.kind) {
    case K::none: break;
    case K::binary: unit_levels_ = {-1.0, 1.0}; break;
    case K::ternary: unit_levels_ = {-1.0, 0.0, 1.0}; break;
    case K::bits: {
      const long count = 1L << options.bits;
      for (long k = 0; k < count; ++k) unit_levels_.push_back(double(2 * k - (count - 1)) / double(count - 1));
      break;
    }
  }
}

std::vector<double> WeightQuantizer::levels(double a) const {
  std::vector<double> out = unit_levels_;
  for (double& v : out) v *= a;
  return out;
}

double WeightQuantizer::fitted_scale(ConstVecRef w) const {
  using K = QuantizedWeightsOptions::Kind;
  const double mean_abs = w.size() ? w.cwiseAbs().mean() : 0.0;
  switch (options_.kind) {
    case K::none: return 1.0;
    case K::binary: return mean_abs;
    case K::ternary: {
      const double threshold = 0.7 * mean_abs;
      double sum = 0.0;
      long count = 0;
      for (Eigen::Index i = 0; i < w.size(); ++i)
        if (std::abs(w[i]) > threshold) sum += std::abs(w[i]), ++count;
      return count ? sum / double(count) : 0.0;
    }
    case K::bits: return w.size() ? w.cwiseAbs().maxCoeff() : 0.0;
  }
  return 1.0;
}

void WeightQuantizer::project(ConstVecRef w, VecRef out) const {
  using K = QuantizedWeightsOptions::Kind;
  if (options_.kind == K::none) {
    out = w;
    return;
  }
  const bool fitted = options_.scale_mode == QuantizedWeightsOptions::Scale::fitted;
  const double a = fitted ? fitted_scale(w) : options_.scale;
  if (!(a > 0.0)) {  // all weights zero: the fitted scale is 0 and every level collapses to 0
    out.setZero();
    return;
  }
  if (options_.kind == K::ternary && fitted) {  // TWN: zero below the threshold, not at a/2
    const double threshold = 0.7 * w.cwiseAbs().mean();
    for (Eigen::Index i = 0; i < w.size(); ++i) out[i] = std::abs(w[i]) > threshold ? std::copysign(a, w[i]) : 0.0;
    return;
  }
  // Uniform levels at spacing step = 2a / (L - 1) from -a: the nearest one is a rounding, clamped.
  const double L = double(unit_levels_.size());
  const double step = 2.0 * a / (L - 1.0);
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    double k = std::ceil((w[i] + a) / step - 0.5);  // ties (exact half steps) go to the lower level
    k = std::clamp(k, 0.0, L - 1.0);
    out[i] = -a + k * step;
  }
}

std::string WeightQuantizer::describe() const {
  using K = QuantizedWeightsOptions::Kind;
  const char* names[] = {"none", "binary", "ternary", "bits"};
  std::string s = names[int(options_.kind)];
  if (options_.kind == K::bits) s += std::to_string(options_.bits);
  return s;
}

std::size_t enumeration_size(std::size_t levels, Eigen::Index n, std::size_t cap) {
  if (n > 16 || levels == 0) return 0;
  std::size_t total = 1;
  for (Eigen::Index i = 0; i < n; ++i) {
    total *= levels;
    if (total > cap) return 0;
  }
  return total;
}

namespace {

// Reflected mixed-radix Gray code: each next point changes one digit by +-1 (Knuth, TAOCP 7.2.1.1).
template <class First, class Change>
void gray_visit(const std::vector<double>& levels, Eigen::Index n, First&& first, Change&& change) {
  const int r = int(levels.size());
  std::vector<int> digit(std::size_t(n), 0), direction(std::size_t(n), 1);
  Vec w = Vec::Constant(n, levels[0]);
  first(w);
  for (;;) {
    Eigen::Index j = 0;
    for (; j < n; ++j) {
      const int next = digit[std::size_t(j)] + direction[std::size_t(j)];
      if (next >= 0 && next < r) {
        const double old = w[j];
        digit[std::size_t(j)] = next;
        w[j] = levels[std::size_t(next)];
        change(j, old, w);
        break;
      }
      direction[std::size_t(j)] = -direction[std::size_t(j)];
    }
    if (j == n) return;
  }
}

}  // namespace

void enumerate_gray(const std::vector<double>& levels, Eigen::Index n, const std::function<void(const Vec&)>& first,
                    const std::function<void(Eigen::Index, double, const Vec&)>& change) {
  gray_visit(levels, n, first, change);
}

Vec enumerate_quadratic_minimum(const Mat& H, const Vec& c, const std::vector<double>& levels, double& best_value) {
  const Eigen::Index n = c.size();
  Vec Hw, best;
  double value = 0.0;
  best_value = std::numeric_limits<double>::infinity();
  auto consider = [&](const Vec& w) {
    if (value < best_value) best_value = value, best = w;
  };
  gray_visit(
      levels, n,
      [&](const Vec& w) {
        Hw = H * w;
        value = 0.5 * w.dot(Hw) - c.dot(w);
        consider(w);
      },
      [&](Eigen::Index i, double old, const Vec& w) {
        // f(w + delta e_i) = f(w) + delta (H w - c)_i + (1/2) delta^2 H_ii
        const double delta = w[i] - old;
        value += delta * (Hw[i] - c[i]) + 0.5 * delta * delta * H(i, i);
        Hw.noalias() += delta * H.col(i);
        consider(w);
      });
  // The running value accumulates rounding over up to 5e7 updates: recompute the winner's exactly.
  best_value = 0.5 * best.dot(H * best) - c.dot(best);
  return best;
}

Vec enumerate_max_cosine(const Vec& u, const std::vector<double>& levels, double& best_cosine) {
  const Eigen::Index n = u.size();
  double dot = 0.0, norm2 = 0.0;
  Vec best;
  best_cosine = -std::numeric_limits<double>::infinity();
  const double unorm = u.norm();
  auto consider = [&](const Vec& w) {
    if (norm2 <= 0.0) return;
    const double cosine = dot / (std::sqrt(norm2) * unorm);
    if (cosine > best_cosine + 1e-14) best_cosine = cosine, best = w;
  };
  gray_visit(
      levels, n,
      [&](const Vec& w) {
        dot = w.dot(u);
        norm2 = w.squaredNorm();
        consider(w);
      },
      [&](Eigen::Index i, double old, const Vec& w) {
        dot += (w[i] - old) * u[i];
        norm2 += w[i] * w[i] - old * old;
        consider(w);
      });
  best_cosine = best.dot(u) / (best.norm() * unorm);
  return best;
}

// ---- WeightQuantizedProblem --------------------------------------------------------------------------

WeightQuantizedProblem::WeightQuantizedProblem(std::shared_ptr<const Problem> inner,
                                               const QuantizedWeightsOptions& options, const Quadratic* quadratic)
    : inner_(std::move(inner)), quantizer_(options) {
  options.validate();
  if (!quantizer_.active()) return;
  if (inner_->is_composite())
    throw ConfigError("problem.quantized_weights = " + quantizer_.describe() +
                      " cannot be combined with a regularizer (the discrete problem has no prox); set "
                      "problem.regularizer = none");
  facts_ = ProblemFacts{};  // L, mu, x* of the float problem do not describe the discrete one
  facts_.f_star_method = "unknown";
  const bool fixed = options.scale_mode == QuantizedWeightsOptions::Scale::fixed;
  const std::vector<double> levels = quantizer_.levels(options.scale);
  if (quadratic && fixed && enumeration_size(levels.size(), dim()) > 0) {
    double best = 0.0;
    discrete_optimum_ = enumerate_quadratic_minimum(quadratic->H, quadratic->c, levels, best);
    facts_.f_star = best + quadratic->constant;
    facts_.f_star_method = "enumeration of Q^" + std::to_string(dim()) + " (" + quantizer_.describe() + ")";
  }
}

double WeightQuantizedProblem::value(ConstVecRef x) const {
  if (!quantizer_.active()) return inner_->value(x);
  Vec q(x.size());
  quantizer_.project(x, q);
  return inner_->value(q);
}

void WeightQuantizedProblem::values(ConstMatRef X, VecRef out) const {
  if (!quantizer_.active()) return inner_->values(X, out);
  Mat Q(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) quantizer_.project(X.col(j), Q.col(j));
  inner_->values(Q, out);
}

RunStats WeightQuantizedProblem::instance_stats() const {
  RunStats stats = inner_->instance_stats();
  if (quantizer_.active() && !has_discrete_optimum() && quantizer_.options().scale_mode ==
                                                            QuantizedWeightsOptions::Scale::fixed)
    stats.emplace_back("discrete_optimum_enumerated", 0.0);
  return stats;
}

std::vector<std::string> WeightQuantizedProblem::extra_metric_names() const {
  if (!has_discrete_optimum()) return inner_->extra_metric_names();
  std::vector<std::string> names = inner_->extra_metric_names();
  names.push_back("at_discrete_optimum");
  return names;
}

void WeightQuantizedProblem::extra_metrics(ConstMatRef X, MatRef out) const {
  const Eigen::Index inner_count = Eigen::Index(inner_->extra_metric_names().size());
  Mat Q(X.rows(), X.cols());
  for (Eigen::Index j = 0; j < X.cols(); ++j) quantizer_.project(X.col(j), Q.col(j));
  if (inner_count > 0) inner_->extra_metrics(Q, out.topRows(inner_count));
  if (!has_discrete_optimum()) return;
  for (Eigen::Index j = 0; j < X.cols(); ++j) out(inner_count, j) = Q.col(j) == discrete_optimum_ ? 1.0 : 0.0;
}

class WeightQuantizedProblem::QuantizedOracle final : public Oracle {
 public:
  QuantizedOracle(const WeightQuantizedProblem& p, RunStreams& streams)
      : p_(p), inner_(p.inner_->make_oracle(streams)), wq_(p.dim()) {}
  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    p_.quantizer_.project(x, wq_);
    if (p_.has_discrete_optimum()) {
      ++calls_;
      if (wq_ == p_.discrete_optimum_) ++at_optimum_;
    }
    inner_->sample_gradient(wq_, g, batch);
  }
  void report(RunStats& stats) const override {
    inner_->report(stats);
    if (p_.has_discrete_optimum() && calls_ > 0)
      stats.emplace_back("discrete_optimum_fraction", double(at_optimum_) / double(calls_));
  }

 private:
  const WeightQuantizedProblem& p_;
  std::unique_ptr<Oracle> inner_;
  Vec wq_;
  long calls_ = 0, at_optimum_ = 0;
};

std::unique_ptr<Oracle> WeightQuantizedProblem::make_oracle(RunStreams& streams) const {
  if (!quantizer_.active()) return inner_->make_oracle(streams);
  return std::make_unique<QuantizedOracle>(*this, streams);
}

namespace {
std::shared_ptr<const LeastSquares> make_least_squares(const LeastSquaresOptions& options, ProblemContext& ctx) {
  return std::make_shared<const LeastSquares>(options, ctx);
}
WeightQuantizedProblem::Quadratic least_squares_quadratic(const LeastSquares& ls) {
  const double n = double(ls.A().rows());
  WeightQuantizedProblem::Quadratic q;
  q.H.noalias() = ls.A().transpose() * ls.A() / n;
  q.c.noalias() = ls.A().transpose() * ls.b() / n;
  q.constant = ls.b().squaredNorm() / (2.0 * n);
  return q;
}
}  // namespace

QuantizableLeastSquares::QuantizableLeastSquares(const LeastSquaresOptions& options, ProblemContext& ctx)
    : QuantizableLeastSquares(make_least_squares(options, ctx), options.quantized_weights) {}

QuantizableLeastSquares::QuantizableLeastSquares(std::shared_ptr<const LeastSquares> ls,
                                                 const QuantizedWeightsOptions& q)
    : WeightQuantizedProblem(ls, q, q.active() ? std::make_unique<Quadratic>(least_squares_quadratic(*ls)).get()
                                               : nullptr) {}

}  // namespace ratelab
