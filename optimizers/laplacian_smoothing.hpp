// Solves A y = v for the Laplacian-smoothing operator of Osher, Wang, Yin, Luo, Barekat, Pham & Lin,
// "Laplacian smoothing gradient descent" (Res. Math. Sci. 9, 2022; arXiv:1806.06317):
//   A = I + (-1)^n sigma L^n,   L the periodic 1-D discrete Laplacian on R^d,
//   (L v)_i = v_{i-1} - 2 v_i + v_{i+1} (indices mod d), i.e. circulant with first column (-2, 1, 0, ..., 0, 1).
// A is circulant and symmetric positive definite with eigenvalues 1 + sigma (4 sin^2(pi k / d))^n,
// k = 0..d-1, and A 1 = 1, so A^{-1} preserves the sum of a vector's entries.
//
// Two solvers, both set up once in prepare() and allocation-free in apply():
//   tridiagonal (n = 1 only): A = I - sigma L is cyclic tridiagonal; Sherman-Morrison on a tridiagonal
//     matrix whose Thomas factorization is precomputed, O(d) per solve.
//   fft (any n): y = F^{-1} diag(1 / eigenvalue_k) F v with FFTW3 real-to-complex transforms.
// Used by the ls_sgd optimizer; exposed so tests can compare both paths with a dense solve.
#pragma once

#include <memory>

#include "core/problem.hpp"

namespace ratelab {

class LaplacianSmoother {
 public:
  enum class Method { tridiagonal, fft };

  LaplacianSmoother();
  ~LaplacianSmoother();
  LaplacianSmoother(LaplacianSmoother&&) noexcept;
  LaplacianSmoother& operator=(LaplacianSmoother&&) noexcept;

  // Precomputes the solve for length-d vectors (d >= 1, sigma >= 0, order >= 1). Throws ConfigError for a
  // tridiagonal solve of order != 1. FFTW planning is serialized internally, so runs may prepare in parallel.
  void prepare(Eigen::Index d, double sigma, int order, Method method);
  // v <- A^{-1} v.
  void apply(VecRef v);

  Eigen::Index size() const;
  // The k-th eigenvalue 1 + sigma (4 sin^2(pi k / d))^order of A.
  static double eigenvalue(Eigen::Index d, Eigen::Index k, double sigma, int order);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ratelab
