// `plot --x gradient_evaluations | elapsed_seconds` (issues 18 and 26): each curve's x positions are the
// median over its finished runs of the budget they recorded at each checkpoint, so a batch-4 configuration
// sits at 4 t; the x range covers every curve; --data gains the x column; theory overlays (functions of t)
// are refused on another axis; a file without the costs names the fix.
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

// Two configurations, batch 1 and batch 4, three replicates each, checkpoints 0 1 10 100, subopt 1 / (1 + t).
// Gradient evaluations batch * t; elapsed seconds t (r + 1) / 100. Replicate 2 of batch 4 diverged after
// t = 1: its costs are NaN from t = 10 on, and it is not a finished run.
results::TraceData batch_table() {
  const std::vector<long> checkpoints{0, 1, 10, 100};
  const std::size_t C = 2, R = 3, K = checkpoints.size();
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = "batches";
  d.layout.replicates = long(R);
  d.layout.checkpoints = checkpoints;
  d.layout.views = {"last"};
  d.layout.metrics = {"subopt"};
  for (long batch : {1L, 4L}) {
    results::ConfigurationRecord rec;
    rec.id = batch == 1 ? "aaaa000011112222" : "bbbb000011112222";
    rec.label = "sgd batch=" + std::to_string(batch);
    rec.parameters = {{"optimizer", std::string("sgd")}, {"optimizer.batch", std::int64_t(batch)},
                      {"problem", std::string("quadratic")}};
    d.layout.configurations.push_back(rec);
  }
  d.traces.assign(1, std::vector<double>(C * R * K));
  d.gradient_evaluations.assign(C * R * K, kNaN);
  d.elapsed_seconds.assign(C * R * K, kNaN);
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < K; ++k) {
        const std::size_t i = (c * R + r) * K + k;
        const bool stopped = c == 1 && r == 2 && checkpoints[k] > 1;
        d.traces[0][i] = stopped ? kNaN : 1.0 / (1.0 + double(checkpoints[k]));
        if (stopped) continue;
        d.gradient_evaluations[i] = double((c == 0 ? 1 : 4) * checkpoints[k]);
        d.elapsed_seconds[i] = double(checkpoints[k]) * double(r + 1) / 100.0;
      }
  d.status.assign(C * R, RunStatus::ok);
  d.status[1 * R + 2] = RunStatus::diverged;
  d.stop_step.assign(C * R, 100);
  d.stop_step[1 * R + 2] = 5;
  d.wall_seconds.assign(C * R, 0.0);
  d.eval_seconds.assign(C * R, 0.0);
  d.messages.assign(C * R, "");
  return d;
}

}  // namespace

TEST_CASE("plot --x gradient_evaluations: each curve at its runs' median budget", "[plot][budget]") {
  const auto d = batch_table();
  tools::PlotOptions options;
  options.x = "gradient_evaluations";
  options.band = {};
  const tools::PlotData plot = tools::plot_data(options, d);
  CHECK(plot.x_label == "gradient evaluations (oracle samples)");
  CHECK(plot.x_log);  // checkpoints 0 1 10 100 are not evenly spaced; t = 0 dropped as in steps
  CHECK(plot.t == std::vector<long>{1, 10, 100});
  REQUIRE(plot.panels.size() == 1);
  REQUIRE(plot.panels[0].curves.size() == 2);
  CHECK(plot.panels[0].curves[0].x == std::vector<double>{1, 10, 100});
  CHECK(plot.panels[0].curves[1].x == std::vector<double>{4, 40, 400});  // batch 4 sits at 4 t
  // The values are the metric's, whatever the axis.
  CHECK(plot.panels[0].curves[1].series.front().value == std::vector<double>{0.5, 1.0 / 11, 1.0 / 101});

  // The TSV: the x column last; the script's x range covers both curves.
  std::ostringstream tsv;
  tools::write_plot_tsv(plot, tsv);
  CHECK_THAT(tsv.str(), Catch::StartsWith("panel\trow\tcol\tview\tconfiguration\tlabel\tcolor\tdash\tseries\tt\tvalue\t"
                                          "replicates_used\tx\n"));
  CHECK_THAT(tsv.str(), Catch::Contains("\tmedian\t10\t" + tools::exact(1.0 / 11) + "\t3\t40\n"));
  tools::PlotOptions draw = options;
  draw.output = "fig.png";
  const std::string script = tools::gnuplot_script(plot, draw);
  CHECK_THAT(script, Catch::Contains("set xrange [1:400]"));
  CHECK_THAT(script, Catch::Contains("\n40 "));  // batch 4's data block at x = 40

  // A linear axis keeps t = 0, at 0 evaluations.
  options.xscale = "linear";
  CHECK(tools::plot_data(options, d).panels[0].curves[1].x == std::vector<double>{0, 4, 40, 400});
}

TEST_CASE("plot --x elapsed_seconds: the median over finished runs", "[plot][budget]") {
  const auto d = batch_table();
  tools::PlotOptions options;
  options.x = "elapsed_seconds";
  options.band = {};
  const tools::PlotData plot = tools::plot_data(options, d);
  CHECK(plot.x_label == "elapsed time [s]");
  // Batch 1: replicates take t/100, 2t/100, 3t/100: the median 2t/100. Batch 4: replicate 2 diverged (not
  // finished, even at t = 1 where it recorded 0.03), so the median of t/100 and 2t/100: 1.5t/100.
  const auto& x0 = plot.panels[0].curves[0].x;
  const auto& x1 = plot.panels[0].curves[1].x;
  REQUIRE(x0.size() == 3);
  REQUIRE(x1.size() == 3);
  for (std::size_t j = 0; j < 3; ++j) {
    const double t = double(plot.t[j]);
    CHECK(x0[j] == Approx(2 * t / 100).epsilon(1e-15));
    CHECK(x1[j] == Approx(1.5 * t / 100).epsilon(1e-15));
  }
}

TEST_CASE("plot --x: default steps unchanged, theory refused, files without costs named", "[plot][budget]") {
  auto d = batch_table();
  tools::PlotOptions options;
  options.band = {};
  const tools::PlotData steps = tools::plot_data(options, d);
  CHECK(steps.x_label == "t (iterations)");
  CHECK(steps.panels[0].curves[1].x.empty());
  std::ostringstream tsv;
  tools::write_plot_tsv(steps, tsv);
  CHECK_THAT(tsv.str(), Catch::Contains("\tmedian\t10\t" + tools::exact(1.0 / 11) + "\t3\t10\n"));  // x = t

  options.x = "gradient_evaluations";
  options.theory = true;
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, d); }),
             Catch::Contains("functions of t") && Catch::Contains("--x step"));
  options.theory = false;
  options.theory_formula = "1 / (1 + t)";
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, d); }),
             Catch::Contains("theory_formula") && Catch::Contains("--x step"));
  options.theory_formula.clear();
  d.gradient_evaluations.assign(d.gradient_evaluations.size(), kNaN);  // a file written before the costs
  CHECK_THAT(config_error_of([&] { tools::plot_data(options, d); }),
             Catch::Contains("no gradient_evaluations recorded") && Catch::Contains("--x step"));
}
