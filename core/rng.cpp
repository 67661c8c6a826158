#include "core/rng.hpp"

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

double RandomStream::student_t(double nu) {
  // Bailey (1994): accept (u, v) in the unit disc, w = u^2 + v^2; then
  // t = u * sqrt(nu (w^(-2/nu) - 1) / w) is Student-t with nu degrees of freedom.
  double u, v, w;
  do {
    u = 2.0 * uniform() - 1.0;
    v = 2.0 * uniform() - 1.0;
    w = u * u + v * v;
  } while (w >= 1.0 || w == 0.0);
  return u * std::sqrt(nu * (std::pow(w, -2.0 / nu) - 1.0) / w);
}

}  // namespace ratelab
