// experiment.record_iterates (issue 25): x itself of every view at every checkpoint in the trace file,
// against a hand recurrence, through the journal (resume), shards and merge, and the size bound.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "results/journal.hpp"
#include "results/trace_file.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

// Gradient descent with eta = 1/2 on f(x) = ||x||^2 / 2 (H = I, x* = 0, no noise) from x_0 = (1, ..., 1):
// x_{t+1} = x_t - eta x_t = (1 - eta) x_t = 2^-(t+1) exactly in every component, for d = 2 and d = 3.
const std::string kGradientDescent =
    "[experiment]\nname = iterates\nsteps = 40\nreplicates = 3\ncheckpoints = 8\n"
    "views = last, uniform, polydecay, best\nrecord_iterates = true\n"
    "[problem]\nname = quadratic\nd = 2, 3\nmu = 1\nL = 1\nnoise_scale = 0\n"
    "[optimizer]\nname = sgd\n"
    "[schedule]\nname = constant\neta = 0.5\n";

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path file = scratch(name);
  std::ofstream(file) << text;
  return file;
}

}  // namespace

TEST_CASE("recorded iterates equal the hand recurrence of gradient descent on ||x||^2 / 2", "[iterates]") {
  const fs::path file = write_file("iterates.ini", kGradientDescent), out = scratch("iterates.h5");
  const auto o = run_cli("run " + file.string() + " --quiet --threads 2 -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto data = results::read_trace_file(out.string());
  const auto& layout = data.layout;
  REQUIRE(layout.iterate_dimension == 3);
  REQUIRE(layout.configurations.size() == 2);
  REQUIRE(layout.views == std::vector<std::string>{"last", "uniform", "polydecay", "best"});
  const std::size_t K = layout.checkpoints.size(), R = 3;
  REQUIRE(K == 8);
  REQUIRE(data.iterates.size() == 2 * 4 * R * K * 3);

  // The hand recurrence, with the views' own definitions (core/run.hpp): the running sum for `uniform`, the
  // polynomial-decay weights w_t = (k + 1)/(t + k), k = 3, and `best` = `last` here (F decreases).
  const double eta = 0.5, k_poly = 3.0;
  std::vector<double> last{1.0}, uniform{1.0}, poly{1.0};
  double x = 1.0, sum = 0.0, p = 1.0;
  for (long t = 1; t <= 40; ++t) {
    x = x - eta * x;
    sum += x;
    const double w = (k_poly + 1.0) / (double(t) + k_poly);
    p = (1.0 - w) * p + w * x;
    last.push_back(x);
    uniform.push_back(sum / double(t));
    poly.push_back(p);
  }
  for (std::size_t c = 0; c < 2; ++c) {
    const auto& record = layout.configurations[c];
    const long d = record.dimension;
    INFO(record.label);
    CHECK(d == (c == 0 ? 2 : 3));
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t k = 0; k < K; ++k) {
        const auto t = std::size_t(layout.checkpoints[k]);
        INFO("replicate " << r << ", t = " << t);
        CHECK(last[t] == std::ldexp(1.0, -int(t)));  // the recurrence itself: (1 - eta)^t, exact
        for (long i = 0; i < d; ++i) {
          CHECK(data.iterate(c, 0, r, k, std::size_t(i)) == last[t]);
          CHECK(data.iterate(c, 1, r, k, std::size_t(i)) == uniform[t]);
          CHECK(data.iterate(c, 2, r, k, std::size_t(i)) == poly[t]);
          CHECK(data.iterate(c, 3, r, k, std::size_t(i)) == last[t]);
        }
        for (long i = d; i < 3; ++i) CHECK(std::isnan(data.iterate(c, 0, r, k, std::size_t(i))));  // beyond d
        // The metrics are those of the recorded iterates: F(x_t) - F* = d x_t^2 / 2.
        CHECK(data.trace(*data.metric_index("subopt"), c, 0, r, k) == 0.5 * double(d) * last[t] * last[t]);
      }
  }
  // The layout names the iterates' dimension for netCDF readers.
  const auto dims = results::dataset_dimensions(out.string(), "iterate");
  REQUIRE(dims.size() == 5);
  CHECK(dims[4].label == "component");
  CHECK(dims[4].scales == std::vector<std::string>{"/component"});
}

TEST_CASE("recorded iterates survive a kill and --resume, and shards merge to the same bytes", "[iterates]") {
  const fs::path file = write_file("iterates_resume.ini", kGradientDescent);
  const fs::path whole = scratch("iterates_whole.h5"), killed = scratch("iterates_killed.h5");
  REQUIRE(run_cli("run " + file.string() + " --quiet --threads 1 -o " + whole.string()).exit_code == 0);

  // SIGKILL after the 2nd of 6 runs was written: the journal holds them, --resume runs the rest.
  const auto first = run_cli("run " + file.string() + " --quiet --threads 1 -o " + killed.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=2");
  INFO(first.output);
  REQUIRE(first.exit_code == 128 + 9);
  REQUIRE(fs::exists(killed.string() + ".journal"));
  const auto resumed = run_cli("run " + file.string() + " --quiet --threads 1 --resume -o " + killed.string());
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("recovered 2 finished runs"));
  const auto expected = results::read_dataset_bytes(whole.string(), "iterate");
  CHECK(expected.size() == 2 * 4 * 3 * 8 * 3 * 8);
  CHECK(results::read_dataset_bytes(killed.string(), "iterate") == expected);
  CHECK(results::read_dataset_bytes(killed.string(), "dimension") == results::read_dataset_bytes(whole.string(), "dimension"));

  const fs::path part0 = scratch("iterates_part0.h5"), part1 = scratch("iterates_part1.h5"), merged = scratch("iterates_merged.h5");
  for (int i = 0; i < 2; ++i)
    REQUIRE(run_cli("run " + file.string() + " --quiet --shard " + std::to_string(i) + "/2 -o " + (i ? part1 : part0).string())
                .exit_code == 0);
  const auto m = run_cli("merge " + part0.string() + " " + part1.string() + " -o " + merged.string());
  INFO(m.output);
  REQUIRE(m.exit_code == 0);
  CHECK(results::read_dataset_bytes(merged.string(), "iterate") == expected);
}

TEST_CASE("a run's iterates go through a journal record bit for bit", "[iterates]") {
  RunResult run;
  run.status = RunStatus::ok;
  run.traces = {1.0, 0.5};
  run.iterates = {1.0, -0.0, std::nextafter(1.0, 2.0), std::numeric_limits<double>::quiet_NaN(), 1e-300, -3.5};
  std::vector<unsigned char> bytes;
  results::encode_record(bytes, 3, 7, run);
  const auto record = results::decode_record(bytes.data(), bytes.size());
  REQUIRE(record.result.iterates.size() == run.iterates.size());
  CHECK(std::memcmp(record.result.iterates.data(), run.iterates.data(), run.iterates.size() * sizeof(double)) == 0);
  RunResult none = run;  // without recorded iterates the record holds none
  none.iterates.clear();
  results::encode_record(bytes, 3, 7, none);
  CHECK(results::decode_record(bytes.data(), bytes.size()).result.iterates.empty());
}

TEST_CASE("recorded iterates above 1 GiB are refused before anything runs, naming the numbers and the fix", "[iterates]") {
  // 1 configuration x 5 views x 300 replicates x 100 checkpoints x d = 1000 x 8 bytes = 1.2 GB.
  const fs::path file = write_file(
      "iterates_large.ini",
      "[experiment]\nname = large\nsteps = 1000\nreplicates = 300\ncheckpoints = 100\n"
      "views = last, uniform, suffix, polydecay, best\nrecord_iterates = true\n"
      "[problem]\nname = quadratic\nd = 1000\n[optimizer]\nname = sgd\n[schedule]\nname = constant\neta = 0.5\n");
  const fs::path out = scratch("iterates_large.h5");
  const auto o = run_cli("run " + file.string() + " --quiet -o " + out.string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains("experiment.record_iterates: the iterates would take 1 configurations x 5 views x "
                                       "300 replicates x 100 checkpoints x d = 1000 x 8 bytes = 1.2 GB, above the bound of "
                                       "1024 MiB; record fewer (experiment.checkpoints, experiment.views, "
                                       "experiment.replicates, or a sweep of fewer configurations) or set "
                                       "experiment.record_iterates = false"));
  CHECK(!fs::exists(out));
  CHECK(!fs::exists(out.string() + ".journal"));
  // At 250 replicates (1.0 GB, below 2^30 bytes) the bound holds.
  results::TraceLayout layout;
  layout.configurations.resize(1);
  layout.views.assign(5, "v");
  layout.replicates = 250;
  layout.checkpoints.resize(100);
  layout.iterate_dimension = 1000;
  CHECK_NOTHROW(results::check_iterate_size(layout));
  layout.replicates = 300;
  CHECK_THROWS_AS(results::check_iterate_size(layout), ConfigError);
}
