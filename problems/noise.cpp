#include "problems/noise.hpp"

#include <algorithm>
#include <numbers>

namespace ratelab {

ParamTable<NoiseOptions> NoiseOptions::params() {
  using K = Kind;
  return {
      choice(&NoiseOptions::kind, "noise",
             {{"none", K::none},
              {"gaussian", K::gaussian},
              {"student_t", K::student_t},
              {"alpha_stable", K::alpha_stable},
              {"pareto", K::pareto}},
             "gradient noise law"),
      param(&NoiseOptions::scale, "noise_scale", nonnegative(),
            "noise scale s (gaussian: standard deviation per coordinate; others: multiplies the standard "
            "variate of the law)"),
      param(&NoiseOptions::nu, "noise_nu", positive(), "student_t degrees of freedom (nu <= 2: infinite variance)"),
      param(&NoiseOptions::alpha, "noise_alpha", in_open_closed(0, 2),
            "alpha_stable index (Chambers-Mallows-Stuck, symmetric; 2 is gaussian with variance 2)"),
      param(&NoiseOptions::tail, "noise_tail", positive(), "pareto tail index of the symmetrized Pareto law"),
      choice(&NoiseOptions::shape, "noise_shape",
             {{"coordinate", Shape::coordinate}, {"isotropic", Shape::isotropic}},
             "i.i.d. per coordinate, or a uniform direction times a radius of the law"),
      choice(&NoiseOptions::mode, "noise_mode", {{"additive", Mode::additive}, {"multiplicative", Mode::multiplicative}},
             "g = grad + s xi, or g = grad .* (1 + s xi)"),
  };
}

GradientNoise::GradientNoise(const NoiseOptions& options, Eigen::Index dim)
    : options_(options), xi_(dim), sum_(dim), exact_(dim) {}

double GradientNoise::standard_variate(RandomStream& s) {
  switch (options_.kind) {
    case NoiseOptions::Kind::none: return 0.0;
    case NoiseOptions::Kind::gaussian: return s.normal();
    case NoiseOptions::Kind::student_t: return s.student_t(options_.nu);
    case NoiseOptions::Kind::alpha_stable: {
      // Chambers-Mallows-Stuck, symmetric (beta = 0), unit scale.
      const double a = options_.alpha;
      const double v = std::numbers::pi * (s.uniform() - 0.5);
      const double w = -std::log(s.uniform());
      if (a == 1.0) return std::tan(v);
      return std::sin(a * v) / std::pow(std::cos(v), 1.0 / a) *
             std::pow(std::cos(v - a * v) / w, (1.0 - a) / a);
    }
    case NoiseOptions::Kind::pareto: {
      // Symmetrized Pareto with x_m = 1: random sign times U^(-1/tail).
      const double r = std::pow(s.uniform(), -1.0 / options_.tail);
      return s.uniform() < 0.5 ? -r : r;
    }
  }
  return 0.0;
}

void GradientNoise::draw(VecRef xi, RandomStream& s) {
  if (options_.shape == NoiseOptions::Shape::coordinate) {
    for (Eigen::Index j = 0; j < xi.size(); ++j) xi[j] = standard_variate(s);
  } else {
    for (Eigen::Index j = 0; j < xi.size(); ++j) xi[j] = s.normal();
    const double n = xi.norm();
    const double radius = std::abs(standard_variate(s));
    xi *= n > 0 ? radius / n : 0.0;
  }
}

void GradientNoise::apply(VecRef g, int batch, RandomStream& s) {
  if (!active()) return;
  const double scale = options_.scale;
  if (batch == 1) {
    draw(xi_, s);
  } else {
    sum_.setZero();
    for (int b = 0; b < batch; ++b) {
      draw(xi_, s);
      sum_ += xi_;
    }
    xi_ = sum_ / double(batch);
  }
  if (options_.mode == NoiseOptions::Mode::additive) {
    g += scale * xi_;
    const double n2 = scale * scale * xi_.squaredNorm();
    sum_sq_norm_ += n2;
    max_norm_ = std::max(max_norm_, std::sqrt(n2));
  } else {
    exact_ = g;
    g.array() *= 1.0 + scale * xi_.array();
    const double n2 = (g - exact_).squaredNorm();
    sum_sq_norm_ += n2;
    max_norm_ = std::max(max_norm_, std::sqrt(n2));
  }
  ++draws_;
}

void GradientNoise::report(RunStats& stats) const {
  if (!active() || draws_ == 0) return;
  stats.emplace_back("noise_mean_sq_norm", sum_sq_norm_ / double(draws_));
  stats.emplace_back("noise_max_norm", max_norm_);
}

}  // namespace ratelab
