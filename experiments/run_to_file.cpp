#include "experiments/run_to_file.hpp"

#include "experiments/build_info.hpp"
#include "experiments/distributed.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <ctime>
#include <filesystem>
#include <set>
#include <thread>
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
  for (std::size_t c = 0; c < plan.configurations.size(); ++c)
    for (const auto& name : experiment.problem(c, 0)->extra_metric_names())
      if (std::find(layout.extra_metrics.begin(), layout.extra_metrics.end(), name) == layout.extra_metrics.end())
        layout.extra_metrics.push_back(name);
  for (const auto& c : plan.configurations) {
    results::ConfigurationRecord rec = configuration_record(c);
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
  return res;
}

bool finished(RunStatus status) {
  return status == RunStatus::ok || status == RunStatus::diverged || status == RunStatus::error ||
         status == RunStatus::nonfinite;
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
  std::vector<std::size_t> slot(C * std::size_t(R), SIZE_MAX);  // index into state.finished
  auto keep = [&](results::JournalRecord&& rec) {
    if (!finished(rec.result.status)) return;  // interrupted or missing: run again
    const std::size_t i = rec.configuration * std::size_t(R) + std::size_t(rec.replicate);
    state.done[i] = true;
    if (slot[i] == SIZE_MAX) {
      slot[i] = state.finished.size();
      state.finished.push_back(std::move(rec));
    } else {
      state.finished[slot[i]] = std::move(rec);
    }
  };
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
  // The journal first: whether it is this experiment's decides what to say about a foreign file.
  std::optional<results::JournalContents> journal;
  if (have_journal) {
    journal = results::read_journal(journal_path);
    if (journal->fingerprint != fingerprint) throw refuse(journal_path);
    for (const auto& rec : journal->records)
      if (rec.configuration >= C || rec.replicate < 0 || rec.replicate >= R)
        throw ConfigError("--resume: " + journal_path + " is inconsistent: it is this experiment's journal, but a record "
                          "passing its checksum names run (configuration " + std::to_string(rec.configuration) +
                          ", replicate " + std::to_string(rec.replicate) + ") outside the experiment's " +
                          std::to_string(C) + " x " + std::to_string(R) + " runs. It was damaged or written by a "
                          "different ratelab build; move it away and run with --overwrite");
  }
  long from_file = 0, from_journal = 0;
  if (have_file) {
    results::TraceData data = results::read_trace_file(path);
    if (results::layout_fingerprint(data.layout) != fingerprint) {
      if (journal && !journal->records.empty())
        throw ConfigError("--resume: " + path + " belongs to a different experiment, but " + journal_path + " holds " +
                          std::to_string(journal->records.size()) + " finished runs of this one (a `run --overwrite` "
                          "was stopped before it replaced " + path + "). To keep them and replace " + path +
                          ", run with --resume --overwrite; to keep " + path + ", move it elsewhere first, then run "
                          "with --resume");
      throw refuse(path);
    }
    for (std::size_t c = 0; c < C; ++c)
      for (long r = 0; r < R; ++r) {
        results::JournalRecord rec{c, r, run_from_trace_data(data, c, r)};
        const RunResult& res = rec.result;
        from_file += finished(res.status);
        keep(std::move(rec));
      }
  }
  if (journal) {
    for (auto& rec : journal->records) {
      ++from_journal;
      keep(std::move(rec));
    }
    if (journal->truncated) state.note = "dropped a record cut short by a kill; ";
  }
  state.note += "recovered " + std::to_string(state.finished.size()) + " finished runs (" +
                (journal_only ? std::string() : std::to_string(from_file) + " from " + path + ", ") +
                std::to_string(from_journal) + " from its journal)";
  return state;
}

namespace {
// Fault injection for the crash-safety tests (documented in results/SCHEMA.md): after the n-th run of
// this process is written, RATELAB_FAULT_KILL_AFTER_RUNS=n kills the process with SIGKILL and
// RATELAB_FAULT_SIGNAL_AFTER_RUNS=n sends it SIGINT (RATELAB_FAULT_KILL_IN_WRITE, in the writer, kills it
// halfway through a run's HDF5 write).
long fault_point(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : 0;
}

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
  if (cluster) {
    cluster->agree(threads);  // point 1: every rank validated the experiment
    if (cluster->rank() > 0) {
      cluster->agree(threads);  // point 2: rank 0 opened its files
      SweepOptions sweep = options.sweep;
      sweep.threads = threads;
      return cluster->work(experiment, sweep);
    }
  }
  const std::string journal_path = options.output_path + ".journal";
  // Before anything of the output is read or touched: a second writer stops here.
  results::OutputLock lock(options.output_path);

  ResumeState resumed;
  if (options.resume) {
    resumed = recover_finished_runs(options.output_path, layout, options.overwrite);
  } else if (std::filesystem::exists(journal_path) && !options.overwrite) {
    throw ConfigError(journal_path + " exists: a sweep writing " + options.output_path +
                      " was killed before it finished. Continue it with --resume (finished runs are kept), or "
                      "start over with --overwrite");
  }
  const bool replace = options.overwrite || options.resume;
  results::TraceWriter writer(options.output_path, layout,
                              replace ? results::WriteMode::overwrite : results::WriteMode::create_new);
  results::Journal journal(journal_path, results::layout_fingerprint(layout), resumed.finished);
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
  guarded([&] {
    for (const auto& rec : resumed.finished) writer.write_run(rec.configuration, rec.replicate, rec.result);
  });
  if (options.resume) std::fprintf(stderr, "resume: %s\n", resumed.note.c_str());
  if (cluster) cluster->agree(threads);  // point 2

  const long kill_after = fault_point("RATELAB_FAULT_KILL_AFTER_RUNS");
  const long signal_after = fault_point("RATELAB_FAULT_SIGNAL_AFTER_RUNS");
  long written = 0;
  SweepOptions sweep = options.sweep;
  sweep.threads = threads;
  sweep.skip = resumed.done;
  if (options.shard_count > 1) {
    sweep.skip.resize(plan.configurations.size() * std::size_t(plan.options.replicates), false);
    for (std::size_t j = 0; j < sweep.skip.size(); ++j)
      if (long(j % std::size_t(options.shard_count)) != options.shard_index) sweep.skip[j] = true;
  }
  const RunSink sink = [&](std::size_t c, long r, const RunResult& result) {
    guarded([&] {
      journal.append(c, r, result);  // durable first: the HDF5 write below may be cut by a kill
      ++written;
      writer.write_run(c, r, result);
    });
    if (written == kill_after) std::raise(SIGKILL);
    if (written == signal_after) std::raise(SIGINT);
  };
  SweepSummary summary = cluster ? cluster->coordinate(experiment, sweep, sink) : run_sweep(experiment, sweep, sink);
  guarded([&] { writer.commit(); });
  journal.remove();
  // The outcome is the file's, not this process's alone: runs kept from before count as they ended.
  for (const auto& rec : resumed.finished) {
    const RunStatus s = rec.result.status;
    (s == RunStatus::ok ? summary.ok : s == RunStatus::diverged ? summary.diverged : summary.error) += 1;
  }
  if (cluster) cluster->release(summary);
  summary.skipped = plan.skipped;
  return summary;
}

MergeReport merge_trace_files(const std::vector<std::string>& inputs, const std::string& output, bool overwrite,
                              bool allow_partial, std::size_t window_bytes) {
  if (inputs.empty()) throw ConfigError("merge: no input files");
  // Pass 1, on outlines (layout and run statuses, no traces): do the parts fit together, who owns each run.
  const results::TraceData first = results::read_trace_outline(inputs.front());
  const std::uint64_t fingerprint = results::layout_fingerprint(first.layout);
  const std::size_t C = first.layout.configurations.size();
  const long R = first.layout.replicates;
  std::vector<int> owner(C * std::size_t(R), -1);
  std::vector<std::string> problems;
  long shard_count = 0;
  std::set<long> shards_present;
  for (std::size_t p = 0; p < inputs.size(); ++p) {
    const results::TraceData part = p == 0 ? first : results::read_trace_outline(inputs[p]);
    if (results::layout_fingerprint(part.layout) != fingerprint)
      throw ConfigError("merge: " + inputs[p] + " belongs to a different experiment than " + inputs.front() +
                        " (resolved configurations, seeds, replicates, checkpoints, views or metrics differ)");
    for (const auto& [key, value] : part.layout.root) {
      if (key == "shard_count") shard_count = long(std::get<std::int64_t>(value));
      if (key == "shard_index") shards_present.insert(long(std::get<std::int64_t>(value)));
    }
    for (std::size_t j = 0; j < owner.size(); ++j) {
      if (!finished(part.status[j])) continue;
      if (owner[j] >= 0) {
        problems.push_back("run (configuration " + std::to_string(j / std::size_t(R)) + ", replicate " +
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
                      " runs are missing" + which + ". Add the missing parts, or use --allow-partial and complete the "
                      "result later with `ratelab run EXPERIMENT -o " + output + " --resume`");
  }
  // Pass 2, streaming: each part is read a window of configurations at a time (window_bytes of run data),
  // its runs copied into the output and released, so parts that exceed the memory merge as well.
  results::TraceLayout layout = first.layout;
  std::erase_if(layout.root, [](const auto& kv) {
    return kv.first == "shard_index" || kv.first == "shard_count" || kv.first == "merged_from";
  });
  layout.root.emplace_back("merged_from", std::vector<std::string>(inputs.begin(), inputs.end()));
  results::OutputLock lock(output);
  results::TraceWriter writer(output, layout, overwrite ? results::WriteMode::overwrite : results::WriteMode::create_new);
  const std::size_t run_bytes =
      8 * (layout.metrics.size() * layout.views.size() + layout.extra_metrics.size() + 1) * layout.checkpoints.size() + 64;
  const std::size_t window = std::max<std::size_t>(1, window_bytes / (run_bytes * std::size_t(R)));
  for (std::size_t p = 0; p < inputs.size(); ++p) {
    if (std::find(owner.begin(), owner.end(), int(p)) == owner.end()) continue;
    for (std::size_t begin = 0; begin < C; begin += window) {
      const std::size_t end = std::min(C, begin + window);
      const results::TraceData part = results::read_trace_configurations(inputs[p], begin, end);
      for (std::size_t j = begin * std::size_t(R); j < end * std::size_t(R); ++j)
        if (owner[j] == int(p))
          writer.write_run(j / std::size_t(R), long(j % std::size_t(R)),
                           run_from_trace_data(part, j / std::size_t(R), long(j % std::size_t(R))));
    }
  }
  writer.commit();
  return report;
}

}  // namespace ratelab
