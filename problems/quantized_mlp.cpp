// quantized_mlp: a two-layer classifier with quantized activations (and optionally quantized weights)
// trained by the coarse gradient on a real data set (digits by default), following the STE setting of
// Yin, Lyu, Zhang, Osher, Qi & Xin (ICLR 2019) on a small real problem.
//
// Model: logits(a) = W2 sigma(W1 a + b1) + b2, W1 in R^{h x d}, W2 in R^{K x h}, sigma binary or the b-bit
// staircase (problems/quantized_nets.hpp). x = (vec W1, b1, vec W2, b2), column-major blocks in this order.
// Loss: mean cross-entropy log sum_k exp(logit_k) - logit_y over the training split.
// Coarse gradient: backpropagation with sigma' replaced by the STE mu'; with quantized weights both weight
// matrices (not the biases) are projected layer by layer, w_q = Proj_Q(w) (fitted scales per layer), the
// gradient is evaluated at the projected weights and applied to the float weights (BinaryConnect).
// Oracle: B training examples uniform with replacement from the sampling stream.
// Split: a uniform random permutation of the examples from the instance stream (Fisher-Yates with
// RandomStream::below); the first round(test_fraction n) examples are the test split. Extra metrics
// (problems/quantized_nets.hpp, core/run.hpp): test_accuracy and train_accuracy of the argmax prediction.
// Initialization (init stream): W1 ~ N(0, 1/d), W2 ~ N(0, 1/h) entrywise, biases 0.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/registry.hpp"
#include "problems/data.hpp"
#include "problems/quantized_nets.hpp"
#include "problems/quantized_weights.hpp"

namespace ratelab {
namespace {

struct QuantizedMlpOptions {
  std::string dataset = "digits";
  bool standardize = true;
  long hidden = 32;
  double test_fraction = 0.2;
  ActivationOptions activation;
  QuantizedWeightsOptions quantized_weights;

  static ParamTable<QuantizedMlpOptions> params() {
    using O = QuantizedMlpOptions;
    return ParamTable<O>{
        param(&O::dataset, "dataset", unconstrained(), "digits | path to a LIBSVM or .csv classification file"),
        param(&O::standardize, "standardize", unconstrained(), "standardize the features"),
        param(&O::hidden, "hidden", at_least(1), "h, the number of hidden units"),
        param(&O::test_fraction, "test_fraction", in_open(0, 1), "fraction of the examples held out for testing"),
    }
        .with(&O::activation, ActivationOptions::params())
        .with(&O::quantized_weights, QuantizedWeightsOptions::params());
  }
};

class QuantizedMlp final : public Problem {
 public:
  QuantizedMlp(const QuantizedMlpOptions& o, ProblemContext& ctx)
      : options_(o), sigma_(o.activation), quantizer_(o.quantized_weights), h_(o.hidden) {
    o.quantized_weights.validate();
    if (o.dataset.empty())
      throw ConfigError("problem.dataset is empty; quantized_mlp needs a data set (digits, or a file path)");
    Dataset data = load_dataset(o.dataset, ctx.data_directory, o.standardize);
    K_ = index_labels(data.y);
    if (K_ < 2) throw ConfigError("problem.dataset = '" + o.dataset + "' has a single class; need at least two");
    const Eigen::Index N = data.X.rows();
    d_ = data.X.cols();
    const Eigen::Index n_test = std::llround(o.test_fraction * double(N));
    if (n_test < 1 || n_test >= N)
      throw ConfigError("problem.test_fraction = " + std::to_string(o.test_fraction) + " leaves " +
                        std::to_string(n_test) + " of " + std::to_string(N) +
                        " examples for testing; both splits need at least one");
    std::vector<Eigen::Index> perm(static_cast<std::size_t>(N));
    for (Eigen::Index i = 0; i < N; ++i) perm[std::size_t(i)] = i;
    for (Eigen::Index i = N - 1; i > 0; --i)
      std::swap(perm[std::size_t(i)], perm[std::size_t(ctx.instance.below(std::uint64_t(i + 1)))]);
    auto take = [&](Eigen::Index begin, Eigen::Index count, Mat& X, std::vector<int>& y) {
      X.resize(d_, count);  // one example per column: the batch evaluation multiplies W1 * X
      y.resize(std::size_t(count));
      for (Eigen::Index k = 0; k < count; ++k) {
        X.col(k) = data.X.row(perm[std::size_t(begin + k)]).transpose();
        y[std::size_t(k)] = int(data.y[perm[std::size_t(begin + k)]]);
      }
    };
    take(0, n_test, test_X_, test_y_);
    take(n_test, N - n_test, train_X_, train_y_);
    w1_size_ = h_ * d_;
    w2_begin_ = w1_size_ + h_;
    w2_size_ = K_ * h_;
    dim_ = w2_begin_ + w2_size_ + K_;
    facts_.f_star_method = "unknown";
  }

  Eigen::Index dim() const override { return dim_; }
  double evaluation_cost() const override { return double(train_X_.rows()); }  // F runs the net on every training row
  const ProblemFacts& facts() const override { return facts_; }
  bool has_gradient() const override { return false; }  // sigma' = 0 a.e.: only coarse gradients exist
  void gradient(ConstVecRef, VecRef g) const override { g.setConstant(std::numeric_limits<double>::quiet_NaN()); }

  void initial_point(VecRef x0, RandomStream& init) const override {
    x0.setZero();
    for (Eigen::Index i = 0; i < w1_size_; ++i) x0[i] = init.normal() / std::sqrt(double(d_));
    for (Eigen::Index i = 0; i < w2_size_; ++i) x0[w2_begin_ + i] = init.normal() / std::sqrt(double(h_));
  }

  // x with both weight matrices projected onto Q (biases unchanged).
  void quantize(ConstVecRef x, VecRef xq) const {
    xq = x;
    if (!quantizer_.active()) return;
    quantizer_.project(x.head(w1_size_), xq.head(w1_size_));
    quantizer_.project(x.segment(w2_begin_, w2_size_), xq.segment(w2_begin_, w2_size_));
  }

  // BinaryConnect's clip of the float weight matrices (problems/quantized_weights.hpp).
  bool is_composite() const override { return quantizer_.clips(); }
  void prox(double, VecRef x) const override {
    quantizer_.clip(x.head(w1_size_));
    quantizer_.clip(x.segment(w2_begin_, w2_size_));
  }

  double value(ConstVecRef x) const override {
    Vec xq(dim_);
    quantize(x, xq);
    const Mat logits = forward(xq, train_X_);
    double loss = 0.0;
    for (Eigen::Index k = 0; k < logits.cols(); ++k) {
      const double top = logits.col(k).maxCoeff();
      loss += top + std::log((logits.col(k).array() - top).exp().sum()) - logits(train_y_[std::size_t(k)], k);
    }
    return loss / double(logits.cols());
  }

  std::vector<std::string> extra_metric_names() const override { return {"test_accuracy", "train_accuracy"}; }
  void extra_metrics(ConstMatRef X, MatRef out) const override {
    Vec xq(dim_);
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
      quantize(X.col(j), xq);
      out(0, j) = accuracy(xq, test_X_, test_y_);
      out(1, j) = accuracy(xq, train_X_, train_y_);
    }
  }
  RunStats instance_stats() const override {
    return {{"train_examples", double(train_y_.size())}, {"test_examples", double(test_y_.size())},
            {"classes", double(K_)}};
  }

  std::unique_ptr<Oracle> make_oracle(RunStreams& streams) const override;

 private:
  Mat forward(ConstVecRef xq, const Mat& X) const {
    Eigen::Map<const Mat> W1(xq.data(), h_, d_), W2(xq.data() + w2_begin_, K_, h_);
    Mat hidden = W1 * X;
    hidden.colwise() += xq.segment(w1_size_, h_);
    hidden = hidden.unaryExpr([this](double z) { return sigma_(z); });
    Mat logits = W2 * hidden;
    logits.colwise() += xq.tail(K_);
    return logits;
  }
  double accuracy(ConstVecRef xq, const Mat& X, const std::vector<int>& y) const {
    const Mat logits = forward(xq, X);
    long correct = 0;
    for (Eigen::Index k = 0; k < logits.cols(); ++k) {
      Eigen::Index arg = 0;
      logits.col(k).maxCoeff(&arg);
      correct += (arg == y[std::size_t(k)]);
    }
    return double(correct) / double(logits.cols());
  }

  class CoarseOracle;
  QuantizedMlpOptions options_;
  QuantizedActivation sigma_;
  WeightQuantizer quantizer_;
  Eigen::Index h_, d_ = 0, K_ = 0, w1_size_ = 0, w2_begin_ = 0, w2_size_ = 0, dim_ = 0;
  Mat train_X_, test_X_;  // d x examples
  std::vector<int> train_y_, test_y_;
  ProblemFacts facts_;
};

class QuantizedMlp::CoarseOracle final : public Oracle {
 public:
  CoarseOracle(const QuantizedMlp& p, RunStreams& streams)
      : p_(p), rng_(streams.sampling), xq_(p.dim_), pre_(p.h_), act_(p.h_), back_(p.h_), logits_(p.K_) {}

  void sample_gradient(ConstVecRef x, VecRef g, int batch) override {
    const QuantizedMlp& p = p_;
    p.quantize(x, xq_);
    Eigen::Map<const Mat> W1(xq_.data(), p.h_, p.d_), W2(xq_.data() + p.w2_begin_, p.K_, p.h_);
    const auto b1 = xq_.segment(p.w1_size_, p.h_);
    const auto b2 = xq_.tail(p.K_);
    g.setZero();
    Eigen::Map<Mat> gW1(g.data(), p.h_, p.d_), gW2(g.data() + p.w2_begin_, p.K_, p.h_);
    auto gb1 = g.segment(p.w1_size_, p.h_);
    auto gb2 = g.tail(p.K_);
    const auto n_train = std::uint64_t(p.train_y_.size());
    for (int b = 0; b < batch; ++b) {
      const auto k = Eigen::Index(rng_.below(n_train));
      const auto a = p.train_X_.col(k);
      pre_.noalias() = W1 * a;
      pre_ += b1;
      for (Eigen::Index i = 0; i < p.h_; ++i) act_[i] = p.sigma_(pre_[i]);
      logits_.noalias() = W2 * act_;
      logits_ += b2;
      // d loss / d logits = softmax(logits) - e_y
      const double top = logits_.maxCoeff();
      logits_ = (logits_.array() - top).exp();
      logits_ /= logits_.sum();
      logits_[p.train_y_[std::size_t(k)]] -= 1.0;
      gW2.noalias() += logits_ * act_.transpose();
      gb2 += logits_;
      back_.noalias() = W2.transpose() * logits_;
      for (Eigen::Index i = 0; i < p.h_; ++i) back_[i] *= p.sigma_.ste_derivative(pre_[i]);
      gW1.noalias() += back_ * a.transpose();
      gb1 += back_;
    }
    g /= double(batch);
  }

 private:
  const QuantizedMlp& p_;
  RandomStream& rng_;
  Vec xq_, pre_, act_, back_, logits_;
};

std::unique_ptr<Oracle> QuantizedMlp::make_oracle(RunStreams& streams) const {
  return std::make_unique<CoarseOracle>(*this, streams);
}

}  // namespace
}  // namespace ratelab

using ratelab::QuantizedMlp;
using ratelab::QuantizedMlpOptions;
RATELAB_REGISTER_PROBLEM(quantized_mlp, QuantizedMlp, QuantizedMlpOptions,
                         "two-layer classifier with quantized activations/weights on a data set, STE coarse gradient")
