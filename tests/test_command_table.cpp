// The `ratelab` command table (tools/cli.hpp): --help, dispatch, each command's own --help and the
// unknown-command message all come from it, and shared options are declared once.
#include <catch2/catch.hpp>
#include <algorithm>
#include <set>
#include <string>

#include "tools/cli.hpp"

#include "cli_support.hpp"

using ratelab_test::run_cli;

namespace {
std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}
}  // namespace

TEST_CASE("help, dispatch and did-you-mean derive from the command table", "[cli]") {
  const auto& table = ratelab::cli::commands();
  REQUIRE(table.size() >= 11);
  const std::string help = ratelab::cli::main_help();
  const auto main_help = run_cli("--help");
  CHECK(main_help.exit_code == 0);
  CHECK(main_help.output == help);
  CHECK(run_cli("").exit_code == 2);  // no command: the help, as a usage error

  std::set<std::string> names;
  for (const auto& command : table) {
    INFO(command.name);
    CHECK(names.insert(command.name).second);
    CHECK(!command.help.empty());
    CHECK_THAT(help, Catch::Contains("  " + command.name + " " + command.arguments) && Catch::Contains(command.help));
    REQUIRE(command.run);
    // Positional and required keys are declared options.
    auto declared = [&](const std::string& key) {
      return std::any_of(command.options.begin(), command.options.end(), [&](const auto& s) { return s.key == key; });
    };
    for (const auto& key : command.positional) CHECK(declared(key));
    for (const auto& key : command.required) CHECK(declared(key));

    // Dispatch reaches the command: its --help lists every option of its table.
    const auto own = run_cli(command.name + " --help");
    CHECK(own.exit_code == 0);
    CHECK_THAT(own.output, Catch::Contains("usage: ratelab " + command.name + " " + command.arguments));
    for (const auto& spec : command.options) CHECK_THAT(own.output, Catch::Contains("--" + dashed(spec.key)));

    // A near miss (the last letter dropped) is refused with exit 2 and suggests the command.
    const std::string near = command.name.substr(0, command.name.size() - 1);
    const auto miss = run_cli(near);
    CHECK(miss.exit_code == 2);
    CHECK_THAT(miss.output, Catch::Contains("unknown command '" + near + "'; did you mean '" + command.name + "'?"));
  }
}

TEST_CASE("the threads option is declared once: run and verify check it the same way", "[cli]") {
  std::set<std::string> docs;
  for (const auto& command : ratelab::cli::commands())
    for (const auto& spec : command.options)
      if (spec.key == "threads") docs.insert(spec.doc + " [" + spec.constraint.describe(spec.key) + "]");
  CHECK(docs.size() == 1);
  for (const std::string name : {"run", "verify"}) {
    const auto o = run_cli(name + " quickstart --threads=-1");
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("threads = -1 violates threads >= 0"));
  }
  // Required options come from the table too, in the parser's words.
  const auto merge = run_cli("merge a.h5 b.h5");
  CHECK(merge.exit_code == 2);
  CHECK_THAT(merge.output, Catch::Contains("'--output' is required"));
}

TEST_CASE("list noise reads the noise models from the problems' declarations", "[cli]") {
  const auto o = run_cli("list noise");
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("noise (problem parameter 'noise', with noise_scale") &&
                           Catch::Contains("  gaussian"));
  const auto bad = run_cli("list noize");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains("did you mean 'noise'"));
}
