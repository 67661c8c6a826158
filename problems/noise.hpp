// Gradient noise models, usable with any problem whose oracle is "exact gradient + noise".
//
//   additive:       g = grad f(x) + s * xi
//   multiplicative: g = grad f(x) .* (1 + s * xi)
// with xi drawn coordinate-wise i.i.d. or as an isotropic vector (uniform direction times a radius of the
// chosen law). Scale convention (issue 5): where the law has finite variance the standard variate xi has
// unit variance, so s is the standard deviation (per coordinate; for the isotropic shape E||s xi||^2 = s^2):
//   gaussian      N(0, 1)
//   student_t     t_nu * sqrt((nu-2)/nu) for nu > 2; plain t_nu (scale parameter 1) for nu <= 2
//   pareto        random sign times U^(-1/tail) (x_m = 1), divided by sqrt(tail/(tail-2)) for tail > 2
//   alpha_stable  symmetric stable with unit scale parameter, E exp(i k xi) = exp(-|k|^alpha), sampled by
//                 Chambers, Mallows & Stuck (1976); its variance is infinite for alpha < 2 and equals 2
//                 at alpha = 2 (N(0, 2)), so the scale is the stable scale parameter, not a deviation.
// Each run records the mean squared noise norm, the largest norm and the Hill (1975) estimate of the tail
// index of ||noise|| from the k largest norms: k = min(1000, floor(sqrt(draws))), kept in a fixed-size heap
// (reported when k >= 10, i.e. after at least 100 oracle calls). The heap holds squared norms (the same
// order, and sqrt of the largest square is the largest norm, bit for bit), so a step takes no square root.
//
// Gaussian noise per coordinate with batch 1 (the common case, where a step of a small problem costs less
// than its normals one step at a time) is drawn ahead: the normals of the coming steps in one bulk call
// (RandomStream::normals_of_steps), each step's the same bits as drawn at that step, so any order of
// steps, and any split of them, gives the same values.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "core/fast_paths.hpp"
#include "core/params.hpp"
#include "core/problem.hpp"
#include "core/rng.hpp"

namespace ratelab {

struct NoiseOptions {
  enum class Kind { none, gaussian, student_t, alpha_stable, pareto };
  enum class Shape { coordinate, isotropic };
  enum class Mode { additive, multiplicative };
  Kind kind = Kind::gaussian;
  double scale = 0.0;
  double nu = 2.5;     // student_t degrees of freedom
  double alpha = 1.5;  // alpha_stable index
  double tail = 2.5;   // pareto tail index
  Shape shape = Shape::coordinate;
  Mode mode = Mode::additive;

  static ParamTable<NoiseOptions> params();
  // E||s xi||^2 of one additive draw in dimension `dim` when finite and known; empty otherwise
  // (multiplicative noise depends on the gradient).
  std::optional<double> variance(Eigen::Index dim) const;
};

// The laws of the `noise` parameter, each with its standard variate xi (the definition `describe` and
// `list noise` show); the same names as the parameter's choices (tested).
struct NoiseLaw {
  std::string name, definition;
};
const std::vector<NoiseLaw>& noise_laws();

// Per-run state of a noise model: draws noise into a gradient and records what it realized.
class GradientNoise {
 public:
  explicit GradientNoise(const NoiseOptions& options, Eigen::Index dim);
  bool active() const { return options_.kind != NoiseOptions::Kind::none && options_.scale != 0.0; }
  // Adds the average of `batch` independent noise draws to g (g holds the exact gradient on entry).
  void apply(VecRef g, int batch, RandomStream& stream);
  void report(RunStats& stats) const;
  // Hill's estimate 1 / mean_{i<=k} log(N_(i) / N_(k+1)) over the k largest norms N_(1) >= N_(2) >= ...;
  // NaN when fewer than 100 draws were made.
  double hill_tail_index() const;
  long hill_k() const;

  double standard_variate(RandomStream& stream);
  void draw(VecRef xi, RandomStream& stream);

  // For fused steps that fold the noise into their own pass (ExactGradientOracle's): whether apply() at
  // batch 1 adds scale() times standard normals from the look-ahead (additive gaussian per coordinate).
  bool additive_gaussian_ahead() const {
    return active() && !lookahead_.empty() && options_.mode == NoiseOptions::Mode::additive;
  }
  double scale() const { return options_.scale; }
  // The dim standard normals apply() draws at step t of a stream with `stream`'s key (the look-ahead's,
  // refilled from step t when they are not there). The stream is not moved.
  const double* gaussian_of_step(std::uint64_t t, const RandomStream& stream);
  // Records an additive gaussian draw whose standard normals have squared norm xi_norm2 (in the bits of
  // squaredNorm()), as apply() records it.
  void record_additive_draw(double xi_norm2) { record_draw(options_.scale * options_.scale * xi_norm2); }

  static constexpr long kHillMaxK = 1000;
  // Normals drawn ahead: about this many values (a whole number of steps), when a step needs at most
  // kLookaheadMaxDim (beyond that one step's normals already come in bulk).
  static constexpr std::size_t kLookaheadValues = 1024, kLookaheadMaxDim = 256;

 private:
  void record_draw(double norm2) {
    sum_sq_norm_ += norm2;
    record_norm_squared(norm2);
    ++draws_;
  }
  void record_norm_squared(double norm2) {
    max_norm2_ = std::max(max_norm2_, norm2);  // squared until report()
    // Past the first kHillMaxK + 1 draws, most norms are below the heap's smallest: nothing more to do.
    if (largest_.size() == std::size_t(kHillMaxK + 1) && !(norm2 > largest_.front())) return;
    keep_among_largest(norm2);
  }
  void keep_among_largest(double norm2);
  // xi_ = the normals of the stream's step, from the look-ahead (refilled from that step when it is not
  // there); the stream is left where fill_normal would leave it.
  void draw_gaussian_ahead(RandomStream& stream);

  NoiseOptions options_;
  Vec xi_, sum_, exact_;
  long draws_ = 0;
  double sum_sq_norm_ = 0.0;
  double max_norm2_ = 0.0;  // the largest squared norm
  double variate_factor_ = 1.0;  // makes the standard variate unit-variance where the variance is finite
  std::vector<double> largest_;  // min-heap of the kHillMaxK + 1 largest squared norms, capacity reserved up front
  // Gaussian look-ahead: the normals of steps look_first_ .. look_first_ + look_steps_ - 1 of the stream
  // with key look_key_, dim values each.
  std::vector<double> lookahead_;
  std::uint64_t look_first_ = 0, look_steps_ = 0;
  r123::Philox4x64::key_type look_key_{};
};

// A problem whose gradient is h .* (x - c) in exactly those bits (a quadratic in its eigenbasis) may say so
// to its ExactGradientOracle, which then computes it itself instead of calling gradient(): in the fused steps'
// own pass, and in sample_gradient (one virtual call per step, not two, for every optimizer).
struct DiagonalGradient {
  const double* h = nullptr;
  const double* c = nullptr;
};

// "Exact gradient + noise": the oracle of problems whose randomness is only the gradient noise model. Its
// fast paths (core/fast_paths.hpp): fused SGD steps when the noise is off or additive gaussian per
// coordinate (the gradient, then one pass that adds the look-ahead's normals, updates x and sums the noise's
// and, when checked, the iterate's squared norms); cheap block gradients from the problem's block_gradient
// when it has them and the noise is off (noise is drawn for the whole vector).
class ExactGradientOracle final : public Oracle, public OracleFastPaths {
 public:
  ExactGradientOracle(const Problem& problem, const NoiseOptions& options, RandomStream& noise,
                      DiagonalGradient diagonal = {})
      : problem_(problem), noise_stream_(noise), noise_(options, problem.dim()), diagonal_(diagonal),
        g_(problem.dim()) {}
  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    if (diagonal_.h) {  // the problem's gradient() without a second virtual call
      const Eigen::Map<const Vec> h(diagonal_.h, x.size()), c(diagonal_.c, x.size());
      g = h.array() * (x - c).array();
    } else {
      problem_.gradient(x, g);
    }
    noise_.apply(g, batch, noise_stream_);
  }
  void report(RunStats& stats) const override { noise_.report(stats); }
  OracleFastPaths* fast_paths() override { return this; }
  bool has_cheap_block_gradient() const override { return problem_.has_block_gradient() && !noise_.active(); }
  void sample_block_gradient(ConstVecRef x, Eigen::Index begin, Eigen::Index size, VecRef g_block, int) override {
    problem_.block_gradient(x, begin, size, g_block);
  }
  bool fused_sgd_steps(VecRef x, long t_first, long t_last, const Schedule& schedule) override {
    return fusable() && (fused_sgd<false>(x, t_first, t_last, schedule, 0.0), true);
  }
  long fused_sgd_steps_checked(VecRef x, long t_first, long t_last, const Schedule& schedule,
                               double limit2) override {
    return fusable() ? fused_sgd<true>(x, t_first, t_last, schedule, limit2) : -1;
  }

 private:
  bool fusable() const { return !noise_.active() || noise_.additive_gaussian_ahead(); }
  // x -= eta_t (grad f(x) + s xi_t) for t = t_first..t_last, the bits of sample_gradient and sgd's update;
  // with Checked, returns the first step whose iterate fails the check, or 0.
  template <bool Checked>
  long fused_sgd(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2);
  template <bool Checked, bool Noisy, bool Diagonal>
  long fused_sgd_steps_of(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2);

  const Problem& problem_;
  RandomStream& noise_stream_;
  GradientNoise noise_;
  DiagonalGradient diagonal_;
  Vec g_;  // the exact gradient of the fused steps (when it is not diagonal)
};

}  // namespace ratelab
