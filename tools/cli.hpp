// The `ratelab` command line, as one table of commands (commands()).
//
// Each row is a command: its name, the arguments shown after it, a one-line help, its options and the
// function that runs it. From that one table come `ratelab --help`, the dispatch, the unknown-command
// message with its "did you mean", and each command's own `--help`. A command's options are the specs of
// a parameter table (core/params.hpp), the mechanism every component uses: one function turns `--key
// value` (underscores typed as dashes), positional arguments and bare boolean flags into the command's
// typed options struct, with defaults, constraints and every violation reported at once.
//
// Adding a command: in tools/cli.cpp, write an options struct with a static params() table (shared
// options such as --threads, --set and --plugin come from threads_option, set_option, plugin_option), a
// function `int command_NAME(const NameArgs&, const Invocation&)`, and one row in commands(). Nothing
// else lists commands.
//
// Exit codes (documented in README and --help):
//   0 success; 1 internal failure; 2 bad usage or bad input (nothing was run, no file was written);
//   3 the sweep finished but some runs ended with status `error`; 4 interrupted (signal or time limit):
//   the file holds every finished run and the rest are marked; 5 `verify`: some claim failed; 6 the output
//   could not be written (disk full, I/O error): the finished runs are in its journal, --resume continues.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/params.hpp"

namespace ratelab {
class Registry;
struct ConformanceOptions;
}  // namespace ratelab

namespace ratelab::cli {

// The conformance suite (experiments/conformance.hpp) on `optimizers`: prints each report, returns whether
// all conform. Its allocation check needs the counting malloc in the executable, which the production
// `ratelab` does not carry: there `check-plugin` checks its options and execs `ratelab-check-plugin` from
// its own directory (tools/check_plugin_main.cpp), which runs the same command line with the suite.
using ConformanceSuite = bool (*)(const Registry& registry, const std::vector<std::string>& optimizers,
                                  const ConformanceOptions& options);

// How this process was invoked.
struct Invocation {
  std::string text;                    // the whole command line as typed, recorded in trace files and resume hints
  std::vector<std::string> arguments;  // argv[1..]: the command and its arguments
  std::string program;                 // argv[0], as typed
  ConformanceSuite conformance_suite = nullptr;  // set only in ratelab-check-plugin
};

struct Command {
  std::string name;                     // `ratelab NAME ...`
  std::string arguments;                // shown after the name: "EXPERIMENT", "FILE -o F"
  std::string help;                     // one line in `ratelab --help`
  std::string notes;                    // more lines in `ratelab NAME --help` (may be empty)
  std::vector<std::string> positional;  // option keys given by position, in order; a list key takes the rest
  std::vector<std::string> required;    // option keys that must be given
  std::vector<ParamSpec> options;       // the command's parameter table (positional keys included)
  // Parses `args` against `options` and runs the command (set by command() in cli.cpp).
  std::function<int(const Command& self, const std::vector<std::string>& args, const Invocation&)> run;
};

// Every command, in the order of `ratelab --help`.
const std::vector<Command>& commands();

// The text of `ratelab --help`.
std::string main_help();

// `ratelab ARGS...`: dispatches argv[1] to its command; returns the exit code. `conformance_suite`: as in
// Invocation (ratelab-check-plugin passes it, ratelab does not).
int run(int argc, char** argv, ConformanceSuite conformance_suite = nullptr);

}  // namespace ratelab::cli
