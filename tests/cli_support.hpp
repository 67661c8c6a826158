// Helpers of the end-to-end tests that run the `ratelab` executable (tests/test_cli.cpp, tests/mpi/).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "results/trace_file.hpp"

namespace ratelab_test {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

// Runs `ENV PREFIX BINARY ARGS` through the shell (which reports a child killed by signal s as 128 + s);
// BINARY is relative to the build directory, PREFIX is e.g. an mpirun command.
inline Outcome run_binary(const std::string& binary, const std::string& args, const std::string& env = "",
                          const std::string& prefix = "") {
  const std::string cmd = env + " " + prefix + " " + std::string(RATELAB_BINARY_DIR) + "/" + binary + " " + args + " 2>&1";
  Outcome o;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  char buf[4096];
  while (std::size_t n = fread(buf, 1, sizeof buf, pipe)) o.output.append(buf, n);
  const int status = pclose(pipe);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return o;
}

// `ratelab ARGS`, as run_binary. An ENV that sets a RATELAB_FAULT_* variable runs ratelab-faults instead
// (tests/fault_injection_main.cpp: the same command line with the crash tests' fault points installed);
// the production ratelab reads no such variable.
inline Outcome run_cli(const std::string& args, const std::string& env = "", const std::string& prefix = "") {
  const bool faults = env.find("RATELAB_FAULT_") != std::string::npos;
  return run_binary(faults ? "tests/ratelab-faults" : "tools/ratelab", args, env, prefix);
}

// A fresh path in this test process's scratch directory.
inline fs::path scratch(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("ratelab_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path p = dir / name;
  fs::remove(p);
  fs::remove(p.string() + ".partial");
  return p;
}

// The trace data and run outcomes (not timings) of a file and what its configurations are (label, F*, a
// parameter, the salt), for byte comparisons.
inline std::vector<std::vector<unsigned char>> trace_bytes(const fs::path& file) {
  std::vector<std::vector<unsigned char>> out;
  for (const char* d : {"subopt", "dist2", "value", "gradnorm2", "status", "stop_step", "stats.noise_mean_sq_norm",
                        "label", "f_star", "f_star_source", "schedule.c", "stream_salt"})
    out.push_back(ratelab::results::read_dataset_bytes(file.string(), d));
  return out;
}

}  // namespace ratelab_test
