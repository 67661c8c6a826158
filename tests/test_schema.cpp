// Trace files of the previous schema (1): tests/fixtures/schema1_sweep.h5 was written by ratelab before
// schema 2 (see tests/fixtures/schema1_sweep.ini). It must read as the study it holds, through the library
// and through every command that reads trace files.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_support.hpp"
#include "experiments/run_to_file.hpp"
#include "results/trace_file.hpp"

using namespace ratelab;
using namespace ratelab_test;

namespace {

const std::string kFixture = std::string(RATELAB_SOURCE_DIR) + "/tests/fixtures/schema1_sweep.h5";

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

const ParamValue* parameter(const results::ConfigurationRecord& record, const std::string& key) {
  for (const auto& [k, v] : record.parameters)
    if (k == key) return &v;
  return nullptr;
}

}  // namespace

TEST_CASE("a schema-1 file reads as the study it holds, and written again as schema 2 reads the same", "[schema]") {
  const results::TraceData old = results::read_trace_file(kFixture);
  CHECK(old.schema_version == 1);
  const auto& layout = old.layout;
  CHECK(layout.experiment_name == "schema1_sweep");
  REQUIRE(layout.configurations.size() == 4);
  CHECK(layout.configurations[1].label == "sgd eta=30");
  CHECK(layout.configurations[2].label == "heavy_ball eta=0.1");
  CHECK(layout.views == std::vector<std::string>{"last", "uniform"});
  CHECK(layout.metrics == std::vector<std::string>{"value", "subopt"});
  CHECK(layout.replicates == 3);
  CHECK(layout.checkpoints == std::vector<long>{0, 1, 6, 34, 200});
  // Schema 1's bool enum reads as a bool; heavy_ball's beta exists only where the optimizer has it.
  REQUIRE(parameter(layout.configurations[0], "problem.random_minimizer"));
  CHECK(*parameter(layout.configurations[0], "problem.random_minimizer") == ParamValue(true));
  CHECK(parameter(layout.configurations[0], "optimizer.beta") == nullptr);
  CHECK(*parameter(layout.configurations[3], "optimizer.beta") == ParamValue(0.5));
  CHECK_FALSE(layout.configurations[0].f_star.has_value());  // schema 1 did not record F*
  CHECK(layout.configurations[0].f_star_source.empty());
  using S = RunStatus;
  CHECK(old.status == std::vector<S>{S::ok, S::ok, S::ok, S::diverged, S::diverged, S::diverged, S::ok, S::ok, S::ok,
                                     S::diverged, S::diverged, S::diverged});
  CHECK(std::isfinite(old.trace(1, 0, 0, 2, 4)));

  // merge reads the old file and writes schema 2: the same study, value for value.
  const auto merged = scratch("schema1_merged.h5");
  auto o = run_cli("merge " + kFixture + " -o " + merged.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const results::TraceData now = results::read_trace_file(merged.string());
  CHECK(now.schema_version == 2);
  REQUIRE(now.layout.configurations.size() == 4);
  for (std::size_t c = 0; c < 4; ++c) {
    CHECK(now.layout.configurations[c].id == layout.configurations[c].id);
    CHECK(now.layout.configurations[c].label == layout.configurations[c].label);
    CHECK(now.layout.configurations[c].parameters == layout.configurations[c].parameters);
    CHECK(now.layout.configurations[c].instance == layout.configurations[c].instance);
  }
  CHECK(now.layout.metrics == layout.metrics);
  CHECK(now.status == old.status);
  CHECK(now.stop_step == old.stop_step);
  CHECK(now.messages == old.messages);
  REQUIRE(now.traces.size() == old.traces.size());
  std::size_t differences = 0;
  for (std::size_t m = 0; m < old.traces.size(); ++m)
    for (std::size_t i = 0; i < old.traces[m].size(); ++i) differences += same(now.traces[m][i], old.traces[m][i]) ? 0 : 1;
  CHECK(differences == 0);
  REQUIRE(now.run_stats.size() == old.run_stats.size());
  for (std::size_t s = 0; s < old.run_stats.size(); ++s) {
    CHECK(now.run_stats[s].first == old.run_stats[s].first);
    for (std::size_t i = 0; i < old.run_stats[s].second.size(); ++i) CHECK(same(now.run_stats[s].second[i], old.run_stats[s].second[i]));
  }
  // Root attributes keep their types (bools stay bools through the int8 of schema 2), merged_from aside.
  auto without_merge = [](results::Attributes a) {
    std::erase_if(a, [](const auto& kv) { return kv.first == "merged_from"; });
    return a;
  };
  CHECK(without_merge(now.layout.root) == without_merge(layout.root));
}

TEST_CASE("every command that reads trace files reads a schema-1 file", "[schema][cli]") {
  auto ok = [](const std::string& args, const std::string& expect) {
    auto o = run_cli(args);
    INFO(args << "\n" << o.output);
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains(expect));
  };
  ok("inspect " + kFixture, "schema version 1");
  ok("summary " + kFixture, "sgd eta=0.1");
  ok("compare " + kFixture + " --a 0 --b 2", "B: heavy_ball eta=0.1");
  ok("plot " + kFixture + " -o " + scratch("schema1.png").string(), "2 panels");
  const auto claims = scratch("schema1_claims.ini");
  std::ofstream(claims) << "[claims]\nnone_failed = status error=0\n";
  ok("verify " + claims.string() + " --from " + kFixture, "OK: 1/1 claims hold");
  ok("merge " + kFixture + " -o " + scratch("schema1_again.h5").string(), "12 finished runs");
}
