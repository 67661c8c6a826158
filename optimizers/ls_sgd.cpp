// Laplacian-smoothing SGD (Osher, Wang, Yin, Luo, Barekat, Pham & Lin, "Laplacian smoothing gradient
// descent", Res. Math. Sci. 9, 2022; arXiv:1806.06317):
//   x_{t+1} = x_t - eta_t A^{-1} g_t,   A = I + (-1)^n sigma L^n,
// L the periodic 1-D discrete Laplacian (see optimizers/laplacian_smoothing.hpp for A and its solvers).
// With block_sizes = s_1, ..., s_m (summing to d) every contiguous block (a layer of a net) is smoothed on
// its own with the operator of its length, instead of smoothing the whole vector. sigma = 0 is exactly SGD
// (no solve is made). The solve is precomputed once per run in prepare(): solver = auto takes the O(d)
// cyclic tridiagonal solve for n = 1 and the FFT solve otherwise.
#include <fftw3.h>

#include <cmath>
#include <mutex>
#include <numbers>
#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "optimizers/laplacian_smoothing.hpp"

namespace ratelab {

namespace {
// FFTW's planner (plan creation and destruction) is not thread-safe; executing a plan is. Runs prepare in
// parallel on the experiment's worker threads, so every planner call in the project goes through this lock.
std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}
}  // namespace

struct LaplacianSmoother::Impl {
  Eigen::Index d = 0;
  Method method = Method::fft;
  double sigma = 0.0;
  int order = 1;
  // tridiagonal (d >= 3): A = T + u w^T with T tridiagonal (diagonal diag_, off-diagonal off_),
  // u = (gamma, 0, ..., 0, corner), w = (1, 0, ..., 0, corner / gamma).
  double off = 0.0, gamma = 0.0, corner = 0.0, denominator = 1.0;
  Vec inverse_pivot, upper, z;
  // fft
  double* real_buffer = nullptr;
  fftw_complex* spectrum = nullptr;
  fftw_plan forward = nullptr, backward = nullptr;
  Vec spectral_factor;  // 1 / (d * eigenvalue_k), k = 0..d/2

  ~Impl() {
    if (forward || backward || real_buffer || spectrum) {
      std::lock_guard<std::mutex> lock(fftw_planner_mutex());
      if (forward) fftw_destroy_plan(forward);
      if (backward) fftw_destroy_plan(backward);
      fftw_free(real_buffer);
      fftw_free(spectrum);
    }
  }

  // r <- T^{-1} r with the precomputed Thomas factorization.
  void tridiagonal_solve(VecRef r) const {
    r[0] *= inverse_pivot[0];
    for (Eigen::Index i = 1; i < d; ++i) r[i] = (r[i] - off * r[i - 1]) * inverse_pivot[i];
    for (Eigen::Index i = d - 2; i >= 0; --i) r[i] -= upper[i] * r[i + 1];
  }

  void prepare_tridiagonal() {
    if (d < 3) return;  // d = 1, 2 are solved in closed form
    const double diag = 1.0 + 2.0 * sigma;
    off = -sigma;
    corner = -sigma;
    gamma = -diag;  // Numerical Recipes' choice: keeps T diagonally dominant
    Vec t_diag = Vec::Constant(d, diag);
    t_diag[0] = diag - gamma;
    t_diag[d - 1] = diag - corner * corner / gamma;
    inverse_pivot.resize(d);
    upper.resize(d);
    inverse_pivot[0] = 1.0 / t_diag[0];
    upper[0] = off * inverse_pivot[0];
    for (Eigen::Index i = 1; i < d; ++i) {
      inverse_pivot[i] = 1.0 / (t_diag[i] - off * upper[i - 1]);
      upper[i] = off * inverse_pivot[i];
    }
    z = Vec::Zero(d);
    z[0] = gamma;
    z[d - 1] = corner;
    tridiagonal_solve(z);
    denominator = 1.0 + z[0] + corner * z[d - 1] / gamma;
  }

  void prepare_fft() {
    if (d < 2) return;
    const Eigen::Index half = d / 2 + 1;
    spectral_factor.resize(half);
    for (Eigen::Index k = 0; k < half; ++k)
      spectral_factor[k] = 1.0 / (double(d) * LaplacianSmoother::eigenvalue(d, k, sigma, order));
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    real_buffer = fftw_alloc_real(std::size_t(d));
    spectrum = fftw_alloc_complex(std::size_t(half));
    if (!real_buffer || !spectrum) throw std::bad_alloc();
    // FFTW_ESTIMATE: the plan does not depend on timing measurements, so runs are reproducible bit for bit.
    forward = fftw_plan_dft_r2c_1d(int(d), real_buffer, spectrum, FFTW_ESTIMATE);
    backward = fftw_plan_dft_c2r_1d(int(d), spectrum, real_buffer, FFTW_ESTIMATE);
    if (!forward || !backward) throw std::runtime_error("FFTW could not plan a transform of length " + std::to_string(d));
  }

  void apply(VecRef v) {
    if (d == 1) return;  // L = 0 on R^1
    if (method == Method::fft) {
      for (Eigen::Index i = 0; i < d; ++i) real_buffer[i] = v[i];
      fftw_execute(forward);
      for (Eigen::Index k = 0; k < spectral_factor.size(); ++k) {
        spectrum[k][0] *= spectral_factor[k];
        spectrum[k][1] *= spectral_factor[k];
      }
      fftw_execute(backward);
      for (Eigen::Index i = 0; i < d; ++i) v[i] = real_buffer[i];
      return;
    }
    if (d == 2) {  // (L v)_0 = 2 (v_1 - v_0): the mean is kept, the difference divided by 1 + 4 sigma
      const double mean = 0.5 * (v[0] + v[1]), half_difference = 0.5 * (v[0] - v[1]) / (1.0 + 4.0 * sigma);
      v[0] = mean + half_difference;
      v[1] = mean - half_difference;
      return;
    }
    tridiagonal_solve(v);
    const double factor = (v[0] + corner * v[d - 1] / gamma) / denominator;
    v -= factor * z;
  }
};

LaplacianSmoother::LaplacianSmoother() = default;
LaplacianSmoother::~LaplacianSmoother() = default;
LaplacianSmoother::LaplacianSmoother(LaplacianSmoother&&) noexcept = default;
LaplacianSmoother& LaplacianSmoother::operator=(LaplacianSmoother&&) noexcept = default;

double LaplacianSmoother::eigenvalue(Eigen::Index d, Eigen::Index k, double sigma, int order) {
  const double s = std::sin(std::numbers::pi * double(k) / double(d));
  return 1.0 + sigma * std::pow(4.0 * s * s, order);
}

void LaplacianSmoother::prepare(Eigen::Index d, double sigma, int order, Method method) {
  if (d < 1) throw ConfigError("Laplacian smoothing needs a dimension d >= 1");
  if (!(sigma >= 0.0)) throw ConfigError("optimizer.sigma = " + std::to_string(sigma) + " violates sigma >= 0");
  if (order < 1) throw ConfigError("optimizer.order = " + std::to_string(order) + " violates order >= 1");
  if (method == Method::tridiagonal && order != 1)
    throw ConfigError("optimizer.solver = tridiagonal solves only order n = 1 (A = I - sigma L is tridiagonal "
                      "only then), but optimizer.order = " + std::to_string(order) + "; use solver = fft or auto");
  impl_ = std::make_unique<Impl>();
  impl_->d = d;
  impl_->sigma = sigma;
  impl_->order = order;
  impl_->method = method;
  if (method == Method::tridiagonal) impl_->prepare_tridiagonal();
  else impl_->prepare_fft();
}

void LaplacianSmoother::apply(VecRef v) { impl_->apply(v); }
Eigen::Index LaplacianSmoother::size() const { return impl_ ? impl_->d : 0; }

namespace {

struct LsSgdOptions {
  enum class Solver { automatic, tridiagonal, fft };
  double sigma = 1.0;
  long order = 1;
  Solver solver = Solver::automatic;
  std::vector<double> block_sizes;
  long batch = 1;
  static ParamTable<LsSgdOptions> params() {
    return {
        param(&LsSgdOptions::sigma, "sigma", nonnegative(), "smoothing strength sigma (0: plain SGD)"),
        param(&LsSgdOptions::order, "order", at_least(1), "order n of the smoothing operator I + (-1)^n sigma L^n"),
        choice(&LsSgdOptions::solver, "solver",
               {{"auto", Solver::automatic}, {"tridiagonal", Solver::tridiagonal}, {"fft", Solver::fft}},
               "auto: tridiagonal O(d) solve for order 1, FFT otherwise; tridiagonal needs order = 1"),
        param(&LsSgdOptions::block_sizes, "block_sizes", at_least(1),
              "sizes of contiguous blocks smoothed separately (integers summing to d); empty: the whole vector"),
        batch_param(&LsSgdOptions::batch),
    };
  }
};

class LsSgd final : public Optimizer {
 public:
  explicit LsSgd(const LsSgdOptions& options) : options_(options) {
    if (options.solver == LsSgdOptions::Solver::tridiagonal && options.order != 1)
      throw ConfigError("optimizer.solver = tridiagonal solves only order n = 1, but optimizer.order = " +
                        std::to_string(options.order) + "; use solver = fft or auto");
    for (double s : options.block_sizes)
      if (s != std::floor(s) || s < 1)
        throw ConfigError("optimizer.block_sizes contains " + std::to_string(s) +
                          ", which is not a positive integer block size");
  }

  void prepare(const Problem& problem) override {
    const Eigen::Index d = problem.dim();
    blocks_.clear();
    if (options_.block_sizes.empty()) {
      blocks_.push_back({0, d, 0});
    } else {
      Eigen::Index begin = 0;
      for (double s : options_.block_sizes) {
        blocks_.push_back({begin, Eigen::Index(s), 0});
        begin += Eigen::Index(s);
      }
      if (begin != d)
        throw ConfigError("optimizer.block_sizes sum to " + std::to_string(begin) + ", but the problem has d = " +
                          std::to_string(d) + " coordinates; the blocks must cover the vector exactly");
    }
    smoothers_.clear();
    if (options_.sigma > 0.0) {
      using Method = LaplacianSmoother::Method;
      const Method method =
          options_.solver == LsSgdOptions::Solver::fft ||
                  (options_.solver == LsSgdOptions::Solver::automatic && options_.order != 1)
              ? Method::fft
              : Method::tridiagonal;
      for (Block& b : blocks_) {  // one precomputed solve per distinct block length
        std::size_t i = 0;
        while (i < smoothers_.size() && smoothers_[i].size() != b.size) ++i;
        if (i == smoothers_.size()) {
          smoothers_.emplace_back();
          smoothers_.back().prepare(b.size, options_.sigma, int(options_.order), method);
        }
        b.smoother = i;
      }
    }
    x_.resize(d);
    g_.resize(d);
  }

  void start(ConstVecRef x0, RunStreams&) override { x_ = x0; }

  void step(long, double eta, Oracle& oracle) override {
    sample_minibatch(oracle, x_, g_, options_.batch);
    if (!smoothers_.empty())
      for (const Block& b : blocks_) smoothers_[b.smoother].apply(g_.segment(b.begin, b.size));
    x_ -= eta * g_;
  }

  ConstVecRef iterate() const override { return x_; }

 private:
  struct Block {
    Eigen::Index begin, size;
    std::size_t smoother;
  };
  LsSgdOptions options_;
  std::vector<Block> blocks_;
  std::vector<LaplacianSmoother> smoothers_;
  Vec x_, g_;
};

}  // namespace
}  // namespace ratelab

using ratelab::LsSgd;
using ratelab::LsSgdOptions;
RATELAB_REGISTER_OPTIMIZER(ls_sgd, LsSgd, LsSgdOptions,
                           "Laplacian-smoothing SGD: x_{t+1} = x_t - eta_t (I + (-1)^n sigma L^n)^{-1} g_t")
