#include "experiments/run_to_file.hpp"

#include "experiments/build_info.hpp"
#include "experiments/distributed.hpp"
#include "core/rng.hpp"
#include "problems/data.hpp"
#include "results/fault_points.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <sstream>
#include <numeric>
#include <iomanip>
#include <algorithm>

namespace ratelab {

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

namespace {
// Bump when the fingerprint's inputs or their text change: old files then match nothing (safe).
constexpr int kRunFingerprintVersion = 1;

// FNV-1a 64 of a file's bytes as 16 hex digits ("absent" when it cannot be read: the problem's set-up
// would have refused it).
std::string file_content_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "absent";
  std::uint64_t h = 0xcbf29ce484222325ULL;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    for (std::streamsize i = 0; i < in.gcount(); ++i) h = (h ^ static_cast<unsigned char>(buffer[i])) * 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// Experiment keys that change no run's bits: what is recorded about the study, how many replicates it has,
// where data sets are looked up (their contents count, below), and how refusals are handled. checkpoints,
// views and metrics enter resolved (the checkpoint steps, the metrics the problems provide).
bool outside_run_fingerprint(const std::string& experiment_key) {
  static const std::set<std::string> keys{"name",   "description", "replicates", "data_directory",
                                          "skip_invalid", "checkpoints", "views", "metrics"};
  return keys.count(experiment_key) > 0;
}

std::string fingerprint_inputs(const PreparedExperiment& experiment, std::size_t index,
                               std::map<std::string, std::string>& content_hashes) {
  const ExperimentPlan& plan = experiment.plan();
  const Configuration& c = plan.configurations[index];
  std::string text = "run_fingerprint_version " + std::to_string(kRunFingerprintVersion) + "\n";
  text += "stream_layout_version " + std::to_string(kStreamLayoutVersion) + "\n";
  const std::pair<ComponentKind, const ComponentChoice*> parts[] = {
      {ComponentKind::problem, &c.problem}, {ComponentKind::optimizer, &c.optimizer}, {ComponentKind::schedule, &c.schedule}};
  const char* kinds[] = {"problem", "optimizer", "schedule"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& [kind, part] = parts[i];
    const std::string origin = experiment.registry().contains(kind, part->key)
                                   ? experiment.registry().info(kind, part->key).origin : "unregistered";
    text += std::string(kinds[i]) + " " + part->key + " (" + origin + ") " + part->params.canonical() + "\n";
  }
  text += "stream_salt " + std::to_string(c.salt) + "\n";
  ParamSet run_settings;
  // Without targets the target keys change nothing the run records: left out, so that files written before
  // the run loop had targets keep their fingerprints (and their runs can be reused).
  const bool targets = !plan.run.targets.empty();
  for (const auto& [key, value] : plan.experiment_params.entries()) {
    // Recording the iterates adds to what a run records, so it is in; at its default (off) it is left out,
    // and the fingerprints of files written before the key existed stay what they were.
    if (key == "record_iterates" && !plan.run.record_iterates) continue;
    if (!outside_run_fingerprint(key) && (targets || key.rfind("target", 0) != 0)) run_settings.set(key, value);
  }
  run_settings.set("steps", std::int64_t(c.steps));  // the configuration's own horizon (the plan's, unless it varies)
  text += "experiment " + run_settings.canonical() + "\n";
  text += "checkpoints";
  for (long t : plan.run.checkpoints) text += " " + std::to_string(t);
  text += "\nviews";
  for (View v : plan.run.views) text += std::string(" ") + view_name(v);
  text += "\nmetrics";
  for (const auto& m : experiment.metric_names()) text += " " + m;
  text += "\n";
  // The data the problem reads, by content: the same bytes under another directory are the same runs.
  if (const ParamValue* dataset = c.problem.params.find("dataset"))
    if (const auto* name = std::get_if<std::string>(dataset); name && !name->empty())
      for (const auto& file : dataset_files(*name, data_directory(plan.options))) {
        auto [it, fresh] = content_hashes.try_emplace(file);
        if (fresh) it->second = file_content_hash(file);
        text += "data " + std::filesystem::path(file).filename().string() + " fnv1a64 " + it->second + "\n";
      }
  return text;
}
}  // namespace

std::string run_fingerprint_inputs(const PreparedExperiment& experiment, std::size_t configuration) {
  std::map<std::string, std::string> content_hashes;
  return fingerprint_inputs(experiment, configuration, content_hashes);
}

std::vector<std::string> run_fingerprints(const PreparedExperiment& experiment) {
  std::map<std::string, std::string> content_hashes;
  std::vector<std::string> out;
  for (std::size_t c = 0; c < experiment.plan().configurations.size(); ++c)
    out.push_back(stable_id(fingerprint_inputs(experiment, c, content_hashes)));
  return out;
}

results::TraceLayout trace_layout(const PreparedExperiment& experiment, int threads, int ranks,
                                  const std::string& command_line) {
  const ExperimentPlan& plan = experiment.plan();
  results::TraceLayout layout;
  layout.experiment_name = plan.options.name;
  layout.experiment_text = plan.resolved_text;
  layout.replicates = plan.options.replicates;
  layout.checkpoints = plan.run.checkpoints;
  for (View v : plan.run.views) layout.views.push_back(view_name(v));
  layout.metrics = experiment.metric_names();
  layout.targets = plan.run.targets;
  if (!layout.targets.empty()) layout.target_metric = metric_name(plan.run.target_metric);
  for (std::size_t c = 0; c < plan.configurations.size(); ++c)
    for (const auto& name : experiment.problem(c, 0)->extra_metric_names())
      if (std::find(layout.extra_metrics.begin(), layout.extra_metrics.end(), name) == layout.extra_metrics.end())
        layout.extra_metrics.push_back(name);
  const std::vector<std::string> fingerprints = run_fingerprints(experiment);
  for (const auto& c : plan.configurations) {
    results::ConfigurationRecord rec = configuration_record(c);
    rec.run_fingerprint = fingerprints[c.index];
    if (plan.run.record_iterates) {
      rec.dimension = long(experiment.problem(c.index, 0)->dim());
      layout.iterate_dimension = std::max(layout.iterate_dimension, rec.dimension);
    }
    for (const auto& [k, v] : experiment.instance_stats(c.index)) rec.instance.emplace_back(k, v);
    const auto& f_star = experiment.f_star(c.index);
    rec.f_star = f_star.value;
    rec.f_star_source = f_star.source;
    rec.f_star_method = f_star.method;
    layout.configurations.push_back(std::move(rec));
  }
  auto& root = layout.root;
  root.emplace_back("ratelab_version", std::string(build_info::version));
  root.emplace_back("git_commit", std::string(build_info::git_commit));
  root.emplace_back("git_dirty", build_info::git_dirty);
  root.emplace_back("compiler", std::string(build_info::compiler));
  root.emplace_back("compile_flags", std::string(build_info::compile_flags));
  root.emplace_back("stream_layout_version", std::int64_t(kStreamLayoutVersion));
  root.emplace_back("host", host_name());
  root.emplace_back("threads", std::int64_t(threads));
  root.emplace_back("ranks", std::int64_t(ranks));
  root.emplace_back("date", utc_now());
  root.emplace_back("command_line", command_line);
  root.emplace_back("experiment_name", plan.options.name);
  for (const auto& [k, v] : plan.experiment_params.entries()) root.emplace_back("experiment." + k, v);
  if (!plan.plot_text.empty()) root.emplace_back("plot", plan.plot_text);
  // Provenance of components that do not come from this build: the plugin name, version, path and hash.
  std::set<std::string> plugin_origins;
  for (const auto& c : plan.configurations) {
    const std::pair<ComponentKind, const std::string*> parts[] = {{ComponentKind::problem, &c.problem.key},
                                                                 {ComponentKind::optimizer, &c.optimizer.key},
                                                                 {ComponentKind::schedule, &c.schedule.key}};
    for (const auto& [kind, key] : parts)
      if (experiment.registry().contains(kind, *key)) {
        const std::string& origin = experiment.registry().info(kind, *key).origin;
        if (origin != "built-in") plugin_origins.insert(origin);
      }
  }
  if (!plugin_origins.empty())
    root.emplace_back("plugins", std::vector<std::string>(plugin_origins.begin(), plugin_origins.end()));
  if (!plan.skipped.empty()) {
    std::vector<std::string> skipped = plan.skipped;
    root.emplace_back("skipped_configurations", skipped);
  }
  return layout;
}

namespace {
// One run as stored in a trace file, in the run loop's layout (for resume and merge).
RunResult run_from_trace_data(const results::TraceData& data, std::size_t c, long r) {
  const std::size_t V = data.layout.views.size(), K = data.layout.checkpoints.size(), M = data.layout.metrics.size();
  const std::size_t i = (c - data.first_configuration) * std::size_t(data.layout.replicates) + std::size_t(r);
  RunResult res;
  res.status = data.status[i];
  res.stop_step = data.stop_step[i];
  res.wall_seconds = data.wall_seconds[i];
  res.eval_seconds = data.eval_seconds[i];
  res.message = data.messages[i];
  res.traces.resize(M * V * K);
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t k = 0; k < K; ++k) res.traces[(m * V + v) * K + k] = data.trace(m, c, v, std::size_t(r), k);
  for (const auto& [name, values] : data.run_stats)
    if (!std::isnan(values[i])) res.stats.emplace_back(name, values[i]);
  for (std::size_t e = 0; e < data.layout.extra_metrics.size(); ++e) {
    res.extra_names.push_back(data.layout.extra_metrics[e]);
    for (std::size_t k = 0; k < K; ++k) res.extra_traces.push_back(data.extra[e][i * K + k]);
  }
  res.gradient_evaluations.assign(data.gradient_evaluations.begin() + long(i * K), data.gradient_evaluations.begin() + long((i + 1) * K));
  res.elapsed_seconds.assign(data.elapsed_seconds.begin() + long(i * K), data.elapsed_seconds.begin() + long((i + 1) * K));
  if (!data.layout.targets.empty()) {
    const std::size_t T = data.layout.targets.size();
    res.target_steps.assign(data.target_steps.begin() + long(i * T), data.target_steps.begin() + long((i + 1) * T));
    res.target_gradient_evaluations.assign(data.target_gradient_evaluations.begin() + long(i * T),
                                           data.target_gradient_evaluations.begin() + long((i + 1) * T));
    res.best_so_far.assign(data.best_so_far.begin() + long(i * K), data.best_so_far.begin() + long((i + 1) * K));
  }
  if (!data.iterates.empty()) {
    // The file pads every configuration to D components; the run holds its own d.
    const std::size_t d = std::size_t(data.layout.configurations[c].dimension);
    res.iterates.resize(V * K * d);
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = 0; j < d; ++j) res.iterates[(v * K + k) * d + j] = data.iterate(c, v, std::size_t(r), k, j);
  }
  return res;
}

bool finished(RunStatus status) {
  return status == RunStatus::ok || status == RunStatus::diverged || status == RunStatus::error ||
         status == RunStatus::nonfinite;
}

// A run read from another file keeps only the problem-specific metrics the output's layout has: the others
// are the NaN columns of configurations that file held and this one does not.
void keep_layout_extras(RunResult& run, const std::vector<std::string>& layout_extras) {
  const std::size_t K = run.extra_names.empty() ? 0 : run.extra_traces.size() / run.extra_names.size();
  std::vector<std::string> names;
  std::vector<double> traces;
  for (std::size_t e = 0; e < run.extra_names.size(); ++e)
    if (std::find(layout_extras.begin(), layout_extras.end(), run.extra_names[e]) != layout_extras.end()) {
      names.push_back(run.extra_names[e]);
      traces.insert(traces.end(), run.extra_traces.begin() + long(e * K), run.extra_traces.begin() + long((e + 1) * K));
    }
  run.extra_names = std::move(names);
  run.extra_traces = std::move(traces);
}

// How many configurations of a file to read at once so that a window holds about window_bytes of run data
// (at least one configuration).
std::size_t configuration_window(const results::TraceLayout& layout, std::size_t window_bytes) {
  const std::size_t run_bytes =
      8 * ((layout.metrics.size() * layout.views.size() + layout.extra_metrics.size() + 3 + (layout.targets.empty() ? 0 : 1) +
            layout.views.size() * std::size_t(layout.iterate_dimension)) *
               layout.checkpoints.size() +
           2 * layout.targets.size()) +
      64;
  return std::max<std::size_t>(1, window_bytes / (run_bytes * std::size_t(std::max(1L, layout.replicates))));
}

// What can change a run's bits for the same inputs, besides the run fingerprint: the build.
const char* const kBuildKeys[] = {"ratelab_version", "git_commit", "git_dirty", "compiler", "compile_flags"};

std::string root_text(const results::Attributes& root, const std::string& key) {
  for (const auto& [k, v] : root)
    if (k == key) return format_value(v);
  return "(absent)";
}

// Which runs of the new experiment come from which reused file (`run --reuse`).
struct ReusePlan {
  std::vector<std::string> files;
  std::vector<std::vector<std::size_t>> match;  // [file][configuration]: that file's configuration, or npos
  std::vector<int> source;                      // [configuration * R + replicate]: the file to copy from, or -1
  std::vector<long> runs_from;                  // [file]: how many runs it gives
  std::vector<std::string> notes;               // accepted build differences, for the user
};

// Matches the runs not in `skip` (kept by --resume, outside the shard) against each file's finished runs
// by (run fingerprint, replicate), the first file that has one winning.
ReusePlan plan_reuse(const std::vector<std::string>& files, const results::TraceLayout& layout,
                     const std::vector<bool>& skip, bool other_builds) {
  ReusePlan plan;
  plan.files = files;
  const std::size_t C = layout.configurations.size();
  const long R = layout.replicates;
  plan.source.assign(C * std::size_t(R), -1);
  std::vector<std::string> problems;
  for (std::size_t f = 0; f < files.size(); ++f) {
    const results::TraceData old = results::read_trace_outline(files[f]);
    const results::TraceLayout& was = old.layout;
    plan.runs_from.push_back(0);
    plan.match.emplace_back(C, SIZE_MAX);
    if (std::all_of(was.configurations.begin(), was.configurations.end(),
                    [](const auto& c) { return c.run_fingerprint.empty(); })) {
      problems.push_back("--reuse " + files[f] + ": the file has no run fingerprints (it was written by a ratelab "
                         "from before them), so none of its runs can be matched safely; leave it out");
      continue;
    }
    // Runs drawn under another random-stream layout never match (the layout is in every run fingerprint);
    // say why instead of silently recomputing everything. Files from before the attribute drew layout 1.
    const std::string their_layout = root_text(was.root, "stream_layout_version");
    const std::string layout_version = their_layout == "(absent)" ? "1" : their_layout;
    if (layout_version != std::to_string(kStreamLayoutVersion)) {
      problems.push_back("--reuse " + files[f] + ": its runs were drawn with random-stream layout " + layout_version +
                         ", this ratelab draws layout " + std::to_string(kStreamLayoutVersion) +
                         " (core/rng.hpp, kStreamLayoutVersion: other normal variates), so none of them can be "
                         "reused; leave it out and rerun those runs");
      continue;
    }
    std::string differences;
    for (const char* key : kBuildKeys) {
      const std::string theirs = root_text(was.root, key), ours = root_text(layout.root, key);
      if (theirs != ours) differences += std::string(differences.empty() ? "" : "; ") + key + " " + theirs + " there, " + ours + " here";
    }
    if (!differences.empty()) {
      if (!other_builds) {
        problems.push_back("--reuse " + files[f] + " was written by another ratelab build (" + differences +
                           "): its runs may differ bit for bit from what this build computes. Rerun without it, or "
                           "pass --reuse-other-builds to copy them anyway (the output records where they came from)");
        continue;
      }
      plan.notes.push_back(files[f] + " comes from another build (" + differences + "); reused anyway (--reuse-other-builds)");
    }
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t c = 0; c < was.configurations.size(); ++c)
      if (!was.configurations[c].run_fingerprint.empty()) index.emplace(was.configurations[c].run_fingerprint, c);
    for (std::size_t c = 0; c < C; ++c) {
      const auto it = index.find(layout.configurations[c].run_fingerprint);
      if (it == index.end()) continue;
      plan.match[f][c] = it->second;
      for (long r = 0; r < std::min(R, was.replicates); ++r) {
        const std::size_t j = c * std::size_t(R) + std::size_t(r);
        if (skip[j] || plan.source[j] >= 0 || !finished(old.status[it->second * std::size_t(was.replicates) + std::size_t(r)]))
          continue;
        plan.source[j] = int(f);
        ++plan.runs_from[f];
      }
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
  return plan;
}

// The plan, per configuration: what --resume keeps, what is copied, what runs.
std::string describe_plan(const results::TraceLayout& layout, const std::vector<bool>& kept, const std::vector<bool>& outside,
                          const ReusePlan& reuse, bool every_configuration) {
  const std::size_t C = layout.configurations.size();
  const long R = layout.replicates;
  std::vector<long> kept_n(C), reused_n(C), run_n(C);
  for (std::size_t j = 0; j < C * std::size_t(R); ++j) {
    const std::size_t c = j / std::size_t(R);
    if (outside[j]) continue;
    if (kept[j]) ++kept_n[c];
    else if (reuse.source[j] >= 0) ++reused_n[c];
    else ++run_n[c];
  }
  const long total_kept = std::accumulate(kept_n.begin(), kept_n.end(), 0L),
             total_reused = std::accumulate(reused_n.begin(), reused_n.end(), 0L),
             total_run = std::accumulate(run_n.begin(), run_n.end(), 0L);
  std::ostringstream out;
  out << "plan: " << C << " configurations x " << R << " replicates";
  if (total_kept + total_reused + total_run != long(C) * R) out << " (" << total_kept + total_reused + total_run << " in this share)";
  out << ": " << total_reused << " reused";
  if (total_kept) out << ", " << total_kept << " kept by --resume";
  out << ", " << total_run << " to run\n";
  for (std::size_t f = 0; f < reuse.files.size(); ++f)
    out << "  from " << reuse.files[f] << ": " << reuse.runs_from[f] << " runs\n";
  for (const auto& note : reuse.notes) out << "  note: " << note << "\n";
  if (!every_configuration) {
    out << "  (" << C << " configurations; --dry-run lists each)\n";
    return out.str();
  }
  std::size_t width = std::string("configuration").size();
  for (const auto& c : layout.configurations) width = std::max(width, c.label.size());
  out << "  " << std::left << std::setw(int(width)) << "configuration" << std::right << "  reused  "
      << (total_kept ? "  kept  " : "") << "to run\n";
  for (std::size_t c = 0; c < C; ++c) {
    out << "  " << std::left << std::setw(int(width)) << layout.configurations[c].label << std::right << "  "
        << std::setw(6) << reused_n[c] << "  ";
    if (total_kept) out << std::setw(6) << kept_n[c] << "  ";
    out << std::setw(6) << run_n[c] << "\n";
  }
  return out.str();
}

// Copies the planned runs of each reused file into the output, a window of the file's configurations at
// a time; `write` gets (configuration, replicate, run) in the output's numbering.
template <class Write>
void copy_reused_runs(const ReusePlan& plan, const results::TraceLayout& layout, std::size_t window_bytes, Write&& write) {
  const std::size_t C = layout.configurations.size();
  const long R = layout.replicates;
  for (std::size_t f = 0; f < plan.files.size(); ++f) {
    if (plan.runs_from[f] == 0) continue;
    const results::TraceReader reader(plan.files[f]);
    const results::TraceLayout& was = reader.outline().layout;
    const std::size_t window = configuration_window(was, window_bytes);
    std::vector<std::size_t> order;  // this output's configurations that take runs from file f, by the file's index
    for (std::size_t c = 0; c < C; ++c)
      if (plan.match[f][c] != SIZE_MAX) order.push_back(c);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return plan.match[f][a] < plan.match[f][b]; });
    for (std::size_t i = 0; i < order.size();) {
      const std::size_t begin = plan.match[f][order[i]], end = std::min(was.configurations.size(), begin + window);
      const results::TraceData part = reader.configurations(begin, end);
      for (; i < order.size() && plan.match[f][order[i]] < end; ++i) {
        const std::size_t c = order[i];
        for (long r = 0; r < R; ++r)
          if (plan.source[c * std::size_t(R) + std::size_t(r)] == int(f)) {
            RunResult run = run_from_trace_data(part, plan.match[f][c], r);
            keep_layout_extras(run, layout.extra_metrics);
            write(c, r, run);
          }
      }
    }
  }
}
}  // namespace

ResumeState recover_finished_runs(const std::string& path, const results::TraceLayout& layout, bool journal_only) {
  namespace fs = std::filesystem;
  const std::uint64_t fingerprint = results::layout_fingerprint(layout);
  const std::size_t C = layout.configurations.size();
  const long R = layout.replicates;
  const std::string journal_path = path + ".journal";
  ResumeState state;
  state.done.assign(C * std::size_t(R), false);
  const bool have_file = !journal_only && fs::exists(path), have_journal = fs::exists(journal_path);
  if (journal_only && !have_journal)
    throw ConfigError("--resume --overwrite continues from " + journal_path + " alone, and there is no such file; "
                      "run with --overwrite to start over, or with --resume to continue from " + path);
  if (!have_file && !have_journal)
    throw ConfigError("--resume: there is nothing to resume at " + path + " (no file, no " + journal_path +
                      "); run without --resume");
  auto refuse = [&](const std::string& what) {
    return ConfigError("--resume: " + what + " belongs to a different experiment (its resolved configurations, "
                       "seeds, replicates, checkpoints, views or metrics differ from this one's); run the "
                       "experiment that wrote it, or write to another file");
  };
  // The journal first: whether it is this experiment's decides what to say about a foreign file. Only where
  // each run's last finished record lies is kept, not the records (a journal can exceed the memory).
  std::optional<results::JournalContents> journal;
  long journal_records = 0;
  std::vector<std::size_t> first_finished;  // runs in the order the journal first names them finished
  if (have_journal) {
    state.journal = std::make_shared<results::JournalReader>(journal_path);
    if (state.journal->fingerprint() != fingerprint) throw refuse(journal_path);
    state.journal_record.assign(C * std::size_t(R), ResumeState::no_record);
    journal = state.journal->scan([&](std::uint64_t offset, results::JournalRecord&& rec) {
      if (rec.configuration >= C || rec.replicate < 0 || rec.replicate >= R)
        throw ConfigError("--resume: " + journal_path + " is inconsistent: it is this experiment's journal, but a record "
                          "passing its checksum names run (configuration " + std::to_string(rec.configuration) +
                          ", replicate " + std::to_string(rec.replicate) + ") outside the experiment's " +
                          std::to_string(C) + " x " + std::to_string(R) + " runs. It was damaged or written by a "
                          "different ratelab build; move it away and run with --overwrite");
      ++journal_records;
      if (!finished(rec.result.status)) return;  // interrupted or missing: run again
      const std::size_t j = rec.configuration * std::size_t(R) + std::size_t(rec.replicate);
      if (state.journal_record[j] == ResumeState::no_record) first_finished.push_back(j);
      state.journal_record[j] = offset;
    });
  }
  long from_file = 0;
  if (have_file) {
    const results::TraceReader reader(path);
    const results::TraceData& outline = reader.outline();
    if (const std::string theirs = root_text(outline.layout.root, "stream_layout_version"),
        version = theirs == "(absent)" ? "1" : theirs;
        version != std::to_string(kStreamLayoutVersion))
      throw ConfigError("--resume: " + path + " holds runs drawn with random-stream layout " + version +
                        ", this ratelab draws layout " + std::to_string(kStreamLayoutVersion) +
                        " (other normal variates), and a file never mixes the two; rerun it with --overwrite, or "
                        "finish it with the ratelab that started it");
    if (results::layout_fingerprint(outline.layout) != fingerprint) {
      if (journal_records > 0)
        throw ConfigError("--resume: " + path + " belongs to a different experiment, but " + journal_path + " holds " +
                          std::to_string(journal_records) + " finished runs of this one (a `run --overwrite` "
                          "was stopped before it replaced " + path + "). To keep them and replace " + path +
                          ", run with --resume --overwrite; to keep " + path + ", move it elsewhere first, then run "
                          "with --resume");
      throw refuse(path);
    }
    state.file = path;
    for (std::size_t j = 0; j < C * std::size_t(R); ++j)
      if (finished(outline.status[j])) {
        ++from_file;
        state.done[j] = true;
      }
  }
  if (journal) {
    // The journal's runs the file does not hold, in the order the journal first names them (as they were
    // written before: the order of the writes does not change the trace data, but keeping it costs nothing).
    for (std::size_t j : first_finished)
      if (!state.done[j]) state.journal_only.push_back(j);
    for (std::size_t j : first_finished) state.done[j] = true;
    if (journal->damaged_stretches > 0)
      state.note = "skipped " + std::to_string(journal->damaged_bytes) + " damaged bytes of " + journal_path + " (" +
                   std::to_string(journal->damaged_stretches) + " stretch" + (journal->damaged_stretches > 1 ? "es" : "") +
                   " failing the record checks; the valid records after them are kept, the runs lost run again); ";
    if (journal->truncated) state.note += "dropped a record cut short by a kill; ";
  }
  state.kept = long(std::count(state.done.begin(), state.done.end(), true));
  state.note += "recovered " + std::to_string(state.kept) + " finished runs (" +
                (journal_only ? std::string() : std::to_string(from_file) + " from " + path + ", ") +
                std::to_string(journal_records) + " from its journal)";
  return state;
}

void for_each_kept_run(const ResumeState& state, const results::TraceLayout& layout, std::size_t window_bytes,
                       const results::RunVisitor& visit) {
  const long R = layout.replicates;  // the file's too: resume checked that it is this experiment's
  results::JournalReader* const journal = state.journal.get();
  auto from_journal = [&](std::size_t j) {
    results::JournalRecord rec = journal->record_at(state.journal_record[j]);
    visit(rec.configuration, rec.replicate, rec.result);
  };
  if (!state.file.empty()) {
    const results::TraceReader reader(state.file);
    const results::TraceData& outline = reader.outline();
    const std::size_t C = outline.layout.configurations.size(), window = configuration_window(outline.layout, window_bytes);
    auto from_file = [&](std::size_t j) {
      return finished(outline.status[j]) && (!journal || state.journal_record[j] == ResumeState::no_record);
    };
    for (std::size_t begin = 0; begin < C; begin += window) {
      const std::size_t end = std::min(C, begin + window);
      // Only windows with a run to copy from the file are read.
      bool any = false;
      for (std::size_t j = begin * std::size_t(R); j < end * std::size_t(R) && !any; ++j) any = from_file(j);
      std::optional<results::TraceData> part;
      if (any) part = reader.configurations(begin, end);
      for (std::size_t c = begin; c < end; ++c)
        for (long r = 0; r < R; ++r) {
          const std::size_t j = c * std::size_t(R) + std::size_t(r);
          if (!finished(outline.status[j])) continue;
          if (from_file(j)) visit(c, r, run_from_trace_data(*part, c, r));
          else from_journal(j);
        }
    }
  }
  for (std::size_t j : state.journal_only) from_journal(j);
}

namespace {
OutputFailure output_failure(const std::string& target, const std::string& why, bool disk_full,
                             const results::Journal& journal) {
  return OutputFailure((disk_full ? "disk full while writing " : "cannot write ") + target + " (" + why + "); " +
                           std::to_string(journal.records()) + " finished runs are in " + journal.path(),
                       journal.path(), journal.records(), disk_full);
}
}  // namespace

SweepSummary run_experiment_to_file(const Registry& registry, const ExperimentPlan& input,
                                    const RunToFileOptions& options) {
  distributed::Cluster* const cluster = options.cluster && options.cluster->size() > 1 ? options.cluster : nullptr;
  const int threads = resolve_threads(options.sweep.threads);
  const PreparedExperiment experiment(registry, input, threads);
  const ExperimentPlan& plan = experiment.plan();
  if (options.shard_count < 1 || options.shard_index < 0 || options.shard_index >= options.shard_count)
    throw ConfigError("--shard " + std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count) +
                      " is out of range: need 0 <= i < N");
  results::TraceLayout layout = trace_layout(experiment, threads, cluster ? cluster->size() : 1, options.command_line);
  if (options.shard_count > 1) {
    layout.root.emplace_back("shard_index", std::int64_t(options.shard_index));
    layout.root.emplace_back("shard_count", std::int64_t(options.shard_count));
  }
  results::check_iterate_size(layout);  // before anything is written, on every rank
  if (options.dry_run && cluster && cluster->rank() > 0) return {};  // rank 0 prints the plan alone
  if (cluster && !options.dry_run) {
    cluster->agree(threads);  // point 1: every rank validated the experiment
    if (cluster->rank() > 0) {
      cluster->agree(threads);  // point 2: rank 0 opened its files
      SweepOptions sweep = options.sweep;
      sweep.threads = threads;
      return cluster->work(experiment, sweep);
    }
  }
  // The time reported is the whole job's (resume, copying reused runs, the sweep, the commit), not the
  // sweep's alone: a reuse run that copies 40,000 runs in 20 s and computes 1,000 in 5 s took 25 s.
  const auto started = std::chrono::steady_clock::now();
  const std::string journal_path = options.output_path + ".journal";
  // Before anything of the output is read or touched: a second writer stops here (a dry run writes nothing).
  std::optional<results::OutputLock> lock;
  if (!options.dry_run) lock.emplace(options.output_path);

  ResumeState resumed;
  if (options.resume) {
    resumed = recover_finished_runs(options.output_path, layout, options.overwrite);
  } else if (std::filesystem::exists(journal_path) && !options.overwrite) {
    throw ConfigError(journal_path + " exists: a sweep writing " + options.output_path +
                      " was killed before it finished. Continue it with --resume (finished runs are kept), or "
                      "start over with --overwrite");
  }
  // What this process skips: runs kept by --resume, runs of other shares, then runs copied by --reuse.
  const std::size_t total_runs = plan.configurations.size() * std::size_t(plan.options.replicates);
  std::vector<bool> kept = resumed.done, outside(total_runs, false);
  kept.resize(total_runs, false);
  if (options.shard_count > 1)
    for (std::size_t j = 0; j < total_runs; ++j) outside[j] = long(j % std::size_t(options.shard_count)) != options.shard_index;
  std::vector<bool> skip(total_runs);
  for (std::size_t j = 0; j < total_runs; ++j) skip[j] = kept[j] || outside[j];
  const ReusePlan reuse = plan_reuse(options.reuse, layout, skip, options.reuse_other_builds);
  if (options.dry_run || !options.reuse.empty()) {
    const bool every_configuration = options.dry_run || layout.configurations.size() <= 50;
    std::fprintf(options.dry_run ? stdout : stderr, "%s",
                 describe_plan(layout, kept, outside, reuse, every_configuration).c_str());
    std::fflush(options.dry_run ? stdout : stderr);
  }
  if (options.dry_run) return {};
  std::vector<std::string> reused_from;
  for (std::size_t f = 0; f < reuse.files.size(); ++f)
    if (reuse.runs_from[f] > 0) reused_from.push_back(reuse.files[f] + " (" + std::to_string(reuse.runs_from[f]) + " runs)");
  if (!reused_from.empty()) layout.root.emplace_back("reused_from", reused_from);
  const bool replace = options.overwrite || options.resume;
  results::TraceWriter writer(options.output_path, layout,
                              replace ? results::WriteMode::overwrite : results::WriteMode::create_new);
  // The runs --resume keeps are streamed twice, into the new journal and into the file, a window at a time
  // (a resume after 80,000 of 100,000 runs would otherwise hold the 80,000).
  const auto kept_runs = [&](const results::RunVisitor& visit) {
    if (options.resume) for_each_kept_run(resumed, layout, options.window_bytes, visit);
  };
  results::Journal journal(journal_path, results::layout_fingerprint(layout), kept_runs);
  // From here on a failed write (disk full, I/O error) loses nothing: every finished run is in the journal.
  auto guarded = [&](const auto& write) {
    try {
      write();
    } catch (const results::WriteError& e) {
      throw output_failure(e.path(), std::strerror(e.error_number()), e.error_number() == ENOSPC, journal);
    } catch (const ConfigError&) {
      throw;
    } catch (const std::runtime_error& e) {  // HDF5's failures (results/trace_file.cpp)
      // HDF5's message of a failed system call ends in "errno = N, error message = ..., buf = ...": the
      // system's reason is what the user can act on.
      const std::string text = e.what();
      const auto at = text.find("errno = ");
      const int error_number = at == std::string::npos ? 0 : std::atoi(text.c_str() + at + 8);
      throw output_failure(options.output_path + ".partial", error_number ? std::strerror(error_number) : text,
                           error_number == ENOSPC, journal);
    }
  };
  // The outcome is the file's, not this process's alone: runs kept from before count as they ended.
  std::vector<RunStatus> earlier;
  guarded([&] {
    kept_runs([&](std::size_t c, long r, const RunResult& run) {
      writer.write_run(c, r, run);
      earlier.push_back(run.status);
    });
  });
  // Reused runs are not journaled: an interrupted reuse run resumes with the same --reuse files.
  std::vector<RunStatus> reused_status;
  try {
    guarded([&] {
      copy_reused_runs(reuse, layout, options.window_bytes, [&](std::size_t c, long r, const RunResult& run) {
        writer.write_run(c, r, run);
        reused_status.push_back(run.status);
      });
    });
  } catch (const ConfigError&) {
    // A --reuse file that cannot be read (damaged) stops the job before anything ran: a journal without a
    // run would only make the next attempt ask for --resume.
    if (journal.records() == 0) journal.remove();
    throw;
  }
  if (options.resume) std::fprintf(stderr, "resume: %s\n", resumed.note.c_str());
  if (cluster) cluster->agree(threads);  // point 2

  const auto fault_after_run = results::fault_points().after_run_written;  // crash tests only (fault_points.hpp)
  long written = 0;
  SweepOptions sweep = options.sweep;
  sweep.threads = threads;
  for (std::size_t j = 0; j < total_runs; ++j) skip[j] = skip[j] || reuse.source[j] >= 0;
  sweep.skip = skip;
  const RunSink sink = [&](std::size_t c, long r, const RunResult& result) {
    guarded([&] {
      journal.append(c, r, result);  // durable first: the HDF5 write below may be cut by a kill
      ++written;
      writer.write_run(c, r, result);
    });
    if (fault_after_run) fault_after_run(written);
  };
  SweepSummary summary = cluster ? cluster->coordinate(experiment, sweep, sink) : run_sweep(experiment, sweep, sink);
  guarded([&] { writer.commit(); });
  journal.remove();
  earlier.insert(earlier.end(), reused_status.begin(), reused_status.end());
  for (const RunStatus s : earlier)
    (s == RunStatus::ok ? summary.ok : s == RunStatus::diverged ? summary.diverged
                                      : s == RunStatus::nonfinite ? summary.nonfinite : summary.error) += 1;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (cluster) cluster->release(summary);
  summary.skipped = plan.skipped;
  return summary;
}

namespace {
// Why two experiments' files cannot share one layout (empty: they can), for the union merge.
std::string layout_difference(const results::TraceLayout& a, const results::TraceLayout& b) {
  if (a.replicates != b.replicates)
    return std::to_string(a.replicates) + " replicates against " + std::to_string(b.replicates);
  if (a.checkpoints != b.checkpoints) return "their checkpoints differ";
  if (a.views != b.views) return "their views differ";
  if (a.metrics != b.metrics) return "their metrics differ";
  if (a.targets != b.targets || a.target_metric != b.target_metric) return "their targets differ";
  if ((a.iterate_dimension > 0) != (b.iterate_dimension > 0)) return "one records the iterates, the other does not";
  return "";
}
}  // namespace

MergeReport merge_trace_files(const std::vector<std::string>& inputs, const std::string& output, bool overwrite,
                              bool allow_partial, std::size_t window_bytes, const std::atomic<bool>* cancel) {
  if (inputs.empty()) throw ConfigError("merge: no input files");
  // Before anything of the output is touched: a second writer stops here.
  results::OutputLock lock(output);
  // Holding the lock, no one is writing OUTPUT.partial: one that is there was left by a writer that was
  // killed (SIGKILL, or a second signal). A merge's leftover is ours to remove; a run's comes with its
  // OUTPUT.journal and is left to `run --resume`.
  const std::string stale = output + ".partial";
  std::error_code ec;
  if (std::filesystem::is_regular_file(std::filesystem::symlink_status(stale, ec)) &&
      !std::filesystem::exists(output + ".journal", ec) && std::filesystem::remove(stale, ec))
    std::fprintf(stderr, "merge: removed %s, left by a merge into %s that was killed\n", stale.c_str(), output.c_str());
  // Pass 1, on outlines (layout and run statuses, no traces): do the parts fit together, who owns each run.
  // Parts of one experiment (shards, partial runs) share its layout; parts of different experiments with
  // the same replicates, checkpoints, views and metrics merge into the union of their configurations,
  // matched by run fingerprint.
  std::vector<results::TraceData> parts;
  for (const auto& input : inputs) parts.push_back(results::read_trace_outline(input));
  const std::uint64_t fingerprint = results::layout_fingerprint(parts.front().layout);
  const bool one_experiment = std::all_of(parts.begin(), parts.end(), [&](const results::TraceData& part) {
    return results::layout_fingerprint(part.layout) == fingerprint;
  });
  results::TraceLayout layout = parts.front().layout;
  // index[p][c]: configuration c of part p in the output.
  std::vector<std::vector<std::size_t>> index(parts.size());
  if (one_experiment) {
    for (auto& part_index : index) {
      part_index.resize(layout.configurations.size());
      std::iota(part_index.begin(), part_index.end(), std::size_t(0));
    }
  } else {
    std::vector<std::string> problems;
    std::unordered_map<std::string, std::size_t> by_fingerprint;
    std::unordered_map<std::string, std::pair<std::string, std::size_t>> by_id;  // id -> (fingerprint, part)
    layout.configurations.clear();
    layout.extra_metrics.clear();
    std::vector<std::string> names;
    for (std::size_t p = 0; p < parts.size(); ++p) {
      const results::TraceLayout& part = parts[p].layout;
      if (const std::string why = layout_difference(parts.front().layout, part); !why.empty())
        throw ConfigError("merge: " + inputs[p] + " belongs to a different experiment than " + inputs.front() + " and " +
                          "their layouts differ (" + why + "); a union of experiments needs the same replicates, "
                          "checkpoints, views, metrics and targets");
      if (std::find(names.begin(), names.end(), part.experiment_name) == names.end()) names.push_back(part.experiment_name);
      for (const auto& extra : part.extra_metrics)
        if (std::find(layout.extra_metrics.begin(), layout.extra_metrics.end(), extra) == layout.extra_metrics.end())
          layout.extra_metrics.push_back(extra);
      for (const auto& record : part.configurations) {
        if (record.run_fingerprint.empty())
          throw ConfigError("merge: " + inputs[p] + " belongs to a different experiment than " + inputs.front() +
                            " and has no run fingerprints (a ratelab from before them wrote it), so its runs cannot "
                            "be matched with the others'; merge only files of one experiment with it");
        const auto [same, fresh] = by_fingerprint.try_emplace(record.run_fingerprint, layout.configurations.size());
        if (fresh) {
          const auto [other, new_id] = by_id.try_emplace(record.id, record.run_fingerprint, p);
          if (!new_id)
            problems.push_back("configuration " + record.id + " (" + record.label + ") has the same parameters in " +
                               inputs[other->second.second] + " and " + inputs[p] + " but other run fingerprints (seed, "
                               "run options, checkpoints or data differ): one file cannot hold both under one id");
          layout.configurations.push_back(record);
          layout.iterate_dimension = std::max(layout.iterate_dimension, record.dimension);
        }
        index[p].push_back(same->second);
      }
    }
    if (!problems.empty()) throw ConfigError(problems);
    // The experiment-level attributes the parts disagree on describe none of the union: dropped.
    std::erase_if(layout.root, [&](const auto& kv) {
      if (kv.first.rfind("experiment.", 0) != 0) return false;
      return std::any_of(parts.begin(), parts.end(), [&](const results::TraceData& part) {
        return root_text(part.layout.root, kv.first) != format_value(kv.second);
      });
    });
    std::string joined;
    for (const auto& name : names) joined += (joined.empty() ? "" : " + ") + name;
    layout.experiment_name = joined;
    for (auto& [key, value] : layout.root)
      if (key == "experiment_name") value = joined;
    layout.experiment_text = "# the union of experiments " + joined + " (ratelab merge): the text below is " +
                             inputs.front() + "'s; the other files hold the others'\n" + layout.experiment_text;
  }
  const std::size_t C = layout.configurations.size();
  const long R = layout.replicates;
  std::vector<int> owner(C * std::size_t(R), -1);
  std::vector<std::string> problems;
  long shard_count = 0;
  std::set<long> shards_present;
  for (std::size_t p = 0; p < parts.size(); ++p) {
    const results::TraceData& part = parts[p];
    for (const auto& [key, value] : part.layout.root) {
      if (key == "shard_count") shard_count = long(std::get<std::int64_t>(value));
      if (key == "shard_index") shards_present.insert(long(std::get<std::int64_t>(value)));
    }
    for (std::size_t i = 0; i < part.status.size(); ++i) {
      if (!finished(part.status[i])) continue;
      const std::size_t j = index[p][i / std::size_t(R)] * std::size_t(R) + i % std::size_t(R);
      if (owner[j] >= 0) {
        problems.push_back("run (configuration " + std::to_string(j / std::size_t(R)) + " " +
                           layout.configurations[j / std::size_t(R)].label + ", replicate " +
                           std::to_string(j % std::size_t(R)) + ") is finished in both " + inputs[std::size_t(owner[j])] +
                           " and " + inputs[p] + ": the parts overlap");
        if (problems.size() >= 5) throw ConfigError(problems);
        continue;
      }
      owner[j] = int(p);
    }
  }
  if (!problems.empty()) throw ConfigError(problems);
  MergeReport report;
  for (int o : owner) (o >= 0 ? report.finished : report.missing) += 1;
  if (report.missing > 0 && !allow_partial) {
    // Name the missing shares when the inputs are shards of one partition.
    std::string which;
    if (shard_count > 1) {
      for (long i = 0; i < shard_count; ++i)
        if (!shards_present.count(i)) which += (which.empty() ? "" : ", ") + std::to_string(i);
      which = "; missing shares (of " + std::to_string(shard_count) + "): " + (which.empty() ? "none, but runs of the present shares are unfinished" : which);
    }
    throw ConfigError("merge: " + std::to_string(report.missing) + " of " + std::to_string(owner.size()) +
                      " runs are missing" + which + ". Add the missing parts, or use --allow-partial" +
                      (one_experiment ? " and complete the result later with `ratelab run EXPERIMENT -o " + output + " --resume`"
                                      : ""));
  }
  // Pass 2, streaming: each part is read a window of configurations at a time (window_bytes of run data),
  // its runs copied into the output and released, so parts that exceed the memory merge as well.
  std::erase_if(layout.root, [](const auto& kv) {
    return kv.first == "shard_index" || kv.first == "shard_count" || kv.first == "merged_from";
  });
  layout.root.emplace_back("merged_from", std::vector<std::string>(inputs.begin(), inputs.end()));
  results::TraceWriter writer(output, layout, overwrite ? results::WriteMode::overwrite : results::WriteMode::create_new);
  const auto fault_after_run = results::fault_points().after_run_written;  // crash tests only (fault_points.hpp)
  long written = 0;
  for (std::size_t p = 0; p < inputs.size(); ++p) {
    if (std::find(owner.begin(), owner.end(), int(p)) == owner.end()) continue;
    const std::size_t part_C = parts[p].layout.configurations.size();
    const std::size_t window = configuration_window(parts[p].layout, window_bytes);
    for (std::size_t begin = 0; begin < part_C; begin += window) {
      const std::size_t end = std::min(part_C, begin + window);
      const results::TraceData part = results::read_trace_configurations(inputs[p], begin, end);
      for (std::size_t c = begin; c < end; ++c)
        for (long r = 0; r < R; ++r) {
          const std::size_t out_c = index[p][c];
          if (owner[out_c * std::size_t(R) + std::size_t(r)] != int(p)) continue;
          if (cancel && cancel->load())  // the writer's destructor removes OUTPUT.partial
            throw MergeInterrupted("merge into " + output + " interrupted after " + std::to_string(written) + " of " +
                                   std::to_string(report.finished) + " runs: nothing was written (" + output +
                                   ".partial removed)" + (std::filesystem::exists(output) ? ", " + output + " is unchanged" : ""));
          RunResult run = run_from_trace_data(part, c, r);
          keep_layout_extras(run, layout.extra_metrics);
          writer.write_run(out_c, r, run);
          ++written;
          if (fault_after_run) fault_after_run(written);
        }
    }
  }
  if (cancel && cancel->load())
    throw MergeInterrupted("merge into " + output + " interrupted before its commit: nothing was written (" + output +
                           ".partial removed)");
  writer.commit();
  return report;
}

}  // namespace ratelab
