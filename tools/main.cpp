// The `ratelab` command line. Exit codes (documented in README and --help):
//   0 success; 1 internal failure; 2 bad usage or bad input (nothing was run, no file was written);
//   3 the sweep finished but some runs ended with status `error`; 4 interrupted (signal or time limit):
//   the file holds every finished run and the rest are marked; 5 `verify`: some claim failed; 6 the output
//   could not be written (disk full, I/O error): the finished runs are in its journal, --resume continues.
#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "experiments/claims.hpp"
#include "experiments/conformance.hpp"
#include "experiments/distributed.hpp"
#include "experiments/plugins.hpp"
#include "experiments/run_to_file.hpp"
#include "problems/noise.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/export_command.hpp"

namespace po = boost::program_options;
using namespace ratelab;

namespace {

constexpr int kExitOk = 0, kExitInternal = 1, kExitUsage = 2, kExitRunErrors = 3, kExitInterrupted = 4,
              kExitClaimFailed = 5, kExitWriteFailed = 6;

std::atomic<bool> g_cancel{false};
// The MPI job of `ratelab run` under mpirun (null otherwise); finalized when main returns.
std::unique_ptr<distributed::Cluster> g_cluster;
extern "C" void on_signal(int sig) {
  g_cancel.store(true);
  std::signal(sig, SIG_DFL);  // a second signal ends the process at once
}

// The command that continues `invocation` (a `ratelab run` writing output_path): the same with --resume.
std::string resume_command(const std::string& invocation, bool output_given, const std::string& output_path) {
  std::string again = invocation;
  if (auto at = again.find(" --overwrite"); at != std::string::npos) again.erase(at, 12);
  if (again.find("--resume") == std::string::npos) again += " --resume";
  if (!output_given) again += " -o " + output_path;
  return again;
}

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The built-in components plus those of RATELAB_PLUGIN_PATH and every --plugin.
Registry registry_with_plugins(const std::vector<std::string>& plugins) {
  Registry registry = builtin_registry();
  load_plugins(registry, plugins);
  return registry;
}
const char* kPluginHelp = "load optimizers from a plugin library (repeatable)";

// --max-configurations and --max-runs: the grid size plan_experiment accepts (experiments/experiment.hpp).
void add_limit_options(po::options_description& options, PlanLimits& limits) {
  options.add_options()("max-configurations", po::value(&limits.max_configurations)->default_value(limits.max_configurations),
                        "refuse an experiment with more configurations (a guard against mistyped sweeps)")(
      "max-runs", po::value(&limits.max_runs)->default_value(limits.max_runs),
      "refuse an experiment with more runs (configurations x replicates)");
}
void check_limits(const PlanLimits& limits) {
  if (limits.max_configurations < 1)
    throw ConfigError("--max-configurations = " + std::to_string(limits.max_configurations) + " violates >= 1");
  if (limits.max_runs < 1) throw ConfigError("--max-runs = " + std::to_string(limits.max_runs) + " violates >= 1");
}

const char* kMainHelp =
    "ratelab: convergence studies of stochastic optimizers\n"
    "\n"
    "usage: ratelab <command> [options]     (ratelab <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  run EXPERIMENT      run an experiment file or preset, write an HDF5 trace file\n"
    "  list [WHAT]         list optimizers, problems, schedules, noise, presets, views, metrics\n"
    "  describe NAME       parameters of a component (type, default, constraint, meaning)\n"
    "  plot FILE -o F      convergence curves with quantile bands (.png, .svg, .pdf)\n"
    "  summary FILE        final values and fitted rates with bootstrap intervals\n"
    "  compare FILE --a A --b B   paired difference of two configurations\n"
    "  inspect FILE        what a trace file holds\n"
    "  export FILES -o F   the runs as one long CSV table (a row per configuration, replicate, view, step)\n"
    "  merge PARTS -o F    merge the shards of one experiment (run --shard i/N) into one file\n"
    "  slurm EXPERIMENT --array N   write a Slurm job-array script (one shard per task, then a merge)\n"
    "  verify EXPERIMENT   run an experiment (or read --from FILE.h5) and check its [claims]\n"
    "  check-plugin LIB    load a plugin and run the optimizer conformance suite on its components\n"
    "\n"
    "plugins: --plugin LIB (repeatable) on run, list, describe; every *.so in the directories of\n"
    "         RATELAB_PLUGIN_PATH (colon-separated) is loaded too\n"
    "\n"
    "exit codes: 0 ok, 1 internal failure, 2 bad usage or input (nothing written),\n"
    "            3 some runs ended with status error, 4 interrupted (finished runs are saved),\n"
    "            5 verify: some claim failed, 6 the output could not be written (disk full):\n"
    "            the finished runs are in its journal, run ... --resume continues\n";

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) {
    if (i) s += ' ';
    s += argv[i];
  }
  return s;
}

po::variables_map parse(const std::vector<std::string>& args, const po::options_description& visible,
                        const po::positional_options_description& positional, const std::string& usage) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(visible).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << usage << "\n" << visible;
      throw Usage("");
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::ostringstream msg;
    msg << e.what() << "\n\n" << usage << "\n" << visible;
    throw Usage(msg.str());
  }
  return vm;
}


// Command-line options generated from a parameter declaration: `--key value` for each declared key
// (underscores or dashes), lists as comma-separated values or repeated options, bools as bare flags.
struct DeclaredOptions {
  po::options_description description;
  std::vector<ParamSpec> specs;
};

DeclaredOptions declared_options(const std::string& title, const std::vector<ParamSpec>& specs) {
  DeclaredOptions out{po::options_description(title), specs};
  for (const auto& s : specs) {
    std::string name = s.key;
    std::replace(name.begin(), name.end(), '_', '-');
    if (s.key == "output") name += ",o";
    std::string doc = s.doc;
    const std::string constraint = s.constraint.describe(s.key);
    if (!constraint.empty()) doc += " [" + constraint + "]";
    const std::string def = format_value(s.default_value);
    if (!def.empty() && s.type != ParamType::boolean) doc += " (default " + def + ")";
    if (s.type == ParamType::boolean)
      out.description.add_options()(name.c_str(), po::value<std::string>()->implicit_value("true"), doc.c_str());
    else if (s.type == ParamType::real_list || s.type == ParamType::choice_list)
      out.description.add_options()(name.c_str(), po::value<std::vector<std::string>>()->composing(), doc.c_str());
    else
      out.description.add_options()(name.c_str(), po::value<std::string>(), doc.c_str());
  }
  return out;
}

// Resolves the parsed values against the declaration; every violation is reported at once.
template <class Options>
Options bind_declared(const DeclaredOptions& declared, const po::variables_map& vm, const ParamTable<Options>& table) {
  std::map<std::string, std::string> raw;
  for (const auto& s : declared.specs) {
    std::string name = s.key;
    std::replace(name.begin(), name.end(), '_', '-');
    if (!vm.count(name)) continue;
    if (s.type == ParamType::real_list || s.type == ParamType::choice_list) {
      std::string joined;
      for (const auto& item : vm[name].as<std::vector<std::string>>()) joined += (joined.empty() ? "" : ",") + item;
      raw[s.key] = joined;
    } else {
      raw[s.key] = vm[name].as<std::string>();
    }
  }
  std::vector<std::string> errors;
  ParamSet values = resolve_params(declared.specs, raw, "", errors);
  if (!errors.empty()) throw ConfigError(errors);
  return table.bind(values);
}

template <class Options, class Command>
int analysis_command(const std::vector<std::string>& args, const std::string& name, const std::string& usage,
                     Command command) {
  auto declared = declared_options(name + " options", Options::params().specs());
  std::string file;
  po::options_description all;
  all.add(declared.description);
  all.add_options()("help,h", "show this help")("file", po::value(&file)->required(), "trace file (.h5)");
  po::positional_options_description pos;
  pos.add("file", 1);
  auto vm = parse(args, all, pos, usage);
  Options options = bind_declared(declared, vm, Options::params());
  return command(options, results::read_trace_file(file));
}

// The plot options of an experiment file's [plot] section (defaults where it has none).
tools::PlotOptions plot_options_from(const IniDocument& document) {
  std::map<std::string, std::string> raw;
  for (const auto& [key, value] : claims::plot_section(document)) raw[key] = value;
  std::vector<std::string> errors;
  ParamSet values = resolve_params(tools::PlotOptions::params().specs(), raw, "plot", errors);
  if (!errors.empty()) {
    for (auto& e : errors) e = document.source + ": [plot]: " + e;
    throw ConfigError(errors);
  }
  return tools::PlotOptions::params().bind(values);
}

int command_merge(const std::vector<std::string>& args) {
  po::options_description opts("merge options");
  std::vector<std::string> inputs;
  std::string output;
  opts.add_options()("help,h", "show this help")("inputs", po::value(&inputs)->required(), "trace files (shards) to merge")(
      "output,o", po::value(&output)->required(), "merged trace file")("overwrite", "replace an existing output file")(
      "allow-partial", "write even if runs are missing (they are marked; `run --resume` completes the file)");
  po::positional_options_description pos;
  pos.add("inputs", -1);
  auto vm = parse(args, opts, pos, "usage: ratelab merge PART.h5 ... -o ALL.h5 [--allow-partial]");
  MergeReport report = merge_trace_files(inputs, output, vm.count("overwrite") > 0, vm.count("allow-partial") > 0);
  std::cerr << "wrote " << output << ": " << report.finished << " finished runs from " << inputs.size() << " files";
  if (report.missing) std::cerr << ", " << report.missing << " missing (complete with: ratelab run EXPERIMENT -o " << output << " --resume)";
  std::cerr << "\n";
  return kExitOk;
}

// Writes a Slurm job-array script: one shard per array task (threads = the task's CPUs), then a merge job
// that runs once every task succeeded. Slurm does the scheduling; ratelab only partitions and merges.
int command_slurm(const std::vector<std::string>& args) {
  po::options_description opts("slurm options");
  std::string experiment, output, time_limit = "01:00:00", mem = "4G", directory = "parts", script = "";
  int array = 0, cpus = 2;
  std::vector<std::string> sets;
  opts.add_options()("help,h", "show this help")("experiment", po::value(&experiment)->required(), "experiment file or preset")(
      "array", po::value(&array)->required(), "number of array tasks N (shards)")(
      "cpus", po::value(&cpus)->default_value(2), "CPUs per task (ratelab --threads)")(
      "time", po::value(&time_limit)->default_value("01:00:00"), "Slurm time limit per task")(
      "mem", po::value(&mem)->default_value("4G"), "Slurm memory per task")(
      "set", po::value(&sets)->composing(), "parameter overrides passed to every task (section.key=value)")(
      "parts", po::value(&directory)->default_value("parts"), "directory of the shard files")(
      "output,o", po::value(&output), "merged file (default: <experiment name>.h5)")(
      "script", po::value(&script), "write the script here (default: stdout)");
  PlanLimits limits;
  add_limit_options(opts, limits);
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse(args, opts, pos, "usage: ratelab slurm EXPERIMENT --array N [--cpus C --time T --mem M] [-o all.h5]");
  check_limits(limits);
  if (array < 1) throw ConfigError("--array = " + std::to_string(array) + " violates array >= 1");
  if (cpus < 1) throw ConfigError("--cpus = " + std::to_string(cpus) + " violates cpus >= 1");
  const std::string path = find_experiment(experiment);
  ExperimentPlan plan = plan_experiment(registry_with_plugins({}), read_ini_file(path), sets, limits);  // validate now
  std::string limit_flags;  // the tasks plan the same grid
  if (!vm["max-configurations"].defaulted()) limit_flags += " --max-configurations " + std::to_string(limits.max_configurations);
  if (!vm["max-runs"].defaulted()) limit_flags += " --max-runs " + std::to_string(limits.max_runs);
  if (output.empty()) output = plan.options.name + ".h5";
  std::string overrides;
  for (const auto& o : sets) overrides += " --set '" + o + "'";
  std::ostringstream out;
  out << "#!/bin/bash\n"
      << "# Generated by `ratelab slurm`: " << plan.configurations.size() << " configurations x " << plan.options.replicates
      << " replicates in " << array << " shards, then a merge. Submit with: bash THIS_SCRIPT\n"
      << "# A task that fails or times out can be rerun alone: its command resumes what it had finished.\n"
      << "set -euo pipefail\n"
      << "mkdir -p " << directory << "\n"
      << "task=$(sbatch --parsable --array=0-" << array - 1 << " --cpus-per-task=" << cpus << " --time=" << time_limit
      << " --mem=" << mem << " --job-name=ratelab-" << plan.options.name << " --wrap=\"ratelab run " << path << overrides
      << limit_flags << " --quiet --threads \\$SLURM_CPUS_PER_TASK --shard \\$SLURM_ARRAY_TASK_ID/" << array << " -o " << directory
      << "/part_\\$SLURM_ARRAY_TASK_ID.h5 \\$( [ -e " << directory << "/part_\\$SLURM_ARRAY_TASK_ID.h5 ] || [ -e " << directory
      << "/part_\\$SLURM_ARRAY_TASK_ID.h5.journal ] && echo --resume )\")\n"
      << "sbatch --dependency=afterok:$task --job-name=ratelab-" << plan.options.name << "-merge --wrap=\"ratelab merge "
      << directory << "/part_*.h5 -o " << output << "\"\n"
      << "echo \"submitted array job $task and its merge into " << output << "\"\n";
  if (script.empty()) {
    std::cout << out.str();
  } else {
    std::ofstream(script) << out.str();
    std::cerr << "wrote " << script << " (submit with: bash " << script << ")\n";
  }
  return kExitOk;
}

int command_inspect(const std::vector<std::string>& args) {
  po::options_description opts("inspect options");
  std::string file;
  opts.add_options()("help,h", "show this help")("file", po::value(&file)->required(), "trace file (.h5)");
  po::positional_options_description pos;
  pos.add("file", 1);
  parse(args, opts, pos, "usage: ratelab inspect FILE");
  return tools::inspect(results::read_trace_file(file), std::cout);
}

int command_run(const std::vector<std::string>& args, const std::string& invocation) {
  po::options_description opts("run options");
  std::vector<std::string> sets, sweeps, plugins;
  std::string experiment, output, progress = "auto";
  int threads = 0;
  double time_limit = 0;
  opts.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment)->required(), "experiment file or preset name")(
      "output,o", po::value(&output), "output HDF5 file (default: out/<experiment name>.h5)")(
      "set", po::value(&sets)->composing(), "override a parameter: section.key=value (repeatable)")(
      "sweep", po::value(&sweeps)->composing(), "sweep a parameter: section.key=AXIS, e.g. schedule.c=logspace(0.01,1,3)")(
      "threads", po::value(&threads)->default_value(0), "worker threads (0: all cores); under mpirun, per rank")(
      "overwrite", "replace an existing output file")(
      "resume", "continue an interrupted or killed sweep writing the output file: keep its finished runs, run the rest "
      "(with --overwrite: keep only the runs of its journal and replace the file)")(
      "shard", po::value<std::string>(), "run only share i of N (i/N, 0 <= i < N), e.g. one task of a job array; "
      "combine the parts with `ratelab merge`")(
      "time-limit", po::value(&time_limit)->default_value(0), "wall-clock limit for the sweep in seconds (0: none)")(
      "progress", po::value(&progress)->default_value("auto"), "auto | quiet | lines")(
      "quiet,q", "no progress output (same as --progress quiet)")(
      "plot", "also draw the convergence curves next to the output (same name, .png)")(
      "plugin", po::value(&plugins)->composing(), kPluginHelp);
  PlanLimits limits;
  add_limit_options(opts, limits);
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse(args, opts, pos, "usage: ratelab run EXPERIMENT [-o out.h5] [--set key=value ...] [--threads N]");
  check_limits(limits);
  if (threads < 0) throw ConfigError("--threads = " + std::to_string(threads) + " violates threads >= 0");
  if (time_limit < 0) throw ConfigError("--time-limit must be >= 0 seconds");

  sets.insert(sets.end(), sweeps.begin(), sweeps.end());  // one mechanism: --sweep is --set with an axis
  const std::string path = find_experiment(experiment);
  Registry registry = registry_with_plugins(plugins);
  const IniDocument document = read_ini_file(path);
  ExperimentPlan plan = plan_experiment(registry, document, sets, limits);
  const tools::PlotOptions plot_from_file = plot_options_from(document);  // checked before running

  const bool reporter = !g_cluster || g_cluster->rank() == 0;  // under MPI, rank 0 reports and writes
  RunToFileOptions options;
  options.cluster = g_cluster.get();
  options.output_path = output.empty() ? "out/" + plan.options.name + ".h5" : output;
  if (output.empty() && reporter) std::filesystem::create_directories("out");
  options.overwrite = vm.count("overwrite") > 0;
  options.resume = vm.count("resume") > 0;
  if (vm.count("shard")) {
    const std::string text = vm["shard"].as<std::string>();
    const auto slash = text.find('/');
    try {
      if (slash == std::string::npos) throw std::invalid_argument(text);
      options.shard_index = std::stoi(text.substr(0, slash));
      options.shard_count = std::stoi(text.substr(slash + 1));
    } catch (const std::exception&) {
      throw ConfigError("--shard '" + text + "' is malformed: expected i/N with 0 <= i < N, e.g. --shard 3/16");
    }
  }
  options.command_line = invocation;
  options.sweep.threads = threads;
  options.sweep.time_limit_seconds = time_limit;
  options.sweep.cancel = &g_cancel;
  if (vm.count("quiet") || progress == "quiet") options.sweep.progress = SweepOptions::Progress::quiet;
  else if (progress == "lines") options.sweep.progress = SweepOptions::Progress::lines;
  else if (progress != "auto") throw ConfigError("--progress = '" + progress + "' is not one of auto, quiet, lines");

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  SweepSummary s;
  try {
    s = run_experiment_to_file(registry, plan, options);
  } catch (const OutputFailure& e) {
    if (!reporter) throw;
    // The journal stays; its runs are this process's work so far. --overwrite would ignore them.
    std::string again = resume_command(invocation, !output.empty(), options.output_path);
    std::cerr << "ratelab run: " << e.what() << ".\n"
              << (e.disk_full ? "free space" : "fix the cause") << ", then continue with: " << again << "\n";
    return kExitWriteFailed;
  }
  if (!reporter) return s.cancelled ? kExitInterrupted : s.error > 0 ? kExitRunErrors : kExitOk;  // rank 0's outcome
  const long runs = s.ok + s.diverged + s.error + s.nonfinite + s.interrupted;
  std::cerr << "wrote " << options.output_path << ": " << runs << " runs (" << s.ok << " ok, " << s.diverged
            << " diverged, " << s.error << " error";
  if (s.nonfinite) std::cerr << ", " << s.nonfinite << " nonfinite (a metric is NaN or inf with x finite)";
  if (s.interrupted || s.not_started) std::cerr << ", " << s.interrupted << " interrupted, " << s.not_started << " not started";
  std::cerr << ") in " << std::fixed << std::setprecision(2) << s.seconds << " s";
  if (!s.runs_per_rank.empty()) {
    std::cerr << " on " << s.runs_per_rank.size() << " ranks (runs taken per rank:";
    for (long n : s.runs_per_rank) std::cerr << " " << n;
    std::cerr << ")";
  }
  std::cerr << "\n";
  for (const auto& skipped : s.skipped) std::cerr << "skipped " << skipped << "\n";
  if (vm.count("plot")) {
    tools::PlotOptions plot = plot_from_file;
    plot.output = std::filesystem::path(options.output_path).replace_extension(".png").string();
    tools::plot(plot, results::read_trace_file(options.output_path), std::cerr);
  }
  if (s.cancelled) {
    const std::string again = resume_command(invocation, !output.empty(), options.output_path);
    std::cerr << "interrupted: " << options.output_path
              << " holds every finished run (the others are marked interrupted or missing).\n"
              << "continue with: " << again << "\n";
    if (g_cluster && g_cluster->size() > 1)
      std::cerr << "(under mpirun with any number of ranks, or as a single process: the result is the same)\n";
    return kExitInterrupted;
  }
  return s.error > 0 ? kExitRunErrors : kExitOk;
}

// `ratelab verify`: claims of an experiment file checked on a fresh run (or on --from FILE.h5).
int command_verify(const std::vector<std::string>& args, const std::string& invocation) {
  po::options_description opts("verify options");
  std::string experiment, from, output;
  int threads = 0;
  long seed = 1;
  opts.add_options()("help,h", "show this help")(
      "experiment", po::value(&experiment)->required(), "experiment file or preset name (or a trace file .h5)")(
      "quick", "the preset's smaller declared size (its [quick] section)")(
      "from", po::value(&from), "check the claims on this trace file instead of running")(
      "output,o", po::value(&output), "keep the trace file here (default: a temporary file, removed)")(
      "threads", po::value(&threads)->default_value(0), "worker threads (0: all cores)")(
      "seed", po::value(&seed)->default_value(1), "bootstrap seed of the claim intervals")(
      "set", po::value<std::vector<std::string>>()->composing(), "override a parameter: section.key=value");
  PlanLimits limits;
  add_limit_options(opts, limits);
  po::positional_options_description pos;
  pos.add("experiment", 1);
  auto vm = parse(args, opts, pos,
                  "usage: ratelab verify EXPERIMENT [--quick] [--from FILE.h5] [--threads N] [-o out.h5]\n"
                  "exit codes: 0 every claim holds, 5 some claim failed, 2 bad input, 3/4 as for run");
  if (threads < 0) throw ConfigError("--threads = " + std::to_string(threads) + " violates threads >= 0");
  check_limits(limits);
  const bool quick = vm.count("quick") > 0;
  std::vector<std::string> sets = vm.count("set") ? vm["set"].as<std::vector<std::string>>() : std::vector<std::string>{};

  // Claims come from the experiment file, or from the resolved text stored in a trace file.
  IniDocument document;
  std::optional<results::TraceData> data;
  if (experiment.size() > 3 && experiment.substr(experiment.size() - 3) == ".h5" && std::filesystem::exists(experiment)) {
    if (!from.empty()) throw ConfigError("give either a trace file or --from, not both");
    data = results::read_trace_file(experiment);
    document = parse_ini(data->layout.experiment_text, experiment);
  } else {
    document = read_ini_file(find_experiment(experiment));
  }
  if (quick) {
    auto overrides = claims::quick_overrides(document);
    sets.insert(sets.begin(), overrides.begin(), overrides.end());
  }
  const auto claim_list = claims::parse_claims(document);
  if (claim_list.empty()) throw ConfigError(document.source + " has no [claims] section: nothing to verify");

  int run_status = kExitOk;
  if (!data && !from.empty()) data = results::read_trace_file(from);
  if (!data) {
    Registry registry = registry_with_plugins({});  // plugins on RATELAB_PLUGIN_PATH
    ExperimentPlan plan = plan_experiment(registry, document, sets, limits);
    claims::check_claims(claim_list, claims::layout_of(plan), false);  // before the run
    RunToFileOptions options;
    const bool keep = !output.empty();
    options.output_path = keep ? output
                               : (std::filesystem::temp_directory_path() /
                                  ("ratelab-verify-" + std::to_string(::getpid()) + "-" + plan.options.name + ".h5")).string();
    options.overwrite = true;
    options.command_line = invocation;
    options.sweep.threads = threads;
    options.sweep.cancel = &g_cancel;
    options.sweep.progress = SweepOptions::Progress::quiet;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    SweepSummary s = run_experiment_to_file(registry, plan, options);
    std::cerr << plan.options.name << (quick ? " (quick)" : "") << ": " << s.ok << " ok, " << s.diverged << " diverged, "
              << s.error << " error" << (s.nonfinite ? ", " + std::to_string(s.nonfinite) + " nonfinite" : "") << " runs in " << std::fixed << std::setprecision(2) << s.seconds << " s\n";
    std::cerr.unsetf(std::ios::floatfield);
    data = results::read_trace_file(options.output_path);
    if (!keep) std::filesystem::remove(options.output_path);
    if (s.cancelled) return kExitInterrupted;
    if (s.error > 0) run_status = kExitRunErrors;
  }
  const auto verdicts = claims::evaluate_claims(claim_list, *data, seed);
  long failed = 0;
  for (const auto& v : verdicts) {
    std::cout << claims::format_verdict(v) << "\n";
    failed += v.pass ? 0 : 1;
  }
  std::cout << (failed ? "FAILED: " : "OK: ") << verdicts.size() - std::size_t(failed) << "/" << verdicts.size()
            << " claims hold\n";
  if (failed) return kExitClaimFailed;
  return run_status;
}

void print_params(const ComponentInfo& c) {
  std::cout << kind_name(c.kind) << " " << c.key << " (" << c.origin << "): " << c.summary << "\n";
  if (c.params.empty()) {
    std::cout << "  no parameters\n";
    return;
  }
  std::cout << "  parameters:\n";
  for (const auto& p : c.params) {
    std::cout << "    " << std::left << std::setw(22) << p.key << " " << std::setw(15) << type_name(p.type)
              << " default " << std::setw(10) << (format_value(p.default_value).empty() ? "''" : format_value(p.default_value));
    std::string constraint = p.constraint.describe(p.key);
    if (!constraint.empty()) std::cout << "  [" << constraint << "]";
    std::cout << "\n      " << p.doc << "\n";
  }
}

int command_list(const std::vector<std::string>& args) {
  po::options_description opts("list options");
  std::string what = "all";
  std::vector<std::string> plugins;
  opts.add_options()("help,h", "show this help")("what", po::value(&what),
                                                   "optimizers | problems | schedules | noise | presets | views | metrics")(
      "plugin", po::value(&plugins)->composing(), kPluginHelp);
  po::positional_options_description pos;
  pos.add("what", 1);
  parse(args, opts, pos, "usage: ratelab list [WHAT]");
  Registry registry = registry_with_plugins(plugins);
  const std::vector<std::string> kinds{"optimizers", "problems", "schedules", "noise", "presets", "views", "metrics"};
  if (what != "all" && std::find(kinds.begin(), kinds.end(), what) == kinds.end())
    throw ConfigError(unknown_key_message("list", what, kinds));
  auto show = [&](const std::string& k) { return what == "all" || what == k; };
  auto section = [&](ComponentKind kind, const char* title) {
    std::cout << title << ":\n";
    for (const auto* c : registry.components(kind))
      std::cout << "  " << std::left << std::setw(16) << c->key << " " << c->summary
                << (c->origin == "built-in" ? "" : "  [" + c->origin + "]") << "\n";
  };
  if (show("optimizers")) section(ComponentKind::optimizer, "optimizers");
  if (show("problems")) section(ComponentKind::problem, "problems");
  if (show("schedules")) section(ComponentKind::schedule, "schedules");
  if (show("noise")) {
    std::cout << "noise (problem parameter 'noise', with noise_scale, noise_shape, noise_mode):\n";
    for (const auto& s : NoiseOptions::params().specs())
      if (s.key == "noise")
        for (const auto& c : s.constraint.choices) std::cout << "  " << c << "\n";
  }
  if (show("presets")) {
    std::cout << "presets:\n";
    for (const auto& p : list_presets()) std::cout << "  " << std::left << std::setw(20) << p.name << " " << p.description << "\n";
  }
  if (show("views")) {
    std::cout << "views (experiment parameter 'views'):\n";
    for (const auto& v : all_view_names()) std::cout << "  " << v << "\n";
  }
  if (show("metrics")) {
    std::cout << "metrics (experiment parameter 'metrics'):\n";
    for (std::size_t i = 0; i < all_metric_names().size(); ++i)
      std::cout << "  " << std::left << std::setw(10) << all_metric_names()[i] << " " << metric_doc(Metric(i)) << "\n";
  }
  return kExitOk;
}

int command_describe(const std::vector<std::string>& args) {
  po::options_description opts("describe options");
  std::string name;
  std::vector<std::string> plugins;
  opts.add_options()("help,h", "show this help")("name", po::value(&name)->required(),
                                                   "optimizer, problem or schedule key, or 'experiment'")(
      "plugin", po::value(&plugins)->composing(), kPluginHelp);
  po::positional_options_description pos;
  pos.add("name", 1);
  parse(args, opts, pos, "usage: ratelab describe NAME");
  Registry registry = registry_with_plugins(plugins);
  if (name == "experiment") {
    print_params({ComponentKind::schedule, "experiment", "the [experiment] section of an experiment file",
                  ExperimentOptions::params().specs(), "built-in"});
    return kExitOk;
  }
  bool found = false;
  std::vector<std::string> all{"experiment"};
  for (auto kind : {ComponentKind::optimizer, ComponentKind::problem, ComponentKind::schedule}) {
    if (registry.contains(kind, name)) {
      print_params(registry.info(kind, name));
      found = true;
    }
    for (const auto& k : registry.keys(kind)) all.push_back(k);
  }
  if (!found) throw ConfigError(unknown_key_message("component", name, all));
  return kExitOk;
}

// Exit 0 when every component of the plugin passes every check, 3 when one fails.
int command_check_plugin(const std::vector<std::string>& args) {
  po::options_description opts("check-plugin options");
  std::string library;
  std::vector<std::string> plugins;
  ConformanceOptions conformance;
  opts.add_options()("help,h", "show this help")("library", po::value(&library)->required(), "plugin library (.so)")(
      "plugin", po::value(&plugins)->composing(), "also load this plugin first (its keys must not collide); not checked")(
      "eta", po::value(&conformance.eta)->default_value(conformance.eta), "constant step size of the convergence runs")(
      "steps", po::value(&conformance.steps)->default_value(conformance.steps), "steps T of the convergence runs");
  po::positional_options_description pos;
  pos.add("library", 1);
  parse(args, opts, pos, "usage: ratelab check-plugin LIB [--eta ETA] [--steps T]");
  if (!(conformance.eta > 0)) throw ConfigError("--eta must be > 0");
  if (conformance.steps < 20) throw ConfigError("--steps must be >= 20");
  Registry registry = registry_with_plugins(plugins);
  LoadedPlugin plugin = load_plugin(registry, library);
  std::cout << plugin.origin << ": " << plugin.optimizers.size() << " optimizer(s)\n";
  bool all = true;
  for (const auto& key : plugin.optimizers) {
    ConformanceReport report = check_optimizer_conformance(registry, key, {}, conformance);
    std::cout << format_report(report);
    all = all && report.passed();
  }
  return all ? kExitOk : kExitRunErrors;
}

}  // namespace

namespace {
int dispatch(const std::string& command, const std::vector<std::string>& args, int argc, char** argv);
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::cout << kMainHelp;
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  const int code = dispatch(command, args, argc, argv);
  g_cluster.reset();  // MPI_Finalize
  return code;
}

namespace {

// Prints an error; under MPI, through the cluster, which agrees on the failure with the other ranks (or
// ends the job once the sweep has started).
int fail(int code, const std::function<void()>& report) {
  if (g_cluster) {
    g_cluster->fail(code, report);
  } else {
    report();
  }
  return code;
}

int dispatch(const std::string& command, const std::vector<std::string>& args, int argc, char** argv) {
  try {
    if (command == "run") {
      g_cluster = distributed::join_if_launched();  // MPI only under an MPI launcher
      return command_run(args, command_line(argc, argv));
    }
    if (command == "list") return command_list(args);
    if (command == "describe") return command_describe(args);
    if (command == "inspect") return command_inspect(args);
    if (command == "export") return tools::command_export(args);
    if (command == "merge") return command_merge(args);
    if (command == "slurm") return command_slurm(args);
    if (command == "verify") return command_verify(args, command_line(argc, argv));
    if (command == "check-plugin") return command_check_plugin(args);
    if (command == "summary")
      return analysis_command<tools::SummaryOptions>(args, "summary", "usage: ratelab summary FILE [options]",
                                                     [](const auto& o, const auto& d) { return tools::summary(o, d, std::cout); });
    if (command == "compare")
      return analysis_command<tools::CompareOptions>(args, "compare", "usage: ratelab compare FILE --a A --b B [options]",
                                                     [](const auto& o, const auto& d) { return tools::compare(o, d, std::cout); });
    if (command == "plot")
      return analysis_command<tools::PlotOptions>(args, "plot", "usage: ratelab plot FILE -o FIGURE.png [options]",
                                                  [](const auto& o, const auto& d) { return tools::plot(o, d, std::cout); });
    throw Usage(unknown_key_message("command", command, {"run", "list", "describe", "plot", "summary", "compare", "inspect", "export", "verify", "check-plugin", "merge", "slurm"}) +
                "\n\n" + kMainHelp);
  } catch (const distributed::PeerFailure& e) {
    return e.exit_code;  // another rank of the MPI job failed first and printed why
  } catch (const Usage& e) {
    if (*e.what() == '\0') return kExitOk;  // --help
    return fail(kExitUsage, [&] { std::cerr << "ratelab " << command << ": " << e.what() << "\n"; });
  } catch (const ConfigError& e) {
    return fail(kExitUsage, [&] {
      std::cerr << "ratelab " << command << ": error:\n";
      for (const auto& p : e.problems()) std::cerr << "  " << p << "\n";
    });
  } catch (const std::exception& e) {
    return fail(kExitInternal, [&] { std::cerr << "ratelab " << command << ": internal error: " << e.what() << "\n"; });
  }
}

}  // namespace
