// Heavy-ball momentum (B. T. Polyak, "Some methods of speeding up the convergence of iteration methods",
// USSR Comput. Math. Math. Phys. 4(5), 1964):
//   x_{t+1} = x_t - gamma_t g_t + beta (x_t - x_{t-1}),   x_{-1} = x_0,
// with gamma_t the schedule's step (tuning = manual). tuning = polyak replaces both gamma_t and beta by
// Polyak's constants from the problem's declared L and mu (the schedule and `beta` are then ignored):
//   gamma = 4 / (sqrt(L) + sqrt(mu))^2,   beta = ((sqrt(L) - sqrt(mu)) / (sqrt(L) + sqrt(mu)))^2,
// for which ||x_t - x*|| contracts by (sqrt(kappa) - 1)/(sqrt(kappa) + 1) per step on a quadratic with
// condition number kappa = L/mu.
//
// Multi-block (blocks = B > 1): the coordinates are split into B contiguous blocks whose sizes differ by at
// most one, and one step t makes B inner updates, each of a single block j:
//   x^j <- x^j - gamma_t g^j(x) + beta (x^j - p^j),   p^j <- the old x^j,
// where g^j is block j of a stochastic gradient at the current, partially updated point and p^j is block j
// as it was before its previous update (so p = x_{t-1} when every block moves once per step). The block is
// j = 1..B in order for block_rule = cyclic (a Gauss-Seidel sweep) and j = optimizer-stream below(B), one
// draw per inner update, for block_rule = random. Cost is counted honestly: an inner update costs size_j
// gradient coordinates if the oracle has a cheap block gradient and dim coordinates otherwise; the run stat
// `gradient_coordinates` is the total over the run (T * dim for the single-block method).
#include <array>
#include <cmath>
#include <string>

#include "core/fast_paths.hpp"
#include "core/packet_passes.hpp"
#include "optimizers/gradient_packets.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct HeavyBallOptions {
  enum class Tuning { manual, polyak };
  enum class BlockRule { cyclic, random };
  double beta = 0.9;
  Tuning tuning = Tuning::manual;
  long blocks = 1;
  BlockRule block_rule = BlockRule::cyclic;
  long batch = 1;
  static ParamTable<HeavyBallOptions> params() {
    return {
        applies_when(param(&HeavyBallOptions::beta, "beta", in_closed_open(0, 1), "momentum coefficient"), "tuning",
                     {"manual"}),
        choice(&HeavyBallOptions::tuning, "tuning", {{"manual", Tuning::manual}, {"polyak", Tuning::polyak}},
               "manual: gamma_t from the schedule and beta as given; polyak: both from the problem's L and mu"),
        param(&HeavyBallOptions::blocks, "blocks", at_least(1),
              "number of coordinate blocks updated one at a time (1: plain heavy-ball); at most the dimension"),
        choice(&HeavyBallOptions::block_rule, "block_rule",
               {{"cyclic", BlockRule::cyclic}, {"random", BlockRule::random}},
               "multi-block order: sweep the blocks in order, or draw each block uniformly"),
        batch_param(&HeavyBallOptions::batch),
    };
  }
  // tuning = polyak takes its step from the problem: the schedule does nothing then.
  static AppliesWhen schedule_applies() { return {"tuning", {"manual"}}; }
};

// The single-block pass of steps_checked with the gradient as a row (OracleFastPaths::row_gradient_of_dot):
//   old = x_j,  g_j = ridge old + coef row_j,  x_j <- (old - gamma g_j) + beta (old - p_j),  p_j <- old,
// the arithmetic of update_checked element by element, returning ||x||^2 and next_row . x in
// sweep_and_sum's two-wide order (packet_passes::two_wide), compiled for AVX2 too and chosen when the program
// loads: the heavy-ball step is throughput-bound on this pass, which four-wide vectors halve.
struct RowPass {
  double ridge, coef, gamma, beta;
};
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
std::array<double, 2> heavy_ball_row_pass(double* x, double* p, const double* row, const double* next_row, RowPass c,
                                          Eigen::Index d) {
  using namespace packet_passes::two_wide;
  return sweep_and_sum<2>(d, [&]<class V>(Eigen::Index j, V* terms) {
    const V old = load<V>(x + j);
    const V g = c.ridge * old + c.coef * load<V>(row + j);
    const V xn = (old - c.gamma * g) + c.beta * (old - load<V>(p + j));
    store(x + j, xn);
    store(p + j, old);
    terms[0] = xn * xn;
    terms[1] = load<V>(next_row + j) * xn;
  });
}

class HeavyBall final : public Optimizer {
 public:
  explicit HeavyBall(const HeavyBallOptions& options) : options_(options) {}

  void prepare(const Problem& problem) override {
    const Eigen::Index d = problem.dim();
    if (options_.blocks > d)
      throw ConfigError("optimizer.blocks = " + std::to_string(options_.blocks) + " exceeds the dimension " +
                        std::to_string(d) + " of the problem; need blocks <= d");
    if (options_.tuning == HeavyBallOptions::Tuning::polyak) {
      const ProblemFacts& facts = problem.facts();
      std::string missing;
      if (!facts.L) missing += "L";
      if (!facts.mu) missing += missing.empty() ? "mu" : " and mu";
      if (!missing.empty())
        throw ConfigError("optimizer.tuning = polyak needs the problem's smoothness L and strong convexity mu, "
                          "but the problem does not declare " + missing + "; use tuning = manual");
      if (!(*facts.mu > 0.0) || !(*facts.L >= *facts.mu))
        throw ConfigError("optimizer.tuning = polyak needs 0 < mu <= L; the problem declares mu = " +
                          std::to_string(*facts.mu) + ", L = " + std::to_string(*facts.L));
      const double sl = std::sqrt(*facts.L), sm = std::sqrt(*facts.mu);
      polyak_gamma_ = 4.0 / ((sl + sm) * (sl + sm));
      beta_ = ((sl - sm) / (sl + sm)) * ((sl - sm) / (sl + sm));
    } else {
      beta_ = options_.beta;
    }
    x_.resize(d);
    previous_.resize(d);
    g_.resize(d);
    block_gradients_.prepare(d);
    block_begin_.resize(std::size_t(options_.blocks));
    block_size_.resize(std::size_t(options_.blocks));
    const Eigen::Index B = Eigen::Index(options_.blocks), base = d / B, extra = d % B;
    Eigen::Index begin = 0;
    for (Eigen::Index j = 0; j < B; ++j) {
      block_begin_[std::size_t(j)] = begin;
      block_size_[std::size_t(j)] = base + (j < extra ? 1 : 0);
      begin += block_size_[std::size_t(j)];
    }
  }

  void start(ConstVecRef x0, RunStreams& streams) override {
    x_ = x0;
    previous_ = x0;  // x_{-1} = x_0: the first step has no momentum
    rng_ = &streams.optimizer;
    gradient_coordinates_ = 0.0;
  }

  void step(long, double eta, Oracle& oracle) override {
    const double gamma = options_.tuning == HeavyBallOptions::Tuning::polyak ? polyak_gamma_ : eta;
    const int batch = int(options_.batch);
    const Eigen::Index d = x_.size();
    if (options_.blocks == 1) {
      sample_minibatch(oracle, x_, g_, batch);
      gradient_coordinates_ += double(d);
      update_block(0, d, gamma);
      return;
    }
    const bool cheap = block_gradients_.bind(oracle);
    const std::size_t B = std::size_t(options_.blocks);
    for (std::size_t inner = 0; inner < B; ++inner) {
      const std::size_t j =
          options_.block_rule == HeavyBallOptions::BlockRule::cyclic ? inner : std::size_t(rng_->below(B));
      const Eigen::Index begin = block_begin_[j], size = block_size_[j];
      block_gradients_.sample(x_, begin, size, g_.segment(begin, size), batch);
      gradient_coordinates_ += double(cheap ? size : d);
      count_gradient_evaluations(double(batch) * double(cheap ? size : d) / double(d));
      update_block(begin, size, gamma);
    }
  }

  // Single block: every step checked in one pass over x that forms the gradient where the oracle gives it as
  // a row (OracleFastPaths::row_gradient_of_dot), updates x and the previous point and sums ||x||^2 and the
  // next step's row . x.
  long steps_checked(long t_first, long t_last, double limit2, const Schedule& schedule, RunStreams& streams,
                     Oracle& oracle) override {
    if (options_.blocks != 1) return Optimizer::steps_checked(t_first, t_last, limit2, schedule, streams, oracle);
    OracleFastPaths* fast = options_.batch == 1 ? oracle.fast_paths() : nullptr;
    const double* first_row = fast ? fast->gradient_row(t_first) : nullptr;
    double dot = first_row ? row_dot(first_row, x_) : 0.0;  // the coming step's row . x
    const Eigen::Index d = x_.size();
    for (long t = t_first; t <= t_last; ++t) {
      const double eta = schedule(t);
      const double gamma = options_.tuning == HeavyBallOptions::Tuning::polyak ? polyak_gamma_ : eta;
      double norm2;
      if (first_row) {
        OracleFastPaths::RowGradient row;
        fast->row_gradient_of_dot(t, dot, row);
        count_gradient_evaluations(1.0);
        if constexpr (packet_passes::two_wide::kTwoWideIsEigensOrder) {
          // The last step of the segment has no next row: the pass reads its own row again, the dot unused.
          const auto sums = heavy_ball_row_pass(x_.data(), previous_.data(), row.row,
                                                t < t_last ? row.next_row : row.row, {row.ridge, row.coef, gamma, beta_}, d);
          norm2 = sums[0], dot = sums[1];
        } else if (t < t_last) {
          const auto sums = update_checked<true>(gamma, row_gradient_packets(row), row.next_row);
          norm2 = sums[0], dot = sums[1];
        } else {
          norm2 = update_checked<false>(gamma, row_gradient_packets(row), nullptr)[0];
        }
      } else {
        streams.seek(std::uint64_t(t));
        sample_minibatch(oracle, x_, g_, options_.batch);
        norm2 = update_checked<false>(gamma, stored_gradient_packets(g_.data()), nullptr)[0];
      }
      gradient_coordinates_ += double(d);
      if (!(norm2 <= limit2)) return t;
    }
    return 0;
  }

  ConstVecRef iterate() const override { return x_; }
  void report(RunStats& stats) const override { stats.emplace_back("gradient_coordinates", gradient_coordinates_); }

 private:
  // x^j <- x^j - gamma g^j + beta (x^j - p^j), p^j <- the old x^j, element by element in one pass.
  void update_block(Eigen::Index begin, Eigen::Index size, double gamma) {
    double* x = x_.data();
    double* p = previous_.data();
    const double* g = g_.data();
    for (Eigen::Index j = begin; j < begin + size; ++j) {
      const double old = x[j];
      x[j] = (old - gamma * g[j]) + beta_ * (old - p[j]);
      p[j] = old;
    }
  }
  // update_block over all of x with g_j = gradient(j, x_j), returning ||x||^2 and, WithDot, next_row . x,
  // in the bits of squaredNorm() and dot() (the check's, and the next step's gradient's).
  template <bool WithDot, class Gradient>
  std::array<double, 2> update_checked(double gamma, Gradient&& gradient, const double* next_row) {
    using namespace Eigen::internal;
    double* x = x_.data();
    double* p = previous_.data();
    const auto sums = packet_passes::sweep_and_sum<WithDot ? 2 : 1>(x_.size(), [&]<class T>(Eigen::Index j, T* terms) {
      const T old = ploadu<T>(x + j);
      const T g = gradient(j, old);
      const T xn = padd(psub(old, pmul(pset1<T>(gamma), g)), pmul(pset1<T>(beta_), psub(old, ploadu<T>(p + j))));
      pstoreu(x + j, xn);
      pstoreu(p + j, old);
      terms[0] = pmul(xn, xn);
      if constexpr (WithDot) terms[1] = pmul(ploadu<T>(next_row + j), xn);
    });
    return {sums[0], WithDot ? sums[sums.size() - 1] : 0.0};
  }

  HeavyBallOptions options_;
  double beta_ = 0.0, polyak_gamma_ = 0.0;
  Vec x_, previous_, g_;
  BlockGradientSampler block_gradients_;
  std::vector<Eigen::Index> block_begin_, block_size_;
  RandomStream* rng_ = nullptr;
  double gradient_coordinates_ = 0.0;
};

}  // namespace
}  // namespace ratelab

using ratelab::HeavyBall;
using ratelab::HeavyBallOptions;
RATELAB_REGISTER_OPTIMIZER(heavy_ball, HeavyBall, HeavyBallOptions,
                           "Polyak's heavy-ball: x_{t+1} = x_t - gamma_t g_t + beta (x_t - x_{t-1}), x_{-1} = x_0 (the first step has no momentum); optional blocks")
