// The packet kernels of least_squares' fast paths, written with Eigen's own packet operations
// (Eigen::internal) so that they give the bits of the plain Eigen expressions they replace: the per-step
// kernel of the fused sampled-row SGD here (inline; its two-wide form out of line), the lockstep product gemv_columns_as_eigen (declared
// in least_squares.hpp) in least_squares_kernels.cpp. Private to problems/least_squares.cpp;
// tests/test_fast_paths.cpp checks the bits of both.
#pragma once

#include <Eigen/Core>
#include <array>

#include "core/packet_passes.hpp"

namespace ratelab::least_squares_kernels {

// x_j -= eta * (r * a_j) for every j, the arithmetic of the step-by-step loop, and then next . x with the
// bits of Eigen's dot product, in the same pass over x (core/packet_passes.hpp); WithNorm: also x . x with the
// bits of squaredNorm() (the run loop's divergence check), returned second. tests/test_fast_paths.cpp compares
// the fused steps with the step-by-step loop. Inline: it is the whole per-step work of the fused loop.
template <bool WithNorm = false>
[[gnu::always_inline]] inline auto update_then_dot(double* x, const double* a, double eta, double r,
                                                   const double* next, Eigen::Index d) {
  using namespace Eigen::internal;
  const auto sums = packet_passes::sweep_and_sum<WithNorm ? 2 : 1>(d, [&]<class T>(Eigen::Index j, T* terms) {
    const T xj = psub(ploadu<T>(x + j), pmul(pset1<T>(eta), pmul(pset1<T>(r), ploadu<T>(a + j))));
    pstoreu(x + j, xj);
    if constexpr (WithNorm) terms[0] = pmul(ploadu<T>(next + j), xj), terms[1] = pmul(xj, xj);
    else terms[0] = pmul(ploadu<T>(next + j), xj);
  });
  if constexpr (WithNorm) return sums;
  else return sums[0];
}

// update_then_dot<true> in packet_passes::two_wide's order: the same sums where kTwoWideIsEigensOrder (the
// portable build), computed four-wide where the CPU has AVX2 (the function is compiled for it too and chosen
// when the program loads). In least_squares_kernels.cpp, out of line: one indirect call per step.
std::array<double, 2> update_then_dot_and_norm_two_wide(double* x, const double* a, double eta, double r,
                                                         const double* next, Eigen::Index d);

}  // namespace ratelab::least_squares_kernels
