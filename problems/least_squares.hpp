// Least squares, f(x) = (1/(2n)) ||A x - b||^2 (+ h(x) with a regularizer).
//
// Synthetic instance (from the instance stream, in this order): A n x d with i.i.d. N(0, 1/d) entries drawn
// row by row, x_true ~ N(0, I_d), e ~ N(0, I_n), b = A x_true + noise_std e. Option `condition` > 1 scales
// column j by condition^(-j / (2(d-1))), so the column norms^2 span `condition` and A^T A / n has a
// condition number close to it (the realized one is recorded). `generator = splitmix` instead builds the
// benchmark's portable instance (bench WORKLOADS.md, W1): SplitMix64(generator_seed) uniforms, Box-Muller
// normals, A = Z / sqrt(d) row-major, then x_true, then e, b = A x_true + noise_std e; identical in every
// implementation. Or A, b from a data set (`dataset`), or from memory (the constructor taking A and b).
//
// Oracle (`oracle = sampled`): B rows i_1..i_B uniform with replacement (or without replacement, a
// Fisher-Yates permutation redrawn every epoch) from the sampling stream,
//   g = (1/B) sum_b a_{i_b} (a_{i_b}^T x - b_{i_b}),
// an unbiased estimate of grad f(x) = A^T (A x - b) / n (the stochastic gradient of Robbins & Monro 1951 /
// Kaczmarz-type SGD as analysed by Bach & Moulines 2011). `oracle = exact` returns H x - c with
// H = A^T A / n and c = A^T b / n precomputed. Either can take extra gradient noise (problems/noise.hpp).
//
// Set-up (`solve = true`): H, its eigenvalues (L = lambda_max, mu = lambda_min when positive; skipped with
// estimate_L = false), x* by Cholesky on the normal equations plus one step of iterative refinement
// (complete orthogonal decomposition of A when H is singular: then the minimum-norm solution and x* is not
// declared), f* = f(x*), and sigma^2 = E||g(x*) - grad f(x*)||^2 for one row. With `solve = false` only L
// is estimated (power iteration) and f* is whatever the in-memory constructor was given.
//
// Checkpoint values: with x* solved and d < n, f(x) = f* + (x - x*)^T H (x - x*) / 2 (`evaluation = auto`):
// d^2 instead of n d flops per iterate, and f - f* without the cancellation of subtracting two values of f.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "problems/composite.hpp"
#include "problems/data.hpp"
#include "problems/noise.hpp"
#include "problems/quantized_weights.hpp"

namespace ratelab {

struct ProblemContext;

// Y[k] = H X[k] for every k (H col-major d x d, X[k] and Y[k] d doubles each), bit for bit what Eigen's
// H * x gives column by column, with H read once per block of rows for all columns.
void gemv_columns_as_eigen(const Mat& H, std::span<const double* const> X, std::span<double* const> Y);

// The W1 benchmark's portable instance (see above); n * d + d + n must be even. Its Box-Muller pairs are
// computed in pieces by `parallel_for`, the same bits for any split.
void make_splitmix_instance(long n, long d, std::uint64_t seed, double noise_std, RowMat& A, Vec& b,
                            const ParallelFor& parallel_for = serial_for);

struct LeastSquaresOptions {
  enum class Sampling { with_replacement, without_replacement };
  enum class Generator { philox, splitmix };
  enum class OracleKind { sampled, exact };
  enum class Evaluation { automatic, direct };
  long n = 1000;
  long d = 20;
  double noise_std = 0.1;
  double condition = 1.0;
  Generator generator = Generator::philox;
  long generator_seed = 12345;
  Sampling sampling = Sampling::with_replacement;
  OracleKind oracle = OracleKind::sampled;
  std::string dataset;  // empty: synthetic
  bool standardize = true;
  bool intercept = false;
  bool solve = true;
  bool estimate_L = true;  // L, mu: eigenvalues of H with solve; without solve L by power iteration
  Evaluation evaluation = Evaluation::automatic;
  NoiseOptions noise;  // inactive by default (scale 0)
  RegularizerOptions regularizer;
  QuantizedWeightsOptions quantized_weights;  // none by default; see problems/quantized_weights.hpp

  static ParamTable<LeastSquaresOptions> params();
};

class LeastSquares final : public CompositeProblem {
 public:
  LeastSquares(const LeastSquaresOptions& options, ProblemContext& context);
  // In-memory data. `known_f_star`, when given, is declared as f* (method "given") and no solve is made
  // unless options.solve is set.
  LeastSquares(RowMat A, Vec b, const LeastSquaresOptions& options, std::optional<double> known_f_star = {});

  Eigen::Index dim() const override { return A_.cols(); }
  double evaluation_cost() const override { return double(A_.rows()); }  // value(x) streams the n rows
  double smooth_value(ConstVecRef x) const override;
  void smooth_values(ConstMatRef X, VecRef out) const override;
  void gradient(ConstVecRef x, VecRef g) const override;
  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override;

  const RowMat& A() const { return A_; }
  const Vec& b() const { return b_; }

 private:
  class RowOracle;
  void set_up(std::optional<double> known_f_star);

  LeastSquaresOptions options_;
  RowMat A_;  // row-major: the oracle reads one contiguous row per sample
  Vec b_;
  Mat H_;     // A^T A / n; empty when not needed
  Vec c_;     // A^T b / n
  bool gram_values_ = false;  // values from H and x* (see evaluation)
};

}  // namespace ratelab
