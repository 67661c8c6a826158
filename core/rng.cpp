#include "core/rng.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define RATELAB_HAVE_AVX512_KERNEL 1
#endif

namespace ratelab {

__extension__ typedef unsigned __int128 u128;

std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

RandomStream::RandomStream(std::uint64_t master_seed, std::uint64_t replicate, StreamPurpose purpose,
                           std::uint64_t salt) {
  key_ = {{master_seed, splitmix64(splitmix64(splitmix64(std::uint64_t(purpose)) ^ replicate) ^ salt)}};
  seek(0);
}

std::uint64_t RandomStream::below(std::uint64_t n) {
  u128 m = (u128)next_u64() * n;
  std::uint64_t low = std::uint64_t(m);
  if (low < n) {
    const std::uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = (u128)next_u64() * n;
      low = std::uint64_t(m);
    }
  }
  return std::uint64_t(m >> 64);
}

namespace detail {
namespace {

using Ctr = r123::Philox4x64::ctr_type;
using Key = r123::Philox4x64::key_type;

void philox_blocks_portable(Ctr counter, int word, Key key, std::size_t n, bool only_v3, std::uint64_t* out) {
  // Counter and key in locals: the blocks are independent, and nothing in the loop goes through memory
  // that could make the compiler or the CPU serialize them.
  const r123::Philox4x64 philox;
  for (std::size_t j = 0; j < n; ++j) {
    const auto block = philox(counter, key);
    counter.v[word] += 1;
    if (only_v3) {
      out[j] = block.v[3];
    } else {
      for (int i = 0; i < 4; ++i) out[4 * j + i] = block.v[3 - i];
    }
  }
}

#ifdef RATELAB_HAVE_AVX512_KERNEL
// AVX-512F only (no DQ's 64-bit multiply, no IFMA), so any AVX-512 CPU runs it; the attribute rather than a
// build flag, so the portable build carries it and chooses at run time.
#define RATELAB_AVX512 __attribute__((target("avx512f")))
// GCC 12 warns about the placeholder its own intrinsics leave uninitialized on purpose
// (_mm512_undefined_epi32, GCC bug 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// The 128-bit product a * m of every lane, from four 32x32-bit products.
RATELAB_AVX512 inline void mulhilo(__m512i a, std::uint64_t m, __m512i& hi, __m512i& lo) {
  const __m512i mask = _mm512_set1_epi64(0xffffffffLL);
  const __m512i m_lo = _mm512_set1_epi64((long long)(m & 0xffffffffULL)),
                m_hi = _mm512_set1_epi64((long long)(m >> 32));
  const __m512i a_hi = _mm512_srli_epi64(a, 32);
  const __m512i ll = _mm512_mul_epu32(a, m_lo), lh = _mm512_mul_epu32(a, m_hi);
  const __m512i hl = _mm512_mul_epu32(a_hi, m_lo), hh = _mm512_mul_epu32(a_hi, m_hi);
  const __m512i t = _mm512_add_epi64(hl, _mm512_srli_epi64(ll, 32));  // no carry out: < 2^64
  const __m512i u = _mm512_add_epi64(lh, _mm512_and_si512(t, mask));
  hi = _mm512_add_epi64(_mm512_add_epi64(hh, _mm512_srli_epi64(t, 32)), _mm512_srli_epi64(u, 32));
  lo = _mm512_or_si512(_mm512_slli_epi64(u, 32), _mm512_and_si512(ll, mask));
}

// Blocks j0 .. j0 + count - 1 (count <= 8 G), eight per vector. G groups are interleaved because one
// group's ten rounds are a chain of dependent multiplies: alone it would leave the multipliers idle
// (G = 4: 6.4 ns per block on Zen 4, against 8.1 for the scalar code; 16 state vectors fit the 32
// registers).
template <int G>
RATELAB_AVX512 void philox_groups(const Ctr& first, int word, const Key& key, std::uint64_t j0,
                                  std::size_t count, bool only_v3, std::uint64_t* out) {
  __m512i c[4][G];
  const __m512i lane = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
  for (int g = 0; g < G; ++g)
    for (int i = 0; i < 4; ++i) {
      c[i][g] = _mm512_set1_epi64((long long)first.v[i]);
      if (i == word)
        c[i][g] =
            _mm512_add_epi64(c[i][g], _mm512_add_epi64(_mm512_set1_epi64((long long)(j0 + 8 * g)), lane));
    }
  std::uint64_t k0 = key.v[0], k1 = key.v[1];
  for (int round = 0; round < 10; ++round) {
    for (int g = 0; g < G; ++g) {
      __m512i hi0, lo0, hi1, lo1;
      mulhilo(c[0][g], 0xD2E7470EE14C6C93ULL, hi0, lo0);
      mulhilo(c[2][g], 0xCA5A826395121157ULL, hi1, lo1);
      c[0][g] = _mm512_ternarylogic_epi64(hi1, c[1][g], _mm512_set1_epi64((long long)k0), 0x96);  // a ^ b ^ c
      c[1][g] = lo1;
      c[2][g] = _mm512_ternarylogic_epi64(hi0, c[3][g], _mm512_set1_epi64((long long)k1), 0x96);
      c[3][g] = lo0;
    }
    k0 += 0x9E3779B97F4A7C15ULL;
    k1 += 0xBB67AE8584CAA73BULL;
  }
  for (int g = 0; g < G && std::size_t(8 * g) < count; ++g) {
    const std::size_t blocks = std::min<std::size_t>(8, count - 8 * g);
    if (only_v3) {
      _mm512_mask_storeu_epi64(out + 8 * g, __mmask8((1u << blocks) - 1), c[3][g]);
      continue;
    }
    // Transpose words-by-block to block-by-words: row r holds blocks 2r and 2r + 1, each as v3 v2 v1 v0.
    const __m512i v32_even = _mm512_unpacklo_epi64(c[3][g], c[2][g]),
                  v32_odd = _mm512_unpackhi_epi64(c[3][g], c[2][g]);
    const __m512i v10_even = _mm512_unpacklo_epi64(c[1][g], c[0][g]),
                  v10_odd = _mm512_unpackhi_epi64(c[1][g], c[0][g]);
    const __m512i p01 = _mm512_shuffle_i64x2(v32_even, v10_even, 0x44),
                  q01 = _mm512_shuffle_i64x2(v32_odd, v10_odd, 0x44);
    const __m512i p23 = _mm512_shuffle_i64x2(v32_even, v10_even, 0xee),
                  q23 = _mm512_shuffle_i64x2(v32_odd, v10_odd, 0xee);
    const __m512i rows[4] = {_mm512_shuffle_i64x2(p01, q01, 0x88), _mm512_shuffle_i64x2(p01, q01, 0xdd),
                             _mm512_shuffle_i64x2(p23, q23, 0x88), _mm512_shuffle_i64x2(p23, q23, 0xdd)};
    for (std::size_t r = 0; r < 4 && 2 * r < blocks; ++r) {
      const std::size_t words = std::min<std::size_t>(8, 4 * (blocks - 2 * r));
      _mm512_mask_storeu_epi64(out + 32 * g + 8 * r, __mmask8((1u << words) - 1), rows[r]);
    }
  }
}

RATELAB_AVX512 void philox_blocks_avx512(const Ctr& first, int word, const Key& key, std::size_t n,
                                         bool only_v3, std::uint64_t* out) {
  for (std::size_t j = 0; j < n; j += 32) {
    const std::size_t count = std::min<std::size_t>(32, n - j);
    std::uint64_t* const o = out + (only_v3 ? j : 4 * j);
    switch ((count + 7) / 8) {  // as few groups as cover the count: a short tail costs what it needs
      case 4:
        philox_groups<4>(first, word, key, j, count, only_v3, o);
        break;
      case 3:
        philox_groups<3>(first, word, key, j, count, only_v3, o);
        break;
      case 2:
        philox_groups<2>(first, word, key, j, count, only_v3, o);
        break;
      default:
        philox_groups<1>(first, word, key, j, count, only_v3, o);
        break;
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

bool avx512_kernel_available() {
#ifdef RATELAB_HAVE_AVX512_KERNEL
  __builtin_cpu_init();  // in case the first caller runs before the constructors, which would do it
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

void philox_blocks(PhiloxKernel kernel, Ctr first, int word, Key key, std::size_t n, bool only_v3,
                   std::uint64_t* out) {
#ifdef RATELAB_HAVE_AVX512_KERNEL
  if (kernel == PhiloxKernel::avx512) return philox_blocks_avx512(first, word, key, n, only_v3, out);
#endif
  (void)kernel;
  philox_blocks_portable(first, word, key, n, only_v3, out);
}

}  // namespace detail

namespace {

// The kernel for this CPU, chosen once. Below 8 blocks the scalar code wins: the vector kernel computes
// 8 anyway, as one chain of dependent multiplies (measured on Zen 4: 4 blocks 87 ns against 60, 8 blocks
// 84 ns against 98).
constexpr std::size_t kMinSimdBlocks = 8;

void philox_blocks(const r123::Philox4x64::ctr_type& first, int word, const r123::Philox4x64::key_type& key,
                   std::size_t n, bool only_v3, std::uint64_t* out) {
  static const detail::PhiloxKernel best =
      detail::avx512_kernel_available() ? detail::PhiloxKernel::avx512 : detail::PhiloxKernel::portable;
  detail::philox_blocks(n >= kMinSimdBlocks ? best : detail::PhiloxKernel::portable, first, word, key, n,
                        only_v3, out);
}

}  // namespace

void RandomStream::fill_u64(std::span<std::uint64_t> out) {
  std::size_t k = 0;
  while (k < out.size() && available_ > 0) out[k++] = block_[--available_];
  const std::size_t blocks = (out.size() - k) / 4;
  philox_blocks(counter_, 1, key_, blocks, false, out.data() + k);
  counter_.v[1] += blocks;
  k += 4 * blocks;
  while (k < out.size()) out[k++] = next_u64();
}

void RandomStream::first_below_of_steps(std::uint64_t first_step, std::uint64_t n,
                                       std::span<std::uint64_t> out) const {
  const std::uint64_t threshold = (0 - n) % n;
  // below() takes block[3] first (next_u64 hands the block out from its end).
  philox_blocks({{first_step, 0, 0, 0}}, 0, key_, out.size(), true, out.data());
  for (std::size_t k = 0; k < out.size(); ++k) {
    const u128 m = (u128)out[k] * n;
    out[k] = std::uint64_t(m >> 64);
    if (std::uint64_t(m) < threshold) [[unlikely]] {
      RandomStream exact = *this;
      exact.seek(first_step + k);
      out[k] = exact.below(n);
    }
  }
}

namespace {

// log and exp in plain IEEE arithmetic, no libm: the same code gives the same bits whether or not the
// compiler vectorizes it, on every machine and in every build (ISO C++ mode, so no FMA contraction).
// Accurate to a few ulp over the ranges the samplers use.

// log(w) for a normal positive double w.
[[gnu::always_inline]] inline double log_positive(double w) {
  const auto bits = std::bit_cast<std::uint64_t>(w);
  double e = double(std::int64_t((bits >> 52) & 0x7ff) - 1023);
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);  // [1, 2)
  const bool high = m > 1.4142135623730951;                                                   // to [1/sqrt2, sqrt2)
  m = high ? 0.5 * m : m;
  e = high ? e + 1.0 : e;
  // log m = 2 atanh(s), s = (m - 1)/(m + 1), |s| <= 0.1716: the series to s^21 is below 1e-17 relative.
  const double s = (m - 1.0) / (m + 1.0), z = s * s;
  double p = 1.0 / 21.0;
  p = p * z + 1.0 / 19.0;
  p = p * z + 1.0 / 17.0;
  p = p * z + 1.0 / 15.0;
  p = p * z + 1.0 / 13.0;
  p = p * z + 1.0 / 11.0;
  p = p * z + 1.0 / 9.0;
  p = p * z + 1.0 / 7.0;
  p = p * z + 1.0 / 5.0;
  p = p * z + 1.0 / 3.0;
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return e * ln2_hi + (2.0 * s + (2.0 * s * z * p + e * ln2_lo));
}

// exp(y) for -708 < y (inf beyond the double range); the samplers use y >= 0.
[[gnu::always_inline]] inline double exp_nonnegative(double y) {
  constexpr double inv_ln2 = 1.44269504088896338700e+00, shifter = 0x1.8p52;
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  const double yc = y < 709.0 ? y : 709.0;
  const double kd_shifted = yc * inv_ln2 + shifter;  // round to the nearest integer k
  const auto k_bits = std::bit_cast<std::uint64_t>(kd_shifted);
  const double k = kd_shifted - shifter;
  const double r = (yc - k * ln2_hi) - k * ln2_lo;  // |r| <= ln2/2
  // Taylor to r^13: the remainder is below 2e-16 relative for |r| <= 0.347.
  double p = 1.0 / 6227020800.0;
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double two_k = std::bit_cast<double>((k_bits + 1023) << 52);
  return y < 709.0 ? p * two_k : std::numeric_limits<double>::infinity();
}

// Bailey's transform of accepted pairs, t = u sqrt(nu (w^(-2/nu) - 1) / w): plain IEEE arithmetic (no
// libm, no contraction), so every instruction set gives the same bits; compiled twice below.
[[gnu::always_inline]] inline void student_t_transform_body(const double* u, const double* w, double* t,
                                                            std::size_t n, double nu) {
  const double power = -2.0 / nu;
  for (std::size_t j = 0; j < n; ++j)  // vectorizable where int64 -> double converts in vectors (AVX-512DQ)
    t[j] = u[j] * std::sqrt(nu * (exp_nonnegative(power * log_positive(w[j])) - 1.0) / w[j]);
}

void student_t_transform_portable(const double* u, const double* w, double* t, std::size_t n, double nu) {
  student_t_transform_body(u, w, t, n, nu);
}

// The Box-Muller transform (detail::box_muller), plain IEEE arithmetic like the Student-t transform.
// Uniforms from words by exponent bits (bitcast((w >> 12) | exponent of 1) - 1 = k 2^-52, exact), not by
// an int64 -> double conversion, so the loop vectorizes with any vector instruction set (SSE2 included):
// u = (k + 1/2) 2^-52 in (0, 1), never 0 or 1. The angle: theta = 2 pi (q + f) / 4 = q pi/2 + pi/4 + a,
// q the top two bits of the second word, f the next 52 as a uniform on (0, 1), a = (f - 1/2) pi/2 in
// (-pi/4, pi/4): there sin and cos are fdlibm's minimax polynomials (__kernel_sin, __kernel_cos: within
// 1 ulp); (cos a, sin a) is turned by pi/4 ((c -+ s) / sqrt2) and then by q quarter turns (swaps and sign
// flips, blends in vector code). r = sqrt(-2 log u) with fdlibm's log kernel (e_log.c): log(1 + g) for g
// in [sqrt(1/2) - 1, sqrt(2) - 1) after taking out the power of two.
[[gnu::always_inline]] inline double unit_fraction(std::uint64_t bits52) {  // (k + 1/2) 2^-52
  return (std::bit_cast<double>(bits52 | 0x3ff0000000000000ULL) - 1.0) + 0x1.0p-53;
}

// Selections are integer arithmetic on the bits (no comparison, no branch, no 64-bit compare): the loop
// below then vectorizes even with SSE2 alone.
[[gnu::always_inline]] inline double from_bits(std::uint64_t b) { return std::bit_cast<double>(b); }
[[gnu::always_inline]] inline std::uint64_t to_bits(double d) { return std::bit_cast<std::uint64_t>(d); }

[[gnu::always_inline]] inline double log_unit(double u) {  // log u for u in (0, 1), u >= 2^-53
  const std::uint64_t bits = to_bits(u), mantissa = bits & 0x000fffffffffffffULL;
  // high = 1 when the mantissa 1.m exceeds sqrt(2) (1.4142135623730951 = 0x3ff6a09e667f3bcd): then m / 2.
  const std::uint64_t high = (mantissa + (0x000fffffffffffffULL - 0x0006a09e667f3bcdULL)) >> 52;
  const double m = from_bits(mantissa | ((0x3ffULL - high) << 52));  // in [sqrt(1/2), sqrt(2))
  const double e = from_bits(0x4330000000000000ULL | ((bits >> 52) + high)) - (0x1.0p52 + 1023.0);  // exact
  const double g = m - 1.0, s = g / (2.0 + g), z = s * s, w = z * z;
  const double t1 = w * (3.999999999940941908e-01 + w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 + w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double hfsq = 0.5 * g * g;
  constexpr double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
  return e * ln2_hi - ((hfsq - (s * (hfsq + (t1 + t2)) + e * ln2_lo)) - g);
}

[[gnu::always_inline]] inline void box_muller_body(const std::uint64_t* bits, double* z, std::size_t n_pairs) {
  constexpr double half_pi = 1.57079632679489661923, sqrt_half = 0.70710678118654752440;
  constexpr std::uint64_t low52 = (std::uint64_t(1) << 52) - 1;
  for (std::size_t i = 0; i < n_pairs; ++i) {  // vectorizable
    const std::uint64_t a_bits = bits[2 * i], b_bits = bits[2 * i + 1];
    const double r = std::sqrt(-2.0 * log_unit(unit_fraction(a_bits >> 12)));
    const std::uint64_t q = b_bits >> 62;
    const double a = (unit_fraction((b_bits >> 10) & low52) - 0.5) * half_pi, y = a * a;
    const double s = a + a * y * (-1.66666666666666324348e-01 +
                                  y * (8.33333333332248946124e-03 +
                                       y * (-1.98412698298579493134e-04 +
                                            y * (2.75573137070700676789e-06 +
                                                 y * (-2.50507602534068634195e-08 + y * 1.58969099521155010221e-10)))));
    const double c = (1.0 - 0.5 * y) +
                     y * y * (4.16666666666666019037e-02 +
                              y * (-1.38888888888741095749e-03 +
                                   y * (2.48015872894767294178e-05 +
                                        y * (-2.75573143513906633035e-07 +
                                             y * (2.08757232129817482790e-09 + y * -1.13596475577881948265e-11)))));
    const std::uint64_t cq = to_bits((c - s) * sqrt_half), sq = to_bits((c + s) * sqrt_half);  // angle a + pi/4
    // q quarter turns: (C, S) -> (C, S), (-S, C), (-C, -S), (S, -C): a swap when q is odd, then the signs.
    const std::uint64_t swap = 0 - (q & 1);
    const std::uint64_t x0 = (sq & swap) | (cq & ~swap), y0 = (cq & swap) | (sq & ~swap);
    z[2 * i] = r * from_bits(x0 ^ (((q + 1) & 2) << 62));
    z[2 * i + 1] = r * from_bits(y0 ^ ((q & 2) << 62));
  }
}

void box_muller_portable(const std::uint64_t* bits, double* z, std::size_t n_pairs) {
  box_muller_body(bits, z, n_pairs);
}

#ifdef RATELAB_HAVE_AVX512_KERNEL
__attribute__((target("avx512f,avx512dq"))) void student_t_transform_avx512(const double* u, const double* w,
                                                                             double* t, std::size_t n,
                                                                             double nu) {
  student_t_transform_body(u, w, t, n, nu);
}

__attribute__((target("avx512f,avx512dq"))) void box_muller_avx512(const std::uint64_t* bits, double* z,
                                                                    std::size_t n_pairs) {
  box_muller_body(bits, z, n_pairs);
}
#endif

}  // namespace

namespace detail {

bool avx512dq_available() {
#ifdef RATELAB_HAVE_AVX512_KERNEL
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512dq");
#else
  return false;
#endif
}

void student_t_transform(StudentTKernel kernel, const double* u, const double* w, double* t, std::size_t n,
                         double nu) {
#ifdef RATELAB_HAVE_AVX512_KERNEL
  if (kernel == StudentTKernel::avx512) return student_t_transform_avx512(u, w, t, n, nu);
#endif
  (void)kernel;
  student_t_transform_portable(u, w, t, n, nu);
}

void box_muller(StudentTKernel kernel, const std::uint64_t* bits, double* z, std::size_t n_pairs) {
#ifdef RATELAB_HAVE_AVX512_KERNEL
  if (kernel == StudentTKernel::avx512) return box_muller_avx512(bits, z, n_pairs);
#endif
  (void)kernel;
  box_muller_portable(bits, z, n_pairs);
}

}  // namespace detail

namespace {

detail::StudentTKernel best_box_muller() {
  static const detail::StudentTKernel kernel =
      detail::avx512dq_available() ? detail::StudentTKernel::avx512 : detail::StudentTKernel::portable;
  return kernel;
}

// Normals of `blocks` blocks of the normal sub-stream, the counter `first` with word `word` counting up
// (1: consecutive blocks of one step, 0: one block of consecutive steps): 4 per block, in order.
void normal_blocks(r123::Philox4x64::ctr_type first, int word, const r123::Philox4x64::key_type& key,
                   std::size_t blocks, double* out) {
  constexpr std::size_t kChunk = 64;  // blocks per Philox call: 2 KiB of words on the stack
  std::uint64_t bits[4 * kChunk];
  for (std::size_t done = 0; done < blocks;) {
    const std::size_t count = std::min(kChunk, blocks - done);
    philox_blocks(first, word, key, count, false, bits);
    detail::box_muller(best_box_muller(), bits, out + 4 * done, 2 * count);
    first.v[word] += count;
    done += count;
  }
}

}  // namespace

void RandomStream::refill_normals() {
  // Four blocks at a time: eight pairs fill one AVX-512 vector of the transform (fewer would go through
  // its scalar tail), so normal() one at a time costs a few ns, not the 16 of the polar method it replaced.
  normal_blocks({{counter_.v[0], normal_block_, kNormalSubstream, 0}}, 1, key_, kNormalCacheBlocks, normals_);
  normal_block_ += kNormalCacheBlocks;
  normals_available_ = 4 * kNormalCacheBlocks - normals_skip_;
  normals_skip_ = 0;
}

void RandomStream::fill_normal(std::span<double> out) {
  std::size_t k = 0;
  while (k < out.size() && (normals_available_ > 0 || normals_skip_ > 0)) out[k++] = normal();
  const std::size_t rest = out.size() - k, blocks = (rest + 3) / 4;
  if (rest % 4 == 0 || blocks > kSmallFill) {
    // Whole blocks straight into out; normal() caches what the last partial block leaves.
    normal_blocks({{counter_.v[0], normal_block_, kNormalSubstream, 0}}, 1, key_, rest / 4, out.data() + k);
    normal_block_ += rest / 4;
    k += 4 * (rest / 4);
    while (k < out.size()) out[k++] = normal();
    return;
  }
  // A few values (a gradient's worth at one step): every block they touch in one call, the rest cached.
  double values[4 * kSmallFill];
  normal_blocks({{counter_.v[0], normal_block_, kNormalSubstream, 0}}, 1, key_, blocks, values);
  normal_block_ += blocks;
  std::copy(values, values + rest, out.begin() + std::ptrdiff_t(k));
  const std::size_t left = 4 * blocks - rest;  // 1 to 3
  std::copy(values + rest, values + 4 * blocks, normals_ + 4 * kNormalCacheBlocks - left);
  normals_available_ = int(left);
}

void RandomStream::normals_of_steps(std::uint64_t first_step, std::size_t per_step, std::span<double> out) const {
  if (per_step == 0) return;
  if (out.size() % per_step != 0)
    throw std::logic_error("normals_of_steps: " + std::to_string(out.size()) + " values is not a whole number of steps of " +
                           std::to_string(per_step));
  const std::size_t steps = out.size() / per_step;
  // Block b of every step in one call (the counters differ in the step word), 64 steps at a time.
  constexpr std::size_t kChunk = 64;
  double normals[4 * kChunk];
  for (std::size_t k0 = 0; k0 < steps; k0 += kChunk) {
    const std::size_t count = std::min(kChunk, steps - k0);
    for (std::size_t b = 0; 4 * b < per_step; ++b) {
      normal_blocks({{first_step + k0, b, kNormalSubstream, 0}}, 0, key_, count, normals);
      const std::size_t take = std::min<std::size_t>(4, per_step - 4 * b);
      double* to = out.data() + k0 * per_step + 4 * b;
      if (take == 4)  // a whole block: a fixed-length copy the compiler turns into two vector moves
        for (std::size_t k = 0; k < count; ++k) std::copy_n(normals + 4 * k, 4, to + k * per_step);
      else
        for (std::size_t k = 0; k < count; ++k) std::copy_n(normals + 4 * k, take, to + k * per_step);
    }
  }
}

void RandomStream::fill_student_t(std::span<double> out, double nu) {
  // Bailey (1994): accept (u, v) in the unit disc, w = u^2 + v^2; then
  // t = u * sqrt(nu (w^(-2/nu) - 1) / w) is Student-t with nu degrees of freedom. Candidate pairs are
  // drawn in chunks no larger than the number still needed, so no pair is drawn that the one-at-a-time
  // loop would not draw, and the accepted ones are used in order: the same bits as student_t() calls.
  constexpr std::size_t kChunk = 64;  // a multiple of the 8 lanes the padding below may round up to
  double u[kChunk], w[kChunk], t[kChunk];
  std::uint64_t bits[2 * kChunk];
  static const detail::StudentTKernel kernel =
      detail::avx512dq_available() ? detail::StudentTKernel::avx512 : detail::StudentTKernel::portable;
  std::size_t filled = 0;
  while (filled < out.size()) {
    const std::size_t want = std::min(kChunk, out.size() - filled);
    fill_u64({bits, 2 * want});  // u_1, v_1, u_2, v_2, ...: the order of the one-at-a-time loop
    for (std::size_t j = 0; j < want; ++j) {  // vectorizable
      u[j] = 2.0 * to_uniform(bits[2 * j]) - 1.0;
      const double vj = 2.0 * to_uniform(bits[2 * j + 1]) - 1.0;
      w[j] = u[j] * u[j] + vj * vj;
    }
    // Keep the accepted pairs (w in (0, 1), about pi/4 of them) in order, branch-free: a rejection happens
    // at random, which a branch would mispredict; then the math runs only on them.
    std::size_t accepted = 0;
    std::size_t j0 = 0;
#ifdef __AVX512F__
    // Eight at a time where the build has AVX-512: a compress in registers (the form that stores is slow on
    // Zen 4), stored whole. The lanes it writes past the kept ones are at indices already read.
    for (; j0 + 8 <= want; j0 += 8) {
      const __m512d uj = _mm512_loadu_pd(u + j0), wj = _mm512_loadu_pd(w + j0);
      const __mmask8 keep = _mm512_cmp_pd_mask(wj, _mm512_set1_pd(1.0), _CMP_LT_OQ) &
                            _mm512_cmp_pd_mask(wj, _mm512_setzero_pd(), _CMP_GT_OQ);
      _mm512_storeu_pd(u + accepted, _mm512_maskz_compress_pd(keep, uj));
      _mm512_storeu_pd(w + accepted, _mm512_maskz_compress_pd(keep, wj));
      accepted += std::size_t(std::popcount(unsigned(keep)));
    }
#endif
    for (std::size_t j = j0; j < want; ++j) {
      const double uj = u[j], wj = w[j];
      u[accepted] = uj;
      w[accepted] = wj;
      accepted += std::size_t((wj < 1.0) & (wj > 0.0));
    }
    // Where the transform is vectorized (its int64-to-double conversions need AVX-512DQ; the portable build
    // chooses that version at run time), it runs over whole vectors, so no scalar tail runs (up to 7
    // lanes, each at the cost of a whole vector): the padding lanes get a harmless pair and their results
    // are dropped. Elsewhere it is scalar code, and padding would only add work.
    const std::size_t lanes = kernel == detail::StudentTKernel::avx512 ? 8 : 1;
    const std::size_t padded = (accepted + lanes - 1) & ~(lanes - 1);
    for (std::size_t j = accepted; j < padded; ++j) u[j] = 0.0, w[j] = 0.5;
    detail::student_t_transform(kernel, u, w, t, padded, nu);
    std::copy(t, t + accepted, out.begin() + std::ptrdiff_t(filled));
    filled += accepted;
  }
}

}  // namespace ratelab
