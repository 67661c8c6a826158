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

TEST_CASE("resume streams the committed file and the journal a configuration at a time, to the uninterrupted result",
          "[faults][resume]") {
  using namespace ratelab;
  // quickstart's problem, small: 4 configurations x 6 replicates.
  const fs::path ini = scratch("stream_resume.ini");
  std::ofstream(ini) << "[experiment]\nname = stream_resume\nsteps = 300\nreplicates = 6\ncheckpoints = 12\n"
                        "views = last, uniform, suffix\n[problem]\nname = quadratic\nd = 10\nmu = 0.1\nL = 1\n"
                        "noise = gaussian\nnoise_scale = 0.5\n[optimizer]\nname = sgd\n[schedule]\nname = inv_mu_t\n"
                        "c = 0.5, 1, 2, 4\nt0 = 10\n";
  const std::string job = "run " + ini.string() + " --quiet --threads 1";
  const fs::path reference = scratch("stream_resume_reference.h5"), out = scratch("stream_resume.h5"),
                 killed = scratch("stream_resume_killed.h5");
  for (const auto& path : {out, killed}) fs::remove(path.string() + ".journal");
  REQUIRE(run_cli(job + " -o " + reference.string()).exit_code == 0);
  // The committed file holds share 0 of 2 (replicates 0, 2, 4 of each configuration); beside it, the journal
  // of a sweep of the same experiment killed after 5 runs (configuration 0, replicates 0 to 4: 0, 2 and 4 are
  // in the file too, and the journal's copy is the one kept).
  REQUIRE(run_cli(job + " --shard 0/2 -o " + out.string()).exit_code == 0);
  REQUIRE(run_cli(job + " -o " + killed.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=5").exit_code == 128 + 9);
  fs::rename(killed.string() + ".journal", out.string() + ".journal");
  REQUIRE(results::read_journal(out.string() + ".journal").records.size() == 5);
  // Resumed with windows of one configuration: at most one configuration's runs are read at once (the whole
  // file, as resume read it before, is 24), and the result is the uninterrupted run's.
  Registry registry = builtin_registry();
  RunToFileOptions options;
  options.output_path = out.string();
  options.resume = true;
  options.window_bytes = 1;
  options.sweep.threads = 1;
  options.sweep.progress = SweepOptions::Progress::quiet;
  results::reset_largest_run_read();
  const SweepSummary resumed =
      run_experiment_to_file(registry, plan_experiment(registry, read_ini_file(ini.string()), {}), options);
  CHECK(results::largest_run_read() == 6);
  CHECK(resumed.ok == 24);
  CHECK(trace_bytes(out) == trace_bytes(reference));
  CHECK(!fs::exists(out.string() + ".journal"));
}

// ---- issue 21 item 9 and the journal half of item 7 ------------------------------------------------------

namespace {
std::int64_t root_int(const fs::path& file, const std::string& key) {
  for (const auto& [k, v] : ratelab::results::read_trace_outline(file.string()).layout.root)
    if (k == key) return std::get<std::int64_t>(v);
  FAIL("no root attribute " << key);
  return -1;
}
bool no_hdf5_noise(const std::string& output) {
  return output.find("HDF5-DIAG") == std::string::npos && output.find("infinite loop") == std::string::npos;
}
}  // namespace

TEST_CASE("merge stopped by SIGINT removes its partial output and the partial one killed leaves is removed by the next merge",
          "[faults][merge]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.replicates=8";
  const fs::path a = scratch("merge_sig_a.h5"), b = scratch("merge_sig_b.h5"), whole = scratch("merge_sig_whole.h5");
  const fs::path out = scratch("merge_sig_out.h5");
  REQUIRE(run_cli(job + " --shard 0/2 -o " + a.string()).exit_code == 0);
  REQUIRE(run_cli(job + " --shard 1/2 -o " + b.string()).exit_code == 0);
  REQUIRE(run_cli(job + " -o " + whole.string()).exit_code == 0);
  const std::string merge = "merge " + a.string() + " " + b.string() + " -o " + out.string();

  // Before: SIGINT's default action ended the process (exit 130) with out.partial left behind.
  Outcome interrupted = run_cli(merge, "RATELAB_FAULT_SIGNAL_AFTER_RUNS=3");
  INFO(interrupted.output);
  CHECK(interrupted.exit_code == 4);
  CHECK_THAT(interrupted.output, Catch::Contains("interrupted after 3 of 8 runs: nothing was written") &&
                                     Catch::Contains("run the same merge again"));
  CHECK(!fs::exists(out));
  CHECK(!fs::exists(out.string() + ".partial"));
  CHECK(!fs::exists(out.string() + ".lock"));

  // SIGKILL (or a second signal) cannot be handled: the partial stays, and the next merge removes it.
  Outcome killed = run_cli(merge, "RATELAB_FAULT_KILL_AFTER_RUNS=3");
  CHECK(killed.exit_code == 128 + 9);
  REQUIRE(fs::exists(out.string() + ".partial"));
  Outcome again = run_cli(merge);
  INFO(again.output);
  CHECK(again.exit_code == 0);
  CHECK_THAT(again.output, Catch::Contains("removed " + out.string() + ".partial, left by a merge into " + out.string() +
                                           " that was killed"));
  CHECK(!fs::exists(out.string() + ".partial"));
  CHECK(trace_bytes(out) == trace_bytes(whole));

  // A run's partial (it comes with its journal) is not the merge's to remove.
  const fs::path run_out = scratch("merge_sig_run.h5");
  fs::remove(run_out.string() + ".journal");
  REQUIRE(run_cli(job + " -o " + run_out.string(), "RATELAB_FAULT_KILL_IN_WRITE=2").exit_code == 128 + 9);
  REQUIRE(fs::exists(run_out.string() + ".partial"));
  Outcome beside_run = run_cli("merge " + a.string() + " " + b.string() + " --overwrite -o " + run_out.string());
  CHECK_THAT(beside_run.output, !Catch::Contains("removed"));
}

TEST_CASE("a trace file with a damaged HDF5 header is called damaged with no HDF5 noise", "[faults][damaged]") {
  const fs::path good = scratch("header_good.h5");
  REQUIRE(run_cli("run quickstart --quiet --threads 1 --set experiment.steps=1000 --set experiment.replicates=2 -o " +
                  good.string()).exit_code == 0);
  const auto size = fs::file_size(good);
  // 64 bytes of 0xFF at offsets from the superblock (byte 8, after the signature) into the root group's
  // header and the attributes' global heap. Before: "not a ratelab trace file: its root has no 'format'
  // attribute" (offsets 96-800) and "internal error: read strings: bad global heap collection signature",
  // exit 1 (offset 2000).
  for (const std::uintmax_t offset : {8, 48, 96, 200, 400, 800, 2000}) {
    INFO("0xFF x 64 at byte " << offset);
    REQUIRE(offset + 64 < size);
    const fs::path bad = scratch("header_bad.h5");
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    {
      std::fstream f(bad, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(offset));
      const std::string ff(64, '\xff');
      f.write(ff.data(), std::streamsize(ff.size()));
    }
    for (const char* command : {"summary", "inspect"}) {
      Outcome o = run_cli(std::string(command) + " " + bad.string());
      INFO(command << ": " << o.output);
      CHECK(o.exit_code == 2);
      CHECK_THAT(o.output, Catch::Contains("'" + bad.string() + "' is damaged"));
      CHECK_THAT(o.output, !Catch::Contains("not a ratelab trace file") && !Catch::Contains("internal error"));
      CHECK(no_hdf5_noise(o.output));
    }
  }
}

TEST_CASE("64 bytes of 0xFF in a trace chunk: every command that reads traces says which run is damaged, merge copies nothing",
          "[faults][damaged][checksum]") {
  // Before: every command read the damaged values as data and exited 0, and merge copied them.
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=1000 --set experiment.replicates=3 "
                          "--set experiment.metrics=subopt,dist2 --sweep 'schedule.c=0.5,1'";  // not value: it equals subopt here (F* = 0)
  const fs::path good = scratch("chunk_good.h5"), bad = scratch("chunk_bad.h5");
  REQUIRE(run_cli(job + " -o " + good.string()).exit_code == 0);
  // The chunk of run (configuration 1, replicate 2) of subopt: its V x K values as stored (little-endian
  // doubles, view-major), found by searching the file's bytes for them.
  const ratelab::results::TraceData data = ratelab::results::read_trace_file(good.string());
  const std::size_t m = *data.metric_index("subopt"), V = data.layout.views.size(), K = data.layout.checkpoints.size();
  std::string chunk;
  for (std::size_t v = 0; v < V; ++v)
    for (std::size_t k = 0; k < K; ++k) {
      const double value = data.trace(m, 1, v, 2, k);
      chunk.append(reinterpret_cast<const char*>(&value), sizeof value);
    }
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const std::size_t offset = bytes.find(chunk);
  REQUIRE(offset != std::string::npos);
  REQUIRE(bytes.find(chunk, offset + 1) == std::string::npos);
  bytes.replace(offset + 40, 64, std::string(64, '\xff'));
  std::ofstream(bad, std::ios::binary) << bytes;

  const std::string expected = "'" + bad.string() + "' is damaged: checksum mismatch in dataset 'subopt' (the run of configuration 1 '" +
                               data.layout.configurations[1].label + "', replicate 2";
  const fs::path out = scratch("chunk_out");
  fs::create_directories(out);
  const std::string b = bad.string(), o = out.string();
  for (const std::string& command :
       {"inspect " + b, "summary " + b, "compare " + b + " --a 0 --b 1", "plot " + b + " -o " + o + "/c.png",
        "export " + b + " -o " + o + "/c.csv", "report " + b + " -o " + o + "/c.html", "verify " + b,
        "ert " + b + " --targets 1e-2", "ecdf " + b, "profile " + b, "merge " + b + " -o " + o + "/merged.h5",
        job + " -o " + b + " --resume", job + " -o " + o + "/reused.h5 --reuse " + b}) {
    Outcome outcome = run_cli(command);
    INFO(command << ": " << outcome.output);
    CHECK(outcome.exit_code == 2);
    CHECK_THAT(outcome.output, Catch::Contains(expected));
    CHECK(no_hdf5_noise(outcome.output));
  }
  // Nothing was written from the damaged data: no merged file, no figure, no table, no page.
  CHECK(fs::is_empty(out));
  // The same commands on the intact file succeed, so what failed above is the damage.
  CHECK(run_cli("summary " + good.string()).exit_code == 0);
  CHECK(run_cli("merge " + good.string() + " -o " + o + "/merged.h5").exit_code == 0);
  for (const char* dataset : {"subopt", "dist2", "status"})
    CHECK(ratelab::results::read_dataset_bytes((out / "merged.h5").string(), dataset) ==
          ratelab::results::read_dataset_bytes(good.string(), dataset));
}

TEST_CASE("non-finite values are refused for every real parameter and --time-limit", "[faults][params]") {
  // Before: noise_scale = inf and init_scale = inf ran (every run diverged) and exited 0.
  for (const std::string& set : {"problem.noise_scale=inf", "problem.init_scale=inf", "problem.init_scale=-inf",
                                 "schedule.c=inf"}) {
    Outcome o = run_cli("run quickstart --dry-run --set " + set);
    INFO(set << ": " << o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains(set.substr(0, set.find('=')) + " = ") && Catch::Contains("is not a finite number"));
  }
  for (const char* limit : {"nan", "inf"}) {
    Outcome o = run_cli(std::string("run quickstart --dry-run --time-limit ") + limit);
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("time_limit"));
  }
}

TEST_CASE("the experiment name must be one plain file name: ../escape and an empty name are refused",
          "[faults][name]") {
  const fs::path dir = scratch("name_cwd");
  fs::create_directories(dir);
  for (const std::string& name : {std::string("../escape"), std::string(""), std::string(".hidden"), std::string("a/b")}) {
    INFO("experiment.name = '" << name << "'");
    // Before: ../escape wrote name_cwd/out/../escape.h5, outside out/; an empty name wrote out/.h5.
    Outcome o = run_cli("run quickstart --quiet --set experiment.replicates=2 --set 'experiment.name=" + name + "'",
                        "cd " + dir.string() + " &&");
    INFO(o.output);
    CHECK(o.exit_code == 2);
    CHECK_THAT(o.output, Catch::Contains("experiment.name") && Catch::Contains("out/NAME.h5"));
    CHECK(!fs::exists(dir / "escape.h5"));
    CHECK(!fs::exists(dir / "out" / ".h5"));
  }
  Outcome fine = run_cli("run quickstart --quiet --set experiment.replicates=2 --set experiment.name=my-study.v2",
                         "cd " + dir.string() + " &&");
  CHECK(fine.exit_code == 0);
  CHECK(fs::exists(dir / "out" / "my-study.v2.h5"));
}

TEST_CASE("the threads attribute records the threads that ran and not the request", "[faults][threads]") {
  const fs::path out = scratch("threads.h5");
  Outcome o = run_cli("run quickstart --quiet --threads 100000 --set experiment.replicates=2 -o " + out.string());
  INFO(o.output);
  REQUIRE(o.exit_code == 0);
  const std::int64_t ran = root_int(out, "threads");
  // Before: 100000.
  CHECK(ran >= 1);
  CHECK(ran <= std::int64_t(std::max(1u, std::thread::hardware_concurrency())));
  CHECK_THAT(o.output, Catch::Contains("--threads 100000 is more than this machine runs at once; running " +
                                       std::to_string(ran) + " threads"));
  CHECK_THAT(o.output, !Catch::Contains("TBB Warning"));
  REQUIRE(run_cli("run quickstart --quiet --threads 1 --set experiment.replicates=2 --overwrite -o " + out.string()).exit_code == 0);
  CHECK(root_int(out, "threads") == 1);
}

TEST_CASE("running out of memory says what ran out", "[faults][memory]") {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer maps terabytes of address space for its shadow memory when a process starts, so under
  // `ulimit -v` the binary cannot start at all: the limit this test relies on does not exist here.
  WARN("skipped under AddressSanitizer: its shadow memory needs more address space than ulimit -v leaves");
  return;
#endif
  // 1 GB of address space: the binary starts, and neither a billion sweep values nor a 1e8-configuration
  // grid fits. Before: "internal error: std::bad_alloc", with nothing saying why.
  const std::string limit = "ulimit -v 1000000 &&";
  Outcome axis = run_cli("run quickstart --dry-run --sweep 'schedule.c=linspace(0.01,1,1e9)' "
                         "--max-configurations 2e9 --max-runs 1e12", limit);
  INFO(axis.output);
  CHECK(axis.exit_code == 1);
  CHECK_THAT(axis.output, Catch::Contains("out of memory while expanding linspace(0.01,1,1e9) into 1000000000 values"));
  CHECK_THAT(axis.output, !Catch::Contains("internal error"));
  Outcome grid = run_cli("run quickstart --dry-run --sweep 'schedule.c=linspace(0.01,1,10000)' "
                         "--sweep 'optimizer.batch=range(1,10000)' --max-configurations 1e9 --max-runs 1e12", limit);
  INFO(grid.output);
  CHECK(grid.exit_code == 1);
  CHECK_THAT(grid.output, Catch::Contains("out of memory while planning the grid: it has 100000000 configurations"));
}

TEST_CASE("a journal record damaged in the middle costs only itself: reading resynchronizes on the next one",
          "[faults][journal]") {
  const std::string job = "run quickstart --quiet --threads 1 --set experiment.steps=2000 --set experiment.replicates=8";
  const fs::path reference = scratch("resync_reference.h5");
  REQUIRE(run_cli(job + " -o " + reference.string()).exit_code == 0);
  // Two ways a middle record goes bad: its payload (the header's size still says where the next record
  // starts) or its header (the next record is found by scanning).
  for (const bool header : {false, true}) {
    INFO((header ? "header" : "payload") << " of record 2 damaged");
    const fs::path out = scratch("resync.h5");
    const std::string journal_path = out.string() + ".journal";
    fs::remove(journal_path);
    REQUIRE(run_cli(job + " -o " + out.string(), "RATELAB_FAULT_KILL_AFTER_RUNS=5").exit_code == 128 + 9);
    std::vector<unsigned char> bytes;
    {
      std::ifstream in(journal_path, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    // Records follow the 16-byte file header; each is [size u32][crc u32][payload].
    std::size_t pos = 16;
    std::vector<std::size_t> starts;
    while (pos + 8 <= bytes.size()) {
      starts.push_back(pos);
      std::uint32_t size;
      std::memcpy(&size, bytes.data() + pos, 4);
      pos += 8 + size;
    }
    REQUIRE(starts.size() == 5);
    const std::size_t target = starts[1] + (header ? 0 : 8 + 40);
    for (std::size_t i = 0; i < 16; ++i) bytes[target + i] ^= 0xA5;
    std::ofstream(journal_path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));

    // Before: 1 record (everything after the bad one dropped), truncated.
    const auto journal = ratelab::results::read_journal(journal_path);
    CHECK(journal.records.size() == 4);
    CHECK(journal.damaged_stretches == 1);
    CHECK(journal.damaged_bytes == starts[2] - starts[1]);
    CHECK(!journal.truncated);

    Outcome resumed = run_cli(job + " --resume -o " + out.string());
    INFO(resumed.output);
    CHECK(resumed.exit_code == 0);
    CHECK_THAT(resumed.output, Catch::Contains("skipped " + std::to_string(starts[2] - starts[1]) + " damaged bytes of " +
                                               journal_path) &&
                                   Catch::Contains("recovered 4 finished runs"));
    CHECK(trace_bytes(out) == trace_bytes(reference));
  }
}
