// The CLI a new user meets (issue 17): --version, run --quick, --band=, the resume hint. Each case runs the
// executable and checks its exit code and what it prints.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli_support.hpp"

using ratelab_test::run_cli;
using ratelab_test::scratch;

TEST_CASE("ratelab --version prints the version and commit, and --help shows them", "[cli][edges]") {
  // Before: "unknown command '--version'", exit 2.
  for (const char* flag : {"--version", "-V"}) {
    const auto o = run_cli(flag);
    INFO(o.output);
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::StartsWith("ratelab 0.") && Catch::Contains("(git "));
  }
  const std::string version_line = run_cli("--version").output;
  const auto help = run_cli("--help");
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.output, Catch::Contains(version_line) && Catch::Contains("ratelab --version"));
}

TEST_CASE("run PRESET --quick runs the preset's [quick] size, and --set still wins", "[cli][edges]") {
  // quickstart's [quick]: 5000 steps, 32 replicates. Before: "unrecognised option '--quick'", exit 2.
  const auto quick = run_cli("run quickstart --quick --quiet --threads 2 -o " + scratch("quick.h5").string());
  INFO(quick.output);
  CHECK(quick.exit_code == 0);
  CHECK_THAT(quick.output, Catch::Contains(": 32 runs (32 ok"));
  const auto set = run_cli("run quickstart --quick --quiet --set experiment.replicates=4 -o " +
                           scratch("quick_set.h5").string());
  INFO(set.output);
  CHECK(set.exit_code == 0);
  CHECK_THAT(set.output, Catch::Contains(": 4 runs (4 ok"));
}

TEST_CASE("run -o DIR/FILE.h5 creates the missing directories, as the default out/ is created", "[cli][edges]") {
  // Before: "cannot create the lock file .../new/deeper/q.h5.lock ...: No such file or directory", exit 2,
  // although the README's own example writes -o out/q.h5 in a fresh clone.
  const auto dir = scratch("new");
  std::filesystem::remove_all(dir);
  const auto target = dir / "deeper" / "q.h5";
  const auto o = run_cli("run quickstart --quick --quiet --set experiment.replicates=2 -o " + target.string());
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK(std::filesystem::is_regular_file(target));
  std::filesystem::remove_all(dir);
}

TEST_CASE("an empty value written as --key= : plot --band= draws no band", "[cli][edges]") {
  const auto file = scratch("band.h5");
  REQUIRE(run_cli("run quickstart --quiet --set experiment.steps=200 --set experiment.replicates=4 -o " +
                  file.string()).exit_code == 0);
  const auto data = scratch("band.tsv");
  // Before: "the argument for option '--band' should follow immediately after the equal sign", exit 2.
  const auto o = run_cli("plot " + file.string() + " -o " + scratch("band.svg").string() + " --band= --data " +
                         data.string());
  INFO(o.output);
  CHECK(o.exit_code == 0);
  const auto with_band = run_cli("plot " + file.string() + " -o " + scratch("band2.svg").string() + " --band=0.2,0.8");
  CHECK(with_band.exit_code == 0);
  // A flag takes no value; `--overwrite=` is not turned into an empty value.
  CHECK(run_cli("run quickstart --overwrite= -o " + scratch("flag.h5").string()).exit_code == 2);
}

TEST_CASE("a boolean option defaulting to true can be turned off: plot --share-y=false", "[cli][edges][plot]") {
  // Before: "option '--share-y' does not take any arguments", exit 2: panels could not be freed from the
  // command line, only from a [plot] section.
  const auto file = scratch("share.h5");
  REQUIRE(run_cli("run quickstart --quiet --set experiment.steps=200 --set experiment.replicates=4 "
                  "--set experiment.views=last,uniform -o " + file.string()).exit_code == 0);
  const auto script_of = [&](const std::string& options) {
    const auto script = scratch("share.gp");
    const auto o = run_cli("plot " + file.string() + " --col view -o " + scratch("share.svg").string() + " --script " +
                           script.string() + " " + options);
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    std::ifstream in(script);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK_THAT(script_of(""), Catch::Contains("set yrange ["));            // shared: one range for both panels
  CHECK_THAT(script_of("--share-y"), Catch::Contains("set yrange ["));
  CHECK_THAT(script_of("--share-y=false"), !Catch::Contains("set yrange ["));  // each panel its own
  CHECK_THAT(script_of("--share-y=true"), Catch::Contains("set yrange ["));
  const auto bad = run_cli("plot " + file.string() + " -o " + scratch("share.svg").string() + " --share-y=perhaps");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("share_y"));
}

TEST_CASE("the resume hint after a time limit does not repeat --time-limit", "[cli][edges][resume]") {
  const auto out = scratch("time_limit.h5");
  for (const std::string limit : {"--time-limit 0.3", "--time-limit=0.3"}) {
    const auto o = run_cli("run quickstart --quiet --threads 2 --set experiment.steps=5000000 " + limit + " -o " +
                           out.string() + " --overwrite");
    INFO(o.output);
    CHECK(o.exit_code == 4);
    // Before: "continue with: .../ratelab run quickstart ... --time-limit 0.3 -o ... --resume": the same limit
    // stops the continuation again.
    const auto hint = o.output.find("continue with: ");
    REQUIRE(hint != std::string::npos);
    const std::string command = o.output.substr(hint, o.output.find('\n', hint) - hint);
    CHECK_THAT(command, Catch::Contains("--resume") && !Catch::Contains("--time-limit") &&
                            !Catch::Contains("--overwrite") && Catch::Contains("-o " + out.string()));
  }
}

TEST_CASE("summary's default table fits 120 columns, --wide and --csv show the rest, slopes are negative",
          "[cli][edges]") {
  // heavy_ball_lessard's labels ("heavy_ball beta=0.4444444444444444 tuning=manual constant eta=0.11...") are
  // long; quickstart's rate -1 is a slope of -1 as in its claims. Before: 17 columns, 190 wide, "rate 0.98".
  std::string quickstart_file;
  for (const std::string& preset : {"quickstart", "heavy_ball_lessard"}) {
    const auto file = scratch(preset + "_summary.h5");
    if (preset == "quickstart") quickstart_file = file.string();
    REQUIRE(run_cli("run " + preset + " --quick --quiet -o " + file.string()).exit_code == 0);
    const auto o = run_cli("summary " + file.string() + " --bootstrap 50");
    INFO(o.output);
    CHECK(o.exit_code == 0);
    std::istringstream lines(o.output);
    for (std::string line; std::getline(lines, line);) {
      INFO(line);
      CHECK(line.size() <= 120);
    }
    CHECK_THAT(o.output, Catch::Contains("slope") && !Catch::Contains("rate") && !Catch::Contains("final_mean"));
    const auto wide = run_cli("summary " + file.string() + " --bootstrap 50 --wide");
    CHECK(wide.exit_code == 0);
    CHECK_THAT(wide.output, Catch::Contains("final_mean") && Catch::Contains("slope_se"));
  }
  const auto csv = run_cli("summary " + quickstart_file + " --bootstrap 50 --csv --views last");
  INFO(csv.output);
  REQUIRE(csv.exit_code == 0);
  // header, then one row: the slope of E f(x_t) - f* under eta = 1/(mu t) is -1 (quickstart's claim: [-1.15, -0.85]).
  std::istringstream rows(csv.output);
  std::string header, row;
  std::getline(rows, header);
  std::getline(rows, row);
  std::vector<std::string> names, values;
  for (std::istringstream h(header); std::getline(h, names.emplace_back(), ',');) {}
  for (std::istringstream r(row); std::getline(r, values.emplace_back(), ',');) {}
  const auto at = std::find(names.begin(), names.end(), "slope") - names.begin();
  REQUIRE(std::size_t(at) < values.size());
  CHECK(std::stod(values[std::size_t(at)]) < -0.85);
  CHECK(std::stod(values[std::size_t(at)]) > -1.15);
}
