// The gradient as the fused update passes of heavy_ball, nesterov and adam read it: a packet of g at j.
// Either from a row oracle (OracleFastPaths::RowGradient: ridge * x + coef * row, formed in the update pass
// instead of stored first) or from a gradient already stored; the same expressions in every optimizer, so
// their fused paths keep the bits of their reference paths (tests/test_fused_paths.cpp).
#pragma once

#include <Eigen/Core>

#include "core/fast_paths.hpp"

namespace ratelab {

// g_j = ridge * x_j + coef * row_j, with x the point the gradient is taken at (the update pass's packet of it).
inline auto row_gradient_packets(const OracleFastPaths::RowGradient& row) {
  return [&row]<class T>(Eigen::Index j, T x) {
    using namespace Eigen::internal;
    return padd(pmul(pset1<T>(row.ridge), x), pmul(pset1<T>(row.coef), ploadu<T>(row.row + j)));
  };
}

// g_j read from a stored gradient.
inline auto stored_gradient_packets(const double* g) {
  return [g]<class T>(Eigen::Index j, T) { return Eigen::internal::ploadu<T>(g + j); };
}

}  // namespace ratelab
