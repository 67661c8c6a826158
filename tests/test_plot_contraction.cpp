// `plot --theory --theory-model contraction` (issue 18): for a linear rate the fitted overlay is C rho^t,
// the least-squares line of log(center) on t over summary's window, drawn over that window only, with each
// curve's rho named in the legend; rho is the number summary --fit contraction reports, to the bit.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <sstream>

#include "results/trace_query.hpp"
#include "tools/plot.hpp"

using namespace ratelab;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string config_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

// Two configurations (heavy-ball beta 0.5 and 0.9), checkpoints 0, 10, ..., 100, three replicates each.
// Configuration 0 is the exact geometric sequence 3 * 0.9^t in every replicate; configuration 1 has
// replicate factors 0.5, 1, 2 on 2 * 0.8^t, so its median is 2 * 0.8^t and its mean is not geometric in
// the same way (the center statistic decides what is fitted).
results::TraceData geometric_table() {
  std::vector<long> checkpoints;
  for (long t = 0; t <= 100; t += 10) checkpoints.push_back(t);
  const std::size_t C = 2, R = 3, K = checkpoints.size();
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "linear";
  d.layout.replicates = long(R);
  d.layout.checkpoints = checkpoints;
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  for (double beta : {0.5, 0.9}) {
    results::ConfigurationRecord rec;
    rec.id = beta == 0.5 ? "aaaa000011112222" : "bbbb000011112222";
    rec.label = beta == 0.5 ? "heavy_ball beta=0.5" : "heavy_ball beta=0.9";
    rec.parameters = {{"optimizer", std::string("heavy_ball")}, {"optimizer.beta", beta},
                      {"problem", std::string("quadratic")}};
    d.layout.configurations.push_back(rec);
  }
  d.traces.assign(1, std::vector<double>(C * R * K));
  const double factor[] = {0.5, 1.0, 2.0};
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t k = 0; k < K; ++k) {
      const double t = double(checkpoints[k]);
      d.traces[0][(0 * R + r) * K + k] = 3.0 * std::pow(0.9, t);
      d.traces[0][(1 * R + r) * K + k] = factor[r] * 2.0 * std::pow(0.8, t);
    }
  d.gradient_evaluations.assign(C * R * K, kNaN);
  d.elapsed_seconds.assign(C * R * K, kNaN);
  d.status.assign(C * R, RunStatus::ok);
  d.stop_step.assign(C * R, 100);
  d.wall_seconds.assign(C * R, 0.0);
  d.eval_seconds.assign(C * R, 0.0);
  d.messages.assign(C * R, "");
  return d;
}

tools::PlotOptions contraction_options() {
  tools::PlotOptions options;
  options.band = {};
  options.theory = true;
  options.theory_model = "contraction";
  return options;
}

const tools::PlotSeries* fitted_of(const tools::PlotCurve& curve) {
  for (const auto& s : curve.series)
    if (s.role == tools::SeriesRole::theory && s.name == "fitted") return &s;
  return nullptr;
}

bool legend_has(const tools::PlotData& plot, const std::string& text) {
  for (const auto& e : plot.legend)
    if (e.text == text) return true;
  return false;
}

}  // namespace

TEST_CASE("plot contraction overlay: rho of a geometric sequence, drawn over the fit window only", "[plot][contraction]") {
  const auto d = geometric_table();
  const tools::PlotData plot = tools::plot_data(contraction_options(), d);
  REQUIRE(plot.panels.size() == 1);
  REQUIRE(plot.panels[0].curves.size() == 2);
  const auto& exact_curve = plot.panels[0].curves[0];
  // log(3 * 0.9^t) is a line in t: least squares recovers it up to rounding in the logs (about 1e-16
  // relative per point, amplified by at most the window's t / spread ratio of 10 / 5).
  CHECK(exact_curve.fitted_rho == Approx(0.9).epsilon(1e-12));
  CHECK(plot.panels[0].curves[1].fitted_rho == Approx(0.8).epsilon(1e-12));  // the median is 2 * 0.8^t

  // Drawn over the default window [T/10, T] = [10, 100] (summary's), NaN elsewhere; inside, C rho^t.
  const tools::PlotSeries* line = fitted_of(exact_curve);
  REQUIRE(line != nullptr);
  REQUIRE(line->value.size() == plot.t.size());
  for (std::size_t j = 0; j < plot.t.size(); ++j) {
    const double t = double(plot.t[j]);
    if (t < 10) {
      CHECK(std::isnan(line->value[j]));
    } else {
      CHECK(line->value[j] == Approx(3.0 * std::pow(0.9, t)).epsilon(1e-12));
    }
  }

  // The legend says what was fitted where, and names each curve's rho by its colour's value.
  CHECK(legend_has(plot, "fitted C rho^t, t in [10, 100] (each curve)"));
  CHECK(legend_has(plot, "fitted rho per step:"));
  CHECK(legend_has(plot, "  beta=0.5: 0.9"));
  CHECK(legend_has(plot, "  beta=0.9: 0.8"));

  // Another window moves the drawn segment (fit_from = 0 would mean summary's default start, T/10).
  tools::PlotOptions narrow = contraction_options();
  narrow.fit_from = 20;
  narrow.fit_to = 50;
  const tools::PlotData middle = tools::plot_data(narrow, d);
  const tools::PlotSeries* middle_line = fitted_of(middle.panels[0].curves[0]);
  REQUIRE(middle_line != nullptr);
  for (std::size_t j = 0; j < middle.t.size(); ++j) {
    const double t = double(middle.t[j]);
    if (t < 20 || t > 50) {
      CHECK(std::isnan(middle_line->value[j]));
    } else {
      CHECK(middle_line->value[j] == Approx(3.0 * std::pow(0.9, t)).epsilon(1e-12));
    }
  }
  CHECK(legend_has(middle, "fitted C rho^t, t in [20, 50] (each curve)"));
}

TEST_CASE("plot contraction overlay: rho equals summary --fit contraction's, bit for bit", "[plot][contraction]") {
  auto d = geometric_table();
  // Noise on top, so that the fit is not exact and agreement is not an accident of exact data.
  for (std::size_t i = 0; i < d.traces[0].size(); ++i) d.traces[0][i] *= 1.0 + 0.1 * std::sin(double(i));
  const tools::PlotData plot = tools::plot_data(contraction_options(), d);
  for (std::size_t c = 0; c < 2; ++c) {
    const stats::ReplicateMatrix runs = results::replicate_matrix(d, 0, c, 0);
    RandomStream stream = results::bootstrap_stream(d, 1, results::BootstrapSubject{{c}, "last", "subopt"});
    const stats::RateFit fit = stats::bootstrap_contraction(runs, d.layout.checkpoints,
                                                            stats::last_decade(d.layout.checkpoints),
                                                            stats::Statistic::median(), {100, 0.95}, stream);
    CHECK(plot.panels[0].curves[c].fitted_rho == stats::contraction_factor(fit));
  }
}

TEST_CASE("plot contraction overlay: refusals and what cannot be fitted", "[plot][contraction]") {
  auto d = geometric_table();
  tools::PlotOptions options = contraction_options();
  options.theory_c = 2;
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, d); }),
             Catch::Contains("theory_model = contraction fits C and rho to each curve: leave theory_c at 0"));
  options = contraction_options();
  options.fit_from = 50;
  options.fit_to = 20;
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, d); }), Catch::Contains("needs fit_from < fit_to"));

  // A curve at 0 in the whole window (gradient descent reaching the minimizer exactly) gets no line and a
  // warning naming the window; the other curve keeps its fit.
  const std::size_t R = 3, K = d.layout.checkpoints.size();
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t k = 1; k < K; ++k) d.traces[0][r * K + k] = 0.0;
  const tools::PlotData plot = tools::plot_data(contraction_options(), d);
  CHECK(plot.panels[0].curves[0].fitted_rho == 0);
  CHECK(fitted_of(plot.panels[0].curves[0]) == nullptr);
  CHECK(plot.panels[0].curves[1].fitted_rho == Approx(0.8).epsilon(1e-12));
  bool warned = false;
  for (const auto& w : plot.warnings)
    warned = warned || w.find("no contraction fitted to 'heavy_ball beta=0.5'") != std::string::npos;
  CHECK(warned);
  CHECK(legend_has(plot, "  beta=0.9: 0.8"));
}

TEST_CASE("plot slope overlay: c t^s with s fitted to each curve over the window, named in the legend",
          "[plot][contraction]") {
  // The table above, its values replaced by power laws: 3 t^-0.5 in every replicate of configuration 0, and
  // replicate factors 0.5, 1, 2 on 2 t^-1 in configuration 1 (median 2 t^-1). t = 0 is outside [T/10, T].
  results::TraceData data = geometric_table();
  const std::size_t R = 3, K = data.layout.checkpoints.size();
  const double factor[] = {0.5, 1.0, 2.0};
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t k = 0; k < K; ++k) {
      const double t = double(data.layout.checkpoints[k]);
      data.traces[0][(0 * R + r) * K + k] = t > 0 ? 3.0 / std::sqrt(t) : 3.0;
      data.traces[0][(1 * R + r) * K + k] = t > 0 ? factor[r] * 2.0 / t : 2.0;
    }
  tools::PlotOptions options = contraction_options();
  options.theory_model = "slope";
  const tools::PlotData plot = tools::plot_data(options, data);
  REQUIRE(plot.panels.size() == 1);
  REQUIRE(plot.panels[0].curves.size() == 2);
  const double exponent[] = {-0.5, -1.0}, constant[] = {3.0, 2.0};
  for (std::size_t c = 0; c < 2; ++c) {
    const auto& curve = plot.panels[0].curves[c];
    CHECK(curve.fitted_slope == Approx(exponent[c]).margin(1e-12));
    CHECK(curve.fitted_rho == 0);
    // summary's line: the same least squares on the same median, to the bit.
    const stats::ReplicateMatrix runs = results::replicate_matrix(data, 0, c, 0);
    const auto median = stats::replicate_curve(runs, stats::Statistic::median());
    CHECK(curve.fitted_slope == stats::fit_loglog(data.layout.checkpoints, median.value, {10, 100}).slope);
    const tools::PlotSeries* line = fitted_of(curve);
    REQUIRE(line != nullptr);
    for (std::size_t j = 0; j < plot.t.size(); ++j) {
      const double t = double(plot.t[j]);
      if (t >= 10) CHECK(line->value[j] == Approx(constant[c] * std::pow(t, exponent[c])).epsilon(1e-12));
      else CHECK(std::isnan(line->value[j]));
    }
  }
  CHECK(legend_has(plot, "fitted c t^s, t in [10, 100] (each curve)"));
  CHECK(legend_has(plot, "fitted exponent s:"));
  CHECK(legend_has(plot, "  beta=0.5: -0.5"));
  CHECK(legend_has(plot, "  beta=0.9: -1"));
  // A given constant is a power law's with its given p, not a fit's.
  options.theory_c = 2;
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, data); }), Catch::Contains("leave theory_c at 0"));
}

TEST_CASE("a fit window of whole steps is written in full in the legend", "[plot][contraction]") {
  // T = 100000 in the table: the default window [T/10, T] is [10000, 100000], not "[1e+04, 1e+05]".
  results::TraceData data = geometric_table();
  for (long& t : data.layout.checkpoints) t *= 1000;
  tools::PlotOptions options = contraction_options();
  options.theory_model = "slope";
  const tools::PlotData plot = tools::plot_data(options, data);
  CHECK(legend_has(plot, "fitted c t^s, t in [10000, 100000] (each curve)"));
}
