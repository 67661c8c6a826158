// Counter-based random streams (Philox4x64-10, Random123).
//
// A stream is keyed by (master seed, replicate, purpose, salt) and its counter holds (step, draw). The run
// loop seeks every stream to the step index before each step, so what a component draws at step t does
// not depend on how much anything drew before: a run is reproducible on its own, on any thread, in any
// order. The salt is 0 by default, so replicate r of every configuration sees the same instance and the
// same random inputs at step t (common random numbers); experiments may decorrelate with a salt.
//
// The samplers are written here on purpose: std:: distributions differ between standard libraries.
#pragma once

#include <Random123/philox.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

namespace ratelab {

enum class StreamPurpose : std::uint64_t {
  instance = 1,  // problem instance (data, teacher, eigenbasis)
  sampling = 2,  // oracle's data sampling (row indices, batches)
  noise = 3,     // additive/multiplicative gradient noise
  init = 4,      // initial point
  rounding = 5,  // stochastic rounding, random shrink factors
  optimizer = 6  // any other randomness an optimizer uses (random block choice)
};

// The version of the mapping (master seed, replicate, purpose, salt, step, draw) -> bits, including the
// samplers below. Bump it with any change that makes a stream draw other bits: run fingerprints
// (results/SCHEMA.md) include it, so `run --reuse` never copies a run drawn under another layout.
inline constexpr int kStreamLayoutVersion = 1;

std::uint64_t splitmix64(std::uint64_t x);

class RandomStream {
 public:
  RandomStream() : RandomStream(0, 0, StreamPurpose::sampling) {}
  RandomStream(std::uint64_t master_seed, std::uint64_t replicate, StreamPurpose purpose,
               std::uint64_t salt = 0);

  // Positions the stream at the first draw of `step`.
  void seek(std::uint64_t step) {
    counter_ = {{step, 0, 0, 0}};
    available_ = 0;
    spare_normal_ = false;
  }

  std::uint64_t next_u64() {
    if (available_ == 0) refill();
    return block_[--available_];
  }
  // out.size() values, the same as that many next_u64() calls; the whole Philox blocks are generated many at
  // once (detail::philox_blocks: with AVX-512 where the CPU has it, in any build).
  void fill_u64(std::span<std::uint64_t> out);
  // Uniform on the open interval (0, 1): never 0 or 1, so log() and 1/u are safe.
  static double to_uniform(std::uint64_t bits) { return (double(std::int64_t(bits >> 11)) + 0.5) * 0x1.0p-53; }
  double uniform() { return to_uniform(next_u64()); }
  // Uniform integer in [0, n), exact (Lemire's method with rejection).
  std::uint64_t below(std::uint64_t n);
  // out[k] = what below(n) returns as the first draw after seek(first_step + k), for every k: the row
  // indices of many future steps at once. The Philox blocks of different steps are independent, so they
  // are computed many at once (detail::philox_blocks; 64 steps at a time on the bench machine, Zen 4:
  // about 7 ns per index with the AVX-512 kernel, 9.6 with the scalar code); a rejected draw (probability
  // below n / 2^64) is redone by the exact step-by-step path. The stream is not moved.
  void first_below_of_steps(std::uint64_t first_step, std::uint64_t n, std::span<std::uint64_t> out) const;
  // Standard normal (Marsaglia polar method).
  double normal();
  // Student-t with nu > 0 degrees of freedom (Bailey's polar method, exact for every nu > 0).
  double student_t(double nu) {
    double t;
    fill_student_t({&t, 1}, nu);
    return t;
  }
  // out.size() Student-t variates, the same bits as that many student_t() calls (the candidate pairs are
  // drawn in the same order and never past the last one the scalar loop would use), but vectorizable.
  void fill_student_t(std::span<double> out, double nu);

  void fill_normal(std::span<double> out) {
    for (double& v : out) v = normal();
  }

 private:
  void refill() {
    block_ = philox_(counter_, key_);
    counter_.v[1] += 1;
    available_ = 4;
  }

  r123::Philox4x64 philox_;
  r123::Philox4x64::key_type key_{};
  r123::Philox4x64::ctr_type counter_{};
  r123::Philox4x64::ctr_type block_{};
  int available_ = 0;
  bool spare_normal_ = false;
  double spare_ = 0.0;
};

namespace detail {
// The Philox blocks behind fill_u64 and first_below_of_steps: the counters `first` with j added to word
// `word` (mod 2^64, as the scalar code's ++ wraps), j = 0..n-1. Block j's words go to out[4j..4j+3] in the
// order next_u64 hands them out (v[3], v[2], v[1], v[0]); with only_v3, only v[3], to out[j]. Exposed so
// the tests can hold each implementation against r123::Philox4x64 on a machine that has both.
enum class PhiloxKernel { portable, avx512 };
// The AVX-512F kernel is compiled in (x86-64 GCC or Clang) and this CPU and OS support it.
bool avx512_kernel_available();
// kernel == avx512 requires avx512_kernel_available().
void philox_blocks(PhiloxKernel kernel, r123::Philox4x64::ctr_type first, int word, r123::Philox4x64::key_type key,
                   std::size_t n, bool only_v3, std::uint64_t* out);
// Bailey's Student-t transform of accepted pairs (u, w), t[j] for j < n, behind fill_student_t; the
// AVX-512DQ build of the same code (vectorized) is chosen at run time where the CPU has it. Exposed so the
// tests can hold the two against each other.
enum class StudentTKernel { portable, avx512 };
bool avx512dq_available();
void student_t_transform(StudentTKernel kernel, const double* u, const double* w, double* t, std::size_t n,
                         double nu);
}  // namespace detail

// The streams one run draws from.
struct RunStreams {
  RandomStream sampling, noise, init, rounding, optimizer;
  // The keys the streams were built from, so a plugin (core/plugin_abi.h) can rebuild identical streams.
  std::uint64_t master_seed, replicate, salt;
  RunStreams(std::uint64_t master_seed_, std::uint64_t replicate_, std::uint64_t salt_ = 0)
      : sampling(master_seed_, replicate_, StreamPurpose::sampling, salt_),
        noise(master_seed_, replicate_, StreamPurpose::noise, salt_),
        init(master_seed_, replicate_, StreamPurpose::init, salt_),
        rounding(master_seed_, replicate_, StreamPurpose::rounding, salt_),
        optimizer(master_seed_, replicate_, StreamPurpose::optimizer, salt_),
        master_seed(master_seed_),
        replicate(replicate_),
        salt(salt_) {}
  void seek(std::uint64_t step) {
    sampling.seek(step);
    noise.seek(step);
    rounding.seek(step);
    optimizer.seek(step);
  }
};

}  // namespace ratelab
