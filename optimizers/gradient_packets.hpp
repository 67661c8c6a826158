// The gradient as the fused update passes of heavy_ball, nesterov and adam read it: a packet of g at j.
// Either from a row oracle (OracleFastPaths::RowGradient: ridge * x + coef * row, formed in the update pass
// instead of stored first) or from a gradient already stored; the same expressions in every optimizer, so
// their fused paths keep the bits of their reference paths (tests/test_fused_paths.cpp).
#pragma once

#include <Eigen/Core>

#include "core/fast_paths.hpp"
#include "core/packet_passes.hpp"

namespace ratelab {

// g_j = ridge * x_j + coef * row_j, with x the point the gradient is taken at (the update pass's packet of it).
inline auto row_gradient_packets(const OracleFastPaths::RowGradient& row) {
  return [&row]<class T>(Eigen::Index j, T x) {
    using namespace Eigen::internal;
    return padd(pmul(pset1<T>(row.ridge), x), pmul(pset1<T>(row.coef), ploadu<T>(row.row + j)));
  };
}

// row . x in the bits of Eigen's dot() (the oracle's a.dot(x)): the product of the first step of a segment,
// which no earlier update pass summed (OracleFastPaths::row_gradient_of_dot).
inline double row_dot(const double* row, ConstVecRef x) {
  using namespace Eigen::internal;
  const double* xd = x.data();
  return packet_passes::sweep_and_sum<1>(x.size(), [&]<class T>(Eigen::Index j, T* terms) {
    terms[0] = pmul(ploadu<T>(row + j), ploadu<T>(xd + j));
  })[0];
}

// g_j read from a stored gradient.
inline auto stored_gradient_packets(const double* g) {
  return [g]<class T>(Eigen::Index j, T) { return Eigen::internal::ploadu<T>(g + j); };
}

}  // namespace ratelab
