// Writes a small trace file with TraceWriter and, next to it, the JSON list of values that
// check_h5py.py must find in it: write_sample OUT.h5 OUT.json. Used by the h5py_interop ctest, which
// checks that a third-party reader (h5py) sees the same numbers, types and dimension scales.
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include "results/trace_file.hpp"

using namespace ratelab;
using namespace ratelab::results;

namespace {

constexpr std::size_t kConfigurations = 2, kViews = 2, kReplicates = 3, kCheckpoints = 4, kMetrics = 2;

// Exactly representable, distinct for every (metric, c, v, r, k).
double value_at(std::size_t m, std::size_t c, std::size_t v, std::size_t r, std::size_t k) {
  return std::ldexp(double(1 + 1000 * m + 100 * c + 10 * v + r), -int(k));
}

// (0, 1) errors out without traces; (1, 2) is never written, so it keeps the fill values.
bool has_traces(std::size_t c, std::size_t r) { return !(c == 0 && r == 1) && !(c == 1 && r == 2); }

std::string json_number(double x) {
  if (std::isnan(x)) return "NaN";  // Python's json module reads NaN
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\', out += ch;
    else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else out += ch;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: write_sample OUT.h5 OUT.json\n";
    return 2;
  }
  try {
    TraceLayout layout;
    layout.experiment_name = "interop";
    layout.experiment_text = "[experiment]\nname = \"interop\"\n";
    layout.replicates = long(kReplicates);
    layout.checkpoints = {0, 1, 10, 100};
    layout.views = {"last", "uniform"};
    layout.metrics = {"subopt", "value"};
    layout.configurations = {
        {"a1b2c3d4", "sgd schedule.c=1", {{"optimizer", std::string("sgd")}, {"optimizer.batch", std::int64_t{1}}, {"schedule.c", 1.0}}, {}},
        {"e5f6a7b8", "sgd schedule.c=4", {{"optimizer", std::string("sgd")}, {"optimizer.batch", std::int64_t{8}}, {"schedule.c", 4.0}},
         {{"f_star_method", std::string("closed form")}}},
    };
    layout.root = {{"git_dirty", false}, {"threads", std::int64_t{2}}, {"experiment.etas", std::vector<double>{0.5, 0.25}}};

    std::ostringstream runs_status, runs_message, runs_stat, traces;
    TraceWriter writer(argv[1], layout, WriteMode::overwrite);
    for (std::size_t c = 0; c < kConfigurations; ++c)
      for (std::size_t r = 0; r < kReplicates; ++r) {
        RunResult run;
        run.status = RunStatus::ok;
        run.stop_step = 100;
        run.stats = {{"noise_mean", 0.5 * double(c * kReplicates + r)}};
        if (!has_traces(c, r) && c == 0) {
          run.status = RunStatus::error;
          run.stop_step = 0;
          run.message = "oracle failed: \"bad\" input";
        }
        if (has_traces(c, r)) {
          run.traces.resize(kMetrics * kViews * kCheckpoints);
          for (std::size_t m = 0; m < kMetrics; ++m)
            for (std::size_t v = 0; v < kViews; ++v)
              for (std::size_t k = 0; k < kCheckpoints; ++k) run.traces[(m * kViews + v) * kCheckpoints + k] = value_at(m, c, v, r, k);
        }
        const bool written = !(c == 1 && r == 2);
        if (written) writer.write_run(c, long(r), run);
        const int code = written ? int(run.status) : int(RunStatus::missing);
        runs_status << (runs_status.tellp() ? ", " : "") << "[[" << c << ", " << r << "], " << code << "]";
        runs_message << (runs_message.tellp() ? ", " : "") << "[[" << c << ", " << r << "], " << json_string(written ? run.message : "") << "]";
        runs_stat << (runs_stat.tellp() ? ", " : "") << "[[" << c << ", " << r << "], "
                  << json_number(written ? run.stats[0].second : std::nan("")) << "]";
      }
    writer.commit();

    for (std::size_t m = 0; m < kMetrics; ++m) {
      std::ostringstream entries;
      for (std::size_t c = 0; c < kConfigurations; ++c)
        for (std::size_t v = 0; v < kViews; ++v)
          for (std::size_t r = 0; r < kReplicates; ++r)
            for (std::size_t k = 0; k < kCheckpoints; ++k)
              entries << (entries.tellp() ? ", " : "") << "[[" << c << ", " << v << ", " << r << ", " << k << "], "
                      << json_number(has_traces(c, r) ? value_at(m, c, v, r, k) : std::nan("")) << "]";
      traces << ",\n  \"" << layout.metrics[m] << "\": [" << entries.str() << "]";
    }

    std::ofstream json(argv[2]);
    // Schema 2: booleans are int8 0/1 (git_dirty), parameters are variables along configuration.
    json << "{\n  \"attrs\": {\"schema_version\": 2, \"format\": \"ratelab-trace\", \"Conventions\": \"CF-1.8\", "
            "\"experiment_name\": \"interop\", \"git_dirty\": 0, \"threads\": 2, \"experiment.etas\": [0.5, 0.25]},\n"
         << "  \"attrs:subopt\": {\"units\": \"objective\"},\n"
         << "  \"attrs:status\": {\"flag_values\": [0, 1, 2, 3, 4, 5], "
            "\"flag_meanings\": \"ok diverged error interrupted missing nonfinite\"},\n"
         << "  \"configuration\": [[[0], \"a1b2c3d4\"], [[1], \"e5f6a7b8\"]],\n"
         << "  \"label\": [[[0], \"sgd schedule.c=1\"], [[1], \"sgd schedule.c=4\"]],\n"
         << "  \"optimizer.batch\": [[[0], 1], [[1], 8]],\n"
         << "  \"schedule.c\": [[[0], 1.0], [[1], 4.0]],\n"
         << "  \"instance.f_star_method\": [[[0], \"\"], [[1], \"closed form\"]],\n"
         << "  \"step\": [[[0], 0], [[1], 1], [[2], 10], [[3], 100]],\n"
         << "  \"experiment\": [[[], " << json_string(layout.experiment_text) << "]],\n"
         << "  \"status\": [" << runs_status.str() << "],\n"
         << "  \"message\": [" << runs_message.str() << "],\n"
         << "  \"stats.noise_mean\": [" << runs_stat.str() << "]" << traces.str() << "\n}\n";
    if (!json) throw std::runtime_error(std::string("cannot write ") + argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "write_sample: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
