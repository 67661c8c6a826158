// `ratelab-check-plugin`: the `ratelab check-plugin` command with the conformance suite linked in. The
// suite's allocation check counts heap allocations through the malloc interposer of
// experiments/allocation_counter.hpp, which only an executable that links it carries; `ratelab` does not,
// and execs this program (found beside it) with its own arguments after checking them.
#include <iostream>
#include <string>

#include "experiments/conformance.hpp"
#include "tools/cli.hpp"

namespace {

bool run_conformance_suite(const ratelab::Registry& registry, const std::vector<std::string>& optimizers,
                           const ratelab::ConformanceOptions& options) {
  bool all = true;
  for (const auto& key : optimizers) {
    const ratelab::ConformanceReport report = ratelab::check_optimizer_conformance(registry, key, {}, options);
    std::cout << ratelab::format_report(report);
    all = all && report.passed();
  }
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "check-plugin") {
    std::cerr << "ratelab-check-plugin runs one command: ratelab-check-plugin check-plugin LIB [options] "
                 "(what `ratelab check-plugin LIB` runs; see `ratelab check-plugin --help`)\n";
    return 2;
  }
  return ratelab::cli::run(argc, argv, run_conformance_suite);
}
