// Counter-based random streams (Philox4x64-10, Random123).
//
// A stream is keyed by (master seed, replicate, purpose, salt) and its counter holds (step, draw). The run
// loop seeks every stream to the step index before each step, so what a component draws at step t does
// not depend on how much anything drew before: a run is reproducible on its own, on any thread, in any
// order. The salt is 0 by default, so replicate r of every configuration sees the same instance and the
// same random inputs at step t (common random numbers); experiments may decorrelate with a salt.
//
// The samplers are written here on purpose: std:: distributions differ between standard libraries.
//
// Normal variates have a sub-stream of their own (counter word 2 = kNormalSubstream; raw draws have 0):
// normals 4b..4b+3 of a step come from block b of it by the Box-Muller transform, two words per pair. A
// fixed number of words per variate (no rejection, unlike the polar method or a ziggurat) is what lets
// normals of many steps be drawn at once, each still a function of (step, index) alone: Random123's own
// boxmuller.hpp makes the same choice for counter-based generators. The transform's log, sin and cos are
// plain IEEE arithmetic written here (no libm), so every build and instruction set gives the same bits.
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
// 1: normals by Marsaglia's polar method on the raw draws (16 ns each on the bench machine).
// 2: normals by Box-Muller on their own sub-stream, in bulk (core/rng.cpp; 2-4 ns each in bulk).
inline constexpr int kStreamLayoutVersion = 2;
// Counter word 2 of the normal sub-stream.
inline constexpr std::uint64_t kNormalSubstream = 1;

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
    normal_block_ = 0;
    normals_available_ = 0;
    normals_skip_ = 0;
  }
  // The step the stream was last seeked to, and whether no normal has been drawn since: then the next
  // normals are normals_of_steps(step(), ...)'s, which a caller may have drawn ahead (skip_normals).
  std::uint64_t step() const { return counter_.v[0]; }
  bool at_first_normal() const { return normal_block_ == 0 && normals_available_ == 0 && normals_skip_ == 0; }
  // Moves the normal sub-stream past n values, as fill_normal of n values would (at_first_normal() must
  // hold): for a caller that has those values already.
  void skip_normals(std::size_t n) {
    normal_block_ = n / 4;
    normals_skip_ = int(n % 4);
  }
  const r123::Philox4x64::key_type& key() const { return key_; }

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
  // Standard normal: the next variate of this step's normal sub-stream (Box-Muller, see above).
  double normal() {
    if (normals_available_ == 0) refill_normals();  // also takes care of a skip_normals remainder
    return normals_[4 * kNormalCacheBlocks - normals_available_--];
  }
  // out.size() normals, the same bits as that many normal() calls; whole blocks are generated many at a
  // time (detail::philox_blocks) and transformed in a vectorized loop.
  void fill_normal(std::span<double> out);
  // out[k * per_step + j] = the j-th normal() after seek(first_step + k), for every k < out.size() / per_step:
  // the normals of many future steps at once (as first_below_of_steps does for indices). The stream is not
  // moved. out.size() must be a multiple of per_step.
  void normals_of_steps(std::uint64_t first_step, std::size_t per_step, std::span<double> out) const;
  // Student-t with nu > 0 degrees of freedom (Bailey's polar method, exact for every nu > 0).
  double student_t(double nu) {
    double t;
    fill_student_t({&t, 1}, nu);
    return t;
  }
  // out.size() Student-t variates, the same bits as that many student_t() calls (the candidate pairs are
  // drawn in the same order and never past the last one the scalar loop would use), but vectorizable.
  void fill_student_t(std::span<double> out, double nu);

 private:
  void refill() {
    block_ = philox_(counter_, key_);
    counter_.v[1] += 1;
    available_ = 4;
  }

  void refill_normals();
  static constexpr int kNormalCacheBlocks = 4;
  static constexpr std::size_t kSmallFill = 16;  // blocks fill_normal computes in one call with the tail

  r123::Philox4x64 philox_;
  r123::Philox4x64::key_type key_{};
  r123::Philox4x64::ctr_type counter_{};  // (step, block of raw draws, 0, 0)
  r123::Philox4x64::ctr_type block_{};
  int available_ = 0;
  std::uint64_t normal_block_ = 0;  // the next block of this step's normal sub-stream
  int normals_available_ = 0;       // normals_[16 - normals_available_ ..] are still to be handed out
  int normals_skip_ = 0;            // values of block normal_block_ already used (skip_normals)
  double normals_[4 * kNormalCacheBlocks] = {};
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
// The Box-Muller transform behind normal(): words (bits[2i], bits[2i+1]) give z[2i] = r cos(theta),
// z[2i+1] = r sin(theta), r = sqrt(-2 log u), u = to_uniform(bits[2i]), theta = 2 pi (q + f) / 4 with q the
// top two bits of bits[2i+1] and f its next 53 bits as a uniform on (0, 1); n_pairs pairs. Built twice
// like the Student-t transform (the AVX-512DQ build is vectorized), chosen at run time; exposed so the
// tests can hold the two against each other and against libm.
void box_muller(StudentTKernel kernel, const std::uint64_t* bits, double* z, std::size_t n_pairs);
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
