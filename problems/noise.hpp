// Gradient noise models, usable with any problem whose oracle is "exact gradient + noise".
//
//   additive:       g = grad f(x) + s * xi
//   multiplicative: g = grad f(x) .* (1 + s * xi)
// with xi drawn coordinate-wise i.i.d. or as an isotropic vector (uniform direction times a radius of the
// chosen law). Scale convention: for gaussian, s is the standard deviation of each coordinate; for the
// heavy-tailed laws s multiplies the standard variate of that law (documented per kind in `describe`).
#pragma once

#include <cmath>
#include <limits>
#include <string>

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
};

// Per-run state of a noise model: draws noise into a gradient and records what it realized.
class GradientNoise {
 public:
  explicit GradientNoise(const NoiseOptions& options, Eigen::Index dim);
  bool active() const { return options_.kind != NoiseOptions::Kind::none && options_.scale != 0.0; }
  // Adds the average of `batch` independent noise draws to g (g holds the exact gradient on entry).
  void apply(VecRef g, int batch, RandomStream& stream);
  void report(RunStats& stats) const;

 private:
  void draw(VecRef xi, RandomStream& stream);
  double standard_variate(RandomStream& stream);

  NoiseOptions options_;
  Vec xi_, sum_, exact_;
  long draws_ = 0;
  double sum_sq_norm_ = 0.0;
  double max_norm_ = 0.0;
};

}  // namespace ratelab
