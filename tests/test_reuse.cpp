// Studies that grow: run fingerprints (what identifies a run across files), `run --reuse` (finished runs of
// older files copied, the rest run) and the union merge of different experiments. Tag [reuse].
#include <catch2/catch.hpp>
#include <chrono>
#include <regex>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "experiments/run_to_file.hpp"
#include "results/trace_file.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using namespace ratelab;
using ratelab_test::run_cli;
using ratelab_test::scratch;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// A data directory holding the named data set `diabetes` (two small files), for the data-content input.
fs::path diabetes_directory(const std::string& name, const std::string& last_target = "0.5") {
  const fs::path dir = scratch("data_dir_anchor").parent_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_text(dir / "diabetes_data_raw.csv", "1 2 3\n2 1 0\n0 1 1\n3 0 2\n1 1 1\n");
  write_text(dir / "diabetes_target.csv", "1.5\n-0.5\n2.0\n0.25\n" + last_target + "\n");
  return dir;
}

// The experiment every fingerprint below varies one input of: a least-squares problem on `diabetes`
// in `data_dir`, two step sizes (configurations 0 and 1), and `extra` lines appended to [experiment].
std::string study(const fs::path& data_dir, const std::string& extra = "", const std::string& optimizer = "sgd",
                  const std::string& c_axis = "0.01, 0.02", const std::string& problem_extra = "") {
  return "# a comment\n[experiment]\nname = base\nsteps = 50\nreplicates = 3\ncheckpoints = 6\ndata_directory = " +
         data_dir.string() + "\n" + extra + "\n[problem]\nname = least_squares\ndataset = diabetes\n" + problem_extra +
         "\n[optimizer]\nname = " + optimizer + "\n[schedule]\nname = constant\neta = " + c_axis + "\n";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

std::vector<std::string> fingerprints_of(const std::string& text, const Registry& registry = builtin_registry()) {
  const ExperimentPlan plan = plan_experiment(registry, parse_ini(text, "study.ini"), {});
  return run_fingerprints(PreparedExperiment(registry, plan, 1));
}

}  // namespace

TEST_CASE("the run fingerprint changes with each input that changes a run's bits, and with nothing else",
          "[reuse][fingerprint]") {
  const fs::path data = diabetes_directory("fp_data");
  const std::vector<std::string> base = fingerprints_of(study(data));
  REQUIRE(base.size() == 2);
  CHECK(base[0] != base[1]);  // eta differs
  for (const auto& f : base) CHECK(f.size() == 16);

  SECTION("each input changes it") {
    const fs::path changed_data = diabetes_directory("fp_data_changed", "0.75");
    const std::map<std::string, std::string> variants{
        {"seed", study(data, "seed = 2")},
        {"common random numbers", study(data, "common_random_numbers = false")},
        {"instance mode", study(data, "instance = per_replicate")},
        {"steps", replaced(study(data), "steps = 50", "steps = 51")},
        {"run-loop option", study(data, "divergence_threshold = 1e50")},
        {"checkpoints", replaced(study(data), "checkpoints = 6", "checkpoints = 7")},
        {"views", study(data, "views = last, uniform")},
        {"metrics", study(data, "metrics = subopt")},
        {"optimizer", study(data, "", "heavy_ball")},
        {"problem parameter", study(data, "", "sgd", "0.01, 0.02", "standardize = false")},
        {"data file contents", study(changed_data)},
    };
    for (const auto& [what, text] : variants) {
      INFO("changed: " << what);
      const auto changed = fingerprints_of(text);
      REQUIRE(changed.size() == 2);
      CHECK(changed[0] != base[0]);
      CHECK(changed[1] != base[1]);
    }
    // A component's origin: the same optimizer from another plugin library (another hash) is another run.
    auto with_plugin = [](const std::string& hash) {
      Registry registry = builtin_registry();
      const ComponentInfo sgd = registry.info(ComponentKind::optimizer, "sgd");
      registry.add_optimizer({ComponentKind::optimizer, "plugged", "sgd from a plugin", sgd.params,
                              "plugin p 1.0 (/lib/p.so, fnv1a64 " + hash + ")"},
                             [&](const ParamSet& params) {
                               return builtin_registry().make_optimizer("sgd", params);
                             });
      return fingerprints_of(study(diabetes_directory("fp_plugin_data"), "", "plugged"), registry);
    };
    CHECK(with_plugin("00000000000000aa") != with_plugin("00000000000000bb"));
    CHECK(with_plugin("00000000000000aa") == with_plugin("00000000000000aa"));
    // The inputs' text names the versions that cannot be varied from a test.
    const Registry registry = builtin_registry();
    const PreparedExperiment prepared(registry, plan_experiment(registry, parse_ini(study(data), "s.ini"), {}), 1);
    const std::string inputs = run_fingerprint_inputs(prepared, 0);
    CHECK_THAT(inputs, Catch::Contains("stream_layout_version " + std::to_string(kStreamLayoutVersion)));
    CHECK_THAT(inputs, Catch::Contains("run_fingerprint_version 1"));
    CHECK_THAT(inputs, Catch::Contains("optimizer sgd (built-in)"));
    CHECK_THAT(inputs, Catch::Contains("data diabetes_target.csv fnv1a64 "));
  }

  SECTION("nothing else does") {
    const fs::path copy = diabetes_directory("fp_data_copy");  // same bytes, another directory
    const std::map<std::string, std::string> variants{
        {"name and description", replaced(study(data), "name = base", "name = other\ndescription = says more")},
        {"replicates", replaced(study(data), "replicates = 3", "replicates = 9")},
        {"data directory (same contents)", study(copy)},
        {"skip_invalid", study(data, "skip_invalid = true")},
        {"comments and blank lines", "# another comment\n\n" + study(data)},
    };
    for (const auto& [what, text] : variants) {
      INFO("changed: " << what << "\n" << text);
      CHECK(fingerprints_of(text) == base);
    }
    // Another configuration added, and the order of the grid: each configuration keeps its fingerprint.
    const auto grown = fingerprints_of(study(data, "", "sgd", "0.02, 0.005, 0.01"));
    REQUIRE(grown.size() == 3);
    CHECK(grown[0] == base[1]);
    CHECK(grown[2] == base[0]);
    CHECK(grown[1] != base[0]);
    CHECK(grown[1] != base[1]);
  }
}

TEST_CASE("trace files store each configuration's run fingerprint", "[reuse][fingerprint]") {
  const fs::path data = diabetes_directory("fp_file_data");
  const fs::path experiment = scratch("fp_file.ini"), out = scratch("fp_file.h5");
  write_text(experiment, study(data));
  const auto o = run_cli("run " + experiment.string() + " -o " + out.string() + " --threads 1 --quiet");
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const results::TraceData file = results::read_trace_outline(out.string());
  const auto expected = fingerprints_of(study(data));
  REQUIRE(file.layout.configurations.size() == 2);
  CHECK(file.layout.configurations[0].run_fingerprint == expected[0]);
  CHECK(file.layout.configurations[1].run_fingerprint == expected[1]);
}

// ---- run --reuse ------------------------------------------------------------------------------------

namespace {

// A small study: `replicates` seeds, a grid of step sizes, the optimizer sections given, `extra` lines in
// [experiment].
std::string growing(long replicates, const std::string& c_axis, const std::string& optimizers = "[optimizer]\nname = sgd\n",
                    const std::string& extra = "") {
  return "[experiment]\nname = growing\nsteps = 300\nreplicates = " + std::to_string(replicates) +
         "\ncheckpoints = 8\nviews = last, uniform\n" + extra +
         "\n[problem]\nname = quadratic\nd = 5\nmu = 0.2\nL = 1\nnoise_scale = 0.5\n\n" + optimizers +
         "\n[schedule]\nname = inv_sqrt\nc = " + c_axis + "\n";
}

fs::path experiment_file(const std::string& name, const std::string& text) {
  const fs::path path = scratch(name);
  write_text(path, text);
  return path;
}

ratelab_test::Outcome run_study(const fs::path& experiment, const fs::path& out, const std::string& more = "",
                                const std::string& env = "") {
  return run_cli("run " + experiment.string() + " -o " + out.string() + " --threads 2 --quiet " + more, env);
}

// Every variable of a trace file but the timings, byte for byte: what "the same trace data" means here.
std::map<std::string, std::vector<unsigned char>> trace_data(const fs::path& file) {
  std::map<std::string, std::vector<unsigned char>> out;
  for (const auto& [object, attributes] : results::attribute_inventory(file.string()))
    if (object != "/" && object != "wall_seconds" && object != "eval_seconds" && object != "elapsed_seconds")
      out[object] = results::read_dataset_bytes(file.string(), object);
  return out;
}

// Runs `grown` from scratch and with --reuse of a file of `old`; both must hold the same trace data, and
// the plan printed must count `reused` and `to_run` runs.
void check_reuse(const std::string& name, const std::string& old, const std::string& grown, long reused, long to_run) {
  const fs::path old_file = scratch(name + "_old.h5"), full = scratch(name + "_full.h5"), reuse = scratch(name + "_reuse.h5");
  REQUIRE(run_study(experiment_file(name + "_old.ini", old), old_file).exit_code == 0);
  const fs::path grown_ini = experiment_file(name + "_new.ini", grown);
  REQUIRE(run_study(grown_ini, full).exit_code == 0);
  const auto o = run_study(grown_ini, reuse, "--reuse " + old_file.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains(": " + std::to_string(reused) + " reused, " + std::to_string(to_run) + " to run"));
  CHECK_THAT(o.output, Catch::Contains("from " + old_file.string() + ": " + std::to_string(reused) + " runs"));
  const auto expected = trace_data(full), got = trace_data(reuse);
  CHECK(expected.size() == got.size());
  for (const auto& [variable, bytes] : expected) {
    INFO("variable " << variable);
    REQUIRE(got.count(variable));
    CHECK(got.at(variable) == bytes);
  }
}

}  // namespace

TEST_CASE("run --reuse: a grown study equals its from-scratch run, reusing exactly the matching runs",
          "[reuse][cli]") {
  const std::string old = growing(4, "0.5, 1");
  SECTION("more replicates") { check_reuse("replicates", old, growing(6, "0.5, 1"), 8, 4); }
  SECTION("an added grid value") { check_reuse("grid", old, growing(4, "0.5, 0.75, 1"), 8, 4); }
  SECTION("an added optimizer section") {
    check_reuse("optimizer", old,
                growing(4, "0.5, 1", "[optimizer:sgd]\nname = sgd\n\n[optimizer:hb]\nname = heavy_ball\nbeta = 0.5\n"), 8, 8);
  }
  SECTION("a removed configuration") { check_reuse("removed", old, growing(4, "1"), 4, 0); }
  SECTION("changed checkpoints: every run again (the rule: any change of the checkpoint steps recomputes)") {
    check_reuse("checkpoints", old, replaced(old, "checkpoints = 8", "checkpoints = 9"), 0, 8);
  }
  SECTION("fewer replicates in the new study, several reused files, the first that has a run gives it") {
    const fs::path a = scratch("multi_a.h5"), b = scratch("multi_b.h5"), full = scratch("multi_full.h5"),
                   out = scratch("multi_out.h5");
    REQUIRE(run_study(experiment_file("multi_a.ini", growing(2, "0.5")), a).exit_code == 0);
    REQUIRE(run_study(experiment_file("multi_b.ini", growing(3, "0.5, 1")), b).exit_code == 0);
    const fs::path grown = experiment_file("multi_new.ini", growing(3, "0.5, 1, 2"));
    REQUIRE(run_study(grown, full).exit_code == 0);
    const auto o = run_study(grown, out, "--reuse " + a.string() + " --reuse " + b.string());
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains(": 6 reused, 3 to run"));
    CHECK_THAT(o.output, Catch::Contains("from " + a.string() + ": 2 runs"));
    CHECK_THAT(o.output, Catch::Contains("from " + b.string() + ": 4 runs"));
    CHECK(trace_data(out) == trace_data(full));
  }
}

TEST_CASE("a reuse run reports the time the whole job took, copying included", "[reuse][cli]") {
  // 2,000 runs to copy and none to run: the sweep itself takes no time, the copy most of the process's.
  const fs::path old_file = scratch("time_old.h5"), out = scratch("time_out.h5");
  const fs::path experiment = experiment_file("time.ini", growing(1000, "0.5, 1"));
  REQUIRE(run_study(experiment, old_file).exit_code == 0);
  const auto before = std::chrono::steady_clock::now();
  const auto o = run_study(experiment, out, "--reuse " + old_file.string());
  const double process_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains(": 2000 reused, 0 to run"));
  std::smatch reported;
  REQUIRE(std::regex_search(o.output, reported, std::regex(R"(\) in ([0-9.]+) s)")));
  INFO("the process took " << process_seconds << " s");
  // Was the sweep's time alone (0.00 s here). What the process spends outside the job (start-up, reading
  // the experiment) is a small part of it.
  CHECK(std::stod(reported[1].str()) >= 0.5 * process_seconds);
  CHECK(std::stod(reported[1].str()) <= process_seconds);
}

TEST_CASE("run --dry-run prints the plan per configuration and writes nothing", "[reuse][cli]") {
  const fs::path old_file = scratch("dry_old.h5"), out = scratch("dry_out.h5");
  REQUIRE(run_study(experiment_file("dry_old.ini", growing(4, "0.5, 1")), old_file).exit_code == 0);
  const auto o = run_study(experiment_file("dry_new.ini", growing(6, "0.5, 0.75, 1")), out,
                           "--reuse " + old_file.string() + " --dry-run");
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.output, Catch::Contains("plan: 3 configurations x 6 replicates: 8 reused, 10 to run"));
  // One line per configuration: label, reused, to run.
  CHECK_THAT(o.output, Catch::Matches("(.|\n)*c=0.5 +4 +2\n(.|\n)*", Catch::CaseSensitive::Yes));
  CHECK_THAT(o.output, Catch::Matches("(.|\n)*c=0.75 +0 +6\n(.|\n)*", Catch::CaseSensitive::Yes));
  CHECK_THAT(o.output, Catch::Matches("(.|\n)*c=1 +4 +2\n(.|\n)*", Catch::CaseSensitive::Yes));
  CHECK_FALSE(o.output.find("wrote") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  CHECK_FALSE(fs::exists(out.string() + ".journal"));
  CHECK_FALSE(fs::exists(out.string() + ".lock"));
}

TEST_CASE("run --reuse refuses files it cannot match safely, before writing anything", "[reuse][cli]") {
  const fs::path experiment = experiment_file("refuse.ini", growing(4, "0.5"));
  const fs::path out = scratch("refuse_out.h5");
  SECTION("a file of another build: refused by default, accepted with --reuse-other-builds") {
    const fs::path old_file = scratch("refuse_old.h5"), other_build = scratch("refuse_other_build.h5");
    REQUIRE(run_study(experiment, old_file).exit_code == 0);
    // The same runs, as another build would have written them (only its git_commit attribute differs).
    const results::TraceData data = results::read_trace_file(old_file.string());
    results::TraceLayout layout = data.layout;
    for (auto& [key, value] : layout.root)
      if (key == "git_commit") value = std::string("0123456789abcdef0123456789abcdef01234567");
    {
      results::TraceWriter writer(other_build.string(), layout, results::WriteMode::create_new);
      const std::size_t V = layout.views.size(), K = layout.checkpoints.size();
      for (long r = 0; r < layout.replicates; ++r) {
        RunResult run;
        run.status = data.status[std::size_t(r)];
        run.stop_step = data.stop_step[std::size_t(r)];
        for (std::size_t m = 0; m < layout.metrics.size(); ++m)
          for (std::size_t v = 0; v < V; ++v)
            for (std::size_t k = 0; k < K; ++k) run.traces.push_back(data.trace(m, 0, v, std::size_t(r), k));
        for (const auto& [name, values] : data.run_stats) run.stats.emplace_back(name, values[std::size_t(r)]);
        writer.write_run(0, r, run);
      }
      writer.commit();
    }
    auto o = run_study(experiment, out, "--reuse " + other_build.string());
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("was written by another ratelab build (git_commit 0123456789abcdef"));
    CHECK_THAT(o.output, Catch::Contains("--reuse-other-builds"));
    CHECK_FALSE(fs::exists(out));
    o = run_study(experiment, out, "--reuse " + other_build.string() + " --reuse-other-builds");
    INFO(o.output);
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains("4 reused, 0 to run"));
    CHECK_THAT(o.output, Catch::Contains("comes from another build"));
    CHECK(trace_data(out).at("subopt") == trace_data(old_file).at("subopt"));
  }
  SECTION("a file drawn under another random-stream layout: refused for --reuse and --resume, naming both") {
    // Every file written before stream layout 2 lacks the attribute (layout 1): its noisy runs drew other
    // normals, so no run of it can be copied, and a resume would mix two layouts in one file.
    const fs::path old_file = scratch("refuse_layout_new.h5"), layout1 = scratch("refuse_layout1.h5");
    REQUIRE(run_study(experiment, old_file).exit_code == 0);
    const results::TraceData data = results::read_trace_file(old_file.string());
    results::TraceLayout layout = data.layout;
    std::erase_if(layout.root, [](const auto& entry) { return entry.first == "stream_layout_version"; });
    REQUIRE(layout.root.size() + 1 == data.layout.root.size());
    {
      results::TraceWriter writer(layout1.string(), layout, results::WriteMode::create_new);
      for (long r = 0; r < layout.replicates; ++r) {
        RunResult run;
        run.status = data.status[std::size_t(r)];
        run.stop_step = data.stop_step[std::size_t(r)];
        for (std::size_t m = 0; m < layout.metrics.size(); ++m)
          for (std::size_t v = 0; v < layout.views.size(); ++v)
            for (std::size_t k = 0; k < layout.checkpoints.size(); ++k)
              run.traces.push_back(data.trace(m, 0, v, std::size_t(r), k));
        writer.write_run(0, r, run);
      }
      writer.commit();
    }
    auto o = run_study(experiment, out, "--reuse " + layout1.string() + " --reuse-other-builds");
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("drawn with random-stream layout 1, this ratelab draws layout 2"));
    CHECK_FALSE(fs::exists(out));
    o = run_study(experiment, layout1, "--resume");
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("random-stream layout 1") && Catch::Contains("never mixes"));
  }
  SECTION("a file that is not a trace file") {
    const fs::path junk = experiment_file("refuse_junk.h5", "not hdf5");
    const auto o = run_study(experiment, out, "--reuse " + junk.string());
    CHECK(o.exit_code == 2);
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("a file written before run fingerprints") {
    const fs::path schema1 = fs::path(RATELAB_SOURCE_DIR) / "tests/fixtures/schema1_sweep.h5";
    const auto o = run_study(experiment, out, "--reuse " + schema1.string());
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("has no run fingerprints"));
    CHECK_FALSE(fs::exists(out));
  }
}

TEST_CASE("an interrupted reuse run resumes, and reuse works per shard", "[reuse][cli]") {
  const fs::path old_file = scratch("resume_old.h5"), full = scratch("resume_full.h5");
  REQUIRE(run_study(experiment_file("resume_old.ini", growing(4, "0.5, 1")), old_file).exit_code == 0);
  const fs::path grown = experiment_file("resume_new.ini", growing(8, "0.5, 0.75, 1"));
  REQUIRE(run_study(grown, full).exit_code == 0);
  const std::string reuse = "--reuse " + old_file.string();
  SECTION("SIGINT: the committed file keeps the reused and finished runs; --resume --reuse completes it") {
    const fs::path out = scratch("resume_sigint.h5");
    auto o = run_study(grown, out, reuse, "RATELAB_FAULT_SIGNAL_AFTER_RUNS=3");
    INFO(o.output);
    REQUIRE(o.exit_code == 4);
    CHECK_THAT(o.output, Catch::Contains("--resume"));
    CHECK_THAT(o.output, Catch::Contains("--reuse " + old_file.string()));
    o = run_study(grown, out, reuse + " --resume");
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains(": 0 reused, "));  // every reused run is in the committed file now
    CHECK(trace_data(out) == trace_data(full));
  }
  SECTION("SIGKILL: the journal keeps the computed runs, --reuse copies the rest again") {
    const fs::path out = scratch("resume_sigkill.h5");
    auto o = run_study(grown, out, reuse, "RATELAB_FAULT_KILL_AFTER_RUNS=3");
    REQUIRE(o.exit_code == 128 + 9);
    o = run_study(grown, out, reuse + " --resume");
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    CHECK_THAT(o.output, Catch::Contains(": 8 reused, 3 kept by --resume, 13 to run"));
    CHECK(trace_data(out) == trace_data(full));
  }
  SECTION("shards: each share reuses its own runs; the merged shares equal the full run") {
    std::vector<std::string> parts;
    for (int i = 0; i < 3; ++i) {
      const fs::path part = scratch("resume_shard" + std::to_string(i) + ".h5");
      const auto o = run_study(grown, part, reuse + " --shard " + std::to_string(i) + "/3");
      INFO(o.output);
      REQUIRE(o.exit_code == 0);
      parts.push_back(part.string());
    }
    const fs::path merged = scratch("resume_merged.h5");
    const auto o = run_cli("merge " + parts[0] + " " + parts[1] + " " + parts[2] + " -o " + merged.string());
    INFO(o.output);
    REQUIRE(o.exit_code == 0);
    auto expected = trace_data(full), got = trace_data(merged);
    CHECK(got == expected);
  }
}

// ---- merge of different experiments ---------------------------------------------------------------

TEST_CASE("merge: files of different experiments with one layout give the union of their configurations",
          "[reuse][merge]") {
  const fs::path sgd = scratch("union_sgd.h5"), hb = scratch("union_hb.h5"), both = scratch("union_both.h5"),
                 merged = scratch("union_merged.h5");
  const std::string hb_section = "[optimizer]\nname = heavy_ball\nbeta = 0.5\n";
  REQUIRE(run_study(experiment_file("union_sgd.ini", growing(4, "0.5, 1")), sgd).exit_code == 0);
  REQUIRE(run_study(experiment_file("union_hb.ini", growing(4, "0.5, 1", hb_section)), hb).exit_code == 0);
  REQUIRE(run_study(experiment_file("union_both.ini",
                                    growing(4, "0.5, 1", "[optimizer:sgd]\nname = sgd\n\n[optimizer:hb]\nname = heavy_ball\nbeta = 0.5\n")),
                    both).exit_code == 0);
  auto o = run_cli("merge " + sgd.string() + " " + hb.string() + " -o " + merged.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const auto expected = trace_data(both), got = trace_data(merged);
  for (const char* variable : {"configuration", "run_fingerprint", "subopt", "dist2", "status", "stop_step", "optimizer"}) {
    INFO("variable " << variable);
    CHECK(got.at(variable) == expected.at(variable));
  }
  const results::TraceData data = results::read_trace_outline(merged.string());
  CHECK(data.layout.configurations.size() == 4);
  CHECK_THAT(data.layout.experiment_text, Catch::StartsWith("# the union of experiments growing"));

  SECTION("the same duplicate refusal: a run finished in two files") {
    o = run_cli("merge " + both.string() + " " + hb.string() + " -o " + scratch("union_overlap.h5").string());
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("the parts overlap"));
  }
  SECTION("the same parameters under another seed cannot share a configuration id") {
    const fs::path seed2 = scratch("union_seed2.h5");
    REQUIRE(run_study(experiment_file("union_seed2.ini", growing(4, "0.5, 1", "[optimizer]\nname = sgd\n", "seed = 2\n")),
                      seed2).exit_code == 0);
    o = run_cli("merge " + sgd.string() + " " + seed2.string() + " -o " + scratch("union_seed.h5").string());
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("other run fingerprints"));
  }
  SECTION("layouts that differ are refused, naming the difference") {
    const fs::path other = scratch("union_reps.h5");
    REQUIRE(run_study(experiment_file("union_reps.ini", growing(3, "0.5, 1", hb_section)), other).exit_code == 0);
    o = run_cli("merge " + sgd.string() + " " + other.string() + " -o " + scratch("union_bad.h5").string());
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("4 replicates against 3"));
  }
}
