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
#include "problems/noise.hpp"

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
  for (const std::string preset : {"quickstart", "heavy_ball_lessard"}) {
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

namespace {
// The names `ratelab list` shows, by section title ("optimizers", "presets", ...): the first word of every
// indented line.
std::vector<std::pair<std::string, std::vector<std::string>>> listed_names(const std::string& list_output) {
  std::vector<std::pair<std::string, std::vector<std::string>>> sections;
  std::istringstream lines(list_output);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  ", 0) == 0 && !sections.empty()) {
      std::istringstream words(line);
      std::string name;
      words >> name;
      sections.back().second.push_back(name);
    } else if (!line.empty() && line[0] != ' ' && line[0] != '(') {
      sections.push_back({line.substr(0, line.find_first_of(" :")), {}});
    }
  }
  return sections;
}
}  // namespace

TEST_CASE("describe works for everything list shows", "[cli][edges][describe]") {
  const auto list = run_cli("list");
  REQUIRE(list.exit_code == 0);
  const auto sections = listed_names(list.output);
  REQUIRE(sections.size() == 7);
  std::size_t described = 0;
  for (const auto& [section, names] : sections) {
    CHECK(!names.empty());
    for (const auto& name : names) {
      // Before: presets, noise laws, views and metrics were "unknown component", exit 2.
      const auto o = run_cli("describe " + name);
      INFO(section << " " << name << ":\n" << o.output);
      CHECK(o.exit_code == 0);
      CHECK(o.output.size() > name.size() + 20);
      ++described;
    }
  }
  CHECK(described > 40);
  const auto preset = run_cli("describe quickstart");
  CHECK_THAT(preset.output, Catch::StartsWith("preset quickstart (") && Catch::Contains("SGD on a noisy quadratic") &&
                                Catch::Contains("    [schedule]\n      name = inv_mu_t\n") &&
                                Catch::Contains("    [claims]\n") && Catch::Contains("ratelab verify quickstart --quick"));
  const auto noise = run_cli("describe student_t");
  CHECK_THAT(noise.output, Catch::StartsWith("noise law student_t (problem parameter noise = student_t): ") &&
                               Catch::Contains("noise_nu") && Catch::Contains("noise_scale") &&
                               !Catch::Contains("noise_alpha") && Catch::Contains("quadratic"));
  const auto metric = run_cli("describe dist2");
  CHECK_THAT(metric.output, Catch::StartsWith("metric dist2 (experiment parameter metrics): ||x - x*||^2"));
  // A name that is two things (an optimizer and a preset) describes both.
  const auto both = run_cli("describe heavy_ball");
  CHECK_THAT(both.output, Catch::StartsWith("optimizer heavy_ball") && Catch::Contains("\npreset heavy_ball ("));
  const auto unknown = run_cli("describe sufix");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("unknown name 'sufix'; did you mean 'suffix'?"));
}

TEST_CASE("describe states the conventions of heavy_ball and the views and the schedules and types free text as text",
          "[cli][edges][describe]") {
  CHECK_THAT(run_cli("describe heavy_ball").output, Catch::Contains("x_{-1} = x_0"));
  CHECK_THAT(run_cli("describe uniform").output, Catch::Contains("(x_1 + ... + x_t) / t") && Catch::Contains("x_0 is not in it"));
  CHECK_THAT(run_cli("describe suffix").output, Catch::Contains("suffix_alpha") && Catch::Contains("x_0 only at t = 0"));
  for (const char* schedule : {"inv_t", "constant", "step_decay"})
    CHECK_THAT(run_cli(std::string("describe ") + schedule).output,
               Catch::Contains("t counts the steps from 1: step t, from x_{t-1} to x_t, uses eta_t"));
  const auto experiment = run_cli("describe experiment");
  INFO(experiment.output);
  // Before: "schedule experiment (built-in)", and name, description, data_directory typed `choice`.
  CHECK_THAT(experiment.output, Catch::StartsWith("experiment section [experiment] (built-in)"));
  for (const char* key : {"name", "description", "data_directory"})
    CHECK_THAT(experiment.output, Catch::Matches("[\\s\\S]*\n    " + std::string(key) + " +text +default[\\s\\S]*"));
  CHECK_THAT(run_cli("describe heavy_ball").output, Catch::Matches("[\\s\\S]*\n    tuning +choice +default manual[\\s\\S]*"));
}

TEST_CASE("list aligns every section's descriptions with long names included", "[cli][edges]") {
  const auto list = run_cli("list");
  REQUIRE(list.exit_code == 0);
  // Before: 'heavy_ball_stochastic stochastic ...' and 'laplacian_smoothing_digits LS-SGD ...' stuck out.
  std::istringstream lines(list.output);
  std::size_t column = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  ", 0) != 0) {
      column = 0;  // a new section
      continue;
    }
    const std::size_t name_end = line.find(' ', 2);
    if (name_end == std::string::npos) continue;
    const std::size_t text = line.find_first_not_of(' ', name_end);
    INFO(line);
    CHECK(text - name_end >= 2);
    if (column == 0) column = text;
    CHECK(text == column);
  }
}

TEST_CASE("inspect shows the parameters that vary as a table and --all every parameter", "[cli][edges]") {
  const auto file = scratch("inspect_table.h5");
  REQUIRE(run_cli("run quickstart --quiet --set experiment.steps=100 --set experiment.replicates=2 "
                  "--sweep 'schedule.c=0.5,1,2' -o " + file.string()).exit_code == 0);
  const auto o = run_cli("inspect " + file.string());
  INFO(o.output);
  CHECK(o.exit_code == 0);
  // Before: 33 lines per configuration (every parameter), whatever varied.
  CHECK_THAT(o.output, Catch::Contains("shared by every configuration:\n") && Catch::Contains("\n  problem.d = 50\n") &&
                           Catch::Contains("configurations (3), with the parameter that varies"));
  CHECK_THAT(o.output, Catch::Matches("[\\s\\S]*\n  #  label +id +ok +diverged +error +nonfinite +other +schedule\\.c\n"
                                      "  0  sgd c=0.5 +[0-9a-f]{16} +2 +0 +0 +0 +0 +0\\.5\n[\\s\\S]*"));
  // Once: in the shared list (the resolved experiment text writes it 'd = 50' in [problem]).
  CHECK((o.output.find("problem.d = 50") == o.output.rfind("problem.d = 50")));
  const auto all = run_cli("inspect --all " + file.string());
  CHECK(all.exit_code == 0);
  CHECK_THAT(all.output, Catch::Contains("  [2] sgd c=2  (id ") && Catch::Contains("      schedule.c = 2\n") &&
                             Catch::Contains("      problem.d = 50\n"));
}

TEST_CASE("an experiment file value may hold a hash sign written as backslash hash and the resolved text keeps it", "[cli][edges]") {
  const auto ini = scratch("hash.ini");
  std::ofstream(ini) << "[experiment]\nname = hash\ndescription = issue \\#17: a value with a \\# # and a comment\n"
                        "steps = 50\nreplicates = 2\n[problem]\nname = quadratic\nd = 3\n[optimizer]\nname = sgd\n"
                        "[schedule]\nname = constant\neta = 0.1\n";
  const auto file = scratch("hash.h5");
  const auto run = run_cli("run " + ini.string() + " --quiet -o " + file.string());
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  const auto o = run_cli("inspect " + file.string());
  // Before: the value ended at the first '#': "issue \".
  CHECK_THAT(o.output, Catch::Contains("experiment.description = issue #17: a value with a #\n") &&
                           Catch::Contains("| description = issue \\#17: a value with a \\#\n"));
  // The resolved text runs again to the same experiment: its run fingerprint matches (resume finds it whole).
  const auto again = run_cli("run " + ini.string() + " --quiet --resume -o " + file.string());
  INFO(again.output);
  CHECK(again.exit_code == 0);
}

TEST_CASE("the noise laws list and describe show are the noise parameter's choices", "[cli][edges][describe]") {
  std::vector<std::string> laws;
  for (const auto& law : ratelab::noise_laws()) laws.push_back(law.name);
  for (const auto& spec : ratelab::NoiseOptions::params().specs())
    if (spec.key == "noise") CHECK(spec.constraint.choices == laws);
}
