// The normal sampler of the random streams (stream layout 2, core/rng.hpp): its distribution, that every
// way of drawing gives the same bits (one at a time, in bulk, steps ahead, either transform kernel), and
// that a run's noise does not depend on the order or the threads its steps and runs are computed in.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <numbers>
#include <thread>
#include <vector>

#include "core/rng.hpp"
#include "problems/noise.hpp"

using namespace ratelab;

namespace {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }

// Kolmogorov-Smirnov statistic of the sample against N(0, 1).
double ks_statistic(std::vector<double> z) {
  std::sort(z.begin(), z.end());
  const double n = double(z.size());
  double d = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double f = normal_cdf(z[i]);
    d = std::max({d, f - double(i) / n, double(i + 1) / n - f});
  }
  return d;
}

}  // namespace

TEST_CASE("normal variates: N(0, 1) by moments, tails, pair independence and Kolmogorov-Smirnov", "[rng][normal]") {
  // 2^20 values: half from one long bulk draw, half as the first 8 normals of 2^17 consecutive steps (the
  // look-ahead's path: counters that differ in the step word).
  const std::size_t n = std::size_t(1) << 20;
  std::vector<double> z(n);
  RandomStream stream(11, 3, StreamPurpose::noise);
  stream.seek(5);
  stream.fill_normal({z.data(), n / 2});
  stream.normals_of_steps(1000, 8, {z.data() + n / 2, n / 2});
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0, pair = 0;
  long beyond3 = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = z[i], v2 = v * v;
    m1 += v, m2 += v2, m3 += v2 * v, m4 += v2 * v2;
    beyond3 += std::abs(v) > 3.0;
    if (i % 2 == 0) pair += v * z[i + 1];  // the cos and sin of one Box-Muller pair
  }
  const double N = double(n);
  m1 /= N, m2 /= N, m3 /= N, m4 /= N, pair /= N / 2;
  // Each tolerance is 5 standard errors of the estimate under N(0, 1): Var z = 1, Var z^2 = 2, Var z^3 = 15,
  // Var z^4 = 96, Var(z z') = 1 for independent z, z'.
  CHECK(std::abs(m1) < 5.0 * std::sqrt(1.0 / N));
  CHECK(std::abs(m2 - 1.0) < 5.0 * std::sqrt(2.0 / N));
  CHECK(std::abs(m3) < 5.0 * std::sqrt(15.0 / N));
  CHECK(std::abs(m4 - 3.0) < 5.0 * std::sqrt(96.0 / N));
  CHECK(std::abs(pair) < 5.0 * std::sqrt(1.0 / (N / 2)));
  // P(|z| > 3) = 0.0026998: the count is binomial, 5 standard deviations.
  const double p3 = 2.0 * normal_cdf(-3.0), expected = p3 * N;
  CHECK(std::abs(double(beyond3) - expected) < 5.0 * std::sqrt(expected * (1 - p3)));
  // KS: P(sqrt(n) D > 1.95) = 0.001 (Kolmogorov's limit law); 1.95 / sqrt(2^20) = 0.0019. The polar method
  // this replaced and a broken transform (a wrong angle range, a missing factor 2 in the radius) give D
  // far above it.
  const double d = ks_statistic(z);
  INFO("KS statistic " << d << ", sqrt(n) D = " << std::sqrt(N) * d);
  CHECK(std::sqrt(N) * d < 1.95);
}

TEST_CASE("the Box-Muller transform agrees with libm's log, cos and sin", "[rng][normal]") {
  // z = sqrt(-2 log u) (cos, sin)(2 pi (q + f) / 4) with the documented bit fields; the polynomials are
  // within a few ulp, so 1e-14 (1 + |z|) absolute covers the angle's rounding (2 pi (q + f)/4 up to 2 pi).
  RandomStream words(2, 9, StreamPurpose::noise);
  std::vector<std::uint64_t> bits(2 * 4096);
  words.fill_u64(bits);
  bits[0] = 0, bits[1] = 0;                          // u = 2^-53, the largest radius; the angle's first value
  bits[2] = ~std::uint64_t(0), bits[3] = ~std::uint64_t(0);  // u just below 1, radius near 0; the last angle
  bits[4] = std::uint64_t(0x6a09e667f3bcd) << 12;   // u's mantissa at the log kernel's sqrt(2) switch
  bits[5] = std::uint64_t(1) << 62;                  // quadrant 1 exactly
  std::vector<double> z(bits.size());
  detail::box_muller(detail::StudentTKernel::portable, bits.data(), z.data(), bits.size() / 2);
  for (std::size_t i = 0; i < bits.size() / 2; ++i) {
    const std::uint64_t a = bits[2 * i], b = bits[2 * i + 1];
    const double u = (double(a >> 12) + 0.5) * 0x1.0p-52;
    const double f = (double((b >> 10) & ((std::uint64_t(1) << 52) - 1)) + 0.5) * 0x1.0p-52;
    const double theta = 2.0 * std::numbers::pi * (double(b >> 62) + f) / 4.0;
    const double r = std::sqrt(-2.0 * std::log(u));
    INFO("pair " << i);
    REQUIRE(std::abs(z[2 * i] - r * std::cos(theta)) <= 1e-14 * (1.0 + r));
    REQUIRE(std::abs(z[2 * i + 1] - r * std::sin(theta)) <= 1e-14 * (1.0 + r));
  }
  CHECK(std::abs(z[0]) == Approx(std::sqrt(2.0 * 53.0 * std::numbers::ln2)).epsilon(1e-12));  // the largest
}

TEST_CASE("the Box-Muller transform gives the same bits in its portable and its AVX-512 build", "[rng][normal]") {
  if (!detail::avx512dq_available()) {
    WARN("this CPU has no AVX-512DQ: the vectorized Box-Muller build is not run here");
    return;
  }
  RandomStream words(3, 1, StreamPurpose::noise);
  std::vector<std::uint64_t> bits(2 * 70);
  words.fill_u64(bits);
  bits[0] = 0, bits[1] = ~std::uint64_t(0), bits[2] = ~std::uint64_t(0), bits[3] = 0;
  for (std::size_t pairs = 1; pairs <= 70; ++pairs) {  // every vector tail
    std::vector<double> portable(2 * pairs), vectorized(2 * pairs);
    detail::box_muller(detail::StudentTKernel::portable, bits.data(), portable.data(), pairs);
    detail::box_muller(detail::StudentTKernel::avx512, bits.data(), vectorized.data(), pairs);
    INFO(pairs << " pairs");
    REQUIRE(portable == vectorized);
  }
}

TEST_CASE("normals: one at a time, in bulk from any position, and steps ahead give the same bits", "[rng][normal]") {
  // fill_normal of every size from every position in the cache of normal(), and skip_normals then more.
  for (std::size_t offset : {0u, 1u, 3u, 4u, 5u, 15u, 16u, 17u}) {
    for (std::size_t count = 0; count <= 90; ++count) {
      RandomStream bulk(6, 2, StreamPurpose::noise), single(6, 2, StreamPurpose::noise);
      bulk.seek(40);
      single.seek(40);
      for (std::size_t k = 0; k < offset; ++k) REQUIRE(bulk.normal() == single.normal());
      std::vector<double> values(count), expected(count);
      bulk.fill_normal(values);
      for (double& v : expected) v = single.normal();
      INFO("offset " << offset << ", count " << count);
      REQUIRE(values == expected);
      REQUIRE(bulk.normal() == single.normal());  // left in the same place
    }
  }
  // Normals and raw draws are separate sub-streams: drawing one does not move the other.
  RandomStream a(6, 2, StreamPurpose::noise), b(6, 2, StreamPurpose::noise);
  a.seek(3), b.seek(3);
  for (int k = 0; k < 7; ++k) a.normal(), b.next_u64();
  CHECK(a.next_u64() == [&] { RandomStream c(6, 2, StreamPurpose::noise); c.seek(3); return c.next_u64(); }());
  CHECK(b.normal() == [&] { RandomStream c(6, 2, StreamPurpose::noise); c.seek(3); return c.normal(); }());
  // normals_of_steps: the first per_step normals after seek(step), for per_step across block boundaries
  // and step counters that wrap mod 2^64; skip_normals leaves the stream where fill_normal would.
  const RandomStream stream(6, 3, StreamPurpose::noise);
  for (std::uint64_t first : {std::uint64_t(7), std::uint64_t(0) - 30}) {
    for (std::size_t per_step : {1u, 3u, 4u, 5u, 10u, 17u}) {
      const std::size_t steps = 70;
      std::vector<double> ahead(steps * per_step);
      stream.normals_of_steps(first, per_step, ahead);
      for (std::size_t k = 0; k < steps; ++k) {
        RandomStream one = stream, skipped = stream;
        one.seek(first + k);
        skipped.seek(first + k);
        for (std::size_t j = 0; j < per_step; ++j) REQUIRE(ahead[k * per_step + j] == one.normal());
        skipped.skip_normals(per_step);
        REQUIRE(skipped.normal() == one.normal());
      }
    }
  }
}

TEST_CASE("gaussian noise drawn ahead: the same bits in any order of steps and runs, at 1 and 2 threads",
          "[rng][normal]") {
  // GradientNoise draws the normals of coming steps in bulk; a step's noise must be what that step alone
  // draws. Steps are visited forwards, backwards and shuffled (the look-ahead refills from wherever it
  // misses), and two runs' steps are interleaved on one thread and split over two.
  NoiseOptions options;
  options.kind = NoiseOptions::Kind::gaussian;
  options.scale = 0.5;
  const Eigen::Index d = 10;
  const long T = 300;
  auto reference = [&](std::uint64_t replicate) {  // one step at a time, fill_normal at each step
    RunStreams streams(1, replicate);
    Mat out(d, T);
    for (long t = 1; t <= T; ++t) {
      streams.noise.seek(std::uint64_t(t));
      Vec xi(d);
      streams.noise.fill_normal({xi.data(), std::size_t(d)});
      out.col(t - 1) = 0.5 * xi;
    }
    return out;
  };
  auto with_noise = [&](GradientNoise& noise, RandomStream& stream, long t, Mat& out) {
    stream.seek(std::uint64_t(t));
    Vec g = Vec::Zero(d);
    noise.apply(g, 1, stream);
    out.col(t - 1) = g;
  };
  std::vector<long> forwards(T), backwards(T), shuffled(T);
  for (long t = 1; t <= T; ++t) forwards[std::size_t(t - 1)] = t, backwards[std::size_t(T - t)] = t;
  shuffled = forwards;
  RandomStream shuffle(9, 9, StreamPurpose::optimizer);
  for (std::size_t i = shuffled.size(); i > 1; --i) std::swap(shuffled[i - 1], shuffled[shuffle.below(i)]);
  const Mat expected0 = reference(0), expected1 = reference(1);
  for (const auto* order : {&forwards, &backwards, &shuffled}) {
    RunStreams run0(1, 0), run1(1, 1);
    GradientNoise noise0(options, d), noise1(options, d);
    Mat got0(d, T), got1(d, T);
    for (long t : *order) {  // the two runs interleaved step by step
      with_noise(noise0, run0.noise, t, got0);
      with_noise(noise1, run1.noise, t, got1);
    }
    CHECK(got0 == expected0);
    CHECK(got1 == expected1);
  }
  // Two threads, one run each, against the same references.
  Mat got0(d, T), got1(d, T);
  auto run = [&](std::uint64_t replicate, Mat& out) {
    RunStreams streams(1, replicate);
    GradientNoise noise(options, d);
    for (long t = 1; t <= T; ++t) with_noise(noise, streams.noise, t, out);
  };
  std::thread other([&] { run(1, got1); });
  run(0, got0);
  other.join();
  CHECK(got0 == expected0);
  CHECK(got1 == expected1);
}

TEST_CASE("the stream layout version is 2 (Box-Muller normals on their own sub-stream)", "[rng][normal]") {
  // A change that draws other bits must bump kStreamLayoutVersion (run fingerprints and the file's
  // stream_layout_version carry it). This pins the first normals of one stream as layout 2 draws them.
  CHECK(kStreamLayoutVersion == 2);
  RandomStream s(1, 0, StreamPurpose::noise);
  s.seek(1);
  std::vector<double> z(4);
  s.fill_normal(z);
  // Recomputed from the definition: Philox4x64 block (1, 0, kNormalSubstream, 0), words v3 v2 v1 v0.
  const r123::Philox4x64 philox;
  const auto block = philox({{1, 0, kNormalSubstream, 0}}, s.key());
  const std::uint64_t bits[4] = {block.v[3], block.v[2], block.v[1], block.v[0]};
  for (int p = 0; p < 2; ++p) {
    const double u = (double(bits[2 * p] >> 12) + 0.5) * 0x1.0p-52;
    const double f = (double((bits[2 * p + 1] >> 10) & ((std::uint64_t(1) << 52) - 1)) + 0.5) * 0x1.0p-52;
    const double theta = std::numbers::pi / 2.0 * (double(bits[2 * p + 1] >> 62) + f), r = std::sqrt(-2.0 * std::log(u));
    CHECK(z[std::size_t(2 * p)] == Approx(r * std::cos(theta)).margin(1e-14 * (1 + r)));
    CHECK(z[std::size_t(2 * p + 1)] == Approx(r * std::sin(theta)).margin(1e-14 * (1 + r)));
  }
}
