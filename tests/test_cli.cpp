// The `ratelab` executable end to end: exit codes, messages, output files, determinism across threads.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "experiments/run_to_file.hpp"
#include "results/journal.hpp"
#include "results/trace_file.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using ratelab_test::Outcome;
using ratelab_test::run_cli;
using ratelab_test::scratch;
using ratelab_test::trace_bytes;

namespace {

const char* kSmall = "run quickstart --quiet --set experiment.steps=2000 --set experiment.replicates=6";

}  // namespace

TEST_CASE("ratelab run writes a trace file and says where", "[cli]") {
  auto out = scratch("small.h5");
  auto o = run_cli(std::string(kSmall) + " -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("wrote " + out.string()) && Catch::Contains("6 ok"));
  auto data = ratelab::results::read_trace_file(out.string());
  CHECK(data.layout.replicates == 6);
  CHECK(data.layout.checkpoints.back() == 2000);
  CHECK(data.layout.experiment_name == "quickstart");
  // Running again without --overwrite is refused and leaves the file alone.
  auto again = run_cli(std::string(kSmall) + " -o " + out.string());
  CHECK(again.exit_code == 2);
  CHECK_THAT(again.output, Catch::Contains("--overwrite"));
  CHECK(run_cli(std::string(kSmall) + " --overwrite -o " + out.string()).exit_code == 0);
}

TEST_CASE("trace data are bit-for-bit identical with 1 and 2 threads", "[cli]") {
  auto one = scratch("t1.h5"), two = scratch("t2.h5");
  REQUIRE(run_cli(std::string(kSmall) + " --threads 1 -o " + one.string()).exit_code == 0);
  REQUIRE(run_cli(std::string(kSmall) + " --threads 2 -o " + two.string()).exit_code == 0);
  for (const char* metric : {"subopt", "dist2", "value", "status", "stop_step"}) {
    INFO(metric);
    auto a = ratelab::results::read_dataset_bytes(one.string(), metric);
    auto b = ratelab::results::read_dataset_bytes(two.string(), metric);
    CHECK(!a.empty());
    CHECK(a == b);
  }
}

TEST_CASE("bad input: exit code 2, a message naming the problem, and no output file", "[cli]") {
  auto out = scratch("bad.h5");
  auto bad_file = scratch("bad.ini");
  std::ofstream(bad_file) << "[experiment]\nsteps = 10\nstepz = 3\n[problem]\nname = quadratic\n[optimizer]\nname = sgd\n"
                             "[schedule]\nname = constant\n";
  struct Case {
    std::string args, expect;
  };
  const std::vector<Case> cases{
      {"quickstart --set optimizer.name=sdg", "unknown optimizer 'sdg'; did you mean 'sgd'"},
      {"quickstart --set problem.name=quadratik", "unknown problem 'quadratik'; did you mean 'quadratic'"},
      {bad_file.string(), "bad.ini:3: unknown experiment parameter 'stepz'; did you mean 'steps'"},
      {"quickstart --set optimizer.batch=0", "optimizer.batch = 0 violates optimizer.batch >= 1"},
      {"quickstart --set problem.d=abc", "problem.d = 'abc' is malformed"},
      {"quickstrat", "unknown preset 'quickstrat'; did you mean 'quickstart'"},
      {"quickstart --threads -3", "threads"},
  };
  for (const auto& c : cases) {
    auto o = run_cli("run " + c.args + " --quiet -o " + out.string());
    INFO(c.args << "\n" << o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains(c.expect));
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(out.string() + ".partial"));
  }
  // An output path that cannot be written: a directory below a regular file.
  auto blocker = scratch("plainfile");
  std::ofstream(blocker) << "x";
  auto o = run_cli(std::string(kSmall) + " -o " + (blocker / "sub" / "x.h5").string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains((blocker / "sub").string()));
  CHECK(!fs::exists(blocker / "sub"));
}

TEST_CASE("list and describe come from the declarations", "[cli]") {
  auto o = run_cli("list");
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("sgd") && Catch::Contains("quadratic") && Catch::Contains("inv_sqrt") &&
                           Catch::Contains("quickstart"));
  auto d = run_cli("describe quadratic");
  CHECK(d.exit_code == 0);
  CHECK_THAT(d.output, Catch::Contains("mu") && Catch::Contains("[mu > 0]") && Catch::Contains("noise_scale"));
  CHECK(run_cli("describe quadratik").exit_code == 2);
  CHECK(run_cli("frobnicate").exit_code == 2);
  CHECK(run_cli("run --help").exit_code == 0);
}

// ---- interruption, kills and resume -----------------------------------------------------------------

namespace {

const char* kSweep =
    "run quickstart --quiet --threads 2 --set experiment.steps=3000 --set experiment.replicates=6 "
    "--set schedule.c=0.5,1";

const std::vector<std::vector<unsigned char>>& reference_bytes() {
  static const auto bytes = [] {
    auto ref = scratch("reference.h5");
    auto o = run_cli(std::string(kSweep) + " -o " + ref.string());
    REQUIRE(o.exit_code == 0);
    return trace_bytes(ref);
  }();
  return bytes;
}

}  // namespace

TEST_CASE("SIGINT: a valid file with the finished runs, a resume hint, and --resume completes it identically",
          "[cli][resume]") {
  // One thread, four configurations of six runs. The signal comes from the writer after the 4th run is
  // written, while the sweep may be ahead of it by the queue of finished runs (4 threads + 4 = 8) and the
  // lockstep group it is stepping (6 runs; a 3000-step run never reaches the cancellation poll, every 4096
  // steps): at most 18 of the 24 runs finish whatever the load, so the signal always leaves runs to resume.
  // (With 2 configurations, 12 runs, a loaded machine let the sweep finish all of them first.)
  const std::string sweep = "run quickstart --quiet --threads 1 --set experiment.steps=3000 "
                            "--set experiment.replicates=6 --set schedule.c=0.25,0.5,1,2";
  auto reference = scratch("sigint_reference.h5");
  REQUIRE(run_cli(sweep + " -o " + reference.string()).exit_code == 0);
  auto out = scratch("sigint.h5");
  auto o = run_cli(sweep + " -o " + out.string(), "RATELAB_FAULT_SIGNAL_AFTER_RUNS=4");
  INFO(o.output);
  CHECK(o.exit_code == 4);
  CHECK_THAT(o.output, Catch::Contains("continue with:") && Catch::Contains("--resume"));
  REQUIRE(fs::exists(out));
  CHECK(!fs::exists(out.string() + ".journal"));
  auto partial = ratelab::results::read_trace_file(out.string());
  long finished = 0;
  for (auto s : partial.status) finished += s == ratelab::RunStatus::ok;
  CHECK(finished >= 4);
  CHECK(finished <= 18);
  auto resumed = run_cli(sweep + " --resume -o " + out.string());
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK_THAT(resumed.output, Catch::Contains("recovered " + std::to_string(finished) + " finished runs"));
  CHECK(trace_bytes(out) == trace_bytes(reference));
}

TEST_CASE("SIGKILL after k runs or in the middle of an HDF5 write: recovered by --resume, identical",
          "[cli][resume]") {
  for (std::string fault : {"RATELAB_FAULT_KILL_AFTER_RUNS=1", "RATELAB_FAULT_KILL_AFTER_RUNS=7",
                            "RATELAB_FAULT_KILL_IN_WRITE=3", "RATELAB_FAULT_KILL_IN_WRITE=11"}) {
    INFO(fault);
    auto out = scratch("killed.h5");
    fs::remove(out.string() + ".journal");
    auto o = run_cli(std::string(kSweep) + " -o " + out.string(), fault);
    CHECK(o.exit_code == 128 + 9);  // killed by SIGKILL (as the shell reports it)
    CHECK(!fs::exists(out));
    REQUIRE(fs::exists(out.string() + ".journal"));
    // Without --resume the leftover is not silently replaced.
    auto refused = run_cli(std::string(kSweep) + " -o " + out.string());
    CHECK(refused.exit_code == 2);
    CHECK_THAT(refused.output, Catch::Contains("was killed") && Catch::Contains("--resume"));
    // A second kill during the resume, then a final resume.
    auto again = run_cli(std::string(kSweep) + " --resume -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=1");
    CHECK(again.exit_code == 128 + 9);
    auto resumed = run_cli(std::string(kSweep) + " --resume -o " + out.string());
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    CHECK(!fs::exists(out.string() + ".journal"));
    CHECK(!fs::exists(out.string() + ".partial"));
    CHECK(trace_bytes(out) == reference_bytes());
  }
}

TEST_CASE("resume refuses a file from a different experiment and a path with nothing to resume", "[cli][resume]") {
  auto out = scratch("other.h5");
  REQUIRE(run_cli(std::string(kSweep) + " -o " + out.string()).exit_code == 0);
  auto o = run_cli(std::string(kSweep) + " --set experiment.replicates=7 --resume -o " + out.string());
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains("belongs to a different experiment"));
  auto none = run_cli(std::string(kSweep) + " --resume -o " + scratch("nothing.h5").string());
  CHECK(none.exit_code == 2);
  CHECK_THAT(none.output, Catch::Contains("nothing to resume"));
  // Resuming a complete file runs nothing and changes no trace data.
  auto before = trace_bytes(out);
  auto again = run_cli(std::string(kSweep) + " --resume -o " + out.string());
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("recovered 12 finished runs"));
  CHECK(trace_bytes(out) == before);
}

TEST_CASE("command-line axes (--sweep) and single values (--set) combine", "[cli]") {
  auto out = scratch("sweep.h5");
  auto o = run_cli("run quickstart --quiet --sweep 'schedule.c=logspace(0.5,2,3)' --set experiment.replicates=3 "
                   "--set experiment.steps=50 -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  auto data = ratelab::results::read_trace_file(out.string());
  CHECK(data.layout.replicates == 3);
  CHECK(data.layout.checkpoints.back() == 50);
  REQUIRE(data.layout.configurations.size() == 3);
  CHECK(data.layout.configurations[0].label == "sgd c=0.5");
  CHECK(data.layout.configurations[2].label == "sgd c=2");
}

TEST_CASE("huge grids are refused at once with their size and the override, which lets them run", "[cli][grid]") {
  auto out = scratch("grid.h5");
  // linspace(..., 1e9) used to grow memory at 60 MB/s until killed: now a message, exit 2, no file.
  auto huge = run_cli("run quickstart --quiet --sweep 'schedule.c=linspace(0.01,1,1e9)' -o " + out.string());
  INFO(huge.output);
  CHECK(huge.exit_code == 2);
  CHECK_THAT(huge.output, Catch::Contains("has 1e+09 values, more than the 100000 configurations allowed") &&
                              Catch::Contains("--max-configurations"));
  CHECK(!fs::exists(out));
  const std::string small = std::string(kSmall) + " --sweep 'schedule.c=0.5,1' --sweep 'schedule.t0=10,20' -o " + out.string();
  auto capped = run_cli(small + " --max-configurations 3");
  INFO(capped.output);
  CHECK(capped.exit_code == 2);
  CHECK_THAT(capped.output, Catch::Contains("the grid has 4 configurations, more than the 3 allowed"));
  auto runs = run_cli(small + " --max-runs 23");
  CHECK(runs.exit_code == 2);
  CHECK_THAT(runs.output, Catch::Contains("24 runs (4 configurations x 6 replicates)") && Catch::Contains("--max-runs"));
  CHECK(!fs::exists(out));
  auto allowed = run_cli(small + " --max-configurations 4 --max-runs 24");
  INFO(allowed.output);
  CHECK(allowed.exit_code == 0);
  CHECK(run_cli(small + " --max-runs 0").exit_code == 2);
}

TEST_CASE("problem-specific metrics of the last iterate are written per checkpoint and survive a resume",
          "[cli][resume]") {
  auto ini = scratch("ste.ini");
  std::ofstream(ini) << "[experiment]\nsteps = 400\nreplicates = 4\n[problem]\nname = ste_two_layer\nm = 5\nn = 5\n"
                        "[optimizer]\nname = sgd\nbatch = 8\n[schedule]\nname = constant\neta = 0.05\n";
  const std::string args = "run " + ini.string() + " --quiet --threads 2";
  auto whole = scratch("extra_whole.h5"), resumed = scratch("extra_resumed.h5");
  fs::remove(resumed.string() + ".journal");
  auto o = run_cli(args + " -o " + whole.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  auto data = ratelab::results::read_trace_file(whole.string());
  const auto& names = data.layout.extra_metrics;
  auto theta = std::find(names.begin(), names.end(), "theta");
  REQUIRE(theta != names.end());
  const std::size_t e = std::size_t(theta - names.begin()), K = data.layout.checkpoints.size();
  auto final_theta = std::find_if(data.run_stats.begin(), data.run_stats.end(), [](auto& s) { return s.first == "final_theta"; });
  REQUIRE(final_theta != data.run_stats.end());
  for (std::size_t r = 0; r < 4; ++r) {
    CHECK(std::isfinite(data.extra[e][r * K]));
    // The last checkpoint is t = T: the same iterate as the run statistic final_theta.
    CHECK(data.extra[e][r * K + K - 1] == final_theta->second[r]);
  }
  CHECK(run_cli(args + " -o " + resumed.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=2").exit_code == 128 + 9);
  REQUIRE(run_cli(args + " --resume -o " + resumed.string()).exit_code == 0);
  for (const auto& name : names)
    CHECK(ratelab::results::read_dataset_bytes(whole.string(), "extra." + name) ==
          ratelab::results::read_dataset_bytes(resumed.string(), "extra." + name));
}

// ---- shards and merge --------------------------------------------------------------------------------

TEST_CASE("shards merged equal the single-machine sweep byte for byte, overlaps and gaps are refused",
          "[cli][shards]") {
  std::vector<std::string> parts;
  for (int i = 0; i < 3; ++i) {
    auto part = scratch("part" + std::to_string(i) + ".h5");
    auto o = run_cli(std::string(kSweep) + " --shard " + std::to_string(i) + "/3 -o " + part.string());
    INFO(o.output);
    REQUIRE(o.exit_code == 0);  // the shard's own share is complete
    CHECK_THAT(o.output, Catch::Contains("4 runs (4 ok"));
    parts.push_back(part.string());
  }
  auto all = scratch("merged.h5");
  auto o = run_cli("merge " + parts[0] + " " + parts[1] + " " + parts[2] + " -o " + all.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("12 finished runs from 3 files"));
  CHECK(trace_bytes(all) == reference_bytes());
  // merge plans on outlines (layout and statuses, no traces), then holds one part at a time.
  const auto full = ratelab::results::read_trace_file(parts[1]);
  const auto outline = ratelab::results::read_trace_outline(parts[1]);
  CHECK(outline.traces.empty());
  CHECK(outline.extra.empty());
  CHECK(outline.status == full.status);
  CHECK(ratelab::results::layout_fingerprint(outline.layout) == ratelab::results::layout_fingerprint(full.layout));

  auto overlap = run_cli("merge " + parts[0] + " " + parts[0] + " -o " + scratch("overlap.h5").string());
  CHECK(overlap.exit_code == 2);
  CHECK_THAT(overlap.output, Catch::Contains("the parts overlap"));
  auto gap_path = scratch("gap.h5");
  auto gap = run_cli("merge " + parts[0] + " " + parts[2] + " -o " + gap_path.string());
  CHECK(gap.exit_code == 2);
  CHECK_THAT(gap.output, Catch::Contains("missing shares (of 3): 1"));
  CHECK(!fs::exists(gap_path));
  // A partial merge is completed by --resume, identically.
  REQUIRE(run_cli("merge " + parts[0] + " " + parts[2] + " --allow-partial -o " + gap_path.string()).exit_code == 0);
  auto resumed = run_cli(std::string(kSweep) + " --resume -o " + gap_path.string());
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(trace_bytes(gap_path) == reference_bytes());
  // A merged file merges again: a partial merge plus the missing part, and a complete merge on its own.
  auto partial = scratch("partial.h5"), completed = scratch("completed.h5"), again = scratch("again.h5");
  REQUIRE(run_cli("merge " + parts[0] + " " + parts[2] + " --allow-partial -o " + partial.string()).exit_code == 0);
  auto remerged = run_cli("merge " + partial.string() + " " + parts[1] + " -o " + completed.string());
  INFO(remerged.output);
  REQUIRE(remerged.exit_code == 0);
  CHECK(trace_bytes(completed) == reference_bytes());
  REQUIRE(run_cli("merge " + completed.string() + " -o " + again.string()).exit_code == 0);
  CHECK(trace_bytes(again) == reference_bytes());
  // Parts copied one configuration at a time (the smallest window) give the same file.
  auto windowed = scratch("windowed.h5");
  ratelab::merge_trace_files(parts, windowed.string(), false, false, 1);
  CHECK(trace_bytes(windowed) == reference_bytes());
  const auto whole = ratelab::results::read_trace_file(windowed.string());
  const auto window = ratelab::results::read_trace_configurations(windowed.string(), 1, 2);
  REQUIRE(window.first_configuration == 1);
  const std::size_t R = std::size_t(whole.layout.replicates), K = whole.layout.checkpoints.size();
  for (std::size_t r = 0; r < R; ++r) {
    CHECK(window.status[r] == whole.status[R + r]);
    CHECK(window.messages[r] == whole.messages[R + r]);
    for (std::size_t k = 0; k < K; ++k) CHECK(window.trace(0, 1, 0, r, k) == whole.trace(0, 1, 0, r, k));
  }
  CHECK(run_cli(std::string(kSweep) + " --shard 3/3 -o " + scratch("bad.h5").string()).exit_code == 2);
}

TEST_CASE("the Slurm job-array script runs the shards and merges them into the single-machine result",
          "[cli][shards]") {
  // A stand-in for sbatch that runs each --wrap command here, once per array index, and prints a job id.
  auto dir = scratch("slurm");
  fs::create_directories(dir / "bin");
  std::ofstream(dir / "bin" / "sbatch") << R"(#!/bin/bash
array=""; wrap=""
for a in "$@"; do case "$a" in --array=*) array=${a#--array=};; --wrap=*) wrap=${a#--wrap=};; esac; done
export SLURM_CPUS_PER_TASK=1
if [ -n "$array" ]; then
  for i in $(seq "${array%-*}" "${array#*-}"); do SLURM_ARRAY_TASK_ID=$i bash -c "$wrap" || exit 1; done
else
  bash -c "$wrap" || exit 1
fi
echo 4242
)";
  fs::permissions(dir / "bin" / "sbatch", fs::perms::owner_all);
  auto script = dir / "submit.sh";
  auto o = run_cli("slurm quickstart --array 4 --set experiment.steps=3000 --set experiment.replicates=6 "
                   "--set schedule.c=0.5,1 -o merged.h5 --script " + script.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  // The script calls the binary that wrote it by its absolute path (not whatever `ratelab` PATH holds: here none).
  const std::string binary = fs::canonical(std::string(RATELAB_BINARY_DIR) + "/tools/ratelab").string();
  std::ostringstream script_text;
  script_text << std::ifstream(script).rdbuf();
  CHECK_THAT(script_text.str(), Catch::Contains("--wrap=\"" + binary + " run ") &&
                                Catch::Contains("--wrap=\"" + binary + " merge "));
  const std::string env = "cd " + dir.string() + " && PATH=" + (dir / "bin").string() + ":/usr/bin:/bin";
  FILE* pipe = popen((env + " bash " + script.string() + " 2>&1").c_str(), "r");
  REQUIRE(pipe);
  std::string output;
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  INFO(output);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK_THAT(output, Catch::Contains("submitted array job 4242"));
  for (int i = 0; i < 4; ++i) CHECK(fs::exists(dir / "parts" / ("part_" + std::to_string(i) + ".h5")));
  CHECK(trace_bytes(dir / "merged.h5") == reference_bytes());
}
