// Points where the crash-safety tests stop a process on purpose (documented in results/SCHEMA.md). The
// production `ratelab` installs none: each point is one null test per finished run. The test executable
// ratelab-faults (tests/fault_injection_main.cpp, built with the tests only) installs them from
// RATELAB_FAULT_* environment variables before it runs the command line.
#pragma once

namespace ratelab::results {

struct FaultPoints {
  // Called with n after the n-th run this process finished is written (journal, then trace file), by
  // run_experiment_to_file.
  void (*after_run_written)(long n) = nullptr;
  // Called with n in the middle of a TraceWriter's n-th write_run: the run's traces are written, its run
  // fields (status, stop step, times, stats) not yet.
  void (*in_run_write)(long n) = nullptr;
};

// The installed points, none by default. Install them before any run starts.
FaultPoints& fault_points();

}  // namespace ratelab::results
