// The fixed-target commands of the `ratelab` CLI: `ert` (hitting times, success fractions, expected running
// time), `ecdf` (runtime ECDF over log-spaced targets, its area) and `profile` (Dolan-More performance
// profile, More-Wild data profile). They read several trace files at once (the configurations must be told
// apart by their labels: a clash names both files), take every number from results/fixed_target.hpp and the
// runs from results/trace_query.hpp (a failed run is +inf), and draw through tools/plot.hpp (gnuplot).
//
// Hitting times (--hits) come from one of three sources, and every table says which: `recorded`, the first step
// the run loop evaluated with metric < target (experiment.targets; the default when every file has them for
// the targets asked); `checkpoint`, the run's budget at the first stored checkpoint at or below the target, a
// conservative (never early) time (the default otherwise); `best_so_far`, the first stored checkpoint whose
// best value so far (over every step the run loop evaluated) is at or below the target. The budget (--budget:
// steps, gradient evaluations or elapsed seconds) is counted the same way for all three.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "tools/several_files.hpp"
#include "results/trace_file.hpp"

namespace ratelab::tools {

struct ErtOptions {
  std::vector<std::string> files;
  std::vector<double> targets;         // metric <= target counts as reached
  std::string metric = "subopt";
  std::string view = "last";
  std::vector<std::string> where;
  std::string budget = "step";         // step | gradient_evaluations | elapsed_seconds (results::Budget)
  std::string hits = "auto";           // recorded | checkpoint | best_so_far | auto (see above)
  double q_low = 0.1, q_high = 0.9;    // quantiles of the hitting times
  long bootstrap = 1000;
  double confidence = 0.95;
  long seed = 1;
  bool csv = false;                    // print CSV (every column, exact)
  std::string data;                    // also write the CSV table here
  static ParamTable<ErtOptions> params();
};

struct EcdfOptions {
  std::vector<std::string> files;
  std::string metric = "subopt";
  std::string view = "last";
  std::vector<std::string> where;
  std::string budget = "step";         // the ECDF's x (results::Budget)
  std::string hits = "auto";           // recorded | checkpoint | best_so_far | auto (see above)
  double from = 1e-1, to = 1e-8;       // targets: `count` log-spaced from `from` down to `to`
  long count = 31;
  std::string by;                      // group key (a parameter, e.g. optimizer); empty: each configuration
  std::string output;                  // figure (.png, .svg, .pdf); empty: none
  std::string data;                    // CSV of the ECDF curves
  bool csv = false;
  std::string gnuplot = "gnuplot";
  static ParamTable<EcdfOptions> params();
};

struct ProfileOptions {
  std::vector<std::string> files;
  std::string metric = "subopt";
  std::string view = "last";
  std::vector<std::string> where;
  std::string budget = "step";         // the cost's unit (results::Budget)
  std::string hits = "auto";           // recorded | checkpoint | best_so_far | auto (see above)
  std::vector<double> targets{1e-2, 1e-4};  // each (problem, target) is one problem of the profile
  std::vector<std::string> problem;    // keys that define a problem; empty: `problem` and every `problem.*`
  std::string kind = "performance";    // performance (Dolan-More, ratio to the best) | data (More-Wild, budget)
  std::string output;
  std::string data;
  bool csv = false;
  std::string gnuplot = "gnuplot";
  static ParamTable<ProfileOptions> params();
};

int ert(const ErtOptions& options, std::ostream& out);
int ecdf(const EcdfOptions& options, std::ostream& out);
int profile(const ProfileOptions& options, std::ostream& out);

// The same on data already read (tests): `names` are the files' names for messages and tables.
int ert(const ErtOptions& options, const std::vector<results::TraceData>& data, const std::vector<std::string>& names,
        std::ostream& out);
int ecdf(const EcdfOptions& options, const std::vector<results::TraceData>& data,
         const std::vector<std::string>& names, std::ostream& out);
int profile(const ProfileOptions& options, const std::vector<results::TraceData>& data,
            const std::vector<std::string>& names, std::ostream& out);

}  // namespace ratelab::tools
