// `ratelab plot FILE` redraws what `ratelab run --plot` drew: the experiment's [plot] section is stored in
// the trace file (root attribute `plot`) and the command line overrides it.
#include <catch2/catch.hpp>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "results/trace_file.hpp"

#include "cli_support.hpp"

using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The (view, series) pairs of a --data table.
std::set<std::string> views_and_series(const std::string& tsv) {
  std::set<std::string> out;
  std::istringstream lines(tsv);
  std::string line;
  std::getline(lines, line);  // header: panel row col view configuration label color dash series t value used
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::stringstream cells(line);
    for (std::string cell; std::getline(cells, cell, '\t');) fields.push_back(cell);
    REQUIRE(fields.size() >= 9);
    out.insert(fields[3] + " " + fields[8]);
  }
  return out;
}

}  // namespace

TEST_CASE("plot FILE: the stored [plot] section round-trips, options given override it", "[cli][plot]") {
  const auto h5 = scratch("stored_plot.h5");
  auto o = run_cli("run quickstart --quiet --set experiment.steps=500 --set experiment.replicates=4 "
                   "--set plot.views=suffix --set plot.deltas=0.1 --set plot.theory=false --plot -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  auto png = h5;
  png.replace_extension(".png");
  REQUIRE(std::filesystem::file_size(png) > 5000);

  const auto data = ratelab::results::read_trace_file(h5.string());
  std::string stored;
  for (const auto& [key, value] : data.layout.root)
    if (key == "plot") stored = std::get<std::string>(value);
  CHECK_THAT(stored, Catch::Contains("views = suffix\n") && Catch::Contains("deltas = 0.1\n") &&
                         Catch::Contains("theory = false\n"));

  // The stored section applies: only the suffix view, with its q0.9 curve.
  const auto tsv = scratch("stored_plot.tsv");
  o = run_cli("plot " + h5.string() + " --data " + tsv.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK(views_and_series(read_text(tsv)) ==
        std::set<std::string>{"suffix median", "suffix band_q0.1", "suffix band_q0.9", "suffix q0.9"});
  // The command line overrides it, key by key.
  o = run_cli("plot " + h5.string() + " --views last --band= --data " + tsv.string());
  REQUIRE(o.exit_code == 0);
  CHECK(views_and_series(read_text(tsv)) == std::set<std::string>{"last median", "last q0.9"});
  // Without -o the figure goes next to the file, as run --plot put it.
  std::filesystem::remove(png);
  o = run_cli("plot " + h5.string());
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("wrote " + png.string()));
  CHECK(std::filesystem::file_size(png) > 5000);
}

TEST_CASE("plot legend: a component's own parameter tells its configurations apart before another component",
          "[cli][plot]") {
  // heavy_ball_lessard: heavy_ball with tuning = polyak (no schedule), heavy_ball with tuning = manual and a
  // constant schedule, sgd with a constant schedule. The optimizer's tuning names the difference, not the
  // schedule ("heavy_ball constant" said nothing about why the two heavy_ball curves differ).
  const auto h5 = scratch("lessard_legend.h5");
  auto o = run_cli("run heavy_ball_lessard --quiet -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto script = scratch("lessard_legend.gp");
  o = run_cli("plot " + h5.string() + " --script " + script.string() + " -o " + scratch("lessard_legend.png").string());
  REQUIRE(o.exit_code == 0);
  const std::string text = read_text(script);
  CHECK_THAT(text, Catch::Contains("title 'heavy_ball tuning=polyak'") &&
                       Catch::Contains("title 'heavy_ball tuning=manual'") && Catch::Contains("title 'sgd'"));
  CHECK_THAT(text, !Catch::Contains("constant"));
  // Polyak's tuning and the same constants by hand give the same values: the first curve is hidden under
  // the second, and the legend says so (before: three entries, two visible lines, no word).
  CHECK_THAT(text, Catch::Contains("title 'heavy_ball tuning=polyak: hidden under'") &&
                       Catch::Contains("title '  heavy_ball tuning=manual (same values)'"));
  CHECK_THAT(text, !Catch::Contains("sgd: hidden"));
}

TEST_CASE("plot panels: a parameter some values lack is not named when another key tells them apart",
          "[cli][plot]") {
  // heavy_tailed: col = problem.noise_nu, which Gaussian noise has not. Before: a panel titled
  // "noise_nu=(unset)"; now the noise law names the panels, with nu where it applies.
  const auto h5 = scratch("heavy_tailed_panels.h5");
  auto o = run_cli("run heavy_tailed --quick --quiet --set experiment.replicates=4 -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto script = scratch("heavy_tailed_panels.gp");
  o = run_cli("plot " + h5.string() + " --script " + script.string() + " -o " +
              scratch("heavy_tailed_panels.svg").string());
  REQUIRE(o.exit_code == 0);
  const std::string text = read_text(script);
  CHECK_THAT(text, Catch::Contains("noise=gaussian") && Catch::Contains("noise=student_t noise_nu=1.5") &&
                       Catch::Contains("noise=student_t noise_nu=2.5"));
  CHECK_THAT(text, !Catch::Contains("(unset)") && !Catch::Contains("=none"));
}

TEST_CASE("plot panels: configurations without the panel's parameter are titled 'no KEY'", "[cli][plot]") {
  // heavy_ball_stochastic: block_rule (cyclic, random) exists only for block heavy-ball; sgd and plain
  // heavy-ball share the third panel. Before: "block_rule=(unset)".
  const auto h5 = scratch("hbs_panels.h5");
  auto o = run_cli("run heavy_ball_stochastic --quick --quiet --set experiment.replicates=2 -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto script = scratch("hbs_panels.gp");
  o = run_cli("plot " + h5.string() + " --script " + script.string() + " -o " + scratch("hbs_panels.svg").string());
  REQUIRE(o.exit_code == 0);
  const std::string text = read_text(script);
  CHECK_THAT(text, Catch::Contains("set title 'block_rule=cyclic'") && Catch::Contains("set title 'block_rule=random'") &&
                       Catch::Contains("set title 'no block_rule'"));
  CHECK_THAT(text, !Catch::Contains("(unset)"));
}

TEST_CASE("plot legend: whole-number parameters are shown as they are, not rounded", "[cli][plot]") {
  // harvey sweeps T = 16, 64, 256, 1024, 4096: three significant digits named 1.02e+03 and 4.1e+03.
  const auto h5 = scratch("harvey_legend.h5");
  auto o = run_cli("run harvey --quiet -o " + h5.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto script = scratch("harvey_legend.gp");
  o = run_cli("plot " + h5.string() + " --script " + script.string() + " -o " + scratch("harvey_legend.png").string());
  REQUIRE(o.exit_code == 0);
  const std::string text = read_text(script);
  for (const char* title : {"'16'", "'64'", "'256'", "'1024'", "'4096'"})
    CHECK_THAT(text, Catch::Contains(std::string("title ") + title));
  CHECK_THAT(text, !Catch::Contains("e+03"));
}
