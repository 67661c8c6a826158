// Nothing lost, nothing overwritten: a full disk, two writers on one path, outputs that are not regular
// files, resume from the journal alone, the exit code of a resumed sweep. Tag [faults]; the sanitizer job
// of .ci/run runs these too.
//
// The disk-full tests mount a small tmpfs (root, as in CI); where the machine forbids mounting they say so
// and return without checking anything.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "experiments/run_to_file.hpp"
#include "results/journal.hpp"
#include "results/trace_file.hpp"

#include "cli_support.hpp"

namespace fs = std::filesystem;
using ratelab_test::Outcome;
using ratelab_test::run_binary;
using ratelab_test::run_cli;
using ratelab_test::scratch;
using ratelab_test::trace_bytes;

namespace {

// A tmpfs of `size` mounted at a fresh directory for the life of the object; mounted() is false (with the
// reason) where the machine does not allow it.
class SmallFilesystem {
 public:
  explicit SmallFilesystem(const std::string& name, const std::string& size) : dir_(scratch(name)) {
    fs::create_directories(dir_);
    const std::string options = "size=" + size;
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, options.c_str()) == 0) {
      mounted_ = true;
    } else {
      reason_ = std::string("cannot mount a tmpfs at ") + dir_.string() + ": " + std::strerror(errno) +
                " (the disk-full tests need root, as in CI)";
    }
  }
  ~SmallFilesystem() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& reason() const { return reason_; }
  const fs::path& dir() const { return dir_; }
  // Grows the filesystem in place: its files stay (the "free space" of the resume hint).
  bool resize(const std::string& size) {
    const std::string options = "size=" + size;
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, options.c_str()) == 0;
  }

 private:
  fs::path dir_;
  bool mounted_ = false;
  std::string reason_;
};

// About 9.8 kB of trace data per run (4 metrics x 3 views x 101 checkpoints), in the journal and again in
// the HDF5 file.
std::string disk_job(int replicates) {
  return "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.checkpoints=100 "
         "--set experiment.replicates=" +
         std::to_string(replicates);
}

}  // namespace

TEST_CASE("disk full: a clear message, the finished runs in the journal, a resume hint, no crash", "[faults][diskfull]") {
  // 400 runs (about 4 MB of journal) fill 2 MB in the journal; 150 runs (1.5 MB) fit in the journal but not
  // in the journal and the HDF5 file together, so HDF5's write or flush is the one that fails.
  for (int replicates : {400, 150}) {
    INFO("replicates " << replicates);
    SmallFilesystem small("small_" + std::to_string(replicates), "2m");
    if (!small.mounted()) {
      WARN("skipped: " << small.reason());
      return;
    }
    const fs::path out = small.dir() / "a.h5";
    Outcome o = run_cli(disk_job(replicates) + " -o " + out.string());
    INFO(o.output);
    CHECK(o.exit_code == 6);  // not 139 (HDF5's exit handler crashed on the file whose flush failed)
    CHECK_THAT(o.output, Catch::Contains("disk full while writing " + out.string()));
    CHECK_THAT(o.output, Catch::Contains("finished runs are in " + out.string() + ".journal"));
    CHECK_THAT(o.output, Catch::Contains("free space, then continue with:") && Catch::Contains("--resume"));
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(out.string() + ".partial"));
    CHECK(!fs::exists(out.string() + ".lock"));
    REQUIRE(fs::exists(out.string() + ".journal"));
    const long journaled = long(ratelab::results::read_journal(out.string() + ".journal").records.size());
    CHECK(journaled > 0);
    CHECK_THAT(o.output, Catch::Contains(std::to_string(journaled) + " finished runs are in"));

    // Free space, resume: the result equals a run that never saw a full disk.
    REQUIRE(small.resize("64m"));
    Outcome resumed = run_cli(disk_job(replicates) + " --resume -o " + out.string());
    INFO(resumed.output);
    CHECK(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, Catch::Contains("recovered " + std::to_string(journaled) + " finished runs"));
    const fs::path reference = scratch("disk_reference.h5");
    REQUIRE(run_cli(disk_job(replicates) + " -o " + reference.string()).exit_code == 0);
    CHECK(trace_bytes(out) == trace_bytes(reference));
  }
}

TEST_CASE("two writers on one path: the second stops before touching anything and names the first",
          "[faults][lock]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=3000 --set experiment.replicates=4";
  const fs::path reference = scratch("lock_reference.h5");
  REQUIRE(run_cli(job + " -o " + reference.string()).exit_code == 0);
  for (const std::string locking : {"TRUE", "FALSE"}) {
    INFO("HDF5_USE_FILE_LOCKING=" << locking);
    const std::string env = "HDF5_USE_FILE_LOCKING=" + locking;
    const fs::path out = scratch("locked.h5");
    fs::remove(out.string() + ".journal");
    // The first writer, stopped (SIGSTOP) once it holds the lock, so the second certainly comes while the
    // first is writing.
    const std::string first_cmd = env + " " + RATELAB_BINARY_DIR + "/tools/ratelab " + job + " -o " + out.string() + " 2>&1";
    FILE* first = popen(first_cmd.c_str(), "r");
    REQUIRE(first);
    const std::string lock = out.string() + ".lock";
    std::string holder;
    for (int i = 0; i < 3000 && holder.find('\n') == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::ifstream in(lock);
      holder.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    REQUIRE(holder.rfind("pid ", 0) == 0);
    const pid_t first_pid = pid_t(std::stol(holder.substr(4)));
    REQUIRE(::kill(first_pid, SIGSTOP) == 0);
    const bool first_partial = fs::exists(out.string() + ".partial"), first_journal = fs::exists(out.string() + ".journal");

    Outcome second = run_cli(job + " -o " + out.string(), env);
    Outcome second_overwrite = run_cli(job + " --overwrite -o " + out.string(), env);
    Outcome second_resume = run_cli(job + " --resume -o " + out.string(), env);
    Outcome merge = run_cli("merge " + reference.string() + " -o " + out.string() + " --overwrite", env);
    // The first writer's files are as it left them.
    CHECK(fs::exists(out.string() + ".partial") == first_partial);
    CHECK(fs::exists(out.string() + ".journal") == first_journal);
    ::kill(first_pid, SIGCONT);
    std::string first_output;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, first)) first_output.append(buf, n);
    const int first_status = pclose(first);

    holder.pop_back();  // the newline
    for (const Outcome* o : {&second, &second_overwrite, &second_resume, &merge}) {
      INFO(o->output);
      CHECK(o->exit_code == 2);
      CHECK_THAT(o->output, Catch::Contains("another ratelab process is writing " + out.string()));
      CHECK_THAT(o->output, Catch::Contains(holder) && Catch::Contains("holds " + lock));
    }
    INFO(first_output);
    CHECK(WIFEXITED(first_status));
    CHECK(WEXITSTATUS(first_status) == 0);
    CHECK(trace_bytes(out) == trace_bytes(reference));
    CHECK(!fs::exists(out.string() + ".journal"));
    CHECK(!fs::exists(lock));
  }
}

TEST_CASE("a stale lock file of a killed writer does not block the next one", "[faults][lock]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.replicates=4";
  const fs::path out = scratch("stale_lock.h5");
  fs::remove(out.string() + ".journal");
  Outcome killed = run_cli(job + " -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=2");
  CHECK(killed.exit_code == 128 + 9);
  CHECK(fs::exists(out.string() + ".lock"));  // left by SIGKILL; its flock() went with the process
  Outcome resumed = run_cli(job + " --resume -o " + out.string());
  INFO(resumed.output);
  CHECK(resumed.exit_code == 0);
  CHECK(!fs::exists(out.string() + ".lock"));
}

TEST_CASE("the production ratelab has no fault points: RATELAB_FAULT_* variables change nothing", "[faults]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=200 --set experiment.replicates=2";
  const fs::path out = scratch("no_fault_points.h5");
  const std::string faults = "RATELAB_FAULT_KILL_AFTER_RUNS=1 RATELAB_FAULT_KILL_IN_WRITE=1 RATELAB_FAULT_SIGNAL_AFTER_RUNS=1";
  Outcome o = run_binary("tools/ratelab", job + " -o " + out.string(), faults);
  INFO(o.output);
  CHECK(o.exit_code == 0);
  CHECK(!fs::exists(out.string() + ".journal"));
  // The test executable with the fault points stops at the first one.
  CHECK(run_cli(job + " --overwrite -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=1").exit_code == 128 + 9);
}

TEST_CASE("output paths that are not regular files are refused, replacing or not: device, FIFO, symlink", "[faults]") {
  const std::string job = "run quickstart --quiet --set experiment.steps=200 --set experiment.replicates=2";
  Outcome null = run_cli(job + " -o /dev/null");
  INFO(null.output);
  CHECK(null.exit_code == 2);
  CHECK_THAT(null.output, Catch::Contains("'/dev/null' is not a regular file (it is a character device)"));
  // --overwrite on a device node of our own (a copy of /dev/null's): a build without the check replaces it,
  // and must not do so to the machine's /dev/null.
  const fs::path device = scratch("device.h5");
  if (::mknod(device.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
    Outcome o = run_cli(job + " --overwrite -o " + device.string());
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("is not a regular file (it is a character device)"));
    CHECK(fs::is_character_file(fs::symlink_status(device)));
  } else {
    WARN("device node part skipped: cannot create one (" << std::strerror(errno) << "; needs root, as in CI)");
  }

  const fs::path fifo = scratch("fifo.h5");
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  Outcome o = run_cli(job + " --overwrite -o " + fifo.string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains("is not a regular file (it is a FIFO)"));
  CHECK(fs::is_fifo(fs::symlink_status(fifo)));

  const fs::path target = scratch("target.h5"), link = scratch("link.h5");
  REQUIRE(run_cli(job + " -o " + target.string()).exit_code == 0);
  const auto before = trace_bytes(target);
  fs::create_symlink(target, link);
  Outcome via_link = run_cli(job + " --set experiment.seed=2 --overwrite -o " + link.string());
  INFO(via_link.output);
  CHECK(via_link.exit_code == 2);
  CHECK_THAT(via_link.output, Catch::Contains("is not a regular file (it is a symbolic link)"));
  CHECK(fs::is_symlink(fs::symlink_status(link)));
  CHECK(trace_bytes(target) == before);
  // merge writes through the same writer.
  Outcome merge = run_cli("merge " + target.string() + " -o " + fifo.string() + " --overwrite");
  CHECK(merge.exit_code == 2);
  CHECK_THAT(merge.output, Catch::Contains("not a regular file"));
}

TEST_CASE("an --overwrite stopped over another experiment's file is recovered from its journal alone",
          "[faults][resume]") {
  const std::string other = "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.replicates=3";
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=2500 --set experiment.replicates=5";
  const fs::path out = scratch("dead_end.h5"), reference = scratch("dead_end_reference.h5");
  fs::remove(out.string() + ".journal");
  REQUIRE(run_cli(job + " -o " + reference.string()).exit_code == 0);
  REQUIRE(run_cli(other + " -o " + out.string()).exit_code == 0);
  const auto other_bytes = trace_bytes(out);
  Outcome killed = run_cli(job + " --overwrite -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=3");
  CHECK(killed.exit_code == 128 + 9);

  Outcome refused = run_cli(job + " --resume -o " + out.string());
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK_THAT(refused.output, Catch::Contains("belongs to a different experiment, but " + out.string() +
                                             ".journal holds 3 finished runs of this one"));
  CHECK_THAT(refused.output, Catch::Contains("run with --resume --overwrite"));
  CHECK(trace_bytes(out) == other_bytes);  // the refusal changed nothing

  Outcome recovered = run_cli(job + " --resume --overwrite -o " + out.string());
  INFO(recovered.output);
  CHECK(recovered.exit_code == 0);
  CHECK_THAT(recovered.output, Catch::Contains("recovered 3 finished runs (3 from its journal)"));
  CHECK(trace_bytes(out) == trace_bytes(reference));
  CHECK(!fs::exists(out.string() + ".journal"));

  Outcome nothing = run_cli(job + " --resume --overwrite -o " + out.string());
  CHECK(nothing.exit_code == 2);
  CHECK_THAT(nothing.output, Catch::Contains("continues from " + out.string() + ".journal alone, and there is no such file"));
}

TEST_CASE("a journal record with a valid checksum naming a run outside the experiment: the journal is inconsistent",
          "[faults][resume]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.replicates=4";
  const fs::path out = scratch("inconsistent.h5");
  fs::remove(out.string() + ".journal");
  REQUIRE(run_cli(job + " -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=2").exit_code == 128 + 9);
  const auto journal = ratelab::results::read_journal(out.string() + ".journal");
  REQUIRE(journal.records.size() == 2);
  std::vector<unsigned char> record;
  ratelab::results::encode_record(record, 999, 0, journal.records[0].result);
  std::ofstream(out.string() + ".journal", std::ios::binary | std::ios::app)
      .write(reinterpret_cast<const char*>(record.data()), std::streamsize(record.size()));
  Outcome o = run_cli(job + " --resume -o " + out.string());
  INFO(o.output);
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.output, Catch::Contains(".journal is inconsistent") && Catch::Contains("configuration 999"));
  CHECK_THAT(o.output, !Catch::Contains("belongs to a different experiment"));
}

TEST_CASE("a resumed sweep's outcome counts the errored runs it kept from before", "[faults][resume]") {
  using namespace ratelab;
  struct Exploding final : Optimizer {
    Vec x;
    void prepare(const Problem& p) override { x.resize(p.dim()); }
    void start(ConstVecRef x0, RunStreams&) override { x = x0; }
    void step(long t, double, Oracle&) override {
      if (t == 3) throw std::runtime_error("boom at step 3");
    }
    ConstVecRef iterate() const override { return x; }
  };
  Registry registry = builtin_registry();
  registry.add_optimizer({ComponentKind::optimizer, "exploding", "throws at step 3", {}, "test"},
                         [](const ParamSet&) { return std::make_unique<Exploding>(); });
  const char* text = "[experiment]\nsteps = 100\nreplicates = 3\n[problem]\nname = quadratic\n"
                     "[optimizer:a]\nname = exploding\n[optimizer:b]\nname = sgd\n[schedule]\nname = constant\neta = 0.1\n";
  const fs::path out = scratch("errors_resumed.h5");
  RunToFileOptions options;
  options.output_path = out.string();
  options.sweep.threads = 1;
  options.sweep.progress = SweepOptions::Progress::quiet;
  ExperimentPlan plan = plan_experiment(registry, parse_ini(text, "e.ini"), {});
  SweepSummary first = run_experiment_to_file(registry, plan, options);
  CHECK(first.error == 3);
  CHECK(first.ok == 3);
  // Resumed with every run already finished: nothing runs, and the errors are still the file's.
  options.resume = true;
  ExperimentPlan again = plan_experiment(registry, parse_ini(text, "e.ini"), {});
  SweepSummary resumed = run_experiment_to_file(registry, again, options);
  CHECK(resumed.error == 3);
  CHECK(resumed.ok == 3);
}
