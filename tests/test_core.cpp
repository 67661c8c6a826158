// Core: parameter declarations, the registry, random streams, schedules, checkpoints.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "core/rng.hpp"
#include "core/run.hpp"

using namespace ratelab;

namespace {
struct DemoOptions {
  double beta = 0.5;
  long batch = 1;
  std::string mode = "a";
  static ParamTable<DemoOptions> params() {
    return {param(&DemoOptions::beta, "beta", in_closed_open(0, 1), "momentum"),
            param(&DemoOptions::batch, "batch", at_least(1), "batch"),
            param(&DemoOptions::mode, "mode", one_of({"a", "b"}), "mode")};
  }
};
}  // namespace

TEST_CASE("parameters resolve, bind and report every violation at once", "[params]") {
  auto specs = DemoOptions::params().specs();
  std::vector<std::string> errors;
  ParamSet p = resolve_params(specs, {{"beta", "0.25"}, {"batch", "4"}}, "optimizer", errors);
  REQUIRE(errors.empty());
  DemoOptions o = DemoOptions::params().bind(p);
  CHECK(o.beta == 0.25);
  CHECK(o.batch == 4);
  CHECK(o.mode == "a");
  CHECK(p.canonical() == "beta=0.25;batch=4;mode=a");

  errors.clear();
  resolve_params(specs, {{"beta", "1"}, {"batch", "x"}, {"mode", "c"}, {"bta", "1"}}, "optimizer", errors);
  REQUIRE(errors.size() == 4);
  CHECK_THAT(errors[0], Catch::Contains("unknown optimizer parameter 'bta'") && Catch::Contains("did you mean 'beta'"));
  CHECK_THAT(errors[1], Catch::Contains("optimizer.beta = 1 violates 0 <= optimizer.beta < 1"));
  CHECK_THAT(errors[2], Catch::Contains("optimizer.batch = 'x' is malformed"));
  CHECK_THAT(errors[3], Catch::Contains("optimizer.mode = 'c' is not one of a, b"));
}

TEST_CASE("canonical values round-trip exactly", "[params]") {
  ParamSpec spec{"x", ParamType::real, 0.0, unconstrained(), ""};
  for (double v : {0.1, 1.0 / 3.0, 1e-300, 6.02214076e23, -2.5}) {
    ParamValue parsed = parse_value(spec, format_value(v), "x");
    CHECK(std::get<double>(parsed) == v);
  }
}

TEST_CASE("registry: unknown keys list the closest match, duplicates name both origins", "[registry]") {
  Registry r = builtin_registry();
  REQUIRE(r.contains(ComponentKind::optimizer, "sgd"));
  try {
    r.info(ComponentKind::optimizer, "sdg");
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("unknown optimizer 'sdg'") && Catch::Contains("did you mean 'sgd'"));
  }
  ComponentInfo dup{ComponentKind::optimizer, "sgd", "copy", {}, "plugin libfoo.so"};
  try {
    r.add_optimizer(dup, [](const ParamSet&) { return std::unique_ptr<Optimizer>(); });
    FAIL("expected an error");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains("registered twice") && Catch::Contains("built-in") &&
                             Catch::Contains("plugin libfoo.so"));
  }
}

TEST_CASE("every registered component has a valid parameter declaration", "[registry]") {
  Registry r = builtin_registry();
  for (auto kind : {ComponentKind::optimizer, ComponentKind::problem, ComponentKind::schedule}) {
    for (const ComponentInfo* c : r.components(kind)) {
      INFO(kind_name(kind) << " " << c->key);
      CHECK(!c->summary.empty());
      std::vector<std::string> keys;
      for (const auto& s : c->params) {
        CHECK(!s.doc.empty());
        CHECK(!violation(s, s.default_value, s.key));
        CHECK(std::find(keys.begin(), keys.end(), s.key) == keys.end());
        keys.push_back(s.key);
        // The default's canonical text parses back to the same value.
        CHECK(parse_value(s, format_value(s.default_value), s.key) == s.default_value);
      }
    }
  }
}

TEST_CASE("random streams: seekable, keyed, and the samplers have the right moments", "[rng]") {
  RandomStream a(7, 3, StreamPurpose::sampling), b(7, 3, StreamPurpose::sampling);
  a.seek(100);
  const double first = a.uniform();
  for (int i = 0; i < 17; ++i) a.normal();
  a.seek(100);
  CHECK(a.uniform() == first);  // what step 100 draws does not depend on earlier draws
  b.seek(100);
  CHECK(b.uniform() == first);
  RandomStream c(7, 4, StreamPurpose::sampling), d(7, 3, StreamPurpose::noise);
  c.seek(100);
  d.seek(100);
  CHECK(c.uniform() != first);
  CHECK(d.uniform() != first);

  // Moments with Monte Carlo tolerances: 5 standard errors.
  const int n = 200000;
  RandomStream s(1, 0, StreamPurpose::noise);
  double m1 = 0, m2 = 0, t2 = 0;
  for (int i = 0; i < n; ++i) {
    const double z = s.normal();
    m1 += z;
    m2 += z * z;
  }
  m1 /= n;
  m2 /= n;
  CHECK(std::abs(m1) < 5.0 / std::sqrt(n));
  CHECK(std::abs(m2 - 1.0) < 5.0 * std::sqrt(2.0 / n));  // Var(z^2) = 2
  const double nu = 5.0;                                  // Var(t_5) = 5/3, Var(t^2) finite for nu > 4
  for (int i = 0; i < n; ++i) {
    const double t = s.student_t(nu);
    t2 += t * t;
  }
  t2 /= n;
  const double var = nu / (nu - 2), fourth = 3 * nu * nu / ((nu - 2) * (nu - 4));
  CHECK(std::abs(t2 - var) < 5.0 * std::sqrt((fourth - var * var) / n));
  // below(n) is uniform over [0, n): chi-square over 8 cells, 8 - 1 dof, threshold 24.3 (p = 0.001).
  std::vector<int> counts(8, 0);
  for (int i = 0; i < 80000; ++i) counts[s.below(8)]++;
  double chi2 = 0;
  for (int c0 : counts) chi2 += (c0 - 10000.0) * (c0 - 10000.0) / 10000.0;
  CHECK(chi2 < 24.3);
}

TEST_CASE("schedules follow their formulas", "[schedule]") {
  Registry r = builtin_registry();
  std::vector<std::string> errors;
  auto make = [&](const std::string& key, std::map<std::string, std::string> raw, ScheduleContext ctx) {
    auto p = resolve_params(r.info(ComponentKind::schedule, key).params, raw, "schedule", errors);
    return r.make_schedule(key, p, ctx);
  };
  CHECK(make("constant", {{"eta", "0.3"}}, {})(7) == 0.3);
  CHECK(make("inv_sqrt", {{"c", "0.5"}}, {})(4) == 0.25);
  CHECK(make("inv_t", {{"c", "2"}}, {})(8) == 0.25);
  CHECK(make("inv_mu_t", {{"c", "1"}, {"t0", "1"}}, {10, 0.5})(3) == 1.0 / (0.5 * 4.0));
  CHECK(make("horizon", {{"c", "1"}}, {100, {}})(1) == Approx(100.0 / 1000.0).epsilon(1e-15));
  CHECK(make("horizon", {{"c", "1"}}, {100, {}})(100) == Approx(1.0 / 1000.0).epsilon(1e-15));
  auto decay = make("step_decay", {{"eta", "1"}, {"factor", "0.5"}, {"every", "10"}}, {});
  CHECK(decay(10) == 1.0);
  CHECK(decay(11) == 0.5);
  CHECK(decay(25) == 0.25);
  CHECK(errors.empty());
  CHECK_THROWS_WITH(make("inv_mu_t", {}, {10, {}}), Catch::Contains("needs mu"));
}

TEST_CASE("log-spaced checkpoints include 0, 1 and T and match the canonical W1 rule", "[run]") {
  auto cp = log_checkpoints(100000, 41);
  const std::vector<long> w1{1,     2,     3,     4,     5,     6,     7,     8,     11,    14,
                             19,    26,    35,    46,    62,    84,    113,   151,   203,   273,
                             367,   492,   661,   889,   1194,  1604,  2154,  2894,  3888,  5223,
                             7017,  9427,  12664, 17013, 22855, 30703, 41246, 55410, 74438, 100000};
  REQUIRE(cp.size() == 41);
  CHECK(cp[0] == 0);
  CHECK(std::vector<long>(cp.begin() + 1, cp.end()) == w1);
  auto small = log_checkpoints(5, 40);
  CHECK(small == std::vector<long>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("linear checkpoints are t = round(k T / (n - 1)), exact for any T", "[run]") {
  CHECK(linear_checkpoints(100, 11) == std::vector<long>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100});
  // 7 / 3 = 2.33, 14 / 3 = 4.67: rounded to 2 and 5.
  CHECK(linear_checkpoints(7, 4) == std::vector<long>{0, 2, 5, 7});
  CHECK(linear_checkpoints(3, 40) == std::vector<long>{0, 1, 2, 3});  // fewer steps than checkpoints: every step
  CHECK(linear_checkpoints(0, 5) == std::vector<long>{0});
  // Large T: k T overflows no double rounding (T = 2^62 - 1, 3 checkpoints: the midpoint rounds up).
  const long big = (1L << 62) - 1;
  CHECK(linear_checkpoints(big, 3) == std::vector<long>{0, 1L << 61, big});
}

TEST_CASE("bulk Student-t sampling gives the same bits as one variate at a time", "[rng]") {
  // fill_student_t runs its math in a vectorized loop; student_t() goes through the loop's scalar tail.
  for (double nu : {0.7, 2.5, 30.0}) {
    RandomStream bulk(3, 1, StreamPurpose::noise), single(3, 1, StreamPurpose::noise);
    bulk.seek(9);
    single.seek(9);
    std::vector<double> a(1000);
    bulk.fill_student_t(a, nu);
    for (double v : a) REQUIRE(v == single.student_t(nu));
    CHECK(bulk.next_u64() == single.next_u64());  // and the streams are left in the same place
  }
}

TEST_CASE("fill_u64 gives the values of next_u64 calls, from any position in a block", "[rng]") {
  for (std::size_t offset : {0u, 1u, 3u, 4u, 5u}) {
    for (std::size_t count : {0u, 1u, 2u, 7u, 8u, 130u}) {
      RandomStream bulk(5, 2, StreamPurpose::noise), single(5, 2, StreamPurpose::noise);
      for (std::size_t k = 0; k < offset; ++k) REQUIRE(bulk.next_u64() == single.next_u64());
      std::vector<std::uint64_t> values(count);
      bulk.fill_u64(values);
      for (std::uint64_t v : values) REQUIRE(v == single.next_u64());
      REQUIRE(bulk.next_u64() == single.next_u64());
    }
  }
}

TEST_CASE("both Philox kernels give r123::Philox4x64's blocks bit for bit", "[rng]") {
  // The counters vary in word 0 (first_below_of_steps) or word 1 (fill_u64) and wrap mod 2^64 like the
  // scalar ++; n = 0..70 covers whole and partial groups of 8 and calls of 32. The sentinels check that
  // the masked stores of a partial group write nothing past the last block.
  std::vector<detail::PhiloxKernel> kernels{detail::PhiloxKernel::portable};
  if (detail::avx512_kernel_available())
    kernels.push_back(detail::PhiloxKernel::avx512);
  else
    WARN("this CPU has no AVX-512F: only the portable Philox kernel is checked against Random123");
  const r123::Philox4x64 philox;
  const std::uint64_t sentinel = 0x5e5e5e5e5e5e5e5eULL;
  for (std::uint64_t seed = 0; seed < 12; ++seed) {
    const r123::Philox4x64::key_type key{{splitmix64(seed), splitmix64(~seed)}};
    for (int word : {0, 1}) {
      for (std::uint64_t start : {std::uint64_t(0), splitmix64(seed + 99), std::uint64_t(0) - 37}) {
        r123::Philox4x64::ctr_type first{{splitmix64(seed + 7), splitmix64(seed + 8), seed, ~seed}};
        first.v[word] = start;
        for (std::size_t n = 0; n <= 70; ++n) {
          for (bool only_v3 : {false, true}) {
            const std::size_t words = only_v3 ? n : 4 * n;
            std::vector<std::uint64_t> expected(words + 9, sentinel);
            for (std::size_t j = 0; j < n; ++j) {
              auto counter = first;
              counter.v[word] = start + j;
              const auto block = philox(counter, key);
              for (int i = 0; i < (only_v3 ? 1 : 4); ++i)
                expected[(only_v3 ? j : 4 * j) + i] = block.v[3 - i];
            }
            for (detail::PhiloxKernel kernel : kernels) {
              std::vector<std::uint64_t> out(words + 9, sentinel);
              detail::philox_blocks(kernel, first, word, key, n, only_v3, out.data());
              INFO("kernel " << int(kernel) << ", word " << word << ", start " << start << ", n " << n
                             << ", only_v3 " << only_v3);
              REQUIRE(out == expected);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("fill_u64 and first_below_of_steps equal the one-at-a-time draws for every size and position",
          "[rng]") {
  // Whichever kernel this CPU gets: sizes 1..70 (short calls, partial groups, a tail after whole blocks)
  // from every position in a block.
  for (std::size_t offset = 0; offset < 4; ++offset) {
    for (std::size_t count = 1; count <= 70; ++count) {
      RandomStream bulk(8, 1, StreamPurpose::noise), single(8, 1, StreamPurpose::noise);
      bulk.seek(count);
      single.seek(count);
      for (std::size_t k = 0; k < offset; ++k) REQUIRE(bulk.next_u64() == single.next_u64());
      std::vector<std::uint64_t> values(count), expected(count);
      bulk.fill_u64(values);
      for (std::uint64_t& v : expected) v = single.next_u64();
      REQUIRE(values == expected);
      REQUIRE(bulk.next_u64() == single.next_u64());
    }
  }
  // The step counter wraps mod 2^64 within a call, as seek(first_step + k) does.
  const RandomStream stream(8, 2, StreamPurpose::sampling);
  for (std::uint64_t first_step : {std::uint64_t(3), std::uint64_t(0) - 40}) {
    for (std::size_t count = 1; count <= 70; ++count) {
      std::vector<std::uint64_t> bulk(count), expected(count);
      stream.first_below_of_steps(first_step, 1000, bulk);
      for (std::size_t k = 0; k < count; ++k) {
        RandomStream one = stream;
        one.seek(first_step + k);
        expected[k] = one.below(1000);
      }
      REQUIRE(bulk == expected);
    }
  }
}

TEST_CASE("Student-t variates follow Bailey's formula on the stream's uniforms", "[rng]") {
  // An independent transcription with libm's log and pow: the accepted pairs must be the same and the
  // values agree to the accuracy of the polynomial log/exp (1e-13 relative is 500 ulp).
  const double nu = 2.5;
  RandomStream stream(4, 0, StreamPurpose::noise), uniforms(4, 0, StreamPurpose::noise);
  std::vector<double> t(500);
  stream.fill_student_t(t, nu);
  for (double value : t) {
    double u, v, w;
    do {
      u = 2.0 * uniforms.uniform() - 1.0;
      v = 2.0 * uniforms.uniform() - 1.0;
      w = u * u + v * v;
    } while (!(w < 1.0 && w > 0.0));
    const double expected = u * std::sqrt(nu * (std::pow(w, -2.0 / nu) - 1.0) / w);
    REQUIRE(value == Approx(expected).epsilon(1e-13));
  }
}

TEST_CASE("the Student-t transform gives the same bits in its portable and its AVX-512DQ build", "[rng]") {
  // fill_student_t chooses the vectorized build at run time; both must agree with each other bit for bit
  // (and the portable one is the scalar code the other tests hold against libm). Inputs: accepted pairs
  // (u, w) from a stream, plus the edges w -> 0 and w -> 1, for several nu; lengths 1..64 cover every
  // vector tail.
  if (!detail::avx512dq_available()) {
    WARN("this CPU has no AVX-512DQ: the vectorized Student-t transform is not run here");
    return;
  }
  RandomStream stream(5, 6, StreamPurpose::noise);
  std::vector<double> u, w;
  while (u.size() < 64) {
    const double a = 2.0 * stream.uniform() - 1.0, b = 2.0 * stream.uniform() - 1.0, s = a * a + b * b;
    if (s < 1.0 && s > 0.0) u.push_back(a), w.push_back(s);
  }
  u[0] = 1e-300, w[0] = 1e-300;  // w near 0: w^(-2/nu) overflows to inf for small nu
  u[1] = 0.9999999, w[1] = 0.9999999999999999;  // w near 1: t near 0
  for (double nu : {0.5, 1.0, 2.5, 30.0}) {
    for (std::size_t n = 1; n <= 64; ++n) {
      std::vector<double> portable(n), vectorized(n);
      detail::student_t_transform(detail::StudentTKernel::portable, u.data(), w.data(), portable.data(), n, nu);
      detail::student_t_transform(detail::StudentTKernel::avx512, u.data(), w.data(), vectorized.data(), n, nu);
      INFO("nu = " << nu << ", n = " << n);
      CHECK(std::memcmp(portable.data(), vectorized.data(), n * sizeof(double)) == 0);
    }
  }
}
