// Claims (experiments/claims.hpp): the formula language, claim parsing with file:line errors, every kind
// evaluated on hand-built trace data whose statistics are exact, and `ratelab verify`'s exit codes.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/registry.hpp"
#include "experiments/claims.hpp"

using namespace ratelab;
using claims::Formula;

namespace {

// Two configurations ("a": mu = 0.5, "b": mu = 2), one view, one metric, R replicates, checkpoints
// 0, 1, 10, 100, 1000. Replicate r of "a" has subopt = (r + 1) / t (so every statistic over replicates is
// C / t exactly); "b" has 2 (r + 1) / t^0.5.
results::TraceData synthetic(long R) {
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "synthetic";
  d.layout.replicates = R;
  d.layout.checkpoints = {0, 1, 10, 100, 1000};
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  for (const auto& [label, mu] : {std::pair<std::string, double>{"a", 0.5}, {"b", 2.0}}) {
    results::ConfigurationRecord rec;
    rec.id = label == "a" ? "00000000000000aa" : "00000000000000bb";
    rec.label = label;
    rec.parameters = {{"problem", std::string("quadratic")}, {"problem.mu", mu},
                      {"problem.d", std::int64_t(4)},        {"optimizer", std::string("sgd")},
                      {"schedule", std::string("constant")}, {"schedule.eta", 0.1}};
    d.layout.configurations.push_back(rec);
  }
  const std::size_t K = d.layout.checkpoints.size();
  d.traces.assign(1, std::vector<double>(2 * std::size_t(R) * K));
  for (std::size_t c = 0; c < 2; ++c)
    for (long r = 0; r < R; ++r)
      for (std::size_t k = 0; k < K; ++k) {
        const double t = double(d.layout.checkpoints[k]);
        const double v = c == 0 ? (r + 1) / std::max(t, 1.0) : 2.0 * (r + 1) / std::sqrt(std::max(t, 1.0));
        d.traces[0][(c * std::size_t(R) + std::size_t(r)) * K + k] = v;
      }
  d.status.assign(2 * std::size_t(R), RunStatus::ok);
  d.stop_step.assign(2 * std::size_t(R), 1000);
  d.wall_seconds.assign(2 * std::size_t(R), 0.0);
  d.eval_seconds.assign(2 * std::size_t(R), 0.0);
  d.messages.assign(2 * std::size_t(R), "");
  std::vector<double> q(2 * std::size_t(R));
  for (std::size_t i = 0; i < q.size(); ++i) q[i] = 1.0 + double(i % std::size_t(R));  // 1..R per config
  d.run_stats = {{"q_mean", q}};
  return d;
}

std::vector<claims::Claim> claims_of(const std::string& text) {
  return claims::parse_claims(parse_ini("[claims]\n" + text, "test.ini"));
}

}  // namespace

TEST_CASE("claim formulas: arithmetic, sums, parameters and errors", "[claims]") {
  const auto data = synthetic(3);
  auto eval = [&](const std::string& text, std::size_t c = 0) {
    return claims::evaluate(Formula::parse(text, "f"), data, c);
  };
  CHECK(eval("2*3 + 1") == 7.0);
  CHECK(eval("-2^2") == -4.0);  // unary minus binds looser than ^
  CHECK(eval("2^-1") == 0.5);
  CHECK(eval("2^3^2") == 512.0);  // ^ is right associative
  CHECK(eval("sum(i, 0, 3, i^2)") == 14.0);
  CHECK(eval("sum(i, 1, 2, sum(j, 1, i, j))") == 4.0);  // 1 + (1 + 2)
  CHECK(eval("min(3, 1, 2) + max(1, 5)") == 6.0);
  CHECK(eval("T") == 1000.0);
  CHECK(eval("R") == 3.0);
  CHECK(eval("mu") == 0.5);  // unqualified: only the problem has mu
  CHECK(eval("problem.mu", 1) == 2.0);
  CHECK(eval("d") == 4.0);
  CHECK(eval("sqrt(problem.d) * log(exp(2)) + cos(0) + sin(0) + abs(-1)") == Approx(6.0).epsilon(1e-15));
  CHECK(std::isinf(eval("inf")));
  CHECK(claims::evaluate(Formula::parse("t * 2", "f"), data, 0, 5.0) == 10.0);
  CHECK_THROWS_WITH(eval("t"), Catch::Contains("exists only in scale="));
  CHECK_THROWS_WITH(Formula::parse("2 *", "expect"), Catch::Contains("expect: formula '2 *'"));
  CHECK_THROWS_WITH(Formula::parse("(1 + 2", "f"), Catch::Contains("missing ')'"));
  CHECK_THROWS_WITH(Formula::parse("foo(1)", "f"), Catch::Contains("unknown function 'foo'"));
  CHECK_THROWS_WITH(Formula::parse("2 mu", "f"), Catch::Contains("unexpected 'mu'"));
  CHECK_THROWS_WITH(eval("nu"), Catch::Contains("unknown name 'nu'"));
  CHECK_THROWS_WITH(eval("optimizer"), Catch::Contains("not a number"));
}

TEST_CASE("malformed claims are reported together with file and line", "[claims]") {
  try {
    claims_of(
        "ok = slope expect=[-1, 0]\nbad_kind = slop expect=[1, 2]\nbad_field = value expect=[0, 1] "
        "colour=red\n"
        "no_expect = slope\nbad_quantile = value stat=q1.5 expect=[0, 1]\nno_tol = value expect=mu\n");
    FAIL("no error");
  } catch (const ConfigError& e) {
    const auto& p = e.problems();
    REQUIRE(p.size() == 5);
    CHECK_THAT(p[0], Catch::StartsWith("test.ini:3: claim 'bad_kind': unknown claim kind 'slop'"));
    CHECK_THAT(p[1], Catch::StartsWith("test.ini:4: claim 'bad_field': unknown value claim field 'colour'"));
    CHECK_THAT(p[2], Catch::StartsWith("test.ini:5: claim 'no_expect': slope claim needs expect="));
    CHECK_THAT(p[3], Catch::StartsWith("test.ini:6: claim 'bad_quantile': stat=q1.5"));
    CHECK_THAT(p[4], Catch::StartsWith("test.ini:7: claim 'no_tol': value claim with expect=FORMULA needs"));
  }
  // Selectors and names are checked against the configurations before anything runs.
  const auto data = synthetic(2);
  CHECK_THROWS_WITH(claims::check_claims(claims_of("x = slope where=label=c expect=[-1, 0]"), data, true),
                    Catch::Contains("test.ini:2: claim 'x': no configuration matches"));
  CHECK_THROWS_WITH(
      claims::check_claims(claims_of("x = compare a=optimizer=sgd b=label=b expect=a<b"), data, true),
      Catch::Contains("a= selects 2 configurations"));
  CHECK_THROWS_WITH(claims::check_claims(claims_of("x = value expect=nu tol=0.1"), data, true),
                    Catch::Contains("unknown name 'nu'"));
  CHECK_THROWS_WITH(claims::check_claims(claims_of("x = value metric=dist2 expect=[0, 1]"), data, true),
                    Catch::Contains("unknown metric"));
}

TEST_CASE("claims evaluate to exact statistics of hand-built traces", "[claims]") {
  // R = 5: replicate r of "a" is (r + 1)/t, so the median over replicates is 3/t and the mean 3/t;
  // "b" has median 6/sqrt(t). Log-log slopes are exact: -1 and -1/2.
  const auto data = synthetic(5);
  const auto verdicts = claims::evaluate_claims(
      claims_of("slope_a = slope where=label=a window=[10, T] expect=[-1.0000001, -0.9999999]\n"
                "slope_b = slope where=label=b window=[1, T] expect=[-0.6, -0.55]\n"  // -0.5: FAIL
                "median_a = value where=label=a at=100 expect=3/100 atol=1e-15\n"
                "q_a = value where=label=a stat=q0.25 expect=[0.00199, 0.00201]\n"  // 2/1000
                "scaled = value where=label=a scale=t at=10 expect=3 tol=1e-12\n"
                "mean_se = value where=label=a stat=mean expect=0.0031 se=1\n"  // se = sqrt(2.5/5)/1000
                "contraction_b = value measure=contraction where=label=b window=[1, T] expect=[0, 1]\n"
                "a_below_b = compare a=label=a b=label=b expect=a<b factor=10\n"  // 0.003 * 10 < 6/sqrt(1000)
                "b_above_a = compare a=label=b b=label=a expect=a>b factor=100\n"  // 0.19 > 0.3: FAIL
                "slopes = compare a=label=a b=label=b measure=slope window=[1, T] expect=a<b\n"
                "conv = converges where=label=a below=0.0035 fraction=0.6\n"           // 3 of 5 below 3.5e-3
                "conv_strict = converges where=label=a below=0.0035 fraction=0.7\n"    // FAIL
                "stays = fails where=label=b above=0.1 window=[T/10, T] fraction=1\n"  // min 2/sqrt(1000) =
                                                                                       // 0.063: FAIL
                "stays_loose = fails where=label=b above=0.06 fraction=1\n"
                "status = status diverged=0 error=0 ok=R\n"
                "q_run = value where=label=b metric=run.q_mean stat=mean expect=3 atol=0\n"),
      data, 1, 200);
  REQUIRE(verdicts.size() == 16);
  std::map<std::string, claims::Verdict> v;
  for (const auto& x : verdicts) v[x.name] = x;
  CHECK(v["slope_a"].pass);
  CHECK_FALSE(v["slope_b"].pass);
  CHECK_THAT(v["slope_b"].measured, Catch::StartsWith("-0.5 "));
  CHECK(v["median_a"].pass);
  CHECK(v["q_a"].pass);
  CHECK(v["scaled"].pass);
  CHECK(v["mean_se"].pass);  // |0.003 - 0.0031| = 1e-4 <= 1 se = 7.07e-4
  CHECK(v["contraction_b"].pass);
  CHECK(v["a_below_b"].pass);
  CHECK_FALSE(v["b_above_a"].pass);
  CHECK(v["slopes"].pass);
  CHECK(v["conv"].pass);
  CHECK_THAT(v["conv"].measured, Catch::Equals("3/5 replicates"));
  CHECK_FALSE(v["conv_strict"].pass);
  CHECK_FALSE(v["stays"].pass);
  CHECK(v["stays_loose"].pass);
  CHECK(v["status"].pass);
  CHECK(v["q_run"].pass);
  CHECK_THAT(claims::format_verdict(v["slope_b"]),
             Catch::StartsWith("FAIL slope_b: slope of median subopt[last] of 'b'"));
}

TEST_CASE("status and converges count diverged and error runs", "[claims]") {
  auto data = synthetic(4);
  data.status[0] = RunStatus::diverged;  // config a, replicate 0
  data.status[1] = RunStatus::error;
  for (std::size_t k = 0; k < data.layout.checkpoints.size(); ++k) data.traces[0][k] = std::nan("");
  const auto v =
      claims::evaluate_claims(claims_of("counts = status where=label=a diverged=1 error=1 ok=2\n"
                                        "counts_b = status where=label=b diverged=[1, R]\n"
                                        "conv = converges where=label=a below=1 fraction=0.5\n"
                                        "conv_more = converges where=label=a below=1 fraction=0.75\n"
                                        "stays = fails where=label=a above=0.0035 fraction=0.5\n"),
                              data);
  CHECK(v[0].pass);
  CHECK_FALSE(v[1].pass);
  CHECK(v[2].pass);  // replicates 2, 3 converge; 0 diverged, 1 error
  CHECK_FALSE(v[3].pass);
  CHECK(v[4].pass);  // diverged (0) and 4/1000 >= 0.0035 (3); error run 1 and 3/1000 (2) do not count
  CHECK_THAT(v[4].measured, Catch::Equals("2/4 replicates"));
}

TEST_CASE("[quick] overrides the experiment and replaces claims", "[claims]") {
  IniDocument doc = parse_ini(
      "[experiment]\nsteps = 100\n[claims]\nr = slope expect=[-2, 0]\n[quick]\nexperiment.steps = 10\n"
      "claims.r = slope expect=[-3, 0]\nclaims.extra = status error=0\n[plot]\ntheory = true\n",
      "q.ini");
  const auto overrides = claims::quick_overrides(doc);
  REQUIRE(overrides == std::vector<std::string>{"experiment.steps=10", "claims.r=slope expect=[-3, 0]",
                                                "claims.extra=status error=0"});
  const auto c = claims::parse_claims(apply_overrides(doc, overrides, "q.ini [quick]"));
  REQUIRE(c.size() == 2);
  CHECK(c[0].text == "slope expect=[-3, 0]");
  CHECK(c[1].name == "extra");
  REQUIRE(claims::plot_section(doc).size() == 1);
}

TEST_CASE("ratelab verify: exit 0 when claims hold, 5 when one fails, 2 for a malformed claim",
          "[claims][cli]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ratelab_claims_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto verify = [&](const std::string& claims_text, const std::string& extra = "") {
    const fs::path file = dir / "v.ini";
    std::ofstream(file) << "[experiment]\nname = v\nsteps = 2000\nreplicates = 64\ncheckpoints = 20\n"
                           "[problem]\nname = quadratic\nd = 5\nnoise_scale = 2\ninit_scale = 0.1\n"
                           "[optimizer]\nname = sgd\n[schedule]\nname = inv_mu_t\nc = 1\nt0 = 10\n"
                           "[claims]\n"
                        << claims_text << "\n[quick]\nexperiment.steps = 500\n";
    const std::string cmd =
        std::string(RATELAB_BINARY_DIR) + "/tools/ratelab verify " + file.string() + " " + extra + " 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    REQUIRE(pipe);
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
    const int status = pclose(pipe);
    return std::pair<int, std::string>(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
  };
  // SGD with 1/(mu t) on a noisy quadratic: slope -1 (quick, 64 replicates: -0.88 to -1.0 over seeds 1-6).
  auto [ok, ok_out] =
      verify("rate = slope expect=[-1.4, -0.6]\nclean = status diverged=0 error=0", "--quick");
  CHECK(ok == 0);
  CHECK_THAT(ok_out, Catch::Contains("PASS rate") && Catch::Contains("t in [50, 500]"));
  auto [fail, fail_out] = verify("rate = slope expect=[-0.3, 0]");
  CHECK(fail == 5);
  CHECK_THAT(fail_out, Catch::Contains("FAIL rate") && Catch::Contains("FAILED: 0/1 claims hold"));
  auto [bad, bad_out] = verify("rate = slope expect=[-1, 0] where=optimizer=adam");
  CHECK(bad == 2);
  CHECK_THAT(bad_out, Catch::Contains("v.ini:18: claim 'rate': no configuration matches"));
  fs::remove_all(dir);
}

namespace {
std::shared_ptr<const Problem> make_layer(std::map<std::string, std::string> raw) {
  static const Registry registry = builtin_registry();
  std::vector<std::string> errors;
  ParamSet p =
      resolve_params(registry.info(ComponentKind::problem, "magr_layer").params, raw, "problem", errors);
  REQUIRE(errors.empty());
  ProblemContext ctx{RandomStream(5, 0, StreamPurpose::instance), ""};
  return registry.make_problem("magr_layer", p, ctx);
}
}  // namespace

TEST_CASE("magr_layer: starts at w with f = 0, L = 1, and its run statistics at w are exact",
          "[claims][magr]") {
  auto p = make_layer({{"d", "16"}, {"n", "64"}, {"outliers", "2"}, {"alpha", "0.02"}, {"bits", "3"}});
  REQUIRE(p->dim() == 16);
  Vec w(16), g(16);
  RandomStream init(1, 0, StreamPurpose::init);
  p->initial_point(w, init);
  // Outliers at indices 0 and 8 have magnitude 8/sqrt(16) = 2: they are the largest entries.
  CHECK(std::abs(w[0]) == 2.0);
  CHECK(std::abs(w[8]) == 2.0);
  CHECK(p->value(w) == Approx(0.02 * 2.0).epsilon(1e-14));  // F(w) = 0 + alpha ||w||_inf
  p->gradient(w, g);
  CHECK(g.norm() == 0.0);
  // gradient(w + v) = H v; H = X^T X/n scaled to lambda_max = 1: power iteration on H (200 steps from a
  // generic vector; the ratio converges to lambda_max = 1 from below, spectral gap permitting, to 1e-6).
  Vec v = Vec::Ones(16), hv(16);
  for (int k = 0; k < 200; ++k) {
    p->gradient(w + v, hv);
    v = hv / hv.norm();
  }
  p->gradient(w + v, hv);
  CHECK(v.dot(hv) == Approx(1.0).epsilon(1e-6));
  CHECK(*p->facts().L == 1.0);
  CHECK(*p->facts().f_star <= p->value(w));
  // At w' = w: every ratio is exactly 1 and the output change 0.
  RunStreams streams(1, 0);
  auto oracle = p->make_oracle(streams);
  oracle->sample_gradient(w, g, 1);
  RunStats stats;
  oracle->report(stats);
  REQUIRE(stats.size() == 4);
  CHECK(stats[0] == std::pair<std::string, double>{"max_abs_ratio", 1.0});
  CHECK(stats[1] == std::pair<std::string, double>{"quant_error_ratio", 1.0});
  CHECK(stats[2] == std::pair<std::string, double>{"output_change", 0.0});
  CHECK(stats[3] == std::pair<std::string, double>{"quantized_output_error", 1.0});
  // At w' = w / 2 the max-abs grid halves with it: Q(w/2) = Q(w)/2, so the quantization error ratio is 1/4.
  oracle->sample_gradient(0.5 * w, g, 1);
  stats.clear();
  oracle->report(stats);
  CHECK(stats[0].second == 0.5);
  CHECK(stats[1].second == Approx(0.25).epsilon(1e-12));
  CHECK_THROWS_WITH(make_layer({{"d", "4"}, {"outliers", "5"}}),
                    Catch::Contains("problem.outliers = 5 exceeds problem.d = 4"));
}

TEST_CASE("a claim at a step that is not stored fails naming the stored neighbours, unless checkpoint=nearest",
          "[claims]") {
  // Checkpoints 0, 1, 10, 100, 1000: t = 300 is not stored. It used to be read silently at t = 100.
  const auto data = synthetic(5);
  for (const std::string claim : {"v = value where=label=a at=300 expect=[0, 1]",
                                  "c = converges where=label=a at=3*100 below=1 fraction=1",
                                  "p = compare a=label=a b=label=b at=300 expect=a<b"}) {
    INFO(claim);
    try {
      claims::evaluate_claims(claims_of(claim + "\n"), data);
      FAIL("no error");
    } catch (const ConfigError& e) {
      CHECK_THAT(std::string(e.what()), Catch::Contains("is t = 300, which is not a stored checkpoint (the nearest stored: "
                                                        "t = 100 and 1000)") &&
                                            Catch::Contains("experiment.checkpoint_steps = a list that holds it") &&
                                            Catch::Contains("add checkpoint=nearest to the claim to read t = 100"));
    }
  }
  // Opting in reads the nearest stored step and says which: median of (r + 1)/t over r = 0..4 at t = 100.
  const auto v = claims::evaluate_claims(
      claims_of("v = value where=label=a at=300 checkpoint=nearest expect=3/100 atol=1e-15\n"
                "exact = value where=label=a at=100 checkpoint=exact expect=3/100 atol=1e-15\n"),
      data);
  CHECK(v[0].pass);
  CHECK_THAT(claims::format_verdict(v[0]), Catch::Contains("t=100"));
  CHECK(v[1].pass);
  CHECK_THROWS_WITH(claims_of("v = value at=300 checkpoint=closest expect=[0, 1]\n"),
                    Catch::Contains("checkpoint=closest is not one of exact"));
}

TEST_CASE("status claims count nonfinite runs", "[claims]") {
  auto data = synthetic(4);
  data.status[0] = RunStatus::nonfinite;
  const auto v = claims::evaluate_claims(claims_of("n = status where=label=a nonfinite=1 ok=3\n"
                                                   "none = status where=label=a nonfinite=0\n"),
                                         data);
  CHECK(v[0].pass);
  CHECK_THAT(v[0].measured, Catch::Equals("3 ok, 0 diverged, 0 error, 1 nonfinite"));
  CHECK_FALSE(v[1].pass);
}
