// The canonical workloads of ../shared/bench/WORKLOADS.md (W1, W1-d1024, W1-heavy) run through ratelab's
// own engine: the registry's `sgd`, a `least_squares` problem built from the workload's portable instance
// (generated here, inside the timed job), the sweep scheduler and the HDF5 writer. Timed as a whole process
// by bench/compare.sh; the breakdown printed here comes from in-process clocks.
//
//   ratelab_bench_w1 [--d 128] [--T 100000] [--R 64] [--threads 1] [--heavy] [--lockstep 8] [-o FILE.h5]
//                    [--csv FILE.csv] [--targets 1e-2,1e-3,1e-4]
//
// --targets: hitting times of subopt recorded in the run loop (experiment.targets, at the automatic
// target_check_every), to measure what the target checks cost against the same job without them.
//
// Output: one JSON line on stderr in the peers' format (final suboptimality mean, median, SE), and the
// R x 40 array S[r][k] = f(x_{t_k}) - f* for the workload's 40 checkpoints (t = 1 .. T) as CSV if asked.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "experiments/run_to_file.hpp"
#include "problems/least_squares.hpp"
#include "results/statistics.hpp"

using namespace ratelab;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// f* of the workload instances (WORKLOADS.md; computed once with LAPACK gelsd, not part of the timed job).
double known_f_star(long d) {
  if (d == 128) return 0.004906696940132532;
  if (d == 1024) return 0.0037813285715576914;
  std::fprintf(stderr, "no known f* for d = %ld (the workloads use 128 and 1024)\n", d);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const auto t_start = std::chrono::steady_clock::now();
  long d = 128, T = 100000, R = 64;
  int threads = 1;
  int lockstep = int(ratelab::kMaxLockstep);  // runs stepped together (1: one at a time)
  bool heavy = false;
  std::string out = "out/bench_w1.h5", csv, targets;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--d") d = std::stol(next());
    else if (a == "--T") T = std::stol(next());
    else if (a == "--R") R = std::stol(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--heavy") heavy = true;
    else if (a == "--lockstep") lockstep = std::stoi(next());
    else if (a == "-o") out = next();
    else if (a == "--csv") csv = next();
    else if (a == "--targets") targets = next();
    else {
      std::fprintf(stderr, "unknown argument %s\nusage: %s [--d 128] [--T 100000] [--R 64] [--threads 1] [--heavy] [--lockstep 8] "
                   "[-o FILE.h5] [--csv FILE.csv] [--targets 1e-2,1e-3,1e-4]\n", a.c_str(), argv[0]);
      return 2;
    }
  }
  const double f_star = known_f_star(d);

  // The workload's instance as a registry component: built once (shared by all replicates) when the
  // experiment is prepared, which is inside the timed job.
  Registry registry = builtin_registry();
  double setup_seconds = 0.0, solved_f_star = NAN;
  registry.add_problem({ComponentKind::problem, "w1_instance", "WORKLOADS.md W1 least-squares instance", {}, "bench"},
                       [&](const ParamSet&, ProblemContext& context) -> std::shared_ptr<const Problem> {
                         const auto t0 = std::chrono::steady_clock::now();
                         RowMat A;
                         Vec b;
                         make_splitmix_instance(4096, d, 12345, 0.1, A, b, context.parallel_for);
                         LeastSquaresOptions o;
                         // x* by Cholesky inside the timed job (a d x d solve): the checkpoints are then
                         // evaluated as f* + e^T H e / 2 (least_squares' evaluation = auto), d^2 instead of
                         // n d flops each. L and mu (an eigen-decomposition) are not needed: sgd's schedule
                         // here is c / sqrt(t).
                         o.solve = true;
                         o.estimate_L = false;
                         if (heavy) {
                           // W1-heavy: g = H x - c + 0.1 xi, xi iid Student-t(2.5) per coordinate.
                           o.oracle = LeastSquaresOptions::OracleKind::exact;
                           o.noise.kind = NoiseOptions::Kind::student_t;
                           o.noise.nu = 2.5;
                           o.noise.scale = 0.1 * std::sqrt(5.0);  // noise_scale is the standard deviation: 0.1 t(2.5)
                         }
                         auto p = std::make_shared<LeastSquares>(std::move(A), std::move(b), o);
                         solved_f_star = p->facts().f_star.value_or(NAN);
                         setup_seconds = seconds_since(t0);
                         return p;
                       });
  // 41 checkpoints: t = 0 plus the workload's 40 (1 .. T, WORKLOADS.md's rule, see log_checkpoints).
  const std::string experiment = "[experiment]\nname = w1\nsteps = " + std::to_string(T) +
                                 "\nreplicates = " + std::to_string(R) +
                                 "\ncheckpoints = 41\nviews = last\nmetrics = subopt\nseed = 1\n"
                                 "divergence_check_every = 64\n" +
                                 (targets.empty() ? std::string() : "targets = " + targets + "\n") +
                                 "[problem]\nname = w1_instance\n"
                                 "[optimizer]\nname = sgd\n"
                                 "[schedule]\nname = inv_sqrt\nc = 0.5\n";
  ExperimentPlan plan = plan_experiment(registry, parse_ini(experiment, "w1"), {});
  RunToFileOptions options;
  options.output_path = out;
  options.overwrite = true;
  options.sweep.threads = threads;
  options.sweep.lockstep = lockstep;
  options.sweep.progress = SweepOptions::Progress::quiet;
  options.command_line = "ratelab_bench_w1";
  if (auto dir = std::filesystem::path(out).parent_path(); !dir.empty()) std::filesystem::create_directories(dir);
  const auto t_run = std::chrono::steady_clock::now();
  SweepSummary summary = run_experiment_to_file(registry, plan, options);
  const double run_seconds = seconds_since(t_run);

  // The solve inside the job against WORKLOADS.md's f* (LAPACK gelsd): the same minimum to rounding.
  const double f_star_rel_diff = std::abs(solved_f_star - f_star) / f_star;
  if (!(f_star_rel_diff <= 1e-12)) {
    std::fprintf(stderr, "f* of the solve %.17g differs from the workload's %.17g\n", solved_f_star, f_star);
    return 1;
  }
  // Read back what was written: the statistics are those of the file, not of memory.
  const auto t_post = std::chrono::steady_clock::now();
  results::TraceData data = results::read_trace_file(out);
  const std::size_t K = data.layout.checkpoints.size();
  double loop_seconds = 0, eval_seconds = 0;
  for (long r = 0; r < R; ++r) {
    loop_seconds += data.wall_seconds[std::size_t(r)];
    eval_seconds += data.eval_seconds[std::size_t(r)];
  }
  std::vector<double> final_values;
  for (long r = 0; r < R; ++r) final_values.push_back(data.trace(0, 0, 0, std::size_t(r), K - 1));
  const double mean = stats::mean(final_values), median = stats::quantile(final_values, 0.5);
  const double se = stats::standard_error(final_values);
  if (!csv.empty()) {
    FILE* f = std::fopen(csv.c_str(), "w");
    for (long r = 0; r < R; ++r)
      for (std::size_t k = 1; k < K; ++k)
        std::fprintf(f, "%.17g%c", data.trace(0, 0, 0, std::size_t(r), k), k + 1 < K ? ',' : '\n');
    std::fclose(f);
  }
  std::fprintf(stderr,
               "{\"peer\": \"ratelab%s\", \"d\": %ld, \"T\": %ld, \"R\": %ld, \"threads\": %d, \"setup_s\": %.6f, "
               "\"sweep_s\": %.6f, \"step_loops_s\": %.6f, \"checkpoint_eval_s\": %.6f, \"post_s\": %.6f, "
               "\"total_s\": %.6f, \"ok\": %ld, \"final_mean\": %.17g, \"final_median\": %.17g, \"final_se\": %.6g, \"f_star_rel_diff\": %.2g}\n",
               heavy ? " heavy" : "", d, T, R, threads, setup_seconds, run_seconds, loop_seconds, eval_seconds,
               seconds_since(t_post), seconds_since(t_start), summary.ok, mean, median, se, f_star_rel_diff);
  return summary.ok == R ? 0 : 1;
}
