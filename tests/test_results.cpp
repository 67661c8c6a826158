// Results: HDF5 trace files written by TraceWriter and read back by read_trace_file. Every value is
// deterministic, so every check is exact equality (NaN where nothing was written).
#include <catch2/catch.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>

#include <unistd.h>

#include "results/trace_file.hpp"

using namespace ratelab;
using namespace ratelab::results;
namespace fs = std::filesystem;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// A fresh directory under the system temp directory, removed with everything in it.
struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ratelab_test_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// 2 configurations x 3 views x 4 replicates x 5 checkpoints x 2 metrics.
TraceLayout sample_layout() {
  TraceLayout layout;
  layout.experiment_name = "results_test";
  layout.experiment_text = "[experiment]\nname = \"results_test\"\nsteps = 30\n";
  layout.replicates = 4;
  layout.checkpoints = {0, 1, 3, 10, 30};
  layout.views = {"last", "uniform", "suffix"};
  layout.metrics = {"subopt", "dist2"};
  // Parameters of every type, a key only one configuration has (optimizer.momentum, optimizer.beta) and the
  // 64-bit stream salt; instance values of two types.
  layout.configurations = {
      {"3f2a9c01", "sgd schedule.c=0.5",
       {{"optimizer", std::string("sgd")}, {"optimizer.batch", std::int64_t{1}}, {"schedule.c", 0.5},
        {"problem.diagonal", std::vector<double>{1.0, 0.25}}, {"problem.random_minimizer", true},
        {"problem.tags", std::vector<std::string>{"a", "b"}}, {"stream_salt", std::string("18446744073709551615")}},
       {{"method", std::string("closed form")}},
       0.0, "closed form", "closed form"},
      {"77b0e4d2", "sgd schedule.c=2",
       {{"optimizer", std::string("sgd")}, {"optimizer.batch", std::int64_t{4}}, {"schedule.c", 2.0},
        {"problem.diagonal", std::vector<double>{}}, {"problem.random_minimizer", false},
        {"problem.tags", std::vector<std::string>{}}, {"stream_salt", std::string("0")},
        {"optimizer.momentum", std::int64_t{3}}, {"optimizer.beta", 0.9}, {"optimizer.nesterov", true},
        {"optimizer.rule", std::string("cyclic")}},
       {{"method", std::string("newton, ||grad|| = 3e-14")}, {"condition", 12.5}},
       std::nullopt, "unknown", "unknown"},
  };
  layout.root = {{"ratelab_version", std::string("0.1.0")},
                 {"git_dirty", true},
                 {"threads", std::int64_t{2}},
                 {"experiment.seed", std::int64_t{-7}},
                 {"experiment.views", std::vector<std::string>{"last", "uniform", "suffix"}},
                 {"experiment.tolerance", 1e-300},
                 {"experiment.quiet", false},
                 {"command_line", std::string("ratelab run x.toml --set 'a=\u00e9'")}};
  return layout;
}

// The exactly representable value stored at (metric, c, v, r, k).
double sample_value(std::size_t m, std::size_t c, std::size_t v, std::size_t r, std::size_t k) {
  return 1000.0 * double(m) + 100.0 * double(c) + 10.0 * double(v) + double(r) + double(k) / 8.0;
}

// Runs of the sample: (c, r) -> result. (1, 3) is never written, so it stays `missing`.
RunResult sample_run(std::size_t c, std::size_t r) {
  const std::size_t M = 2, V = 3, K = 5;
  RunResult result;
  result.status = RunStatus::ok;
  result.stop_step = 30;
  result.wall_seconds = 0.125 * double(1 + c * 4 + r);
  result.eval_seconds = 0.5 + double(c);
  result.traces.resize(M * V * K);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t k = 0; k < K; ++k) result.traces[(m * V + v) * K + k] = sample_value(m, c, v, r, k);
  result.stats = {{"noise_mean", -0.25 * double(r)}};
  if (c == 0 && r == 1) {  // diverged after checkpoint 2: later checkpoints are NaN
    result.status = RunStatus::diverged;
    result.stop_step = 7;
    for (std::size_t m = 0; m < M; ++m)
      for (std::size_t v = 0; v < V; ++v)
        for (std::size_t k = 3; k < K; ++k) result.traces[(m * V + v) * K + k] = kNaN;
  }
  if (c == 0 && r == 2) {  // error: no traces at all
    result.status = RunStatus::error;
    result.stop_step = 0;
    result.message = "oracle: matrix is not positive definite (problem.d = 3)";
    result.traces.clear();
    result.stats.clear();
  }
  if (c == 1 && r == 1) {
    result.status = RunStatus::interrupted;
    result.stop_step = 12;
    result.stats.push_back({"shrink_factor", 0.75});  // a stat first reported late: created lazily
  }
  return result;
}

const std::vector<std::pair<std::size_t, std::size_t>> kWrittenRuns = {{0, 0}, {0, 1}, {0, 2}, {0, 3},
                                                                       {1, 0}, {1, 1}, {1, 2}};

void write_sample(const std::string& path, bool reverse_order, WriteMode mode = WriteMode::create_new) {
  TraceWriter writer(path, sample_layout(), mode);
  auto runs = kWrittenRuns;
  if (reverse_order) std::reverse(runs.begin(), runs.end());
  for (auto [c, r] : runs) writer.write_run(c, long(r), sample_run(c, r));
  writer.commit();
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

}  // namespace

TEST_CASE("trace file: every written value reads back exactly", "[results]") {
  TempDir dir("roundtrip");
  const std::string path = dir.file("sample.h5");
  write_sample(path, false);
  REQUIRE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".partial"));

  const TraceData data = read_trace_file(path);
  const TraceLayout expected = sample_layout();
  CHECK(data.schema_version == 2);
  CHECK(data.layout.experiment_name == expected.experiment_name);
  CHECK(data.layout.experiment_text == expected.experiment_text);
  CHECK(data.layout.replicates == 4);
  CHECK(data.layout.checkpoints == expected.checkpoints);
  CHECK(data.layout.views == expected.views);
  CHECK(data.layout.metrics == expected.metrics);
  CHECK(data.metric_units == std::vector<std::string>{"objective", "parameter^2"});

  // Root: experiment_name first, then the caller's attributes with their types and order.
  Attributes root{{"experiment_name", std::string("results_test")}};
  root.insert(root.end(), expected.root.begin(), expected.root.end());
  CHECK(data.layout.root == root);

  REQUIRE(data.layout.configurations.size() == 2);
  for (std::size_t c = 0; c < 2; ++c) {
    CHECK(data.layout.configurations[c].id == expected.configurations[c].id);
    CHECK(data.layout.configurations[c].label == expected.configurations[c].label);
    CHECK(data.layout.configurations[c].parameters == expected.configurations[c].parameters);
    CHECK(data.layout.configurations[c].instance == expected.configurations[c].instance);
    CHECK(data.layout.configurations[c].f_star == expected.configurations[c].f_star);
    CHECK(data.layout.configurations[c].f_star_source == expected.configurations[c].f_star_source);
    CHECK(data.layout.configurations[c].f_star_method == expected.configurations[c].f_star_method);
  }

  REQUIRE(data.traces.size() == 2);
  std::size_t mismatches = 0, nan_count = 0;
  for (std::size_t m = 0; m < 2; ++m)
    for (std::size_t c = 0; c < 2; ++c)
      for (std::size_t v = 0; v < 3; ++v)
        for (std::size_t r = 0; r < 4; ++r)
          for (std::size_t k = 0; k < 5; ++k) {
            const bool never_written = (c == 0 && r == 2) || (c == 1 && r == 3);
            const double want = never_written || (c == 0 && r == 1 && k >= 3) ? kNaN : sample_value(m, c, v, r, k);
            const double got = data.trace(m, c, v, r, k);
            if (!same(got, want)) ++mismatches;
            if (std::isnan(got)) ++nan_count;
          }
  CHECK(mismatches == 0);
  // NaN: 2 unwritten runs x 2 metrics x 3 views x 5 checkpoints + the diverged run's 2 x 3 x 2.
  CHECK(nan_count == 60 + 12);
  CHECK(data.trace(1, 1, 2, 3 - 1, 4) == 1000 + 100 + 20 + 2 + 0.5);
  CHECK(data.metric_index("dist2") == std::optional<std::size_t>(1));
  CHECK_FALSE(data.metric_index("value").has_value());

  using S = RunStatus;
  CHECK(data.status == std::vector<S>{S::ok, S::diverged, S::error, S::ok, S::ok, S::interrupted, S::ok, S::missing});
  CHECK(data.stop_step == std::vector<long>{30, 7, 0, 30, 30, 12, 30, -1});
  for (std::size_t c = 0; c < 2; ++c)
    for (std::size_t r = 0; r < 4; ++r) {
      const bool missing = c == 1 && r == 3;
      CHECK(same(data.wall_seconds[c * 4 + r], missing ? kNaN : 0.125 * double(1 + c * 4 + r)));
      CHECK(same(data.eval_seconds[c * 4 + r], missing ? kNaN : 0.5 + double(c)));
    }
  CHECK(data.messages ==
        std::vector<std::string>{"", "", "oracle: matrix is not positive definite (problem.d = 3)", "", "", "", "", ""});

  REQUIRE(data.run_stats.size() == 2);
  CHECK(data.run_stats[0].first == "noise_mean");
  const std::vector<double> noise{0.0, -0.25, kNaN, -0.75, 0.0, -0.25, -0.5, kNaN};
  for (std::size_t i = 0; i < 8; ++i) CHECK(same(data.run_stats[0].second[i], noise[i]));
  CHECK(data.run_stats[1].first == "shrink_factor");
  for (std::size_t i = 0; i < 8; ++i) CHECK(same(data.run_stats[1].second[i], i == 5 ? 0.75 : kNaN));
}

TEST_CASE("trace file: every trace and run dataset carries labelled dimension scales", "[results]") {
  TempDir dir("scales");
  const std::string path = dir.file("sample.h5");
  write_sample(path, false);
  for (const char* name : {"subopt", "dist2"}) {
    const auto dims = dataset_dimensions(path, name);
    REQUIRE(dims.size() == 4);
    const char* expected[4] = {"configuration", "view", "replicate", "step"};
    for (int i = 0; i < 4; ++i) {
      CHECK(dims[i].label == expected[i]);
      CHECK(dims[i].scales == std::vector<std::string>{std::string("/") + expected[i]});
    }
  }
  for (const char* name : {"label", "f_star", "f_star_source", "optimizer", "optimizer.batch", "optimizer.momentum",
                           "problem.random_minimizer", "stream_salt", "instance.condition"}) {
    INFO(name);
    const auto dims = dataset_dimensions(path, name);
    REQUIRE(dims.size() == 1);
    CHECK(dims[0].label == "configuration");
    CHECK(dims[0].scales == std::vector<std::string>{"/configuration"});
  }
  for (const char* name : {"status", "stop_step", "wall_seconds", "eval_seconds", "message", "stats.noise_mean",
                           "stats.shrink_factor"}) {
    INFO(name);
    const auto dims = dataset_dimensions(path, name);
    REQUIRE(dims.size() == 2);
    CHECK(dims[0].label == "configuration");
    CHECK(dims[0].scales == std::vector<std::string>{"/configuration"});
    CHECK(dims[1].label == "replicate");
    CHECK(dims[1].scales == std::vector<std::string>{"/replicate"});
  }
}

TEST_CASE("trace file: the same content gives byte-identical datasets whatever the run order", "[results]") {
  TempDir dir("bytes");
  write_sample(dir.file("forward.h5"), false);
  write_sample(dir.file("backward.h5"), true);
  for (const char* name : {"subopt", "dist2", "status", "stop_step", "message", "stats.noise_mean", "configuration", "step",
                           "optimizer.batch"}) {
    INFO(name);
    const auto a = read_dataset_bytes(dir.file("forward.h5"), name);
    const auto b = read_dataset_bytes(dir.file("backward.h5"), name);
    CHECK(a == b);
  }
  // 2 x 3 x 4 x 5 float64 values, little-endian as stored.
  const auto bytes = read_dataset_bytes(dir.file("forward.h5"), "subopt");
  REQUIRE(bytes.size() == 120 * 8);
  double first = 0;
  std::memcpy(&first, bytes.data() + 8 * 1, 8);  // (c, v, r, k) = (0, 0, 0, 1)
  CHECK(first == sample_value(0, 0, 0, 0, 1));
  // No timestamps are stored, so writing in the same order reproduces the whole file.
  write_sample(dir.file("forward_again.h5"), false);
  CHECK(slurp(dir.file("forward.h5")) == slurp(dir.file("forward_again.h5")));
  CHECK_THROWS_WITH(read_dataset_bytes(dir.file("forward.h5"), "value"), Catch::Contains("no dataset 'value'"));
}

TEST_CASE("trace writer: no commit leaves nothing, create_new refuses existing files", "[results]") {
  TempDir dir("lifecycle");
  const std::string path = dir.file("run.h5");
  {
    TraceWriter writer(path, sample_layout(), WriteMode::create_new);
    writer.write_run(0, 0, sample_run(0, 0));
    CHECK(fs::exists(path + ".partial"));
    CHECK_FALSE(fs::exists(path));
  }
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".partial"));

  {
    std::ofstream(path) << "precious results";
  }
  try {
    TraceWriter writer(path, sample_layout(), WriteMode::create_new);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK_THAT(e.what(), Catch::Contains(path) && Catch::Contains("already exists") && Catch::Contains("--overwrite") &&
                             Catch::Contains("--resume"));
  }
  CHECK(slurp(path) == "precious results");
  CHECK_FALSE(fs::exists(path + ".partial"));

  // Overwrite replaces it only at commit.
  {
    TraceWriter writer(path, sample_layout(), WriteMode::overwrite);
    writer.write_run(1, 2, sample_run(1, 2));
    CHECK(slurp(path) == "precious results");
    writer.commit();
  }
  const TraceData data = read_trace_file(path);
  CHECK(data.status[1 * 4 + 2] == RunStatus::ok);
  CHECK(data.status[0] == RunStatus::missing);
  CHECK(data.trace(0, 1, 2, 2, 4) == sample_value(0, 1, 2, 2, 4));
}

TEST_CASE("trace writer: bad paths and layouts are refused before anything is written", "[results]") {
  TempDir dir("badpath");
  const std::string plain_file = dir.file("plain.txt");
  {
    std::ofstream(plain_file) << "not a directory";
  }
  const std::string under_file = plain_file + "/sub/x.h5";
  CHECK_THROWS_WITH(TraceWriter(under_file, sample_layout(), WriteMode::create_new),
                    Catch::Contains("'" + under_file + "'") && Catch::Contains("Not a directory"));
  const std::string no_dir = dir.file("missing_dir/x.h5");
  CHECK_THROWS_WITH(TraceWriter(no_dir, sample_layout(), WriteMode::overwrite),
                    Catch::Contains("'" + no_dir + "'") && Catch::Contains("No such file or directory"));
  CHECK_THROWS_WITH(TraceWriter(dir.path.string(), sample_layout(), WriteMode::overwrite),
                    Catch::Contains("is an existing directory"));

  TraceLayout bad = sample_layout();
  bad.replicates = 0;
  bad.metrics = {"subopt", "subopt", "sbopt"};
  bad.configurations[1].id = bad.configurations[0].id;
  bad.root.push_back({"format", std::string("x")});
  const std::string path = dir.file("bad.h5");
  try {
    TraceWriter writer(path, bad, WriteMode::create_new);
    FAIL("expected a ConfigError");
  } catch (const ConfigError& e) {
    CHECK(e.problems().size() == 5);
    CHECK_THAT(e.what(), Catch::Contains("replicates = 0 violates replicates >= 1"));
    CHECK_THAT(e.what(), Catch::Contains("metric 'subopt' is listed twice"));
    CHECK_THAT(e.what(), Catch::Contains("unknown metric 'sbopt'"));
    CHECK_THAT(e.what(), Catch::Contains("same id '3f2a9c01' as configuration 0"));
    CHECK_THAT(e.what(), Catch::Contains("reserved attribute name 'format'"));
  }
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(fs::exists(path + ".partial"));

  // Out-of-layout runs and wrongly sized traces are programming errors, refused without writing.
  TraceWriter writer(path, sample_layout(), WriteMode::create_new);
  CHECK_THROWS_AS(writer.write_run(2, 0, sample_run(1, 0)), std::out_of_range);
  CHECK_THROWS_AS(writer.write_run(0, 4, sample_run(0, 0)), std::out_of_range);
  RunResult wrong = sample_run(0, 0);
  wrong.traces.pop_back();
  CHECK_THROWS_AS(writer.write_run(0, 0, wrong), std::invalid_argument);
}

TEST_CASE("trace reader: refuses missing, non-HDF5 and foreign HDF5 files with clear messages", "[results]") {
  TempDir dir("reader");
  CHECK_THROWS_WITH(read_trace_file(dir.file("nope.h5")), Catch::Contains("nope.h5' does not exist"));

  const std::string text = dir.file("notes.txt");
  {
    std::ofstream(text) << "step,subopt\n0,1.0\n";
  }
  CHECK_THROWS_WITH(read_trace_file(text), Catch::Contains("'" + text + "' is not an HDF5 file"));
  CHECK_THROWS_AS(read_trace_file(text), ConfigError);

  const std::string foreign = dir.file("foreign.h5");
  write_plain_hdf5_file(foreign, {{"title", std::string("someone else's data")}});
  CHECK_THROWS_WITH(read_trace_file(foreign),
                    Catch::Contains("is an HDF5 file but not a ratelab trace file") && Catch::Contains("no 'format' attribute"));
  write_plain_hdf5_file(foreign, {{"format", std::string("netcdf")}});
  CHECK_THROWS_WITH(read_trace_file(foreign), Catch::Contains("format = 'netcdf', expected 'ratelab-trace'"));
  write_plain_hdf5_file(foreign, {{"format", std::string("ratelab-trace")}, {"schema_version", std::int64_t{3}}});
  CHECK_THROWS_WITH(read_trace_file(foreign), Catch::Contains("schema version 3") && Catch::Contains("reads schema versions 1 to 2") &&
                                                  Catch::Contains("newer ratelab"));
  write_plain_hdf5_file(foreign, {{"format", std::string("ratelab-trace")}, {"schema_version", std::int64_t{0}}});
  CHECK_THROWS_WITH(read_trace_file(foreign), Catch::Contains("schema version 0"));
  for (std::int64_t version : {1, 2}) {
    write_plain_hdf5_file(foreign, {{"format", std::string("ratelab-trace")}, {"schema_version", version}});
    CHECK_THROWS_WITH(read_trace_file(foreign), Catch::Contains("is incomplete: dataset 'experiment' is missing"));
  }
  // The raw-byte reader works on any HDF5 file.
  CHECK(read_dataset_bytes(foreign, "data").size() == 24);
}
