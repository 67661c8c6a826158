// summary, compare and plot on several trace files (issue 26): a new optimizer's file beside a baseline's, one
// table or figure, the configurations told apart by their labels (tools/several_files.hpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include "cli_support.hpp"
#include "results/trace_query.hpp"
#include "tools/several_files.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One configuration labelled `label`, 2 replicates, views last and suffix, metric subopt, at `checkpoints`; the
// value of (view v, replicate r, checkpoint k) is base + 100 v + 10 r + k, so every number says where it came from.
results::TraceData table(const std::string& label, std::vector<long> checkpoints, double base, long replicates = 2) {
  results::TraceData d;
  d.schema_version = results::kSchemaVersion;
  d.layout.experiment_name = label + "_study";
  d.layout.replicates = replicates;
  d.layout.checkpoints = std::move(checkpoints);
  d.layout.views = {"last", "suffix"};
  d.layout.metrics = {"subopt"};
  results::ConfigurationRecord rec;
  rec.id = label == "sgd" ? "aaaa000011112222" : "bbbb000011112222";
  rec.label = label;
  rec.parameters = {{"optimizer", label}};
  d.layout.configurations.push_back(rec);
  const std::size_t R = std::size_t(replicates), K = d.layout.checkpoints.size();
  d.traces.assign(1, std::vector<double>(2 * R * K));
  for (std::size_t v = 0; v < 2; ++v)
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < K; ++k) d.traces[0][(v * R + r) * K + k] = base + 100.0 * v + 10.0 * r + double(k);
  d.status.assign(R, RunStatus::ok);
  d.stop_step.assign(R, d.layout.checkpoints.back());
  d.wall_seconds.assign(R, 0.0);
  d.eval_seconds.assign(R, 0.0);
  d.messages.assign(R, "");
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

}  // namespace

TEST_CASE("several files combine: the union of the checkpoints, each file's values where it has them, its own T",
          "[several_files]") {
  const std::vector<results::TraceData> files{table("sgd", {0, 10, 100}, 1000), table("adam", {0, 10, 50, 200}, 2000)};
  const std::vector<std::string> names{"base.h5", "new.h5"};
  const auto refs = tools::select_across_files(files, names, {});
  REQUIRE(refs.size() == 2);
  const results::TraceData both = tools::combine_files(files, names, refs);
  results::check_trace_data(both);
  CHECK(both.layout.experiment_name == "sgd_study + adam_study");
  CHECK(both.layout.checkpoints == std::vector<long>{0, 10, 50, 100, 200});
  REQUIRE(both.layout.configurations.size() == 2);
  CHECK(both.layout.configurations[1].label == "adam");
  // Different checkpoints: each configuration's horizon is its file's last step.
  CHECK(results::horizon(both, 0) == 100);
  CHECK(results::horizon(both, 1) == 200);
  // Values exactly where each file has them, NaN elsewhere: sgd at t = 100 (its k = 2), view suffix, replicate 1.
  CHECK(both.trace(0, 0, 1, 1, 3) == 1000 + 100 + 10 + 2);
  CHECK(std::isnan(both.trace(0, 0, 1, 1, 2)));  // t = 50: sgd has none
  CHECK(both.trace(0, 1, 0, 0, 2) == 2000 + 2);    // adam at t = 50 (its k = 2)
  CHECK(both.trace(0, 1, 0, 1, 4) == 2000 + 10 + 3);
  CHECK(std::isnan(both.trace(0, 1, 0, 0, 3)));  // t = 100: adam has none
}

TEST_CASE("several files: a label in two files, different replicates or nothing in common are refused, naming the fix",
          "[several_files]") {
  const std::vector<std::string> names{"base.h5", "new.h5"};
  const std::vector<results::TraceData> twice{table("sgd", {0, 10}, 0), table("sgd", {0, 10}, 5)};
  CHECK_THAT(error_of([&] { tools::select_across_files(twice, names, {}); }),
             Catch::Contains("'sgd' is in base.h5 (id aaaa000011112222) and in new.h5") &&
                 Catch::Contains("--where id="));
  const std::vector<results::TraceData> sizes{table("sgd", {0, 10}, 0, 2), table("adam", {0, 10}, 0, 3)};
  CHECK_THAT(error_of([&] { tools::combine_files(sizes, names, tools::select_across_files(sizes, names, {})); }),
             Catch::Contains("base.h5 has 2 replicates and new.h5 3") &&
                 Catch::Contains("--set experiment.replicates=3"));
  std::vector<results::TraceData> apart{table("sgd", {0, 10}, 0), table("adam", {0, 10}, 0)};
  apart[1].layout.metrics = {"dist2"};
  CHECK_THAT(error_of([&] { tools::combine_files(apart, names, tools::select_across_files(apart, names, {})); }),
             Catch::Contains("the files share no metric") && Catch::Contains("new.h5: dist2"));
}

TEST_CASE("summary, compare and plot take several files: each configuration's numbers are its file's alone",
          "[several_files][cli]") {
  const fs::path base = scratch("several_base.h5"), fresh = scratch("several_new.h5");
  REQUIRE(run_cli("run quickstart --quick --quiet --overwrite -o " + base.string()).exit_code == 0);
  REQUIRE(run_cli("run quickstart --quick --quiet --overwrite --set optimizer=clipped_sgd -o " + fresh.string()).exit_code == 0);
  // Each file's row of the two-file table is its row of its own table, every column of its own table to the bit
  // (CSV: exact). The two-file table has the union of the run statistics, so columns are matched by name.
  const auto alone_base = run_cli("summary " + base.string() + " --csv");
  const auto alone_new = run_cli("summary " + fresh.string() + " --csv");
  const auto both = run_cli("summary " + base.string() + " " + fresh.string() + " --csv");
  INFO(both.output);
  REQUIRE(both.exit_code == 0);
  using Table = std::vector<std::vector<std::string>>;
  auto table_of = [](const std::string& csv) {
    Table rows;
    std::istringstream in(csv);
    std::string line;
    while (std::getline(in, line)) {  // no quoted fields: labels and numbers
      std::vector<std::string> fields;
      std::istringstream fields_of(line);
      for (std::string field; std::getline(fields_of, field, ',');) fields.push_back(field);
      rows.push_back(fields);
    }
    return rows;
  };
  const Table combined = table_of(both.output);
  REQUIRE(combined.size() == 1 + 3 + 3);  // header, three views of each file's one configuration
  std::size_t matched = 0;
  for (const Table& alone : {table_of(alone_base.output), table_of(alone_new.output)})
    for (std::size_t i = 1; i < alone.size(); ++i)
      for (std::size_t j = 1; j < combined.size(); ++j) {
        if (combined[j][0] != alone[i][0] || combined[j][1] != alone[i][1]) continue;  // configuration, view
        ++matched;
        for (std::size_t col = 0; col < alone[0].size(); ++col) {
          const auto at = std::find(combined[0].begin(), combined[0].end(), alone[0][col]);
          REQUIRE(at != combined[0].end());
          CHECK(combined[j].at(std::size_t(at - combined[0].begin())) == alone[i].at(col));
        }
      }
  CHECK(matched == 6);
  // compare: A from one file, B from the other.
  const auto compared = run_cli("compare " + base.string() + " " + fresh.string() + " --a sgd --b clipped_sgd --views last");
  INFO(compared.output);
  CHECK(compared.exit_code == 0);
  CHECK_THAT(compared.output, Catch::Contains("A: sgd") && Catch::Contains("B: clipped_sgd"));
  // plot: one figure (its path is required: there is no one FILE to put it beside).
  const fs::path figure = scratch("several.png");
  const auto plotted = run_cli("plot " + base.string() + " " + fresh.string() + " -o " + figure.string());
  INFO(plotted.output);
  CHECK(plotted.exit_code == 0);
  CHECK_THAT(plotted.output, Catch::Contains("(1 panel, 6 curves)"));
  const auto unplaced = run_cli("plot " + base.string() + " " + fresh.string());
  CHECK(unplaced.exit_code == 2);
  CHECK_THAT(unplaced.output, Catch::Contains("give the figure's path with -o"));
  // The same file twice: its labels clash, and the message says how to keep one.
  const auto clash = run_cli("summary " + base.string() + " " + base.string());
  CHECK(clash.exit_code == 2);
  CHECK_THAT(clash.output, Catch::Contains("the analysis cannot tell them apart"));
}
