// Stochastic Nesterov acceleration, in the momentum form of Sutskever, Martens, Dahl & Hinton ("On the
// importance of initialization and momentum in deep learning", ICML 2013, eqs. 3-4) with the stochastic
// gradient taken at the look-ahead point (Nesterov, "A method for solving the convex programming problem
// with convergence rate O(1/k^2)", 1983). Step t = 1, 2, ... maps x_{t-1} to x_t:
//   y_t = x_{t-1} + beta_t (x_{t-1} - x_{t-2}),   x_{-1} = x_0,
//   x_t = y_t - eta_t g(y_t),
// with beta_t = beta (momentum = constant, the strongly convex form) or beta_t = (t - 1)/(t + 2)
// (momentum = convex, the O(1/t^2) sequence of Beck & Teboulle's FISTA, SIAM J. Imaging Sci. 2009).
// The iterate the run loop sees is x_t, not the look-ahead point y_t.
#include <type_traits>

#include "core/fast_paths.hpp"
#include "core/packet_passes.hpp"
#include "optimizers/gradient_packets.hpp"
#include "core/params.hpp"
#include "core/registry.hpp"

namespace ratelab {
namespace {

struct NesterovOptions {
  enum class Momentum { constant, convex };
  double beta = 0.9;
  Momentum momentum = Momentum::constant;
  long batch = 1;
  static ParamTable<NesterovOptions> params() {
    return {
        param(&NesterovOptions::beta, "beta", in_closed_open(0, 1),
              "momentum coefficient (momentum = constant only)"),
        choice(&NesterovOptions::momentum, "momentum",
               {{"constant", Momentum::constant}, {"convex", Momentum::convex}},
               "constant: beta_t = beta; convex: beta_t = (t - 1)/(t + 2)"),
        batch_param(&NesterovOptions::batch),
    };
  }
};

class Nesterov final : public Optimizer {
 public:
  explicit Nesterov(const NesterovOptions& options) : options_(options) {}
  void prepare(const Problem& problem) override {
    x_.resize(problem.dim());
    previous_.resize(problem.dim());
    y_.resize(problem.dim());
    g_.resize(problem.dim());
  }
  void start(ConstVecRef x0, RunStreams&) override {
    x_ = x0;
    previous_ = x0;
  }
  void step(long t, double eta, Oracle& oracle) override {
    look_ahead(t);
    sample_minibatch(oracle, y_, g_, options_.batch);
    update(eta, stored_gradient_packets(g_.data()),
           std::false_type{});
  }
  // With every step checked: the gradient formed in the update pass where the oracle gives it as a row
  // (OracleFastPaths::row_gradient_of_dot), and ||x||^2 summed there too.
  long steps_checked(long t_first, long t_last, double limit2, const Schedule& schedule, RunStreams& streams,
                     Oracle& oracle) override {
    OracleFastPaths* fast = options_.batch == 1 ? oracle.fast_paths() : nullptr;
    const double* row_of_step = fast ? fast->gradient_row(t_first) : nullptr;  // then each step names the next
    for (long t = t_first; t <= t_last; ++t) {
      const double eta = schedule(t);
      look_ahead(t);
      double norm2;
      if (row_of_step) {
        // The gradient is taken at y, known only once look_ahead has formed it: its row . y in a pass of its own.
        OracleFastPaths::RowGradient row;
        fast->row_gradient_of_dot(t, row_dot(row_of_step, y_), row);
        count_gradient_evaluations(1.0);
        norm2 = update(eta, row_gradient_packets(row), std::true_type{});
        row_of_step = row.next_row;
      } else {
        streams.seek(std::uint64_t(t));
        sample_minibatch(oracle, y_, g_, options_.batch);
        norm2 = update(eta, stored_gradient_packets(g_.data()),
                       std::true_type{});
      }
      if (!(norm2 <= limit2)) return t;
    }
    return 0;
  }
  ConstVecRef iterate() const override { return x_; }

 private:
  void look_ahead(long t) {
    const double beta = options_.momentum == NesterovOptions::Momentum::constant
                            ? options_.beta
                            : double(t - 1) / double(t + 2);
    y_ = x_ + beta * (x_ - previous_);
  }
  // previous <- x, x <- y - eta g with g_j = gradient(j, y_j), in one pass; returns ||x||^2 in the bits of
  // squaredNorm() if Checked.
  template <class Gradient, bool Checked>
  double update(double eta, Gradient&& gradient, std::bool_constant<Checked>) {
    using namespace Eigen::internal;
    double* x = x_.data();
    double* p = previous_.data();
    const double* y = y_.data();
    return packet_passes::sweep_and_sum<1>(x_.size(), [&]<class T>(Eigen::Index j, T* terms) {
      const T yj = ploadu<T>(y + j);
      const T xn = psub(yj, pmul(pset1<T>(eta), gradient(j, yj)));
      pstoreu(p + j, ploadu<T>(x + j));
      pstoreu(x + j, xn);
      if constexpr (Checked) terms[0] = pmul(xn, xn);
      else terms[0] = pset1<T>(0.0);
    })[0];
  }

  NesterovOptions options_;
  Vec x_, previous_, y_, g_;
};

}  // namespace
}  // namespace ratelab

using ratelab::Nesterov;
using ratelab::NesterovOptions;
RATELAB_REGISTER_OPTIMIZER(nesterov, Nesterov, NesterovOptions,
                           "Nesterov momentum: y_t = x_{t-1} + beta_t (x_{t-1} - x_{t-2}), x_t = y_t - eta_t g(y_t)")
