// One pass over a vector that updates it element-wise and sums products of the result (a dot product with
// another vector, its own squared norm) in the bits of Eigen's dot() and squaredNorm(): the kernels behind
// the fused steps of the fast paths (core/fast_paths.hpp), which must give the iterates and the divergence
// decisions of the plain Eigen expressions they replace. tests/test_fused_paths.cpp holds them against Eigen.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <cstring>

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

// sweep_and_sum's order for two-wide packets (the portable build's Eigen: SSE2), at any vector width. The
// four-wide vectors' low and high halves are the two accumulators Eigen alternates between (packet 2k and
// packet 2k + 1), so a function compiled for AVX2 as well (target_clones, as the callers are) computes the
// same sums in half the instructions. step(j, terms) does the element-wise work on elements j .. j + width - 1
// for V = Wide4 (four), Wide2 (two) or double (one), with plain operators on V (GCC vector types; a scalar
// operand is broadcast) and load/store below, and writes N terms. Valid where kPacket == 2
// (kTwoWideIsEigensOrder); elsewhere the callers keep sweep_and_sum.
namespace two_wide {
typedef double Wide4 __attribute__((vector_size(32)));
typedef double Wide2 __attribute__((vector_size(16)));
template <class V>
[[gnu::always_inline]] inline V load(const double* from) {
  V v;
  std::memcpy(&v, from, sizeof v);
  return v;
}
template <class V>
[[gnu::always_inline]] inline void store(double* to, const V& v) {
  std::memcpy(to, &v, sizeof v);
}
inline constexpr bool kTwoWideIsEigensOrder = kPacket == 2;

template <std::size_t N, class Step>
[[gnu::always_inline]] inline std::array<double, N> sweep_and_sum(Eigen::Index d, Step&& step) {
  std::array<double, N> sums{};
  const Eigen::Index packet_end = d / 2 * 2;
  double scalar[N];
  if (packet_end == 0) {
    if (d == 0) return sums;
    step(Eigen::Index(0), sums.data());
    return sums;  // d == 1
  }
  Wide2 sum0[N];  // Eigen's first accumulator (and, merged in, its second)
  if (packet_end > 2) {
    Wide4 both[N], terms[N];  // packet 2k in the low half, 2k + 1 in the high half
    step(Eigen::Index(0), both);
    Eigen::Index j = 4;
    for (; j + 4 <= packet_end; j += 4) {
      step(j, terms);
      for (std::size_t k = 0; k < N; ++k) both[k] += terms[k];
    }
    for (std::size_t k = 0; k < N; ++k) sum0[k] = Wide2{both[k][0], both[k][1]} + Wide2{both[k][2], both[k][3]};
    if (j < packet_end) {
      Wide2 last[N];
      step(j, last);
      for (std::size_t k = 0; k < N; ++k) sum0[k] += last[k];
    }
  } else {
    step(Eigen::Index(0), sum0);
  }
  for (std::size_t k = 0; k < N; ++k) sums[k] = sum0[k][0] + sum0[k][1];
  for (Eigen::Index j = packet_end; j < d; ++j) {
    step(j, scalar);
    for (std::size_t k = 0; k < N; ++k) sums[k] = sums[k] + scalar[k];
  }
  return sums;
}
}  // namespace two_wide

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
