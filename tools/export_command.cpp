#include "tools/export_command.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "core/params.hpp"
#include "core/run.hpp"
#include "results/trace_file.hpp"
#include "results/trace_query.hpp"

namespace ratelab::tools {

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// Shortest text that reads back as the same double (NaN as "nan", as pandas and R read it).
void append_number(std::string& line, double v) { line += format_value(ParamValue(v)); }

// "a,b" and repeated options alike.
std::vector<std::string> split_list(const std::vector<std::string>& items) {
  std::vector<std::string> out;
  for (const auto& item : items) {
    std::size_t start = 0;
    for (std::size_t comma; (comma = item.find(',', start)) != std::string::npos; start = comma + 1)
      if (comma > start) out.push_back(item.substr(start, comma - start));
    if (start < item.size()) out.push_back(item.substr(start));
  }
  return out;
}

// What one file contributes: its reader, the configurations, views and metric columns selected.
struct Source {
  std::string path;
  std::unique_ptr<results::TraceReader> reader;
  std::vector<std::size_t> configurations, views;
  std::vector<std::optional<std::size_t>> metrics, extra;  // per output column: the file's index, if it has it
  std::vector<std::optional<std::size_t>> stats;           // filled per block (run stats are created lazily)
};

}  // namespace

ExportReport export_table(const ExportOptions& options) {
  if (options.files.empty()) throw ConfigError("export: no input files");
  const std::vector<std::string> views = split_list(options.views), wanted = split_list(options.metrics);
  const std::size_t block_values = std::max<std::size_t>(1, std::size_t(options.window_mb * 1024 * 1024 / 8));

  // Open every file first (and check every filter), so a bad input stops before anything is written.
  std::vector<Source> sources;
  std::vector<std::string> parameter_columns, metric_columns, extra_columns, stat_columns;
  auto add = [](std::vector<std::string>& columns, const std::string& name) {
    if (std::find(columns.begin(), columns.end(), name) == columns.end()) columns.push_back(name);
  };
  std::optional<ConfigError> no_match;
  for (const auto& path : options.files) {
    Source source;
    source.path = path;
    source.reader = std::make_unique<results::TraceReader>(path);
    const results::TraceData& outline = source.reader->outline();
    try {
      source.configurations = results::select_configurations(outline, options.where);
    } catch (const ConfigError& e) {
      // Several files: one without a match contributes no rows; an unknown key is an error anyway.
      if (options.files.size() == 1 || std::string(e.what()).find("filter key") != std::string::npos) throw;
      if (!no_match) no_match = e;
    }
    for (const auto& key : results::parameter_keys(outline))
      if (key != "stream_salt") add(parameter_columns, key);  // the salt is bookkeeping, not a setting
    if (views.empty()) {
      for (std::size_t v = 0; v < outline.layout.views.size(); ++v) source.views.push_back(v);
    } else {
      for (const auto& view : views) source.views.push_back(results::view_column(outline, view));
    }
    for (const auto& m : outline.layout.metrics)
      if (wanted.empty() || std::count(wanted.begin(), wanted.end(), m)) add(metric_columns, m);
    for (const auto& e : outline.layout.extra_metrics)
      if (wanted.empty() || std::count(wanted.begin(), wanted.end(), e) || std::count(wanted.begin(), wanted.end(), "extra." + e))
        add(extra_columns, e);
    sources.push_back(std::move(source));
  }
  if (std::all_of(sources.begin(), sources.end(), [](const Source& s) { return s.configurations.empty(); }) && no_match)
    throw *no_match;
  for (const auto& name : wanted) {
    const std::string bare = name.rfind("extra.", 0) == 0 ? name.substr(6) : name;
    if (!std::count(metric_columns.begin(), metric_columns.end(), name) && !std::count(extra_columns.begin(), extra_columns.end(), bare)) {
      std::vector<std::string> recorded;
      for (const auto& s : sources) {
        for (const auto& m : s.reader->outline().layout.metrics) add(recorded, m);
        for (const auto& e : s.reader->outline().layout.extra_metrics) add(recorded, "extra." + e);
      }
      throw ConfigError(unknown_key_message("metric (--metrics)", name, recorded));
    }
  }
  // Run statistics: the union of what the files have (a file knows its statistics from its outline).
  for (auto& source : sources)
    for (const auto& name : source.reader->run_statistics()) add(stat_columns, name);
  for (auto& source : sources) {
    const auto& layout = source.reader->outline().layout;
    for (const auto& m : metric_columns) {
      const auto it = std::find(layout.metrics.begin(), layout.metrics.end(), m);
      source.metrics.push_back(it == layout.metrics.end() ? std::nullopt : std::optional<std::size_t>(it - layout.metrics.begin()));
    }
    for (const auto& e : extra_columns) {
      const auto it = std::find(layout.extra_metrics.begin(), layout.extra_metrics.end(), e);
      source.extra.push_back(it == layout.extra_metrics.end() ? std::nullopt
                                                              : std::optional<std::size_t>(it - layout.extra_metrics.begin()));
    }
  }

  const bool to_stdout = options.output == "-";
  const std::string partial = options.output + ".partial";
  std::ofstream file;
  std::vector<char> buffer(std::size_t(1) << 20);
  if (!to_stdout) {
    file.rdbuf()->pubsetbuf(buffer.data(), std::streamsize(buffer.size()));
    file.open(partial, std::ios::binary | std::ios::trunc);
    if (!file) throw ConfigError("export: cannot write '" + partial + "': " + std::strerror(errno));
  }
  std::ostream& out = to_stdout ? std::cout : file;
  auto fail_output = [&] {
    file.close();
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
  };

  ExportReport report;
  try {
    const bool several = options.files.size() > 1;
    std::string line;
    if (several) line += "file,";
    line += "configuration,label";
    for (const auto& key : parameter_columns) line += "," + csv_field(key);
    line += ",f_star,view,replicate,step";
    for (const auto& m : metric_columns) line += "," + csv_field(m);
    for (const auto& e : extra_columns) line += "," + csv_field("extra." + e);
    line += ",gradient_evaluations,elapsed_seconds";
    line += ",status,stop_step,wall_seconds,eval_seconds";
    for (const auto& s : stat_columns) line += "," + csv_field("stats." + s);
    out << line << '\n';

    for (auto& source : sources) {
      const results::TraceData& outline = source.reader->outline();
      const auto& layout = outline.layout;
      const std::size_t V = layout.views.size(), K = layout.checkpoints.size();
      const long R = layout.replicates;
      // Runs per block: the trace values of a block (metrics x views x checkpoints per run) within the budget,
      // and at most kMaxBlockRuns: HDF5 keeps state for every chunk a read touches (one chunk per run), which
      // cost 730 MB for 100,000 runs read at once (40 values each) against 68 MB in blocks of 3,276.
      constexpr std::size_t kMaxBlockRuns = 4096;
      const std::size_t per_run = std::max<std::size_t>(1, (layout.metrics.size() * V + layout.extra_metrics.size() + 2) * K);
      const long block_runs = long(std::clamp<std::size_t>(block_values / per_run, 1, std::min<std::size_t>(std::size_t(R), kMaxBlockRuns)));
      for (std::size_t c : source.configurations) {
        const auto& record = layout.configurations[c];
        std::string prefix;
        if (several) prefix += csv_field(source.path) + ",";
        prefix += csv_field(record.id) + "," + csv_field(record.label);
        for (const auto& key : parameter_columns) {
          const ParamValue* value = results::find_parameter(record, key);
          prefix += "," + (value ? csv_field(format_value(*value)) : std::string());
        }
        prefix += ",";
        if (record.f_star) append_number(prefix, *record.f_star);
        ++report.configurations;
        // A file of several horizons: a configuration's rows stop at its own T (nothing was run beyond it).
        const std::size_t K_c = results::horizon_checkpoint(outline, c) + 1;
        for (long first = 0; first < R; first += block_runs) {
          const long count = std::min(block_runs, R - first);
          const results::RunBlock block = source.reader->runs(c, first, count);
          std::vector<const std::vector<double>*> stats;
          for (const auto& name : stat_columns) {
            const std::vector<double>* found = nullptr;
            for (const auto& [stat, values] : block.run_stats)
              if (stat == name) found = &values;
            stats.push_back(found);
          }
          for (long i = 0; i < count; ++i) {
            std::string run_fields = ",";
            run_fields += status_name(block.status[std::size_t(i)]);
            run_fields += "," + std::to_string(block.stop_step[std::size_t(i)]) + ",";
            append_number(run_fields, block.wall_seconds[std::size_t(i)]);
            run_fields += ",";
            append_number(run_fields, block.eval_seconds[std::size_t(i)]);
            for (const auto* values : stats) {
              run_fields += ",";
              if (values) append_number(run_fields, (*values)[std::size_t(i)]);
            }
            for (std::size_t v : source.views)
              for (std::size_t k = 0; k < K_c; ++k) {
                line = prefix;
                line += "," + csv_field(layout.views[v]) + "," + std::to_string(first + i) + "," + std::to_string(layout.checkpoints[k]);
                for (const auto& m : source.metrics) {
                  line += ",";
                  if (m) append_number(line, block.traces[*m][(v * std::size_t(count) + std::size_t(i)) * K + k]);
                }
                for (const auto& e : source.extra) {
                  line += ",";
                  if (e) append_number(line, block.extra[*e][std::size_t(i) * K + k]);
                }
                for (const auto* costs : {&block.gradient_evaluations, &block.elapsed_seconds}) {
                  line += ",";
                  append_number(line, (*costs)[std::size_t(i) * K + k]);
                }
                line += run_fields;
                line += '\n';
                out << line;
                ++report.rows;
              }
          }
        }
      }
    }
    out.flush();
    if (!out) throw ConfigError("export: writing '" + (to_stdout ? std::string("standard output") : partial) + "' failed: " +
                                std::strerror(errno));
  } catch (...) {
    if (!to_stdout) fail_output();
    throw;
  }
  if (!to_stdout) {
    file.close();
    std::error_code ec;
    std::filesystem::rename(partial, options.output, ec);
    if (ec) {
      fail_output();
      throw ConfigError("export: cannot move '" + partial + "' to '" + options.output + "': " + ec.message());
    }
  }
  return report;
}

ParamTable<ExportOptions> ExportOptions::params() {
  return {text_list(&ExportOptions::files, "files", "trace files (.h5)"),
          param(&ExportOptions::output, "output", unconstrained(), "CSV file to write ('-': standard output)"),
          param(&ExportOptions::where, "where", unconstrained(),
                "keep configurations whose parameter key=value (label= and id= also work)"),
          param(&ExportOptions::views, "views", unconstrained(), "iterate views, comma-separated; empty: all"),
          param(&ExportOptions::metrics, "metrics", unconstrained(), "metric columns (metrics, extra.NAME), comma-separated; empty: all"),
          param(&ExportOptions::window_mb, "window_mb", positive(), "trace data read at a time, in MB (bounds the memory)")};
}

}  // namespace ratelab::tools
