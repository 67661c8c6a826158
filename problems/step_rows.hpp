// The data row of each step of a sampled-row oracle's fast paths (core/fast_paths.hpp): row i of step t is
// the first draw below(n) of the sampling stream seeked to t, what the plain sample_gradient draws with
// batch 1. Indices are drawn kChunk steps at a time (RandomStream::first_below_of_steps) and each row is
// prefetched kLookahead steps before it is used: a random row comes from L3 or memory, and fetching it early
// hides that latency. The stream itself never moves. Shared by the least-squares, logistic and softmax
// oracles.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "core/rng.hpp"
#include "problems/data.hpp"  // RowMat

namespace ratelab {

class StepRows {
 public:
  // Rows of `data` (row-major, its rows contiguous); rows up to 2 KiB are prefetched whole, longer rows by
  // their first 2 KiB (the hardware prefetcher follows the rest).
  StepRows(const RowMat& data, const RandomStream& sampling)
      : data_(data),
        sampling_(sampling),
        prefetch_bytes_(std::min<std::size_t>(std::size_t(data.cols()) * sizeof(double), 2048)) {}

  // The row index of step t: rows_[t - first_], drawing the next chunk when t (or t + kLookahead) leaves
  // the window.
  Eigen::Index operator()(std::uint64_t t) {
    if (t < first_ || t + kLookahead >= first_ + rows_.size()) {
      const std::uint64_t n = std::uint64_t(data_.rows());
      if (t == first_ + kChunk) {  // sequential: keep the lookahead rows, draw the next chunk
        std::copy(rows_.begin() + kChunk, rows_.end(), rows_.begin());
        sampling_.first_below_of_steps(first_ + rows_.size(), n, std::span(rows_).subspan(kLookahead));
      } else {
        sampling_.first_below_of_steps(t, n, rows_);
        for (std::uint64_t k = 0; k < kLookahead; ++k) prefetch(rows_[k]);
      }
      first_ = t;
    }
    prefetch(rows_[t + kLookahead - first_]);
    return Eigen::Index(rows_[t - first_]);
  }

 private:
  static constexpr std::uint64_t kLookahead = 8, kChunk = 64;

  void prefetch(std::uint64_t i) const {
    const char* row = reinterpret_cast<const char*>(data_.row(Eigen::Index(i)).data());
    for (std::size_t byte = 0; byte < prefetch_bytes_; byte += 64) __builtin_prefetch(row + byte);
  }

  const RowMat& data_;
  const RandomStream& sampling_;
  std::size_t prefetch_bytes_;
  std::array<std::uint64_t, kChunk + kLookahead> rows_{};
  std::uint64_t first_ = std::uint64_t(-1) / 2;  // no window yet
};

}  // namespace ratelab
