// Activation quantization and straight-through estimators (STE), shared by ste_two_layer and quantized_mlp.
//
// Activation sigma (option group `activation`):
//   binary     sigma(x) = 1{x > 0}
//   staircase  the b-bit quantized ReLU with step alpha and 2^b - 1 nonzero levels (Yin et al. 2019, sec. 4):
//              sigma(x) = 0 for x <= 0, alpha * min(ceil(x / alpha), 2^b - 1) for x > 0; its range is
//              q_max = (2^b - 1) alpha. binary is the staircase with b = 1, alpha = 1 (q_max = 1).
// Coarse gradient: backpropagation with sigma' (zero almost everywhere) replaced by the derivative mu' of
// a surrogate mu (`ste`), Yin, Lyu, Zhang, Osher, Qi & Xin, "Understanding Straight-Through Estimator in
// Training Activation Quantized Neural Nets", ICLR 2019:
//   identity      mu'(x) = 1
//   relu          mu'(x) = 1{x > 0}
//   clipped_relu  mu'(x) = 1{0 < x < q_max}                      (q_max = 1 for the binary activation)
//   log_tailed    mu'(x) = 1{0 < x <= q_max} + 1{x > q_max} / (x - q_max + 1): the derivative of the
//                 log-tailed ReLU of Cai, He, Sun & Vasconcelos, "Deep learning with low precision by
//                 half-wave Gaussian quantization" (CVPR 2017), mu(x) = x on (0, q_max] and
//                 q_max + log(x - tau) beyond with tau = q_max - 1; continuous (value 1) at q_max.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>

#include "core/params.hpp"

namespace ratelab {

struct ActivationOptions {
  enum class Kind { binary, staircase };
  enum class Ste { identity, relu, clipped_relu, log_tailed };
  Kind kind = Kind::binary;
  long bits = 2;
  double step = 1.0;
  Ste ste = Ste::clipped_relu;

  static ParamTable<ActivationOptions> params() {
    using O = ActivationOptions;
    return ParamTable<O>{
        choice(&O::kind, "activation", {{"binary", Kind::binary}, {"staircase", Kind::staircase}},
               "sigma: binary 1{x>0}, or the b-bit staircase (quantized ReLU, 2^b - 1 nonzero levels)"),
        applies_when(param(&O::bits, "activation_bits", in_closed(1, 8), "b of the staircase activation"),
                     "activation", {"staircase"}),
        applies_when(param(&O::step, "activation_step", positive(), "alpha, the step of the staircase activation"),
                     "activation", {"staircase"}),
        choice(&O::ste, "ste",
               {{"identity", Ste::identity},
                {"relu", Ste::relu},
                {"clipped_relu", Ste::clipped_relu},
                {"log_tailed", Ste::log_tailed}},
               "straight-through estimator mu' used for sigma' in the coarse gradient"),
    };
  }
};

// The activation and its STE derivative, as plain inline functions for the hot loops.
class QuantizedActivation {
 public:
  QuantizedActivation() = default;
  explicit QuantizedActivation(const ActivationOptions& o)
      : step_(o.kind == ActivationOptions::Kind::binary ? 1.0 : o.step),
        top_(o.kind == ActivationOptions::Kind::binary ? 1.0 : double((1L << o.bits) - 1)),
        ste_(o.ste) {}
  double q_max() const { return step_ * top_; }
  double operator()(double x) const { return x > 0.0 ? step_ * std::min(std::ceil(x / step_), top_) : 0.0; }
  double ste_derivative(double x) const {
    switch (ste_) {
      case ActivationOptions::Ste::identity: return 1.0;
      case ActivationOptions::Ste::relu: return x > 0.0 ? 1.0 : 0.0;
      case ActivationOptions::Ste::clipped_relu: return x > 0.0 && x < q_max() ? 1.0 : 0.0;
      case ActivationOptions::Ste::log_tailed:
        if (x <= 0.0) return 0.0;
        return x <= q_max() ? 1.0 : 1.0 / (x - q_max() + 1.0);
    }
    return 0.0;
  }

 private:
  double step_ = 1.0, top_ = 1.0;
  ActivationOptions::Ste ste_ = ActivationOptions::Ste::clipped_relu;
};

}  // namespace ratelab
