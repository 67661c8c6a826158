// One pass over a vector that updates it element-wise and sums products of the result (a dot product with
// another vector, its own squared norm) in the bits of Eigen's dot() and squaredNorm(): the kernels behind
// the fused steps of the fast paths (core/fast_paths.hpp), which must give the iterates and the divergence
// decisions of the plain Eigen expressions they replace. tests/test_fused_paths.cpp holds them against Eigen.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstddef>

namespace ratelab::packet_passes {

using Packet = Eigen::internal::packet_traits<double>::type;
inline constexpr Eigen::Index kPacket = Eigen::Index(sizeof(Packet) / sizeof(double));

// step(j, terms) does the element-wise work on elements j .. j + width(T) - 1 (T = Packet: a whole packet;
// T = double: one element) and writes N terms to terms[0..N-1] (T* terms). Written with Eigen's packet
// functions, which have scalar overloads (Eigen::internal::ploadu<T>, padd, pmul, ...), one generic body
// serves both widths. Returns the N sums of the terms over j = 0..d-1, each in the order of Eigen's sum() of
// a dynamic vector expression (its redux: linear vectorized traversal from index 0, no unrolling: the first
// two packets start two alternating accumulators, later pairs of packets go one to each, the two are merged,
// a leftover packet is added, predux, then the scalar tail in order; shorter than a packet: the terms summed
// in order). With term a[j] * b[j] that is a.dot(b); with x[j] * x[j], x.squaredNorm(). The work runs in
// the same order, each element once.
template <std::size_t N, class Step>
[[gnu::always_inline]] inline std::array<double, N> sweep_and_sum(Eigen::Index d, Step&& step) {
  using namespace Eigen::internal;
  std::array<double, N> sums{};
  double scalar[N];
  const Eigen::Index packet_end = d / kPacket * kPacket;
  if (packet_end == 0) {
    if (d == 0) return sums;
    step(Eigen::Index(0), sums.data());
    for (Eigen::Index j = 1; j < d; ++j) {
      step(j, scalar);
      for (std::size_t k = 0; k < N; ++k) sums[k] = sums[k] + scalar[k];
    }
    return sums;
  }
  Packet sum0[N], sum1[N], t0[N], t1[N];
  step(Eigen::Index(0), sum0);
  if (packet_end > kPacket) {
    step(kPacket, sum1);
    Eigen::Index j = 2 * kPacket;
    for (; j + 2 * kPacket <= packet_end; j += 2 * kPacket) {
      step(j, t0);
      step(j + kPacket, t1);
      for (std::size_t k = 0; k < N; ++k) sum0[k] = padd(sum0[k], t0[k]), sum1[k] = padd(sum1[k], t1[k]);
    }
    for (std::size_t k = 0; k < N; ++k) sum0[k] = padd(sum0[k], sum1[k]);
    if (j < packet_end) {
      step(j, t0);
      for (std::size_t k = 0; k < N; ++k) sum0[k] = padd(sum0[k], t0[k]);
    }
  }
  for (std::size_t k = 0; k < N; ++k) sums[k] = predux(sum0[k]);
  for (Eigen::Index j = packet_end; j < d; ++j) {
    step(j, scalar);
    for (std::size_t k = 0; k < N; ++k) sums[k] = sums[k] + scalar[k];
  }
  return sums;
}

// The run loop's divergence check, x.squaredNorm() <= limit2, decided first from `reordered`: the sum of the
// same squared terms x_j * x_j in another order (more accumulators than Eigen's two, so that the additions
// are not one chain of dependent operations). Sums of the same n nonnegative floating-point terms in any two
// orders are both within gamma_(n-1) = (n-1)u / (1 - (n-1)u) of the exact sum, u = 2^-53 (Higham, Accuracy
// and Stability of Numerical Algorithms, 2002, Sec. 4.2), so reordered * (1 + 4 n u) <= limit2 implies
// x.squaredNorm() <= limit2 (for n u < 1/8); otherwise (near the limit, overflow, NaN) x.squaredNorm()
// itself decides. The decisions are the run loop's, bit for bit.
inline bool squared_norm_within(double reordered, Eigen::Ref<const Eigen::VectorXd> x, double limit2) {
  if (reordered * (1.0 + 4.0 * double(x.size()) * 0x1.0p-53) <= limit2) return true;
  return x.squaredNorm() <= limit2;
}

}  // namespace ratelab::packet_passes
