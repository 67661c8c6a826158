// The lockstep product of least_squares' exact oracle (problems/least_squares_kernels.hpp says why these
// kernels use Eigen's packet operations).
#include <algorithm>
#include <cmath>

#include "problems/least_squares.hpp"
#include "problems/least_squares_kernels.hpp"

namespace {

// Y[:, k] = H X[:, k] for k < columns (col-major d x d H), each entry with the arithmetic of Eigen's
// col-major matrix-vector product, so a lockstep group gets the bits of LeastSquares::gradient's H * x run
// by run: columns in blocks of 16 (all at once below d = 128; Eigen's heuristic), each block's partial sum
// accumulated from zero with the packet multiply-add (fused where Eigen fuses it) and added to the result;
// an odd last row goes through Eigen's scalar tail (multiply, then add). H is read once per block of rows
// for every column instead of once per column. tests/test_fast_paths.cpp checks the bits against Eigen.
#ifdef EIGEN_VECTORIZE_FMA
constexpr bool kFusedMultiplyAdd = true;  // Eigen's pmadd is an FMA instruction
#else
constexpr bool kFusedMultiplyAdd = false;  // pmadd = padd(pmul(a, b), c)
#endif

template <int Columns>
void product_columns(const double* H, Eigen::Index d, const double* const* X, double* const* Y) {
  using namespace Eigen::internal;
  using Packet = packet_traits<double>::type;
  constexpr Eigen::Index P = Eigen::Index(sizeof(Packet) / sizeof(double)), kRowPackets = 2;
  const Eigen::Index block = d < 128 ? d : (d * Eigen::Index(sizeof(double)) < 32000 ? 16 : 4);
  const Eigen::Index packet_rows = d & ~Eigen::Index(1);  // Eigen vectorizes rows down to pairs
  for (int k = 0; k < Columns; ++k) std::fill(Y[k], Y[k] + d, 0.0);
  for (Eigen::Index j2 = 0; j2 < d; j2 += block) {
    const Eigen::Index jend = std::min(j2 + block, d);
    Eigen::Index i = 0;
    for (; i + kRowPackets * P <= d; i += kRowPackets * P) {
      Packet c[Columns][kRowPackets];
      for (int k = 0; k < Columns; ++k)
        for (int r = 0; r < kRowPackets; ++r) c[k][r] = pset1<Packet>(0.0);
      for (Eigen::Index j = j2; j < jend; ++j) {
        Packet h[kRowPackets];
        for (int r = 0; r < kRowPackets; ++r) h[r] = ploadu<Packet>(H + j * d + i + r * P);
        for (int k = 0; k < Columns; ++k) {
          const Packet x = pset1<Packet>(X[k][j]);
          for (int r = 0; r < kRowPackets; ++r) c[k][r] = pmadd(h[r], x, c[k][r]);
        }
      }
      for (int k = 0; k < Columns; ++k)
        for (int r = 0; r < kRowPackets; ++r)
          pstoreu(Y[k] + i + r * P, padd(c[k][r], ploadu<Packet>(Y[k] + i + r * P)));
    }
    for (; i < d; ++i) {
      // Rows Eigen reaches with half or quarter packets get its packet multiply-add; an odd last row its
      // scalar loop (multiply, then add).
      const bool fused = kFusedMultiplyAdd && i < packet_rows;
      for (int k = 0; k < Columns; ++k) {
        double c = 0.0;
        for (Eigen::Index j = j2; j < jend; ++j)
          c = fused ? std::fma(H[j * d + i], X[k][j], c) : c + H[j * d + i] * X[k][j];
        Y[k][i] += c;
      }
    }
  }
}

}  // namespace

namespace ratelab {

void gemv_columns_as_eigen(const Mat& H, std::span<const double* const> X, std::span<double* const> Y) {
  switch (X.size()) {
    case 1: return product_columns<1>(H.data(), H.rows(), X.data(), Y.data());
    case 2: return product_columns<2>(H.data(), H.rows(), X.data(), Y.data());
    case 3: return product_columns<3>(H.data(), H.rows(), X.data(), Y.data());
    case 4: return product_columns<4>(H.data(), H.rows(), X.data(), Y.data());
    case 5: return product_columns<5>(H.data(), H.rows(), X.data(), Y.data());
    case 6: return product_columns<6>(H.data(), H.rows(), X.data(), Y.data());
    case 7: return product_columns<7>(H.data(), H.rows(), X.data(), Y.data());
    case 8: return product_columns<8>(H.data(), H.rows(), X.data(), Y.data());
    default:
      for (std::size_t k = 0; k < X.size(); k += 8)
        gemv_columns_as_eigen(H, X.subspan(k, std::min<std::size_t>(8, X.size() - k)),
                              Y.subspan(k, std::min<std::size_t>(8, Y.size() - k)));
  }
}

namespace least_squares_kernels {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
std::array<double, 2> update_then_dot_and_norm_two_wide(double* x, const double* a, double eta, double r,
                                                         const double* next, Eigen::Index d) {
  using namespace packet_passes::two_wide;
  return sweep_and_sum<2>(d, [&]<class V>(Eigen::Index j, V* terms) {
    const V xj = load<V>(x + j) - eta * (r * load<V>(a + j));
    store(x + j, xj);
    terms[0] = load<V>(next + j) * xj;
    terms[1] = xj * xj;
  });
}

}  // namespace least_squares_kernels

}  // namespace ratelab
