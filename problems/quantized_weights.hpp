// Weight quantization for the coarse-gradient / BinaryConnect scheme (Courbariaux, Bengio & David,
// "BinaryConnect", NeurIPS 2015; Yin, Zhang, Lyu, Osher, Qi & Xin, "BinaryRelax", 2018; Long, Yin & Xin on
// the recurrence of the discrete optimum): the optimizer keeps float weights w_f, every gradient and every
// value is computed at w_q = Proj_Q(w_f), and the gradient at w_q updates w_f.
//
// Sets Q (`quantized_weights` option group):
//   none      Q = R^n
//   binary    {-a, +a}^n;             fitted: a = mean |w_f|            (XNOR-Net, Rastegari et al. 2016)
//   ternary   {-a, 0, +a}^n;          fitted: threshold D = 0.7 mean |w_f|, a = mean of |w_f,i| > D
//                                     (TWN, Li & Liu 2016); fixed a: the threshold is a/2 (nearest point)
//   bits      the uniform grid {a (2k - (2^b - 1)) / (2^b - 1), k = 0 .. 2^b - 1} (2^b levels in [-a, a],
//             no zero level); fitted: a = max |w_f|
// With a fixed scale, Proj_Q is the Euclidean projection (coordinate-wise nearest level; ties go to the
// lower level). The fitted scales are the usual heuristics, not exact projections. `weight_clip` = c > 0
// clips the float weights to [-c, c] as BinaryConnect does (as the problem's prox, so with prox_sgd; the
// objective value omits the box indicator, which is 0 at every prox_sgd iterate). Without it, on
// ste_two_layer with binary weights ||w_f|| grows without bound under a constant step (measured ~300-900
// after 10^4 sgd steps), which freezes Proj_Q(w_f).
//
// Discrete optimum: for n <= 16 coordinates and at most 5e7 points of Q^n, the global minimizer over Q^n
// (fixed scale) is found at set-up by exhaustive enumeration in mixed-radix Gray-code order, so that one
// coordinate changes per point and a quadratic objective is updated in O(n) per point.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/problem.hpp"

namespace ratelab {

struct QuantizedWeightsOptions {
  enum class Kind { none, binary, ternary, bits };
  enum class Scale { fixed, fitted };
  Kind kind = Kind::none;
  long bits = 2;
  Scale scale_mode = Scale::fixed;
  double scale = 1.0;  // a, for scale_mode = fixed
  double clip = 0.0;   // BinaryConnect clip of the float weights to [-clip, clip]; 0: none

  static ParamTable<QuantizedWeightsOptions> params();
  bool active() const { return kind != Kind::none; }
  // Throws ConfigError for weight_clip without quantization.
  void validate() const;
};

class WeightQuantizer {
 public:
  WeightQuantizer() = default;
  explicit WeightQuantizer(const QuantizedWeightsOptions& options);
  const QuantizedWeightsOptions& options() const { return options_; }
  bool active() const { return options_.active(); }
  // The levels of Q for one coordinate at scale a (increasing).
  std::vector<double> levels(double a) const;
  // out = Proj_Q(w); allocates nothing. `none` copies.
  void project(ConstVecRef w, VecRef out) const;
  double fitted_scale(ConstVecRef w) const;
  // BinaryConnect's clip w_f <- clamp(w_f, -c, c), offered to optimizers as the problem's prox (the prox of
  // the indicator of the box), so prox_sgd applies it after every step; plain sgd does not call prox.
  bool clips() const { return options_.clip > 0.0; }
  void clip(VecRef w) const { w = w.cwiseMax(-options_.clip).cwiseMin(options_.clip); }
  std::string describe() const;

 private:
  QuantizedWeightsOptions options_;
  std::vector<double> unit_levels_;  // levels at a = 1
};

// Number of points of levels^n, or 0 when it exceeds `cap` (or n > 16): then no enumeration is made.
std::size_t enumeration_size(std::size_t levels, Eigen::Index n, std::size_t cap = 50'000'000);

// Visits every point of levels^n in mixed-radix Gray-code order: first visit(w) with w = (levels[0], ...),
// then, for each next point, change(i, old_level_value, w) after coordinate i was changed in w.
void enumerate_gray(const std::vector<double>& levels, Eigen::Index n, const std::function<void(const Vec&)>& first,
                    const std::function<void(Eigen::Index, double, const Vec&)>& change);

// argmin over Q^n of (1/2) w^T H w - c^T w by exhaustive Gray-code enumeration; returns the minimizer, and
// the minimum of the quadratic in `best_value`. Ties keep the first point found.
Vec enumerate_quadratic_minimum(const Mat& H, const Vec& c, const std::vector<double>& levels, double& best_value);

// argmax over nonzero w in Q^n of the cosine of the angle between w and u (the discrete optimum of a
// loss that depends on w only through its angle with u); returns the maximizer and the cosine.
Vec enumerate_max_cosine(const Vec& u, const std::vector<double>& levels, double& best_cosine);

// A problem whose variable (all coordinates) is restricted to Q by the coarse-gradient scheme: value(x)
// and the oracle act at Proj_Q(x) of the wrapped problem; the optimizer updates x. With Q = none it
// forwards everything unchanged. For a quadratic inner problem (`quadratic` set: H, c, constant) with a
// fixed scale and a small dimension, F* is the enumerated discrete minimum and two extra metrics are
// recorded: at_discrete_optimum (1 when Proj_Q(x) equals the enumerated minimizer) and, as a run stat,
// discrete_optimum_fraction = the fraction of oracle calls made at the minimizer.
class WeightQuantizedProblem : public Problem {
 public:
  struct Quadratic {
    Mat H;
    Vec c;
    double constant = 0.0;  // f(w) = (1/2) w^T H w - c^T w + constant
  };
  WeightQuantizedProblem(std::shared_ptr<const Problem> inner, const QuantizedWeightsOptions& options,
                         const Quadratic* quadratic);

  Eigen::Index dim() const override { return inner_->dim(); }
  double evaluation_cost() const override { return inner_->evaluation_cost(); }
  const ProblemFacts& facts() const override { return quantizer_.active() ? facts_ : inner_->facts(); }
  void initial_point(VecRef x0, RandomStream& init) const override { inner_->initial_point(x0, init); }
  double value(ConstVecRef x) const override;
  void values(ConstMatRef X, VecRef out) const override;
  bool has_gradient() const override { return !quantizer_.active() && inner_->has_gradient(); }
  void gradient(ConstVecRef x, VecRef g) const override { inner_->gradient(x, g); }
  bool has_block_gradient() const override { return !quantizer_.active() && inner_->has_block_gradient(); }
  void block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block) const override {
    inner_->block_gradient(x, begin, size, g_block);
  }
  bool is_composite() const override { return quantizer_.active() ? quantizer_.clips() : inner_->is_composite(); }
  void prox(double eta, VecRef x) const override {
    if (quantizer_.active()) quantizer_.clip(x);
    else inner_->prox(eta, x);
  }
  ConstVecRef x_star() const override { return inner_->x_star(); }
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override;
  RunStats instance_stats() const override;
  std::vector<std::string> extra_metric_names() const override;
  void extra_metrics(ConstMatRef X, MatRef out) const override;

  const Problem& inner() const { return *inner_; }
  const WeightQuantizer& quantizer() const { return quantizer_; }
  bool has_discrete_optimum() const { return discrete_optimum_.size() != 0; }
  const Vec& discrete_optimum() const { return discrete_optimum_; }

 private:
  class QuantizedOracle;
  std::shared_ptr<const Problem> inner_;
  WeightQuantizer quantizer_;
  ProblemFacts facts_;
  Vec discrete_optimum_;  // empty when not enumerated
};

struct LeastSquaresOptions;
struct ProblemContext;
class LeastSquares;

// `least_squares` as registered: the LeastSquares instance, wrapped when problem.quantized_weights is set
// (the discrete optimum is enumerated on (1/2) w^T (A^T A/n) w - (A^T b/n)^T w + ||b||^2/(2n)).
class QuantizableLeastSquares final : public WeightQuantizedProblem {
 public:
  QuantizableLeastSquares(const LeastSquaresOptions& options, ProblemContext& context);

 private:
  QuantizableLeastSquares(std::shared_ptr<const LeastSquares> least_squares,
                          const QuantizedWeightsOptions& options);
};

}  // namespace ratelab
