// The `ratelab` commands and their table (tools/cli.hpp explains the table and the exit codes).
#include "tools/cli.hpp"

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <unistd.h>

#include "experiments/build_info.hpp"
#include "experiments/claims.hpp"
#include "experiments/conformance.hpp"  // ConformanceOptions only: the suite is ratelab-check-plugin's
#include "experiments/distributed.hpp"
#include "experiments/plugins.hpp"
#include "experiments/run_to_file.hpp"
#include "problems/noise.hpp"
#include "tools/analysis_commands.hpp"
#include "tools/plot.hpp"
#include "tools/several_files.hpp"
#include "tools/report.hpp"
#include "tools/export_command.hpp"
#include "tools/fixed_target_commands.hpp"

namespace po = boost::program_options;

namespace ratelab::cli {

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

// The command that continues `invocation` (a `ratelab run` writing output_path): the same with --resume,
// without --overwrite (it would discard the finished runs) and without --time-limit (the limit was what
// stopped it; whoever continues decides again).
std::string resume_command(const std::string& invocation, bool output_given, const std::string& output_path) {
  std::istringstream words(invocation);
  std::string again, word;
  bool resume = false;
  while (words >> word) {
    if (word == "--overwrite" || word.rfind("--time-limit=", 0) == 0) continue;
    if (word == "--time-limit") {
      words >> word;  // its value
      continue;
    }
    resume = resume || word == "--resume";
    again += (again.empty() ? "" : " ") + word;
  }
  if (!resume) again += " --resume";
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
// The parts of `ratelab --help` that are not about one command.
const char* kMainHelpIntro =
    "usage: ratelab <command> [options]     (ratelab <command> --help for details)\n"
    "       ratelab --version\n";

// "ratelab 0.1.0 (git 1a2b3c4d5e6f, modified)": the version, and the commit a bug report needs.
std::string version_line() {
  std::string commit = build_info::git_commit;
  if (commit.size() > 12) commit.resize(12);
  return std::string("ratelab ") + build_info::version + " (git " + commit + (build_info::git_dirty ? ", modified" : "") +
         ")";
}
const char* kMainHelpOutro =
    "plugins: --plugin LIB (repeatable) on run, list, describe; every *.so in the directories of\n"
    "         RATELAB_PLUGIN_PATH (colon-separated) is loaded too\n"
    "\n"
    "exit codes: 0 ok, 1 internal failure, 2 bad usage or input (nothing written),\n"
    "            3 some runs ended with status error, 4 interrupted (finished runs are saved),\n"
    "            5 verify: some claim failed, 6 the output could not be written (disk full):\n"
    "            the finished runs are in its journal, run ... --resume continues\n";

// ---- options shared by several commands, declared once --------------------------------------------------

// --max-configurations and --max-runs: the grid size plan_experiment accepts (experiments/experiment.hpp).
ParamTable<PlanLimits> plan_limit_options() {
  return {param(&PlanLimits::max_configurations, "max_configurations", at_least(1),
                "refuse an experiment with more configurations (a guard against mistyped sweeps)"),
          param(&PlanLimits::max_runs, "max_runs", at_least(1),
                "refuse an experiment with more runs (configurations x replicates)")};
}

template <class Options>
Field<Options> threads_option(int Options::*member) {
  return param(member, "threads", nonnegative(), "worker threads (0: all cores); under mpirun, per rank");
}
template <class Options>
Field<Options> quick_option(bool Options::*member) {
  return param(member, "quick", unconstrained(), "the preset's smaller declared size (its [quick] section)");
}
template <class Options>
Field<Options> set_option(std::vector<std::string> Options::*member) {
  return text_list(member, "set", "override a parameter: section.key=value (repeatable)");
}
template <class Options>
Field<Options> plugin_option(std::vector<std::string> Options::*member,
                             std::string doc = "load optimizers from a plugin library (repeatable)") {
  return text_list(member, "plugin", std::move(doc));
}

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


// Short spellings of options, wherever a command declares them.
const std::map<std::string, std::string> kShortNames{{"output", "o"}, {"quiet", "q"}};

std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

bool is_list(ParamType type) {
  return type == ParamType::real_list || type == ParamType::choice_list || type == ParamType::text_list;
}

// `--key value` for each declared key (underscores typed as dashes), lists as comma-separated values or
// repeated options (text lists: one item per occurrence), booleans as bare flags or `--flag=false`.
po::options_description declared_options(const Command& command) {
  po::options_description out(command.name + " options");
  out.add_options()("help,h", "show this help");
  for (const auto& s : command.options) {
    std::string name = dashed(s.key);
    if (auto it = kShortNames.find(s.key); it != kShortNames.end()) name += "," + it->second;
    std::string doc = s.doc;
    const std::string constraint = s.constraint.describe(s.key);
    if (!constraint.empty()) doc += " [" + constraint + "]";
    const std::string def = format_value(s.default_value);
    if (!def.empty() && s.type != ParamType::boolean) doc += " (default " + def + ")";
    const bool required =
        std::find(command.required.begin(), command.required.end(), s.key) != command.required.end();
    po::value_semantic* value = nullptr;
    if (s.type == ParamType::boolean) {
      value = po::value<std::string>()->implicit_value("true")->zero_tokens();  // never takes the next word
    } else if (is_list(s.type)) {
      auto* v = po::value<std::vector<std::string>>()->composing();
      value = required ? v->required() : v;
    } else {
      auto* v = po::value<std::string>();
      value = required ? v->required() : v;
    }
    out.add_options()(name.c_str(), value, doc.c_str());
  }
  return out;
}

// The options given on a command line, as text: what a command's defaults (or a stored [plot]) yield to.
struct GivenOptions {
  std::map<std::string, std::string> raw;
  std::map<std::string, std::vector<std::string>> texts;  // text lists: one item per occurrence
};

GivenOptions given_options(const Command& command, const std::vector<std::string>& args) {
  const po::options_description visible = declared_options(command);
  po::positional_options_description positional;
  for (const auto& key : command.positional) {
    const auto spec = std::find_if(command.options.begin(), command.options.end(),
                                   [&](const ParamSpec& s) { return s.key == key; });
    positional.add(dashed(key).c_str(), spec != command.options.end() && is_list(spec->type) ? -1 : 1);
  }
  std::string usage = "usage: ratelab " + command.name + " " + command.arguments + " [options]\n" + command.help;
  if (!command.notes.empty()) usage += "\n" + command.notes;
  // `--key=` is the key with an empty value (--band= : no band), as `--key ''` is; Boost refuses it.
  // A boolean is a bare flag (`--share-y`, never taking the next word) or `--share-y=false` / `=true`:
  // Boost refuses a value for a flag, so that form is taken here and checked with the other values.
  std::vector<std::string> words;
  std::map<std::string, std::string> boolean_values;
  for (const auto& a : args) {
    const auto boolean = std::find_if(command.options.begin(), command.options.end(), [&](const ParamSpec& s) {
      const std::string flag = "--" + dashed(s.key) + "=";
      return s.type == ParamType::boolean && a.size() > flag.size() && a.rfind(flag, 0) == 0;
    });
    if (boolean != command.options.end()) {
      boolean_values[boolean->key] = a.substr(dashed(boolean->key).size() + 3);
      continue;
    }
    const bool empty_value = a.size() > 3 && a.rfind("--", 0) == 0 && a.back() == '=';
    const auto spec = std::find_if(command.options.begin(), command.options.end(), [&](const ParamSpec& s) {
      return empty_value && "--" + dashed(s.key) + "=" == a && s.type != ParamType::boolean;
    });
    if (spec == command.options.end()) {
      words.push_back(a);
    } else {
      words.push_back(a.substr(0, a.size() - 1));
      words.push_back("");
    }
  }
  const po::variables_map vm = parse(words, visible, positional, usage);

  GivenOptions given;
  auto& [raw, texts] = given;
  for (const auto& s : command.options) {
    const std::string name = dashed(s.key);
    if (!vm.count(name)) continue;
    if (s.type == ParamType::text_list) {
      for (const auto& item : vm[name].as<std::vector<std::string>>()) texts[s.key].push_back(trim(item));
    } else if (is_list(s.type)) {
      std::string joined;
      for (const auto& item : vm[name].as<std::vector<std::string>>()) joined += (joined.empty() ? "" : ",") + item;
      raw[s.key] = joined;
    } else {
      raw[s.key] = vm[name].as<std::string>();
    }
  }
  for (const auto& [key, value] : boolean_values) raw[key] = value;
  return given;
}

template <class Options>
Options bind_options(const Command& command, const GivenOptions& given) {
  std::vector<std::string> errors;
  ParamSet values = resolve_params(command.options, given.raw, "", errors);
  if (!errors.empty()) throw ConfigError(errors);
  for (auto& [key, items] : given.texts) values.set(key, items);
  return Options::params().bind(values);
}

// The command's options from `args`, resolved against its table; every violation is reported at once.
template <class Options>
Options parse_options(const Command& command, const std::vector<std::string>& args) {
  return bind_options<Options>(command, given_options(command, args));
}

// A row of the command table whose options are those of `Options::params()`.
template <class Options>
Command command(std::string name, std::string arguments, std::string help, std::vector<std::string> positional,
                std::vector<std::string> required, int (*function)(const Options&, const Invocation&),
                std::string notes = "") {
  Command row;
  row.name = std::move(name);
  row.arguments = std::move(arguments);
  row.help = std::move(help);
  row.notes = std::move(notes);
  row.positional = std::move(positional);
  row.required = std::move(required);
  row.options = Options::params().specs();
  row.run = [function](const Command& self, const std::vector<std::string>& args, const Invocation& invocation) {
    return function(parse_options<Options>(self, args), invocation);
  };
  return row;
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

struct MergeArgs {
  std::vector<std::string> inputs;
  std::string output;
  bool overwrite = false, allow_partial = false;
  static ParamTable<MergeArgs> params() {
    return {text_list(&MergeArgs::inputs, "inputs", "trace files to merge (shards, or experiments of one layout)"),
            param(&MergeArgs::output, "output", unconstrained(), "merged trace file"),
            param(&MergeArgs::overwrite, "overwrite", unconstrained(), "replace an existing output file"),
            param(&MergeArgs::allow_partial, "allow_partial", unconstrained(),
                  "write even if runs are missing (they are marked; `run --resume` completes the file)")};
  }
};

int command_merge(const MergeArgs& args, const Invocation&) {
  const std::string& output = args.output;
  // As run: the first SIGINT/SIGTERM stops the merge between two runs and removes its partial output.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  MergeReport report;
  try {
    report = merge_trace_files(args.inputs, output, args.overwrite, args.allow_partial, std::size_t(64) << 20, &g_cancel);
  } catch (const MergeInterrupted& e) {
    std::cerr << "ratelab merge: " << e.what() << "; run the same merge again\n";
    return kExitInterrupted;
  }
  std::cerr << "wrote " << output << ": " << report.finished << " finished runs from " << args.inputs.size() << " files";
  if (report.missing) std::cerr << ", " << report.missing << " missing (complete with: ratelab run EXPERIMENT -o " << output << " --resume)";
  std::cerr << "\n";
  return kExitOk;
}

// Writes a Slurm job-array script: one shard per array task (threads = the task's CPUs), then a merge job
// that runs once every task succeeded. Slurm does the scheduling; ratelab only partitions and merges.
struct SlurmArgs {
  std::string experiment;
  int array = 1, cpus = 2;
  std::string time = "01:00:00", mem = "4G";
  std::vector<std::string> set;
  std::string parts = "parts", output, script;
  PlanLimits limits;
  static ParamTable<SlurmArgs> params() {
    return ParamTable<SlurmArgs>{param(&SlurmArgs::experiment, "experiment", unconstrained(), "experiment file or preset"),
            param(&SlurmArgs::array, "array", at_least(1), "number of array tasks N (shards)"),
            param(&SlurmArgs::cpus, "cpus", at_least(1), "CPUs per task (ratelab --threads)"),
            param(&SlurmArgs::time, "time", unconstrained(), "Slurm time limit per task"),
            param(&SlurmArgs::mem, "mem", unconstrained(), "Slurm memory per task"),
            set_option(&SlurmArgs::set),
            param(&SlurmArgs::parts, "parts", unconstrained(), "directory of the shard files"),
            param(&SlurmArgs::output, "output", unconstrained(), "merged file (default: <experiment name>.h5)"),
            param(&SlurmArgs::script, "script", unconstrained(), "write the script here (default: stdout)")}
        .with(&SlurmArgs::limits, plan_limit_options());
  }
};

int command_slurm(const SlurmArgs& args, const Invocation&) {
  const auto& [experiment, array, cpus, time_limit, mem, sets, directory, given_output, script, limits] = args;
  std::string output = given_output;
  const std::string path = find_experiment(experiment);
  const ExperimentPlan plan =
      claims::load_experiment(registry_with_plugins({}), read_ini_file(path), sets, false, limits).plan;  // validate now
  std::string limit_flags;  // the tasks plan the same grid
  if (limits.max_configurations != PlanLimits{}.max_configurations)
    limit_flags += " --max-configurations " + std::to_string(limits.max_configurations);
  if (limits.max_runs != PlanLimits{}.max_runs) limit_flags += " --max-runs " + std::to_string(limits.max_runs);
  if (output.empty()) output = plan.options.name + ".h5";
  // The tasks run this very binary and experiment file, by absolute paths: a compute node's PATH may hold
  // another ratelab or none, and its working directory need not be this one.
  const std::string binary = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string experiment_file = std::filesystem::absolute(path).lexically_normal().string();
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
      << " --mem=" << mem << " --job-name=ratelab-" << plan.options.name << " --wrap=\"" << binary << " run " << experiment_file << overrides
      << limit_flags << " --quiet --threads \\$SLURM_CPUS_PER_TASK --shard \\$SLURM_ARRAY_TASK_ID/" << array << " -o " << directory
      << "/part_\\$SLURM_ARRAY_TASK_ID.h5 \\$( [ -e " << directory << "/part_\\$SLURM_ARRAY_TASK_ID.h5 ] || [ -e " << directory
      << "/part_\\$SLURM_ARRAY_TASK_ID.h5.journal ] && echo --resume )\")\n"
      << "sbatch --dependency=afterok:$task --job-name=ratelab-" << plan.options.name << "-merge --wrap=\"" << binary << " merge "
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

struct InspectArgs {
  std::string file;
  bool all = false;
  static ParamTable<InspectArgs> params() {
    return {param(&InspectArgs::file, "file", unconstrained(), "trace file (.h5)"),
            param(&InspectArgs::all, "all", unconstrained(),
                  "every parameter of every configuration (default: a table of the parameters that vary)")};
  }
};

int command_inspect(const InspectArgs& args, const Invocation&) {
  return tools::inspect(results::TraceReader(args.file), std::cout, args.all);
}

int command_export(const tools::ExportOptions& args, const Invocation&) {
  const tools::ExportReport report = tools::export_table(args);
  std::cerr << "wrote " << (args.output == "-" ? std::string("standard output") : args.output) << ": " << report.rows
            << " rows from " << report.configurations << " configurations\n";
  return kExitOk;
}

// summary, compare and plot: trace files and the analysis's own options (tools/analysis_commands.hpp,
// tools/plot.hpp). One file is read a window of configurations at a time; several are read whole (the one
// metric analysed) and combined (tools/several_files.hpp: their configurations' labels must differ).
template <class Options>
struct AnalysisArgs {
  std::vector<std::string> files;
  Options options;
  static ParamTable<AnalysisArgs> params() {
    return ParamTable<AnalysisArgs>{text_list(&AnalysisArgs::files, "files",
                                              "trace files (.h5); several: a new study beside a baseline")}
        .with(&AnalysisArgs::options, Options::params());
  }
};

results::TraceData combined_files(const std::vector<std::string>& files, const std::string& metric,
                                  const std::vector<std::string>& where) {
  std::vector<results::TraceData> data;
  for (const auto& f : files) data.push_back(tools::read_metrics(results::TraceReader(f), {metric}));
  return tools::combine_files(data, files, tools::select_across_files(data, files, where));
}

const std::string& one_file(const std::vector<std::string>& files) {
  if (files.empty()) throw ConfigError("no trace file given: name one or more .h5 files");
  return files.front();
}

int command_summary(const AnalysisArgs<tools::SummaryOptions>& args, const Invocation&) {
  if (args.files.size() > 1)
    return tools::summary(args.options, combined_files(args.files, args.options.curves.metric, args.options.curves.where),
                          std::cout);
  return tools::summary(args.options, results::TraceReader(one_file(args.files)), std::cout);
}
int command_compare(const AnalysisArgs<tools::CompareOptions>& args, const Invocation&) {
  if (args.files.size() > 1)
    return tools::compare(args.options, combined_files(args.files, args.options.metric, {}), std::cout);
  return tools::compare(args.options, results::TraceReader(one_file(args.files)), std::cout);
}
int command_plot(const AnalysisArgs<tools::PlotOptions>& args, const Invocation&) {
  if (args.files.size() > 1) {
    if (args.options.output.empty() && args.options.data.empty())
      throw ConfigError("several files: give the figure's path with -o (or --data); by default a figure goes next to "
                        "its one FILE");
    return tools::plot(args.options, combined_files(args.files, args.options.curves.metric, args.options.curves.where),
                       std::cout, std::cerr);
  }
  return tools::plot(args.options, results::TraceReader(one_file(args.files)), std::cout, std::cerr);
}

int command_report(const tools::ReportOptions& args, const Invocation&) { return tools::report(args, std::cerr); }
int command_ert(const tools::ErtOptions& args, const Invocation&) { return tools::ert(args, std::cout); }
int command_ecdf(const tools::EcdfOptions& args, const Invocation&) { return tools::ecdf(args, std::cout); }
int command_profile(const tools::ProfileOptions& args, const Invocation&) { return tools::profile(args, std::cout); }

// `plot FILE`: the [plot] section the file stores (root attribute `plot`, from the experiment file), then the
// options given here over it, so `ratelab plot FILE` draws what `run --plot` drew; by default next to FILE.
int run_plot_command(const Command& self, const std::vector<std::string>& args, const Invocation& invocation) {
  const GivenOptions given = given_options(self, args);
  const auto files = given.texts.find("files");
  // Several files (or none, for the error): the options given here alone; each file's stored [plot] is its own.
  if (files == given.texts.end() || files->second.size() != 1)
    return command_plot(bind_options<AnalysisArgs<tools::PlotOptions>>(self, given), invocation);
  const std::string file = files->second.front();
  const results::TraceReader reader(file);
  GivenOptions merged;
  for (const auto& [key, value] : reader.outline().layout.root)
    if (key == "plot" && std::holds_alternative<std::string>(value))
      for (const auto& [k, v] :
           claims::plot_section(parse_ini("[plot]\n" + std::get<std::string>(value), file + " (its stored [plot])")))
        merged.raw[k] = v;
  for (const auto& [key, value] : given.raw) merged.raw[key] = value;
  for (const auto& [key, items] : given.texts) merged.raw.erase(key), merged.texts[key] = items;
  if (!merged.raw.count("output") && !merged.raw.count("data"))
    merged.raw["output"] = std::filesystem::path(file).replace_extension(".png").string();
  const auto parsed = bind_options<AnalysisArgs<tools::PlotOptions>>(self, merged);
  return tools::plot(parsed.options, reader, std::cout, std::cerr);
}

struct RunArgs {
  std::string experiment, output;
  std::vector<std::string> set, sweep;
  bool quick = false;
  int threads = 0;
  bool overwrite = false, resume = false;
  std::string shard;
  double time_limit = 0;
  std::string progress = "auto";
  bool quiet = false, plot = false, report = false;
  std::vector<std::string> plugin;
  std::vector<std::string> reuse;
  bool reuse_other_builds = false, dry_run = false;
  PlanLimits limits;
  static ParamTable<RunArgs> params() {
    return ParamTable<RunArgs>{param(&RunArgs::experiment, "experiment", unconstrained(), "experiment file or preset name"),
            param(&RunArgs::output, "output", unconstrained(), "output HDF5 file (default: out/<experiment name>.h5)"),
            set_option(&RunArgs::set),
            text_list(&RunArgs::sweep, "sweep",
                      "sweep a parameter: section.key=AXIS, e.g. schedule.c=logspace(0.01,1,3)"),
            quick_option(&RunArgs::quick),
            threads_option(&RunArgs::threads),
            param(&RunArgs::overwrite, "overwrite", unconstrained(), "replace an existing output file"),
            param(&RunArgs::resume, "resume", unconstrained(),
                  "continue an interrupted or killed sweep writing the output file: keep its finished runs, run the "
                  "rest (with --overwrite: keep only the runs of its journal and replace the file)"),
            param(&RunArgs::shard, "shard", unconstrained(),
                  "run only share i of N (i/N, 0 <= i < N), e.g. one task of a job array; combine the parts with "
                  "`ratelab merge`"),
            param(&RunArgs::time_limit, "time_limit", nonnegative(), "wall-clock limit for the sweep in seconds (0: none)"),
            param(&RunArgs::progress, "progress", one_of({"auto", "quiet", "lines"}), "progress output"),
            param(&RunArgs::quiet, "quiet", unconstrained(), "no progress output (same as --progress quiet)"),
            param(&RunArgs::plot, "plot", unconstrained(), "also draw the convergence curves next to the output (same name, .png)"),
            param(&RunArgs::report, "report", unconstrained(),
                  "also write the report page next to the output (same name, .html; see `ratelab report`)"),
            plugin_option(&RunArgs::plugin),
            text_list(&RunArgs::reuse, "reuse",
                      "copy the finished runs this file holds with the same run fingerprint and replicate instead "
                      "of running them (repeatable; README: Growing a study)"),
            param(&RunArgs::reuse_other_builds, "reuse_other_builds", unconstrained(),
                  "--reuse files written by another ratelab build too (their bits may differ from this build's)"),
            param(&RunArgs::dry_run, "dry_run", unconstrained(),
                  "print the plan (per configuration: reused, to run) and stop without writing anything")}
        .with(&RunArgs::limits, plan_limit_options());
  }
};

[[noreturn]] void exec_sibling(const std::string& name, const std::string& argv0, const Invocation& invocation,
                               const std::string& purpose, const std::string& target);

int command_run(const RunArgs& args, const Invocation& invocation_) {
  // MPI only under an MPI launcher, and then from ratelab-mpi (its name as typed stays this one's, so the
  // recorded command line and the printed --resume command are what the user typed).
  if (distributed::detect_launch() && distributed::built_with_mpi() && !distributed::mpi_provided())
    exec_sibling("ratelab-mpi", invocation_.program, invocation_, "a run under an MPI launcher runs", "ratelab_mpi");
  g_cluster = distributed::join_if_launched();
  const std::string& invocation = invocation_.text;
  const auto& [experiment, output, given_sets, sweeps, quick, threads, overwrite, resume, shard, time_limit, progress,
               quiet, draw_plot, write_report, plugins, reuse, reuse_other_builds, dry_run, limits] = args;
  std::vector<std::string> sets = given_sets;
  sets.insert(sets.end(), sweeps.begin(), sweeps.end());  // one mechanism: --sweep is --set with an axis
  const std::string path = find_experiment(experiment);
  Registry registry = registry_with_plugins(plugins);
  const claims::LoadedExperiment loaded = claims::load_experiment(registry, read_ini_file(path), sets, quick, limits);
  const ExperimentPlan& plan = loaded.plan;
  const tools::PlotOptions plot_from_file = plot_options_from(loaded.document);  // checked before running

  const bool reporter = !g_cluster || g_cluster->rank() == 0;  // under MPI, rank 0 reports and writes
  if (reporter && threads > 0 && resolve_threads(threads) < threads)
    std::cerr << "note: --threads " << threads << " is more than this machine runs at once; running "
              << resolve_threads(threads) << " threads (the file records " << resolve_threads(threads) << ")\n";
  RunToFileOptions options;
  options.cluster = g_cluster.get();
  options.output_path = output.empty() ? "out/" + plan.options.name + ".h5" : output;
  // The output's directory is created as needed (out/ for the default path, or -o's parent), not on --dry-run.
  if (const auto parent = std::filesystem::path(options.output_path).parent_path();
      reporter && !dry_run && !parent.empty()) {
    std::error_code error;
    std::filesystem::create_directories(parent, error);
    if (error)
      throw ConfigError("cannot create the directory " + parent.string() + " for " + options.output_path + ": " +
                        error.message() + "; choose another -o");
  }
  options.overwrite = overwrite;
  options.resume = resume;
  options.reuse = reuse;
  options.reuse_other_builds = reuse_other_builds;
  options.dry_run = dry_run;
  if (!shard.empty()) {
    const std::string& text = shard;
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
  if (quiet || progress == "quiet") options.sweep.progress = SweepOptions::Progress::quiet;
  else if (progress == "lines") options.sweep.progress = SweepOptions::Progress::lines;

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
  if (dry_run) return kExitOk;  // the plan is printed, nothing was written
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
  if (draw_plot) {
    tools::PlotOptions plot = plot_from_file;
    plot.output = std::filesystem::path(options.output_path).replace_extension(".png").string();
    tools::plot(plot, results::TraceReader(options.output_path), std::cerr, std::cerr);
  }
  if (write_report) {
    tools::ReportOptions page;
    page.files = {options.output_path};
    page.output = std::filesystem::path(options.output_path).replace_extension(".html").string();
    tools::report(page, std::cerr);
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
struct VerifyArgs {
  std::string experiment;
  bool quick = false;
  std::string from, output;
  int threads = 0;
  long seed = 1;
  std::vector<std::string> set;
  PlanLimits limits;
  static ParamTable<VerifyArgs> params() {
    return ParamTable<VerifyArgs>{param(&VerifyArgs::experiment, "experiment", unconstrained(),
                  "experiment file or preset name (or a trace file .h5)"),
            quick_option(&VerifyArgs::quick),
            param(&VerifyArgs::from, "from", unconstrained(), "check the claims on this trace file instead of running"),
            param(&VerifyArgs::output, "output", unconstrained(),
                  "keep the trace file here (default: a temporary file, removed)"),
            threads_option(&VerifyArgs::threads),
            param(&VerifyArgs::seed, "seed", nonnegative(), "bootstrap seed of the claim intervals"),
            set_option(&VerifyArgs::set)}
        .with(&VerifyArgs::limits, plan_limit_options());
  }
};

int command_verify(const VerifyArgs& args, const Invocation& invocation_) {
  const std::string& invocation = invocation_.text;
  const auto& [experiment, quick, from, output, threads, seed, given_sets, limits] = args;
  const std::vector<std::string>& sets = given_sets;

  // Claims come from the experiment file, or from the resolved text stored in a trace file; overrides are
  // applied to it before anything is read (claims.NAME=... only, on runs already made).
  Registry registry = registry_with_plugins({});  // plugins on RATELAB_PLUGIN_PATH
  std::optional<results::TraceData> data;
  std::optional<claims::LoadedExperiment> loaded;
  std::vector<claims::Claim> claim_list;
  std::string source;
  if (experiment.size() > 3 && experiment.substr(experiment.size() - 3) == ".h5" && std::filesystem::exists(experiment)) {
    if (!from.empty()) throw ConfigError("give either a trace file or --from, not both");
    const results::TraceReader reader(experiment);
    source = experiment;
    claim_list = claims::claims_for_stored_runs(parse_ini(reader.outline().layout.experiment_text, experiment), experiment,
                                                sets, quick);
    data = tools::read_metrics(reader, claims::claim_metrics(claim_list));  // only what the claims read
  } else if (!from.empty()) {
    const IniDocument document = read_ini_file(find_experiment(experiment));
    source = document.source;
    claim_list = claims::claims_for_stored_runs(document, from, sets, quick);
    data = tools::read_metrics(results::TraceReader(from), claims::claim_metrics(claim_list));
  } else {
    loaded = claims::load_experiment(registry, read_ini_file(find_experiment(experiment)), sets, quick, limits);
    source = loaded->document.source;
    claim_list = loaded->claims;
  }
  if (claim_list.empty()) throw ConfigError(source + " has no [claims] section: nothing to verify");

  int run_status = kExitOk;
  if (!data) {
    const ExperimentPlan& plan = loaded->plan;
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
    data = tools::read_metrics(results::TraceReader(options.output_path), claims::claim_metrics(claim_list));
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

// The parameter table of `describe`, its columns as wide as their longest entry.
void print_param_list(const std::vector<ParamSpec>& params, const std::string& indent = "    ") {
  std::size_t key_width = 0, type_width = 0, default_width = 2;
  auto shown_default = [](const ParamSpec& p) {
    const std::string text = format_value(p.default_value);
    return text.empty() ? std::string("''") : text;
  };
  for (const auto& p : params) {
    key_width = std::max(key_width, p.key.size());
    type_width = std::max(type_width, std::string(type_name(p)).size());
    default_width = std::max(default_width, std::min<std::size_t>(shown_default(p).size(), 12));
  }
  for (const auto& p : params) {
    std::ostringstream line;
    line << indent << std::left << std::setw(int(key_width)) << p.key << "  " << std::setw(int(type_width))
         << type_name(p) << "  default " << std::setw(int(default_width)) << shown_default(p);
    std::string constraint = p.constraint.describe(p.key);
    if (!constraint.empty()) line << "  [" << constraint << "]";
    if (p.applies) line << "  (applies when " << p.applies->describe() << ")";
    std::string text = line.str();
    while (!text.empty() && text.back() == ' ') text.pop_back();
    std::cout << text << "\n" << indent << "  " << p.doc << "\n";
  }
}

// `what`: how the heading names it ("optimizer heavy_ball"); empty: the component's kind and key.
void print_params(const ComponentInfo& c, const std::string& what = "") {
  std::cout << (what.empty() ? std::string(kind_name(c.kind)) + " " + c.key : what) << " (" << c.origin
            << "): " << c.summary << "\n";
  if (c.kind == ComponentKind::schedule && what.empty())
    std::cout << "  t counts the steps from 1: step t, from x_{t-1} to x_t, uses eta_t (the first step, from x_0, "
                 "uses eta_1), t = 1, ..., T\n";
  if (c.params.empty()) {
    std::cout << "  no parameters\n";
  } else {
    std::cout << "  parameters:\n";
    print_param_list(c.params);
  }
  if (c.schedule_applies)
    std::cout << "  step-size schedule: used when " << c.schedule_applies->describe()
              << " (otherwise the configuration has none and [schedule] may be omitted)\n";
}

struct ListArgs {
  std::string what = "all";
  std::vector<std::string> plugin;
  static ParamTable<ListArgs> params() {
    return {param(&ListArgs::what, "what",
                  one_of({"all", "optimizers", "problems", "schedules", "noise", "presets", "views", "metrics"}),
                  "what to list"),
            plugin_option(&ListArgs::plugin)};
  }
};

// The noise models: the choices of the `noise` parameter the problems declare, and its companions (the
// noise_* keys every such problem declares: the option group, not a problem's own noise_std).
void list_noise(const Registry& registry) {
  std::vector<std::string> models, companions;
  bool first = true;
  for (const auto* problem : registry.components(ComponentKind::problem)) {
    const auto& specs = problem->params;
    auto noise = std::find_if(specs.begin(), specs.end(), [](const ParamSpec& s) { return s.key == "noise"; });
    if (noise == specs.end()) continue;
    for (const auto& c : noise->constraint.choices)
      if (std::find(models.begin(), models.end(), c) == models.end()) models.push_back(c);
    std::vector<std::string> keys;
    for (const auto& s : specs)
      if (s.key.rfind("noise_", 0) == 0 && (first || std::find(companions.begin(), companions.end(), s.key) != companions.end()))
        keys.push_back(s.key);
    companions = keys;
    first = false;
  }
  std::cout << "noise (problem parameter 'noise'";
  for (std::size_t i = 0; i < companions.size(); ++i) std::cout << (i ? ", " : ", with ") << companions[i];
  std::cout << "):\n";
}

int command_list(const ListArgs& args, const Invocation&) {
  const std::string& what = args.what;
  Registry registry = registry_with_plugins(args.plugin);
  auto show = [&](const std::string& k) { return what == "all" || what == k; };
  // Names in one column per section, as wide as the section's longest name.
  auto rows = [](const std::vector<std::pair<std::string, std::string>>& items) {
    std::size_t width = 0;
    for (const auto& [name, text] : items) width = std::max(width, name.size());
    for (const auto& [name, text] : items)
      std::cout << "  " << std::left << std::setw(int(width)) << name << (text.empty() ? "" : "  " + text) << "\n";
  };
  auto section = [&](ComponentKind kind, const char* title) {
    std::cout << title << ":\n";
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto* c : registry.components(kind))
      items.emplace_back(c->key, c->summary + (c->origin == "built-in" ? "" : "  [" + c->origin + "]"));
    rows(items);
  };
  if (show("optimizers")) section(ComponentKind::optimizer, "optimizers");
  if (show("problems")) section(ComponentKind::problem, "problems");
  if (show("schedules")) section(ComponentKind::schedule, "schedules");
  if (show("noise")) {
    list_noise(registry);
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& law : noise_laws()) items.emplace_back(law.name, law.definition);
    rows(items);
  }
  if (show("presets")) {
    std::cout << "presets:\n";
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& p : list_presets()) items.emplace_back(p.name, p.description);
    rows(items);
  }
  if (show("views")) {
    std::cout << "views (experiment parameter 'views'):\n";
    std::vector<std::pair<std::string, std::string>> items;
    for (std::size_t i = 0; i < all_view_names().size(); ++i) items.emplace_back(all_view_names()[i], view_doc(View(i)));
    rows(items);
  }
  if (show("metrics")) {
    std::cout << "metrics (experiment parameter 'metrics'):\n";
    std::vector<std::pair<std::string, std::string>> items;
    for (std::size_t i = 0; i < all_metric_names().size(); ++i) items.emplace_back(all_metric_names()[i], metric_doc(Metric(i)));
    rows(items);
  }
  std::cout << "(`ratelab describe NAME` tells more of any of them)\n";
  return kExitOk;
}

struct DescribeArgs {
  std::string name;
  std::vector<std::string> plugin;
  static ParamTable<DescribeArgs> params() {
    return {param(&DescribeArgs::name, "name", unconstrained(),
                  "anything `list` shows: an optimizer, problem, schedule, noise law, preset, view or metric, or "
                  "'experiment'"),
            plugin_option(&DescribeArgs::plugin)};
  }
};

// A preset: its description, the explanation at the top of its file, and its sections as written.
void describe_preset(const PresetInfo& preset) {
  std::cout << "preset " << preset.name << " (" << preset.path << "): " << preset.description << "\n";
  std::ifstream in(preset.path);
  bool said = false;
  for (std::string line; std::getline(in, line) && line.rfind("#", 0) == 0;) {
    const std::string text = trim(line.substr(1));
    std::cout << (said ? "" : "  about:\n") << (text.empty() ? "" : "    " + text) << "\n";
    said = true;
  }
  const IniDocument doc = read_ini_file(preset.path);
  std::cout << "  sections:\n";
  for (const auto& section : doc.sections) {
    std::cout << "    [" << section.name << "]\n";
    for (const auto& e : section.entries) std::cout << "      " << e.key << " = " << e.value << "\n";
  }
  const bool quick = std::any_of(doc.sections.begin(), doc.sections.end(), [](const IniSection& s) { return s.name == "quick"; });
  std::cout << "  run it: ratelab run " << preset.name << (quick ? " (--quick: at its [quick] size)" : "")
            << "; check its claims: ratelab verify " << preset.name << (quick ? " --quick" : "") << "\n";
}

// A noise law: its standard variate, its parameters (those that apply to it), the problems that take it.
void describe_noise(const Registry& registry, const NoiseLaw& law) {
  std::cout << "noise law " << law.name << " (problem parameter noise = " << law.name << "): " << law.definition << "\n";
  ParamSet chosen;
  chosen.set("noise", std::string(law.name));
  std::vector<ParamSpec> params;
  if (law.name != "none")
    for (const auto& spec : NoiseOptions::params().specs())
      if (spec.key != "noise" && applies(spec, chosen)) params.push_back(spec);
  if (!params.empty()) {
    std::cout << "  parameters (of the problem):\n";
    print_param_list(params);
  }
  std::string problems;
  for (const auto* c : registry.components(ComponentKind::problem))
    if (std::any_of(c->params.begin(), c->params.end(), [](const ParamSpec& s) { return s.key == "noise"; }))
      problems += (problems.empty() ? "" : ", ") + c->key;
  std::cout << "  problems that take it: " << problems << "\n";
}

// A view: its definition and the [experiment] parameters that shape it (named after it: suffix_alpha).
void describe_view(std::size_t view) {
  const std::string& name = all_view_names()[view];
  std::cout << "view " << name << " (experiment parameter views): " << view_doc(View(view)) << "\n";
  std::vector<ParamSpec> params;
  for (const auto& spec : ExperimentOptions::params().specs())
    if (spec.key.rfind(name + "_", 0) == 0) params.push_back(spec);
  if (params.empty()) {
    std::cout << "  no parameters\n";
  } else {
    std::cout << "  parameters (of [experiment]):\n";
    print_param_list(params);
  }
}

int command_describe(const DescribeArgs& args, const Invocation&) {
  const std::string& name = args.name;
  Registry registry = registry_with_plugins(args.plugin);
  if (name == "experiment") {
    print_params({ComponentKind::schedule, "experiment", "the [experiment] section of an experiment file",
                  ExperimentOptions::params().specs(), "built-in"},
                 "experiment section [experiment]");
    std::cout << "\n" << experiment_file_syntax();
    return kExitOk;
  }
  bool found = false;
  std::vector<std::string> all{"experiment"};
  // A name may be two things (heavy_ball: an optimizer and a preset): each is described.
  auto next = [&] {
    if (found) std::cout << "\n";
    found = true;
  };
  for (auto kind : {ComponentKind::optimizer, ComponentKind::problem, ComponentKind::schedule}) {
    if (registry.contains(kind, name)) {
      next();
      print_params(registry.info(kind, name));
    }
    for (const auto& k : registry.keys(kind)) all.push_back(k);
  }
  for (const auto& law : noise_laws()) {
    if (law.name == name) next(), describe_noise(registry, law);
    all.push_back(law.name);
  }
  for (const auto& preset : list_presets()) {
    if (preset.name == name) next(), describe_preset(preset);
    all.push_back(preset.name);
  }
  for (std::size_t v = 0; v < all_view_names().size(); ++v) {
    if (all_view_names()[v] == name) next(), describe_view(v);
    all.push_back(all_view_names()[v]);
  }
  for (std::size_t m = 0; m < all_metric_names().size(); ++m) {
    if (all_metric_names()[m] == name) {
      next();
      std::cout << "metric " << name << " (experiment parameter metrics): " << metric_doc(Metric(m))
                << "\n  no parameters; recorded for every view at every checkpoint\n";
    }
    all.push_back(all_metric_names()[m]);
  }
  if (!found) throw ConfigError(unknown_key_message("name", name, all) + " (`ratelab list` shows them all)");
  return kExitOk;
}

// Exit 0 when every component of the plugin passes every check, 3 when one fails.
struct CheckPluginArgs {
  std::string library;
  std::vector<std::string> plugin;
  ConformanceOptions conformance;
  static ParamTable<CheckPluginArgs> params() {
    return ParamTable<CheckPluginArgs>{
        param(&CheckPluginArgs::library, "library", unconstrained(), "plugin library (.so)"),
        plugin_option(&CheckPluginArgs::plugin, "also load this plugin first (its keys must not collide); not checked")}
        .with(&CheckPluginArgs::conformance, ConformanceOptions::params());
  }
};

// Replaces this process with the program `name` from this executable's directory, same arguments;
// `argv0` is what the program sees as its name. `purpose` and `target` say what is missing if it is.
[[noreturn]] void exec_sibling(const std::string& name, const std::string& argv0, const Invocation& invocation,
                               const std::string& purpose, const std::string& target) {
  const std::filesystem::path helper = std::filesystem::read_symlink("/proc/self/exe").parent_path() / name;
  if (!std::filesystem::exists(helper))
    throw std::runtime_error(purpose + " in " + helper.string() + ", which is missing (build the target " + target +
                             "; `cmake --install` puts it beside ratelab)");
  std::vector<std::string> words{argv0};
  words.insert(words.end(), invocation.arguments.begin(), invocation.arguments.end());
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  ::execv(helper.c_str(), argv.data());
  throw std::runtime_error("cannot run " + helper.string() + ": " + std::strerror(errno));
}

// In `ratelab` (no suite linked, cli.hpp's ConformanceSuite): ratelab-check-plugin runs the command; the
// options were checked already.
int exec_check_plugin(const Invocation& invocation) {
  const std::string helper =
      (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "ratelab-check-plugin").string();
  exec_sibling("ratelab-check-plugin", helper, invocation, "check-plugin runs the conformance suite",
               "ratelab_check_plugin");
}

int command_check_plugin(const CheckPluginArgs& args, const Invocation& invocation) {
  if (!invocation.conformance_suite) return exec_check_plugin(invocation);
  Registry registry = registry_with_plugins(args.plugin);
  LoadedPlugin plugin = load_plugin(registry, args.library);
  std::cout << plugin.origin << ": " << plugin.optimizers.size() << " optimizer(s)\n";
  return invocation.conformance_suite(registry, plugin.optimizers, args.conformance) ? kExitOk : kExitRunErrors;
}

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

std::vector<std::string> command_names() {
  std::vector<std::string> names;
  for (const auto& c : commands()) names.push_back(c.name);
  return names;
}

int dispatch(const std::string& name, const std::vector<std::string>& args, const Invocation& invocation) {
  try {
    const auto& table = commands();
    const auto command = std::find_if(table.begin(), table.end(), [&](const Command& c) { return c.name == name; });
    if (command == table.end())
      throw Usage(unknown_key_message("command", name, command_names()) + "\n\n" + main_help());
    return command->run(*command, args, invocation);
  } catch (const distributed::PeerFailure& e) {
    return e.exit_code;  // another rank of the MPI job failed first and printed why
  } catch (const Usage& e) {
    if (*e.what() == '\0') return kExitOk;  // --help
    return fail(kExitUsage, [&] { std::cerr << "ratelab " << name << ": " << e.what() << "\n"; });
  } catch (const ConfigError& e) {
    return fail(kExitUsage, [&] {
      std::cerr << "ratelab " << name << ": error:\n";
      for (const auto& p : e.problems()) std::cerr << "  " << p << "\n";
    });
  } catch (const std::bad_alloc&) {
    const std::string context = take_allocation_context();
    return fail(kExitInternal, [&] {
      std::cerr << "ratelab " << name << ": out of memory"
                << (context.empty() ? std::string(" (std::bad_alloc, at a point that does not say what it was doing)")
                                    : " while " + context)
                << ": make the job smaller, or run it where more memory is available\n";
    });
  } catch (const std::exception& e) {
    return fail(kExitInternal, [&] { std::cerr << "ratelab " << name << ": internal error: " << e.what() << "\n"; });
  }
}

}  // namespace

// ---- the table --------------------------------------------------------------------------------------------

const std::vector<Command>& commands() {
  using Keys = std::vector<std::string>;
  static const std::vector<Command> table{
      //      name, arguments, one-line help, positional keys, required keys, function[, notes for its --help]
      command("run", "EXPERIMENT", "run an experiment file or preset, write an HDF5 trace file", Keys{"experiment"},
              Keys{"experiment"}, command_run),
      command("list", "[WHAT]", "list optimizers, problems, schedules, noise, presets, views, metrics", Keys{"what"},
              Keys{}, command_list),
      command("describe", "NAME", "parameters of a component (type, default, constraint, meaning)", Keys{"name"},
              Keys{"name"}, command_describe),
      [] {
        Command row = command("plot", "FILES [-o F]", "convergence curves with quantile bands (.png, .svg, .pdf, .tex)",
                              Keys{"files"}, Keys{"files"}, command_plot,
                              "the file's stored [plot] section applies first, these options over it; the figure\n"
                              "goes next to FILE (.png) unless -o or --data is given. Several files: their\n"
                              "configurations together (labels must differ), -o required, no stored [plot]");
        row.run = run_plot_command;
        return row;
      }(),
      command("summary", "FILES", "final values and fitted rates with bootstrap intervals", Keys{"files"}, Keys{"files"},
              command_summary, "several files: their configurations together (labels must differ)"),
      command("compare", "FILES --a A --b B", "paired difference of two configurations", Keys{"files"}, Keys{"files"},
              command_compare, "several files: A and B may come from different files (labels must differ)"),
      command("ert", "FILES --targets T,...", "fixed target: hitting times, success fractions, expected running time",
              Keys{"files"}, Keys{"files", "targets"}, command_ert,
              "hitting time (--hits): the run's budget (--budget step | gradient_evaluations | elapsed_seconds) at\n"
              "the first step the run loop evaluated with metric < target (recorded: experiment.targets, the\n"
              "default when the files have them), at the first stored checkpoint with metric <= target\n"
              "(checkpoint: conservative, the run may have crossed between checkpoints), or at the first checkpoint\n"
              "whose best value so far is <= target (best_so_far); the output names the one used; failed runs\n"
              "never reach it; ERT = (successes' hitting times + what each unsuccessful\n"
              "run spent: T steps, or its budget at its last recorded checkpoint) / successes; several files:\n"
              "their configurations' labels must differ"),
      command("ecdf", "FILES [-o F.png]", "runtime ECDF over log-spaced targets (per configuration or --by KEY), its area",
              Keys{"files"}, Keys{"files"}, command_ecdf,
              "targets: --count values log-spaced from --from down to --to; hitting times as for `ert` (--hits,\n"
              "in --budget); auc: the area under the ECDF over log budget,\n"
              "over its range"),
      command("profile", "FILES [-o F.png]", "performance profile (Dolan-More) or data profile (More-Wild) of ERTs",
              Keys{"files"}, Keys{"files"}, command_profile,
              "a problem: the values of --problem keys (default problem, problem.*) x each target; a solver: the\n"
              "other parameters; cost: the ERT in --budget (as `ert`); --kind performance (ratio to the best) or data"),
      command("report", "FILES -o F.html", "one self-contained HTML page: experiment, claims, figures, summary",
              Keys{"files"}, Keys{"files", "output"}, command_report),
      command("inspect", "FILE", "what a trace file holds", Keys{"file"}, Keys{"file"}, command_inspect),
      command("export", "FILES -o F", "the runs as one long CSV table (a row per configuration, replicate, view, step)",
              Keys{"files"}, Keys{"files", "output"}, command_export,
              "columns: configuration id, label, every parameter, f_star, view, replicate, step, the metrics,\n"
              "gradient_evaluations, elapsed_seconds, best_so_far (with targets), status, stop_step, wall_seconds,\n"
              "eval_seconds, stats.NAME, target_step[METRIC<TARGET] and target_gradient_evaluations[METRIC<TARGET] per\n"
              "target (with targets; a file column first when several files are given)"),
      command("merge", "PARTS -o F", "merge shards (run --shard i/N), or experiments of one layout, into one file",
              Keys{"inputs"}, Keys{"inputs", "output"}, command_merge,
              "the shards of one experiment give its file; files of different experiments with the same replicates,\n"
              "checkpoints, views, metrics and targets give the union of their configurations (README: Growing a study)"),
      command("slurm", "EXPERIMENT --array N", "write a Slurm job-array script (one shard per task, then a merge)",
              Keys{"experiment"}, Keys{"experiment", "array"}, command_slurm),
      command("verify", "EXPERIMENT", "run an experiment (or read --from FILE.h5) and check its [claims]",
              Keys{"experiment"}, Keys{"experiment"}, command_verify,
              "exit codes: 0 every claim holds, 5 some claim failed, 2 bad input, 3/4 as for run"),
      command("check-plugin", "LIB", "load a plugin and run the optimizer conformance suite on its components",
              Keys{"library"}, Keys{"library"}, command_check_plugin,
              "exit codes: 0 every component conforms, 3 some check failed"),
  };
  return table;
}

std::string main_help() {
  std::ostringstream out;
  out << "ratelab: convergence studies of stochastic optimizers\n" << version_line() << "\n\n"
      << kMainHelpIntro << "\ncommands:\n";
  for (const auto& c : commands()) {
    const std::string synopsis = c.name + " " + c.arguments;
    out << "  " << std::left << std::setw(27) << synopsis << " " << c.help << "\n";
  }
  out << "\n" << kMainHelpOutro;
  return out.str();
}

int run(int argc, char** argv, ConformanceSuite conformance_suite) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" || std::string(argv[1]) == "help") {
    std::cout << main_help();
    return argc < 2 ? kExitUsage : kExitOk;
  }
  if (std::string(argv[1]) == "--version" || std::string(argv[1]) == "-V") {
    std::cout << version_line() << "\n";
    return kExitOk;
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  const int code = dispatch(argv[1], args,
                            Invocation{command_line(argc, argv), {argv + 1, argv + argc}, argv[0], conformance_suite});
  g_cluster.reset();  // MPI_Finalize
  return code;
}

}  // namespace ratelab::cli
