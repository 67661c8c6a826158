#include "core/run.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <typeinfo>

#include "core/fast_paths.hpp"
#include "core/params.hpp"

namespace ratelab {

ParamTable<RunOptions> RunOptions::params() {
  using O = RunOptions;
  return {
      param(&O::steps, "steps", at_least(1), "steps T per run"),
      param(&O::suffix_alpha, "suffix_alpha", in_open_closed(0, 1), "suffix view: mean of the last ceil(alpha t) iterates"),
      param(&O::polydecay_k, "polydecay_k", nonnegative(), "polynomial-decay averaging parameter k (Shamir & Zhang)"),
      param(&O::divergence_threshold, "divergence_threshold", positive(),
            "a run whose ||x|| exceeds this (or becomes NaN/Inf) stops with status diverged"),
      param(&O::divergence_check_every, "divergence_check_every", at_least(1),
            "steps between divergence checks (also at every checkpoint and at T); larger values let optimizers fuse their steps between checks (sgd with the least-squares row oracle)"),
      param(&O::record_iterates, "record_iterates", unconstrained(),
            "store x itself of every view at every checkpoint in the trace file (variable `iterate`; refused above 1 GiB)"),
  };
}

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kViewNames{"last", "uniform", "suffix", "polydecay", "best"};
const std::vector<std::string> kMetricNames{"value", "subopt", "dist2", "gradnorm2"};
}  // namespace

const char* view_name(View view) { return kViewNames[int(view)].c_str(); }
const char* metric_name(Metric metric) { return kMetricNames[int(metric)].c_str(); }
const char* metric_doc(Metric metric) {
  switch (metric) {
    case Metric::value: return "F(x) = f(x) + h(x), the full objective";
    case Metric::subopt: return "F(x) - F*, suboptimality of the full objective";
    case Metric::dist2: return "||x - x*||^2, squared distance to the minimizer";
    case Metric::gradnorm2: return "||grad f(x)||^2, squared norm of the exact gradient";
  }
  return "";
}
const char* view_doc(View view) {
  switch (view) {
    case View::last: return "x_t, the last iterate";
    case View::uniform: return "(x_1 + ... + x_t) / t, the uniform average of the iterates after the start (x_0 is not in it; at t = 0 it is x_0)";
    case View::suffix: return "the mean of the last ceil(suffix_alpha t) iterates x_{t-w+1}, ..., x_t (x_0 only at t = 0)";
    case View::polydecay: return "polynomial-decay average y_t = (1 - w_t) y_{t-1} + w_t x_t, w_t = (k + 1)/(t + k), k = polydecay_k, y_0 = x_0 (w_1 = 1: x_0 drops out at t = 1)";
    case View::best: return "the checkpoint iterate with the lowest F so far among the last view's checkpoints (x_0 included)";
  }
  return "";
}
const char* status_name(RunStatus status) {
  switch (status) {
    case RunStatus::ok: return "ok";
    case RunStatus::diverged: return "diverged";
    case RunStatus::error: return "error";
    case RunStatus::interrupted: return "interrupted";
    case RunStatus::missing: return "missing";
    case RunStatus::nonfinite: return "nonfinite";
  }
  return "?";
}
const std::vector<std::string>& all_view_names() { return kViewNames; }
const std::vector<std::string>& all_metric_names() { return kMetricNames; }

View view_from_name(const std::string& name) {
  for (std::size_t i = 0; i < kViewNames.size(); ++i)
    if (kViewNames[i] == name) return View(i);
  throw ConfigError(unknown_key_message("iterate view", name, kViewNames));
}
Metric metric_from_name(const std::string& name) {
  for (std::size_t i = 0; i < kMetricNames.size(); ++i)
    if (kMetricNames[i] == name) return Metric(i);
  throw ConfigError(unknown_key_message("metric", name, kMetricNames));
}

std::vector<long> log_checkpoints(long steps, long count) {
  std::vector<long> cp{0};
  if (steps <= 0) return cp;
  const long positive = std::max(2L, count - 1);  // number of checkpoints in [1, T]
  long prev = 0;
  for (long k = 0; k < positive; ++k) {
    long v = long(std::floor(std::pow(double(steps), double(k) / double(positive - 1)) + 0.5));
    v = std::max(v, prev + 1);
    if (v > steps) break;
    cp.push_back(v);
    prev = v;
  }
  if (cp.back() != steps) cp.push_back(steps);
  return cp;
}

std::vector<long> linear_checkpoints(long steps, long count) {
  std::vector<long> cp{0};
  const long intervals = std::max(1L, count - 1);
  for (long k = 1; k <= intervals && steps > 0; ++k) {
    // Integer arithmetic (k T rounded to the nearest multiple of the intervals): exact for any T.
    const long v = long((__int128(k) * steps * 2 + intervals) / (2 * __int128(intervals)));
    if (v > cp.back()) cp.push_back(v);
  }
  return cp;
}

std::vector<Metric> available_metrics(const Problem& problem) {
  std::vector<Metric> out{Metric::value};
  if (problem.facts().f_star) out.push_back(Metric::subopt);
  if (problem.facts().x_star_known) out.push_back(Metric::dist2);
  if (problem.has_gradient() && !problem.is_composite()) out.push_back(Metric::gradnorm2);
  return out;
}

void evaluate_metrics(const Problem& problem, const std::vector<Metric>& metrics, ConstMatRef X,
                      std::vector<double>& out) {
  const Eigen::Index n = X.cols();
  out.assign(metrics.size() * n, kNaN);
  bool need_value = false;
  for (Metric m : metrics) need_value |= (m == Metric::value || m == Metric::subopt);
  Vec values;
  if (need_value) {
    values.resize(n);
    problem.values(X, values);
  }
  Vec g;
  for (std::size_t mi = 0; mi < metrics.size(); ++mi) {
    double* o = out.data() + mi * n;
    switch (metrics[mi]) {
      case Metric::value:
        for (Eigen::Index j = 0; j < n; ++j) o[j] = values[j];
        break;
      case Metric::subopt: {
        const double f_star = problem.facts().f_star.value_or(kNaN);
        for (Eigen::Index j = 0; j < n; ++j) o[j] = values[j] - f_star;
        break;
      }
      case Metric::dist2: {
        ConstVecRef xs = problem.x_star();
        for (Eigen::Index j = 0; j < n; ++j) o[j] = (X.col(j) - xs).squaredNorm();
        break;
      }
      case Metric::gradnorm2:
        g.resize(X.rows());
        for (Eigen::Index j = 0; j < n; ++j) {
          problem.gradient(X.col(j), g);
          o[j] = g.squaredNorm();
        }
        break;
    }
  }
}

namespace {

// Iterate views maintained online, O(d) per step: a running sum serves `uniform` (sum / t), a running
// weighted mean serves `polydecay`, and `suffix` sums its window without subtracting two running sums (a
// difference of sums loses every digit once the window's sum is below the rounding error of the older
// iterates: for x_t = 2^-t it was exactly 0 from t = 118). Time is cut at every checkpoint and every
// window start into segments; each window is a run of consecutive segments, and the windows' starts and
// ends both move forward, so a two-stack sliding-window sum adds only the segments inside the window
// (O(d) per segment amortized, no subtraction: the relative error does not depend on how small the
// iterates have become). `best` is derived after evaluation from the `last` view's values.
class ViewTracker {
 public:
  ViewTracker(const RunPlan& plan, Eigen::Index dim) : plan_(plan) {
    for (View v : plan.views) {
      if (v == View::best) need_last_ = true;
      else want_[int(v)] = true;
    }
    if (want_[int(View::last)]) need_last_ = true;
    for (View v : {View::last, View::uniform, View::suffix, View::polydecay})
      if ((v == View::last && need_last_) || (v != View::last && want_[int(v)])) stored_.push_back(v);
    const Eigen::Index K = Eigen::Index(plan.checkpoints.size());
    store_.resize(dim, K * Eigen::Index(stored_.size()));
    if (want_[int(View::uniform)]) sum_ = Vec::Zero(dim);
    if (want_[int(View::polydecay)]) poly_ = Vec::Zero(dim);
    if (want_[int(View::suffix)]) {
      // The window ending at checkpoint t_k holds steps s_k + 1 .. t_k, s_k = t_k - ceil(alpha t_k).
      std::vector<long> window_start;
      for (long t : plan.checkpoints) {
        long width = std::max(1L, long(std::ceil(plan.suffix_alpha * double(t) - 1e-12)));
        window_start.push_back(t == 0 ? 0 : t - std::min(width, t));
      }
      boundaries_ = window_start;
      boundaries_.insert(boundaries_.end(), plan.checkpoints.begin(), plan.checkpoints.end());
      std::sort(boundaries_.begin(), boundaries_.end());
      boundaries_.erase(std::unique(boundaries_.begin(), boundaries_.end()), boundaries_.end());
      // Segment i holds steps boundaries_[i] + 1 .. boundaries_[i + 1].
      for (long s : window_start)
        first_segment_.push_back(std::size_t(std::lower_bound(boundaries_.begin(), boundaries_.end(), s) -
                                             boundaries_.begin()));
      const Eigen::Index segments = Eigen::Index(boundaries_.size());
      segment_sum_ = Mat::Zero(dim, segments);
      front_sum_ = Mat::Zero(dim, segments);
      open_segment_ = Vec::Zero(dim);
      back_sum_ = Vec::Zero(dim);
      window_ = Vec::Zero(dim);
    }
  }

  const std::vector<View>& stored() const { return stored_; }
  // Running sums (uniform, suffix) and the polynomial-decay average are updated with every iterate.
  static bool needs_every_iterate(const RunPlan& plan) {
    return std::any_of(plan.views.begin(), plan.views.end(),
                       [](View v) { return v == View::uniform || v == View::suffix || v == View::polydecay; });
  }
  const Mat& store() const { return store_; }

  void start(ConstVecRef x0) {
    if (want_[int(View::uniform)]) sum_.setZero();
    if (want_[int(View::polydecay)]) poly_ = x0;
    if (want_[int(View::suffix)]) {
      open_segment_.setZero();
      back_sum_.setZero();
      closed_ = 0;
      front_end_ = 0;
    }
  }

  void update(long t, ConstVecRef x) {
    if (want_[int(View::uniform)]) sum_ += x;
    if (want_[int(View::polydecay)]) {
      const double k = plan_.polydecay_k, w = (k + 1.0) / (double(t) + k);
      poly_ = (1.0 - w) * poly_ + w * x;
    }
    if (want_[int(View::suffix)]) {
      open_segment_ += x;
      if (closed_ + 1 < boundaries_.size() && boundaries_[closed_ + 1] == t) {  // the open segment ends here
        segment_sum_.col(Eigen::Index(closed_)) = open_segment_;
        back_sum_ += open_segment_;
        open_segment_.setZero();
        ++closed_;
      }
    }
  }

  void record(std::size_t k, long t, ConstVecRef x) {
    const Eigen::Index V = Eigen::Index(stored_.size());
    for (Eigen::Index s = 0; s < V; ++s) {
      auto col = store_.col(Eigen::Index(k) * V + s);
      switch (stored_[s]) {
        case View::last: col = x; break;
        case View::uniform:
          if (t == 0) col = x;
          else col = sum_ / double(t);
          break;
        case View::suffix: {
          if (t == 0) {
            col = x;
            break;
          }
          col = suffix_sum(first_segment_[k]) / double(t - boundaries_[first_segment_[k]]);
          break;
        }
        case View::polydecay: col = poly_; break;
        case View::best: break;
      }
    }
  }

 private:
  // Sum of the closed segments first .. closed_ - 1 (the window ending at the current checkpoint). The front
  // stack holds segments [front_begin, front_end_) with front_sum_.col(i) = segments i .. front_end_ - 1;
  // back_sum_ holds segments front_end_ .. closed_ - 1. Window starts never move back, so when a window
  // starts past the front stack, the back segments it needs are summed into a new front stack (each segment
  // at most once per run) and the older ones are never needed again.
  const Vec& suffix_sum(std::size_t first) {
    if (first >= front_end_) {
      window_.setZero();
      for (std::size_t i = closed_; i-- > first;) {
        window_ += segment_sum_.col(Eigen::Index(i));
        front_sum_.col(Eigen::Index(i)) = window_;
      }
      front_end_ = closed_;
      back_sum_.setZero();
    }
    window_ = front_sum_.col(Eigen::Index(first)) + back_sum_;
    return window_;
  }

  const RunPlan& plan_;
  bool want_[5] = {false, false, false, false, false};
  bool need_last_ = false;
  std::vector<View> stored_;
  Mat store_;
  Vec sum_, poly_;
  // suffix: segments of time between consecutive boundaries (checkpoints and window starts)
  std::vector<long> boundaries_;            // sorted unique, first 0
  std::vector<std::size_t> first_segment_;  // per checkpoint: the first segment of its window
  Mat segment_sum_, front_sum_;
  Vec open_segment_, back_sum_, window_;
  std::size_t closed_ = 0, front_end_ = 0;
};

// Extra metrics on the stored `last` iterates (when that view is stored) and on the final iterate.
void record_extra_metrics(const Problem& problem, const Mat& store, const std::vector<View>& stored,
                          std::size_t recorded, std::size_t K, ConstVecRef final_x, RunResult& result) {
  result.extra_names = problem.extra_metric_names();
  const Eigen::Index E = Eigen::Index(result.extra_names.size());
  if (E == 0) return;
  result.extra_traces.assign(std::size_t(E) * K, kNaN);
  const auto s_last = std::size_t(std::find(stored.begin(), stored.end(), View::last) - stored.begin());
  if (s_last < stored.size() && recorded > 0) {
    const std::size_t S = stored.size();
    Mat X(store.rows(), Eigen::Index(recorded));
    for (std::size_t k = 0; k < recorded; ++k) X.col(Eigen::Index(k)) = store.col(Eigen::Index(k * S + s_last));
    Mat out(E, X.cols());
    problem.extra_metrics(X, out);
    for (Eigen::Index e = 0; e < E; ++e)
      for (std::size_t k = 0; k < recorded; ++k)
        result.extra_traces[std::size_t(e) * K + k] = out(e, Eigen::Index(k));
  }
  if (result.status != RunStatus::ok) return;
  Mat out(E, 1);
  problem.extra_metrics(final_x, out);
  for (Eigen::Index e = 0; e < E; ++e) result.stats.emplace_back("final_" + result.extra_names[std::size_t(e)], out(e, 0));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

namespace {

// One run of a lockstep group inside the run loop.
struct RunInLoop {
  RunResult result;
  std::optional<ViewTracker> views;
  std::unique_ptr<Oracle> oracle;
  std::size_t recorded = 0;  // checkpoints recorded so far
  bool active = false;       // still stepping

  void fail(const std::exception& e) {
    result.status = RunStatus::error;
    result.message = e.what();
    active = false;
  }
};

// A run whose iterate stayed finite but whose recorded metrics are not (F = inf off a constraint set, a NaN
// from the problem) is not `ok`: its status says so and its message names the first such value.
void mark_nonfinite(const RunPlan& plan, std::size_t recorded, RunResult& result) {
  const std::size_t K = plan.checkpoints.size(), V = plan.views.size();
  for (std::size_t m = 0; m < plan.metrics.size(); ++m)
    for (std::size_t v = 0; v < V; ++v)
      for (std::size_t k = 0; k < recorded; ++k) {
        const double value = result.traces[(m * V + v) * K + k];
        if (std::isfinite(value)) continue;
        result.status = RunStatus::nonfinite;
        result.message = std::string(metric_name(plan.metrics[m])) + " of view " + view_name(plan.views[v]) +
                         " is " + (std::isnan(value) ? "NaN" : value > 0 ? "inf" : "-inf") + " at t = " +
                         std::to_string(plan.checkpoints[k]) + " (the iterate is finite)";
        return;
      }
}

// After the step loop: the stored iterates evaluated as one block, the views and extra metrics filled in.
void finish_run(const Problem& problem, const RunPlan& plan, Optimizer& optimizer, RunInLoop& run) {
  RunResult& result = run.result;
  const ViewTracker& views = *run.views;
  const std::size_t K = plan.checkpoints.size(), V = plan.views.size(), M = plan.metrics.size();
  const std::size_t recorded = run.recorded;
  auto t_eval = std::chrono::steady_clock::now();
  const std::size_t S = views.stored().size();
  // The best view needs the objective at every checkpoint of the last view; evaluate it once with the rest.
  const bool want_best = std::find(plan.views.begin(), plan.views.end(), View::best) != plan.views.end();
  std::vector<Metric> metrics = plan.metrics;
  auto value_pos = std::size_t(std::find(metrics.begin(), metrics.end(), Metric::value) - metrics.begin());
  if (want_best && value_pos == metrics.size()) metrics.push_back(Metric::value);
  const std::size_t cols = recorded * S;
  std::vector<double> evaluated;
  evaluate_metrics(problem, metrics, views.store().leftCols(Eigen::Index(cols)), evaluated);
  auto stored_index = [&](View v) {
    return std::size_t(std::find(views.stored().begin(), views.stored().end(), v) - views.stored().begin());
  };
  std::vector<std::size_t> best_at(recorded, 0);
  if (want_best) {
    const double* last_values = evaluated.data() + value_pos * cols;
    const std::size_t s_last = stored_index(View::last);
    std::size_t best = 0;
    for (std::size_t k = 0; k < recorded; ++k) {
      if (last_values[k * S + s_last] < last_values[best * S + s_last]) best = k;
      best_at[k] = best;
    }
  }
  for (std::size_t m = 0; m < M; ++m)
    for (std::size_t v = 0; v < V; ++v) {
      const View view = plan.views[v];
      const std::size_t s = stored_index(view == View::best ? View::last : view);
      for (std::size_t k = 0; k < recorded; ++k) {
        const std::size_t kk = view == View::best ? best_at[k] : k;
        result.traces[(m * V + v) * K + k] = evaluated[m * cols + kk * S + s];
      }
    }
  if (plan.record_iterates) {
    // Copied from the checkpoint store after the loop: the step loop is the same with or without.
    const auto d = std::size_t(views.store().rows());
    result.iterates.assign(V * K * d, kNaN);
    for (std::size_t v = 0; v < V; ++v) {
      const View view = plan.views[v];
      const std::size_t s = stored_index(view == View::best ? View::last : view);
      for (std::size_t k = 0; k < recorded; ++k) {
        const std::size_t kk = view == View::best ? best_at[k] : k;
        const auto column = views.store().col(Eigen::Index(kk * S + s));
        std::copy(column.data(), column.data() + d, result.iterates.begin() + long((v * K + k) * d));
      }
    }
  }
  if (result.status == RunStatus::ok) mark_nonfinite(plan, recorded, result);
  record_extra_metrics(problem, views.store(), views.stored(), recorded, K, optimizer.iterate(), result);
  result.eval_seconds = seconds_since(t_eval);
  run.oracle->report(result.stats);
  optimizer.report(result.stats);
}

}  // namespace

RunResult run_one(const Problem& problem, Optimizer& optimizer, const Schedule& schedule, const RunPlan& plan,
                  RunStreams& streams, const std::atomic<bool>* cancel) {
  Optimizer* optimizers[1] = {&optimizer};
  RunStreams* run_streams[1] = {&streams};
  return std::move(run_lockstep(problem, optimizers, schedule, plan, run_streams, cancel).front());
}

std::vector<RunResult> run_lockstep(const Problem& problem, std::span<Optimizer* const> optimizers,
                                    const Schedule& schedule, const RunPlan& plan,
                                    std::span<RunStreams* const> streams, const std::atomic<bool>* cancel) {
  const std::size_t n = optimizers.size();
  if (n == 0 || n > kMaxLockstep || streams.size() != n)
    throw std::logic_error("run_lockstep: 1 to " + std::to_string(kMaxLockstep) +
                           " runs, one stream set each (got " + std::to_string(n) + " optimizers, " +
                           std::to_string(streams.size()) + " stream sets)");
  const std::size_t K = plan.checkpoints.size(), V = plan.views.size(), M = plan.metrics.size();
  std::vector<RunInLoop> runs(n);
  for (std::size_t r = 0; r < n; ++r) {
    RunInLoop& run = runs[r];
    run.result.traces.assign(M * V * K, kNaN);
    run.result.gradient_evaluations.assign(K, kNaN);
    run.result.elapsed_seconds.assign(K, kNaN);
    try {
      const Eigen::Index d = problem.dim();
      run.views.emplace(plan, d);
      optimizers[r]->prepare(problem);
      optimizers[r]->reset_gradient_evaluations();
      run.oracle = problem.make_oracle(*streams[r]);
      Vec x0(d);
      streams[r]->init.seek(0);
      problem.initial_point(x0, streams[r]->init);
      optimizers[r]->start(x0, *streams[r]);
      run.views->start(x0);
      run.result.gradient_evaluations[0] = 0.0;
      run.result.elapsed_seconds[0] = 0.0;
      run.views->record(run.recorded++, 0, x0);
      run.result.status = RunStatus::ok;
      run.active = true;
    } catch (const std::exception& e) {
      run.fail(e);
    }
  }

  // The lockstep fast path may treat every optimizer and oracle of the group as one of its own class
  // (OptimizerFastPaths::steps_lockstep); a group that mixes classes steps run by run.
  bool one_class = n > 1;
  const Oracle* first_oracle = nullptr;
  for (std::size_t r = 0; r < n; ++r) {
    one_class = one_class && typeid(*optimizers[r]) == typeid(*optimizers[0]);
    const Oracle* oracle = runs[r].oracle.get();  // none when the run failed to set up
    if (oracle && !first_oracle) first_oracle = oracle;
    one_class = one_class && (!oracle || typeid(*oracle) == typeid(*first_oracle));
  }

  const double limit2 = plan.divergence_threshold * plan.divergence_threshold;
  const long check_every = std::max(1L, plan.divergence_check_every);
  long next_check = check_every;
  std::size_t next_checkpoint = 1;  // checkpoint 0 (t = 0) is recorded above
  auto t_start = std::chrono::steady_clock::now();
  // Steps run in segments that end at the next event: a checkpoint, a divergence check, a cancellation
  // poll (every 4096 steps), the last step; every step is its own segment when an averaged view must see
  // each iterate. One virtual call per segment (for the whole group when the optimizer steps runs in
  // lockstep) lets an optimizer fuse its steps (sgd's fused path). Every run of the group has the same
  // events, so a run's segments, and therefore its iterates, do not depend on the group it is in.
  const bool per_step_views = ViewTracker::needs_every_iterate(plan);
  constexpr long kCancelPoll = 4096;
  std::array<Optimizer*, kMaxLockstep> group{};
  std::array<Oracle*, kMaxLockstep> group_oracles{};
  long t = 0;
  while (t < plan.steps) {
    std::size_t active = 0;
    for (std::size_t r = 0; r < n; ++r)
      if (runs[r].active) group[active] = optimizers[r], group_oracles[active++] = runs[r].oracle.get();
    if (active == 0) break;
    long end = plan.steps;
    if (per_step_views) {
      end = t + 1;
    } else {
      end = std::min(end, next_check);
      if (next_checkpoint < K) end = std::min(end, plan.checkpoints[next_checkpoint]);
      end = std::min(end, (t / kCancelPoll + 1) * kCancelPoll);
    }
    bool together = false;
    if (active > 1 && one_class) {
      try {
        if (OptimizerFastPaths* fast = group[0]->fast_paths())
          together = fast->steps_lockstep({group.data(), active}, t + 1, end, schedule,
                                          {group_oracles.data(), active});
      } catch (const std::exception& e) {  // the runs cannot be told apart: each of them failed
        for (RunInLoop& run : runs)
          if (run.active) run.fail(e);
        break;
      }
    }
    if (!together)
      for (std::size_t r = 0; r < n; ++r) {
        if (!runs[r].active) continue;
        try {
          optimizers[r]->steps(t + 1, end, schedule, *streams[r], *runs[r].oracle);
        } catch (const std::exception& e) {
          runs[r].fail(e);
        }
      }
    t = end;
    const bool at_checkpoint = next_checkpoint < K && plan.checkpoints[next_checkpoint] == t;
    const bool check = t == next_check || at_checkpoint || t == plan.steps;
    if (check) next_check = t + check_every;
    const double elapsed = at_checkpoint ? seconds_since(t_start) / double(n) : 0.0;
    for (std::size_t r = 0; r < n; ++r) {
      RunInLoop& run = runs[r];
      if (!run.active) continue;
      ConstVecRef x = optimizers[r]->iterate();
      if (per_step_views) run.views->update(t, x);
      if (check) {
        const double n2 = x.squaredNorm();
        if (!(n2 <= limit2)) {  // also catches NaN
          run.result.status = RunStatus::diverged;
          run.result.stop_step = t;
          run.active = false;
          continue;
        }
      }
      if (at_checkpoint) {
        run.result.gradient_evaluations[run.recorded] = optimizers[r]->gradient_evaluations();
        run.result.elapsed_seconds[run.recorded] = elapsed;
        run.views->record(run.recorded++, t, x);
      }
      run.result.stop_step = t;
    }
    if (at_checkpoint) ++next_checkpoint;
    if (t % kCancelPoll == 0 && cancel && cancel->load(std::memory_order_relaxed)) {
      for (RunInLoop& run : runs)
        if (run.active) run.result.status = RunStatus::interrupted, run.active = false;
      break;
    }
  }
  // The group's loop time, shared equally: the runs stepped together.
  const double wall = seconds_since(t_start) / double(n);

  std::vector<RunResult> results;
  results.reserve(n);
  for (std::size_t r = 0; r < n; ++r) {
    RunInLoop& run = runs[r];
    if (run.result.status != RunStatus::error) {
      run.result.wall_seconds = wall;
      try {
        finish_run(problem, plan, *optimizers[r], run);
      } catch (const std::exception& e) {
        run.fail(e);
      }
    }
    results.push_back(std::move(run.result));
  }
  return results;
}

}  // namespace ratelab
