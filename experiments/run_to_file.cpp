#include "experiments/run_to_file.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <set>
#include <thread>
#include <algorithm>

namespace ratelab {

namespace build_info {
extern const char* const git_commit;
extern const bool git_dirty;
extern const char* const version;
extern const char* const compiler;
extern const char* const compile_flags;
}  // namespace build_info

namespace {

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

std::vector<std::string> preset_directories() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("RATELAB_PRESET_PATH")) {
    std::string s = env;
    std::size_t start = 0;
    while (start <= s.size()) {
      auto colon = s.find(':', start);
      std::string d = s.substr(start, colon - start);
      if (!d.empty()) dirs.push_back(d);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  // Installed layout: <prefix>/bin/ratelab and <prefix>/share/ratelab/presets.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back((exe.parent_path().parent_path() / "share" / "ratelab" / "presets").string());
  dirs.push_back(RATELAB_PRESET_DIR);
  return dirs;
}

std::string first_comment_line(const std::string& path) {
  // A preset's description is its [experiment] description, else its first comment line.
  try {
    auto doc = read_ini_file(path);
    for (const auto& s : doc.sections)
      if (s.name == "experiment")
        for (const auto& e : s.entries)
          if (e.key == "description") return e.value;
  } catch (const std::exception&) {
  }
  return "";
}

}  // namespace

std::vector<PresetInfo> list_presets() {
  std::vector<PresetInfo> out;
  std::set<std::string> seen;
  for (const auto& dir : preset_directories()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::filesystem::path> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
      if (entry.path().extension() == ".ini") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      const std::string name = f.stem().string();
      if (seen.insert(name).second) out.push_back({name, f.string(), first_comment_line(f.string())});
    }
  }
  return out;
}

std::string find_experiment(const std::string& name_or_path) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(name_or_path, ec)) return name_or_path;
  std::vector<std::string> names;
  for (const auto& p : list_presets()) {
    if (p.name == name_or_path) return p.path;
    names.push_back(p.name);
  }
  throw ConfigError("'" + name_or_path + "' is neither an experiment file nor a preset: " +
                    unknown_key_message("preset", name_or_path, names));
}

results::TraceLayout trace_layout(const PreparedExperiment& experiment, int threads, const std::string& command_line) {
  const ExperimentPlan& plan = experiment.plan();
  results::TraceLayout layout;
  layout.experiment_name = plan.options.name;
  layout.experiment_text = plan.resolved_text;
  layout.replicates = plan.options.replicates;
  layout.checkpoints = plan.run.checkpoints;
  for (View v : plan.run.views) layout.views.push_back(view_name(v));
  layout.metrics = experiment.metric_names();
  for (const auto& c : plan.configurations) {
    results::ConfigurationRecord rec;
    rec.id = c.id;
    rec.label = c.label;
    for (const auto* part : {&c.problem, &c.optimizer, &c.schedule}) {
      const std::string kind = part == &c.problem ? "problem" : part == &c.optimizer ? "optimizer" : "schedule";
      rec.parameters.emplace_back(kind, part->key);
      for (const auto& [k, v] : part->params.entries()) rec.parameters.emplace_back(kind + "." + k, v);
    }
    rec.parameters.emplace_back("stream_salt", std::to_string(c.salt));
    for (const auto& [k, v] : experiment.instance_stats(c.index)) rec.instance.emplace_back(k, v);
    layout.configurations.push_back(std::move(rec));
  }
  auto& root = layout.root;
  root.emplace_back("ratelab_version", std::string(build_info::version));
  root.emplace_back("git_commit", std::string(build_info::git_commit));
  root.emplace_back("git_dirty", build_info::git_dirty);
  root.emplace_back("compiler", std::string(build_info::compiler));
  root.emplace_back("compile_flags", std::string(build_info::compile_flags));
  root.emplace_back("host", host_name());
  root.emplace_back("threads", std::int64_t(threads));
  root.emplace_back("date", utc_now());
  root.emplace_back("command_line", command_line);
  root.emplace_back("experiment_name", plan.options.name);
  for (const auto& [k, v] : plan.experiment_params.entries()) root.emplace_back("experiment." + k, v);
  if (!plan.skipped.empty()) {
    std::vector<std::string> skipped = plan.skipped;
    root.emplace_back("skipped_configurations", skipped);
  }
  return layout;
}

SweepSummary run_experiment_to_file(const Registry& registry, ExperimentPlan& plan, const RunToFileOptions& options) {
  PreparedExperiment experiment(registry, plan);
  const int threads = options.sweep.threads > 0 ? options.sweep.threads : int(std::thread::hardware_concurrency());
  results::TraceWriter writer(options.output_path, trace_layout(experiment, threads, options.command_line),
                              options.overwrite ? results::WriteMode::overwrite : results::WriteMode::create_new);
  SweepSummary summary = run_sweep(experiment, options.sweep, [&](std::size_t c, long r, const RunResult& result) {
    writer.write_run(c, r, result);
  });
  writer.commit();
  return summary;
}

}  // namespace ratelab
