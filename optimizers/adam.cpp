// Adam (Kingma & Ba, "Adam: A method for stochastic optimization", ICLR 2015, Algorithm 1), the standard
// bias-corrected form with the schedule's eta_t as the step alpha_t. Step t = 1, 2, ...:
//   m_t = beta1 m_{t-1} + (1 - beta1) g_t,        m_0 = 0,
//   v_t = beta2 v_{t-1} + (1 - beta2) g_t^2,      v_0 = 0   (coordinate-wise square),
//   x_t = x_{t-1} - eta_t (m_t / (1 - beta1^t)) / (sqrt(v_t / (1 - beta2^t)) + eps).
#include <array>
#include <cmath>
#include <limits>

#include "core/fast_paths.hpp"
#include "core/packet_passes.hpp"
#include "optimizers/gradient_packets.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  long batch = 1;
  static ParamTable<AdamOptions> params() {
    return {
        param(&AdamOptions::beta1, "beta1", in_closed_open(0, 1), "decay of the first-moment average"),
        param(&AdamOptions::beta2, "beta2", in_closed_open(0, 1), "decay of the second-moment average"),
        param(&AdamOptions::eps, "eps", positive(), "added to the root of the second moment"),
        batch_param(&AdamOptions::batch),
    };
  }
};

// One pass over x per step: the moments and x element by element (the arithmetic of the Eigen expressions
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  x -= eta (m / c1) / (sqrt(v / c2) + eps),
// coefficient-wise, so the same bits); with every step checked, the gradient formed in the same pass where the
// oracle gives it as a row (OracleFastPaths::row_gradient_of_dot), ||x||^2 and the next step's row . x
// summed there too.
class Adam final : public Optimizer {
 public:
  explicit Adam(const AdamOptions& options)
      : options_(options),
        c1_is_one_from_(bias_correction_is_one_from(options.beta1)),
        c2_is_one_from_(bias_correction_is_one_from(options.beta2)) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    g_.resize(problem.dim());
    m_.resize(problem.dim());
    v_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    m_.setZero();
    v_.setZero();
  }
  void step(long t, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    update<false, false>(t, eta, stored_gradient_packets(g_.data()));
  }
  long steps_checked(long t_first, long t_last, double limit2, const Schedule& schedule, RunStreams& streams,
                     Oracle& oracle) override {
    OracleFastPaths* fast = options_.batch == 1 ? oracle.fast_paths() : nullptr;
    const double* first_row = fast ? fast->gradient_row(t_first) : nullptr;
    double dot = first_row ? row_dot(first_row, x_) : 0.0;  // the coming step's row . x
    for (long t = t_first; t <= t_last; ++t) {
      const double eta = schedule(t);
      double norm2;
      if (first_row) {
        OracleFastPaths::RowGradient row;
        fast->row_gradient_of_dot(t, dot, row);
        count_gradient_evaluations(1.0);
        if (t < t_last) {
          const auto sums = update<true, true>(t, eta, row_gradient_packets(row), row.next_row);
          norm2 = sums[0], dot = sums[1];
        } else {
          norm2 = update<true, false>(t, eta, row_gradient_packets(row))[0];
        }
      } else {
        streams.seek(std::uint64_t(t));
        sample_minibatch(oracle, x_, g_, options_.batch);
        norm2 = update<true, false>(t, eta, stored_gradient_packets(g_.data()))[0];
      }
      if (!(norm2 <= limit2)) return t;
    }
    return 0;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  // 1 - beta^t rounds to 1 once beta^t < 2^-54 (1 - 2^-54 is the midpoint below 1); from the step returned
  // here on, beta^t < 2^-56 with two steps to spare for the rounding of log2, and std::pow is within an ulp,
  // so 1 - std::pow(beta, t) == 1 exactly and the call can be skipped without changing a bit.
  static long bias_correction_is_one_from(double beta) {
    if (beta == 0.0) return 1;
    const double steps = 56.0 / -std::log2(beta);
    return steps < 1e17 ? long(steps) + 2 : std::numeric_limits<long>::max();
  }
  // The step's update with g_j = gradient(j, x_j); returns ||x||^2 if Checked and next_row . x if WithDot, in
  // the bits of squaredNorm() and dot() (the check's, and the next step's gradient's).
  template <bool Checked, bool WithDot, class Gradient>
  std::array<double, 2> update(long t, double eta, Gradient&& gradient, const double* next_row = nullptr) {
    using namespace Eigen::internal;
    const double b1 = options_.beta1, b2 = options_.beta2, eps = options_.eps;
    const double c1 = t >= c1_is_one_from_ ? 1.0 : 1.0 - std::pow(b1, double(t));
    const double c2 = t >= c2_is_one_from_ ? 1.0 : 1.0 - std::pow(b2, double(t));
    double* x = x_.data();
    double* m = m_.data();
    double* v = v_.data();
    constexpr std::size_t kSums = Checked || WithDot ? std::size_t(Checked) + std::size_t(WithDot) : 1;
    const auto sums = packet_passes::sweep_and_sum<kSums>(x_.size(), [&]<class T>(Eigen::Index j, T* terms) {
      const T xj = ploadu<T>(x + j);
      const T g = gradient(j, xj);
      const T mj = padd(pmul(pset1<T>(b1), ploadu<T>(m + j)), pmul(pset1<T>(1.0 - b1), g));
      const T vj = padd(pmul(pset1<T>(b2), ploadu<T>(v + j)), pmul(pset1<T>(1.0 - b2), pmul(g, g)));
      const T step = pdiv(pmul(pset1<T>(eta), pdiv(mj, pset1<T>(c1))),
                          padd(psqrt(pdiv(vj, pset1<T>(c2))), pset1<T>(eps)));
      const T xn = psub(xj, step);
      pstoreu(m + j, mj);
      pstoreu(v + j, vj);
      pstoreu(x + j, xn);
      if constexpr (Checked) terms[0] = pmul(xn, xn);
      if constexpr (WithDot) terms[kSums - 1] = pmul(ploadu<T>(next_row + j), xn);
      if constexpr (!Checked && !WithDot) terms[0] = pset1<T>(0.0);
    });
    std::array<double, 2> out{};
    if constexpr (Checked) out[0] = sums[0];
    if constexpr (WithDot) out[1] = sums[kSums - 1];
    return out;
  }

  AdamOptions options_;
  long c1_is_one_from_, c2_is_one_from_;  // steps from which 1 - beta^t == 1 exactly
  Vec x_, g_, m_, v_;
};

}  // namespace
}  // namespace ratelab

using ratelab::Adam;
using ratelab::AdamOptions;
RATELAB_REGISTER_OPTIMIZER(adam, Adam, AdamOptions, "Adam (Kingma & Ba 2015), bias-corrected moment estimates")
