// The packet kernels of least_squares' fast paths, written with Eigen's own packet operations
// (Eigen::internal) so that they give the bits of the plain Eigen expressions they replace: the per-step
// kernel of the fused sampled-row SGD here (inline), the lockstep product gemv_columns_as_eigen (declared
// in least_squares.hpp) in least_squares_kernels.cpp. Private to problems/least_squares.cpp;
// tests/test_fast_paths.cpp checks the bits of both.
#pragma once

#include <Eigen/Core>

namespace ratelab::least_squares_kernels {

// x_j -= eta * (r * a_j) for every j, the arithmetic of the step-by-step loop, and then next . x with the
// bits of Eigen's dot product (its redux, linear vectorized traversal, no unrolling: packet products summed
// into two alternating packet accumulators from the first two packets on, the two merged, a leftover
// packet added, predux, then the scalar tail in order), written with Eigen's own packet operations, in the
// same pass over x. tests/test_fast_paths.cpp compares the fused steps with the step-by-step loop.
// Inline, not in least_squares_kernels.cpp: it is the whole per-step work of the fused loop.
[[gnu::always_inline]] inline double update_then_dot(double* x, const double* a, double eta, double r,
                                                     const double* next, Eigen::Index d) {
  using namespace Eigen::internal;
  using Packet = packet_traits<double>::type;
  constexpr Eigen::Index P = Eigen::Index(sizeof(Packet) / sizeof(double));
  const Packet vr = pset1<Packet>(r), veta = pset1<Packet>(eta);
  const auto update = [&](Eigen::Index j) {
    const Packet xj = psub(ploadu<Packet>(x + j), pmul(veta, pmul(vr, ploadu<Packet>(a + j))));
    pstoreu(x + j, xj);
    return pmul(ploadu<Packet>(next + j), xj);
  };
  const Eigen::Index packet_end = d / P * P;
  if (packet_end == 0) {  // shorter than a packet: Eigen sums the products in order
    for (Eigen::Index j = 0; j < d; ++j) x[j] -= eta * (r * a[j]);
    double sum = next[0] * x[0];
    for (Eigen::Index j = 1; j < d; ++j) sum = sum + next[j] * x[j];
    return sum;
  }
  Packet sum0 = update(0);
  if (packet_end > P) {
    Packet sum1 = update(P);
    Eigen::Index j = 2 * P;
    for (; j + 2 * P <= packet_end; j += 2 * P) {
      sum0 = padd(sum0, update(j));
      sum1 = padd(sum1, update(j + P));
    }
    sum0 = padd(sum0, sum1);
    if (j < packet_end) sum0 = padd(sum0, update(j));
  }
  double sum = predux(sum0);
  for (Eigen::Index j = packet_end; j < d; ++j) {
    x[j] -= eta * (r * a[j]);
    sum = sum + next[j] * x[j];
  }
  return sum;
}

}  // namespace ratelab::least_squares_kernels
