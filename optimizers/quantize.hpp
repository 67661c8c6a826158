// Gradient quantization for low-precision SGD (optimizers/lp_sgd.cpp).
//
// A b-bit symmetric uniform quantizer with 2^b levels spaced evenly on [-s, s] (a mid-rise grid: b = 1 is
// sign(v) * s, as in signSGD),
//   levels -s + j * delta,  j = 0 .. 2^b - 1,  delta = 2 s / (2^b - 1),
// where s is a fixed scale or, with scale = 0, the vector's max-abs (then nothing saturates). Entries outside
// [-s, s] saturate to the end levels. Rounding to the grid is `nearest` (error <= delta / 2 inside [-s, s])
// or `stochastic` (Gupta, Agrawal, Gopalakrishnan & Narayanan, "Deep learning with limited numerical
// precision", ICML 2015): up with probability equal to the fractional position between the two neighbouring
// levels, which is unbiased inside [-s, s]. Stochastic rounding draws exactly one uniform per entry.
#pragma once

#include <algorithm>
#include <cmath>

#include "core/problem.hpp"
#include "core/rng.hpp"

namespace ratelab {

enum class Rounding { nearest, stochastic };

// The grid step delta for `bits` bits and scale s.
inline double quantization_step(int bits, double scale) { return 2.0 * scale / (std::ldexp(1.0, bits) - 1.0); }

// out <- Q(v); returns the scale s used (0 gives out = 0). out may not alias v.
inline double quantize(ConstVecRef v, VecRef out, int bits, double fixed_scale, Rounding rounding,
                       RandomStream& rng) {
  const double s = fixed_scale > 0.0 ? fixed_scale : v.cwiseAbs().maxCoeff();
  if (!(s > 0.0)) {
    out.setZero();
    if (rounding == Rounding::stochastic)
      for (Eigen::Index i = 0; i < v.size(); ++i) (void)rng.uniform();
    return 0.0;
  }
  const double top = std::ldexp(1.0, bits) - 1.0;  // index of the highest level
  const double delta = 2.0 * s / top;
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    const double position = (std::clamp(v[i], -s, s) + s) / delta;  // in [0, top]
    double j;
    if (rounding == Rounding::nearest) {
      j = std::floor(position + 0.5);
    } else {
      const double below = std::floor(position);
      j = below + (rng.uniform() < position - below ? 1.0 : 0.0);
    }
    out[i] = -s + std::clamp(j, 0.0, top) * delta;
  }
  return s;
}

}  // namespace ratelab
