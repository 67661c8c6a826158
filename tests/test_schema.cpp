// Trace files of the previous schema (1): tests/fixtures/schema1_sweep.h5 was written by ratelab before
// schema 2 (see tests/fixtures/schema1_sweep.ini). It must read as the study it holds, through the library
// and through every command that reads trace files.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "cli_support.hpp"
#include "experiments/run_to_file.hpp"
#include "results/trace_file.hpp"
#include "tools/export_command.hpp"

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

// ---- SCHEMA.md against the file --------------------------------------------------------------------

namespace {

// The rows of SCHEMA.md's attribute table: object (or pattern) -> the attribute names its row lists.
std::vector<std::pair<std::string, std::vector<std::string>>> documented_attributes() {
  std::ifstream in(std::string(RATELAB_SOURCE_DIR) + "/results/SCHEMA.md");
  std::string line;
  bool inside = false;
  std::vector<std::pair<std::string, std::vector<std::string>>> rows;
  while (std::getline(in, line)) {
    if (line.find("<!-- attributes: begin -->") != std::string::npos) inside = true;
    if (line.find("<!-- attributes: end -->") != std::string::npos) break;
    if (!inside || line.rfind("| `", 0) != 0) continue;
    std::vector<std::string> quoted;
    for (std::size_t at = line.find('`'); at != std::string::npos; at = line.find('`', at + 1)) {
      const std::size_t end = line.find('`', at + 1);
      quoted.push_back(line.substr(at + 1, end - at - 1));
      at = end;
      // The second column starts after the first '|' that follows the object's name.
    }
    const std::size_t second = line.find('|', line.find('`', line.find('`') + 1));
    std::vector<std::string> attributes;
    for (std::size_t at = line.find('`', second); at != std::string::npos; at = line.find('`', at + 1)) {
      const std::size_t end = line.find('`', at + 1);
      attributes.push_back(line.substr(at + 1, end - at - 1));
      at = end;
    }
    rows.emplace_back(quoted.front(), attributes);
  }
  return rows;
}

// The SCHEMA.md row an object of the file falls under.
std::string schema_row(const std::string& name, const std::vector<std::string>& metrics) {
  for (const char* fixed : {"/", "experiment", "configuration", "view", "replicate", "step", "label", "f_star", "f_star_source",
                            "f_star_method", "run_fingerprint", "status", "stop_step", "wall_seconds", "eval_seconds", "message",
                            "gradient_evaluations", "elapsed_seconds", "component", "dimension", "iterate"})
    if (name == fixed) return name;
  if (std::find(metrics.begin(), metrics.end(), name) != metrics.end()) return "<metric>";
  if (name.rfind("stats.", 0) == 0) return "stats.<name>";
  if (name.rfind("extra.", 0) == 0) return "extra.<name>";
  if (name.rfind("instance.", 0) == 0) return "instance.<key>";
  return "<parameter>";
}

}  // namespace

TEST_CASE("SCHEMA.md lists the attributes the writer writes, object by object", "[schema]") {
  // A layout with every kind of object: a bool, a list, a key only one configuration has, instance values,
  // an extra metric and a run statistic.
  results::TraceLayout layout;
  layout.experiment_name = "schema_doc";
  layout.experiment_text = "[experiment]\nname = schema_doc\n";
  layout.replicates = 2;
  layout.checkpoints = {0, 10};
  layout.views = {"last"};
  layout.metrics = {"value", "subopt"};
  layout.extra_metrics = {"theta"};
  layout.configurations = {
      {"c0", "sgd", {{"optimizer", std::string("sgd")}, {"problem.flag", true}, {"problem.diagonal", std::vector<double>{1, 2}}},
       {{"condition_number", 3.0}}, 0.0, "closed form", "closed form"},
      {"c1", "heavy_ball", {{"optimizer", std::string("heavy_ball")}, {"problem.flag", false},
                             {"problem.diagonal", std::vector<double>{}}, {"optimizer.beta", 0.5}},
       {}, std::nullopt, "unknown", "unknown"}};
  layout.root = {{"ratelab_version", std::string("0.1.0")}, {"git_dirty", false}};
  layout.iterate_dimension = 2;  // recorded iterates, of dimensions 2 and 1
  layout.configurations[0].dimension = 2;
  layout.configurations[1].dimension = 1;
  const auto path = scratch("schema_doc.h5");
  {
    results::TraceWriter writer(path.string(), layout, results::WriteMode::overwrite);
    RunResult run;
    run.status = RunStatus::ok;
    run.traces.assign(2 * 1 * 2, 1.0);
    run.stats = {{"noise_mean", 0.5}};
    run.extra_names = {"theta"};
    run.extra_traces = {0.1, 0.2};
    run.iterates = {1, 2, 3, 4};  // views x checkpoints x d
    writer.write_run(0, 0, run);
    writer.commit();
  }
  const auto documented = documented_attributes();
  auto row = [&](const std::string& name) -> const std::vector<std::string>* {
    for (const auto& [object, attributes] : documented)
      if (object == name) return &attributes;
    return nullptr;
  };
  std::map<std::string, std::set<std::string>> seen;  // per row, the attributes the file has
  for (const auto& [object, attributes] : results::attribute_inventory(path.string())) {
    const std::string name = schema_row(object, layout.metrics);
    INFO("object " << object << " (SCHEMA.md row " << name << ")");
    const auto* listed = row(name);
    REQUIRE(listed);
    seen[name].insert(attributes.begin(), attributes.end());
    if (name == "/") {
      // The four identity attributes, then the layout's root attributes.
      std::vector<std::string> expected(listed->begin(), listed->begin() + 4);
      for (const auto& [key, value] : layout.root) expected.push_back(key);
      CHECK(attributes == expected);
    } else if (name == "<parameter>" || name == "instance.<key>") {
      for (const auto& a : attributes) CHECK(std::find(listed->begin(), listed->end(), a) != listed->end());
    } else {
      CHECK(attributes == *listed);
    }
  }
  // Every row describes something the file has, and every conditional attribute occurs.
  for (const auto& [object, attributes] : documented) {
    INFO("SCHEMA.md row " << object);
    CHECK(seen.count(object));
    if (object != "/")
      for (const auto& a : attributes) CHECK(seen[object].count(a));
  }
}

// ---- export --------------------------------------------------------------------------------------------

namespace {
std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
}  // namespace

TEST_CASE("export: C x V x R x K rows whatever the read block, filters that name what the file holds", "[schema][export]") {
  // The schema-1 fixture: 4 configurations x 2 views x 3 replicates x 5 checkpoints.
  const auto whole = scratch("export_whole.csv"), runwise = scratch("export_runwise.csv");
  auto o = run_cli("export " + kFixture + " -o " + whole.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("wrote " + whole.string() + ": 120 rows from 4 configurations"));
  const std::string table = slurp(whole);
  CHECK(std::count(table.begin(), table.end(), '\n') == 1 + 4 * 2 * 3 * 5);
  CHECK_FALSE(fs::exists(whole.string() + ".partial"));
  // One run per block reads the same rows as the whole configuration at once.
  tools::ExportOptions options;
  options.files = {kFixture};
  options.output = runwise.string();
  options.window_mb = 1e-9;  // less than one run: one run per block
  CHECK(tools::export_table(options).rows == 120);
  CHECK(slurp(runwise) == table);
  // The header: identity, every parameter, F*, the row's coordinates, the metrics, the run's outcome.
  const std::string header = table.substr(0, table.find('\n'));
  CHECK_THAT(header, Catch::StartsWith("configuration,label,problem,problem.d,") &&
                         Catch::Contains(",schedule.eta,optimizer.beta,") &&
                         Catch::EndsWith(",f_star,view,replicate,step,value,subopt,gradient_evaluations,elapsed_seconds,status,stop_step,"
                                         "wall_seconds,eval_seconds,"
                                         "stats.noise_mean_sq_norm,stats.noise_max_norm,stats.noise_tail_index_hill,"
                                         "stats.noise_hill_k,stats.gradient_coordinates"));
  CHECK_THAT(table, Catch::Contains("\n323da95bb10fadd1,sgd eta=30,"));  // a diverged configuration's rows
  CHECK_THAT(table, Catch::Contains(",diverged,"));

  auto cut = run_cli("export " + kFixture + " -o - --where optimizer=sgd --views last --metrics subopt");
  CHECK(cut.exit_code == 0);
  CHECK(std::count(cut.output.begin(), cut.output.end(), '\n') == 1 + 2 * 1 * 3 * 5 + 1);  // + the "wrote" line

  // Bad filters: exit 2 naming what the file holds, and no output file.
  const auto bad = scratch("export_bad.csv");
  for (const std::string& args : {std::string("--metrics sbopt"), std::string("--views lst"), std::string("--where optimizer=adam"),
                                  std::string("--where optimiser=sgd")}) {
    auto refused = run_cli("export " + kFixture + " -o " + bad.string() + " " + args);
    INFO(args << "\n" << refused.output);
    CHECK(refused.exit_code == 2);
    CHECK_FALSE(fs::exists(bad));
    CHECK_FALSE(fs::exists(bad.string() + ".partial"));
  }
  CHECK_THAT(run_cli("export " + kFixture + " -o " + bad.string() + " --metrics sbopt").output, Catch::Contains("did you mean 'subopt'"));
  CHECK(run_cli("export " + scratch("nothing.h5").string() + " -o " + bad.string()).exit_code == 2);
}
