#include "core/rng.hpp"

#include <algorithm>
#include <bit>
#include <limits>

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

void RandomStream::fill_u64(std::span<std::uint64_t> out) {
  std::size_t k = 0;
  while (k < out.size() && available_ > 0) out[k++] = block_[--available_];
  // Counter and key in locals: the blocks are independent, and nothing in the loop goes through memory
  // that could make the compiler or the CPU serialize them.
  const r123::Philox4x64 philox;
  const auto key = key_;
  auto counter = counter_;
  for (; out.size() - k >= 4; k += 4) {
    const auto block = philox(counter, key);
    counter.v[1] += 1;
    out[k] = block.v[3], out[k + 1] = block.v[2], out[k + 2] = block.v[1], out[k + 3] = block.v[0];
  }
  counter_ = counter;
  while (k < out.size()) out[k++] = next_u64();
}

void RandomStream::first_below_of_steps(std::uint64_t first_step, std::uint64_t n,
                                       std::span<std::uint64_t> out) const {
  const std::uint64_t threshold = (0 - n) % n;
  r123::Philox4x64 philox;
  for (std::size_t k = 0; k < out.size(); ++k) {
    const r123::Philox4x64::ctr_type counter{{first_step + k, 0, 0, 0}};
    // below() takes block[3] first (next_u64 hands the block out from its end).
    const u128 m = (u128)philox(counter, key_).v[3] * n;
    out[k] = std::uint64_t(m >> 64);
    if (std::uint64_t(m) < threshold) [[unlikely]] {
      RandomStream exact = *this;
      exact.seek(first_step + k);
      out[k] = exact.below(n);
    }
  }
}

double RandomStream::normal() {
  if (spare_normal_) {
    spare_normal_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    s = u * u + v * v;
  } while (s >= 1.0 || s == 0.0);
  const double f = std::sqrt(-2.0 * std::log(s) / s);
  spare_ = v * f;
  spare_normal_ = true;
  return u * f;
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

}  // namespace

void RandomStream::fill_student_t(std::span<double> out, double nu) {
  // Bailey (1994): accept (u, v) in the unit disc, w = u^2 + v^2; then
  // t = u * sqrt(nu (w^(-2/nu) - 1) / w) is Student-t with nu degrees of freedom. Candidate pairs are
  // drawn in chunks no larger than the number still needed, so no pair is drawn that the one-at-a-time
  // loop would not draw, and the accepted ones are used in order: the same bits as student_t() calls.
  constexpr std::size_t kChunk = 64;
  double u[kChunk], w[kChunk], t[kChunk];
  std::uint64_t bits[2 * kChunk];
  const double power = -2.0 / nu;
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
    for (std::size_t j = 0; j < want; ++j) {
      const double uj = u[j], wj = w[j];
      u[accepted] = uj;
      w[accepted] = wj;
      accepted += std::size_t((wj < 1.0) & (wj > 0.0));
    }
    for (std::size_t j = 0; j < accepted; ++j)  // vectorizable: no libm, no branches
      t[j] = u[j] * std::sqrt(nu * (exp_nonnegative(power * log_positive(w[j])) - 1.0) / w[j]);
    std::copy(t, t + accepted, out.begin() + std::ptrdiff_t(filled));
    filled += accepted;
  }
}

}  // namespace ratelab
