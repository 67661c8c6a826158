#include "problems/noise.hpp"

#include <algorithm>
#include <functional>
#include <numbers>

#include "core/packet_passes.hpp"
#include "core/schedule.hpp"

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
            "noise scale s: the standard deviation per coordinate (isotropic: sqrt E||noise||^2) where the law "
            "has finite variance; otherwise the scale parameter of the law (student_t nu <= 2, pareto tail <= 2, "
            "alpha_stable: exp(-|s k|^alpha) characteristic function)"),
      applies_when(param(&NoiseOptions::nu, "noise_nu", positive(), "student_t degrees of freedom (nu <= 2: infinite variance)"), "noise", {"student_t"}),
      applies_when(param(&NoiseOptions::alpha, "noise_alpha", in_open_closed(0, 2),
            "alpha_stable index (Chambers-Mallows-Stuck, symmetric; 2 is gaussian with variance 2)"), "noise", {"alpha_stable"}),
      applies_when(param(&NoiseOptions::tail, "noise_tail", positive(), "pareto tail index of the symmetrized Pareto law"), "noise", {"pareto"}),
      choice(&NoiseOptions::shape, "noise_shape",
             {{"coordinate", Shape::coordinate}, {"isotropic", Shape::isotropic}},
             "i.i.d. per coordinate, or a uniform direction times a radius of the law"),
      choice(&NoiseOptions::mode, "noise_mode", {{"additive", Mode::additive}, {"multiplicative", Mode::multiplicative}},
             "g = grad + s xi, or g = grad .* (1 + s xi)"),
  };
}

const std::vector<NoiseLaw>& noise_laws() {
  static const std::vector<NoiseLaw> laws{
      {"none", "no noise: the oracle returns the exact gradient"},
      {"gaussian", "xi ~ N(0, 1)"},
      {"student_t", "xi = t_nu sqrt((nu - 2)/nu) (unit variance) for nu > 2; plain t_nu for nu <= 2 (infinite variance)"},
      {"alpha_stable", "symmetric alpha-stable, E exp(i k xi) = exp(-|k|^alpha) (Chambers-Mallows-Stuck); infinite "
                       "variance for alpha < 2, N(0, 2) at alpha = 2"},
      {"pareto", "random sign times U^(-1/tail), U uniform, divided by sqrt(tail/(tail - 2)) for tail > 2 "
                 "(unit variance); infinite variance for tail <= 2"},
  };
  return laws;
}

std::optional<double> NoiseOptions::variance(Eigen::Index dim) const {
  if (kind == Kind::none || scale == 0.0) return 0.0;
  if (mode != Mode::additive) return std::nullopt;
  double per_variate;  // variance of one standard variate
  switch (kind) {
    case Kind::gaussian: per_variate = 1.0; break;
    case Kind::student_t:
      if (nu <= 2.0) return std::nullopt;
      per_variate = 1.0;
      break;
    case Kind::pareto:
      if (tail <= 2.0) return std::nullopt;
      per_variate = 1.0;
      break;
    case Kind::alpha_stable:
      if (alpha < 2.0) return std::nullopt;
      per_variate = 2.0;
      break;
    default: return std::nullopt;
  }
  const double coordinates = shape == Shape::coordinate ? double(dim) : 1.0;
  return coordinates * per_variate * scale * scale;
}

GradientNoise::GradientNoise(const NoiseOptions& options, Eigen::Index dim)
    : options_(options), xi_(dim), sum_(dim), exact_(dim) {
  if (options_.kind == NoiseOptions::Kind::student_t && options_.nu > 2.0)
    variate_factor_ = std::sqrt((options_.nu - 2.0) / options_.nu);
  if (options_.kind == NoiseOptions::Kind::pareto && options_.tail > 2.0)
    variate_factor_ = std::sqrt((options_.tail - 2.0) / options_.tail);
  largest_.reserve(std::size_t(kHillMaxK + 1));
  if (options_.kind == NoiseOptions::Kind::gaussian && options_.shape == NoiseOptions::Shape::coordinate &&
      dim > 0 && std::size_t(dim) <= kLookaheadMaxDim) {
    // A multiple of 32 steps where there are that many: Philox is computed 32 counters at a time.
    std::size_t steps = std::max<std::size_t>(1, kLookaheadValues / std::size_t(dim));
    if (steps >= 32) steps -= steps % 32;
    lookahead_.resize(steps * std::size_t(dim));
  }
}

const double* GradientNoise::gaussian_of_step(std::uint64_t t, const RandomStream& s) {
  const std::size_t d = std::size_t(xi_.size());
  if (!(t - look_first_ < look_steps_ && s.key() == look_key_)) {  // unsigned: t < look_first_ misses too
    s.normals_of_steps(t, d, lookahead_);
    look_first_ = t;
    look_steps_ = lookahead_.size() / d;
    look_key_ = s.key();
  }
  return lookahead_.data() + (t - look_first_) * d;
}

void GradientNoise::draw_gaussian_ahead(RandomStream& s) {
  const std::size_t d = std::size_t(xi_.size());
  const double* row = gaussian_of_step(s.step(), s);
  std::copy(row, row + d, xi_.data());
  s.skip_normals(d);
}

double GradientNoise::standard_variate(RandomStream& s) {
  switch (options_.kind) {
    case NoiseOptions::Kind::none: return 0.0;
    case NoiseOptions::Kind::gaussian: return s.normal();
    case NoiseOptions::Kind::student_t: return variate_factor_ * s.student_t(options_.nu);
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
      return variate_factor_ * (s.uniform() < 0.5 ? -r : r);
    }
  }
  return 0.0;
}

void GradientNoise::draw(VecRef xi, RandomStream& s) {
  if (options_.shape == NoiseOptions::Shape::coordinate) {
    // The common laws in bulk (same bits as one variate at a time, see core/rng.hpp).
    if (options_.kind == NoiseOptions::Kind::student_t) {
      s.fill_student_t({xi.data(), std::size_t(xi.size())}, options_.nu);
      xi *= variate_factor_;
    } else if (options_.kind == NoiseOptions::Kind::gaussian) {
      s.fill_normal({xi.data(), std::size_t(xi.size())});
    } else {
      for (Eigen::Index j = 0; j < xi.size(); ++j) xi[j] = standard_variate(s);
    }
  } else {
    s.fill_normal({xi.data(), std::size_t(xi.size())});
    const double n = xi.norm();
    const double radius = std::abs(standard_variate(s));
    xi *= n > 0 ? radius / n : 0.0;
  }
}

void GradientNoise::apply(VecRef g, int batch, RandomStream& s) {
  if (!active()) return;
  const double scale = options_.scale;
  if (batch == 1 && !lookahead_.empty() && s.at_first_normal()) {
    draw_gaussian_ahead(s);
  } else if (batch == 1) {
    draw(xi_, s);
  } else {
    sum_.setZero();
    for (int b = 0; b < batch; ++b) {
      draw(xi_, s);
      sum_ += xi_;
    }
    xi_ = sum_ / double(batch);
  }
  double n2;
  if (options_.mode == NoiseOptions::Mode::additive) {
    g += scale * xi_;
    n2 = scale * scale * xi_.squaredNorm();
  } else {
    exact_ = g;
    g.array() *= 1.0 + scale * xi_.array();
    n2 = (g - exact_).squaredNorm();
  }
  record_draw(n2);
}

void GradientNoise::keep_among_largest(double norm2) {
  // Min-heap of the largest squared norms; the capacity was reserved in the constructor, so no allocation.
  if (largest_.size() < std::size_t(kHillMaxK + 1)) {
    largest_.push_back(norm2);
    std::push_heap(largest_.begin(), largest_.end(), std::greater<double>());
  } else {
    std::pop_heap(largest_.begin(), largest_.end(), std::greater<double>());
    largest_.back() = norm2;
    std::push_heap(largest_.begin(), largest_.end(), std::greater<double>());
  }
}

long GradientNoise::hill_k() const {
  return std::min(kHillMaxK, long(std::floor(std::sqrt(double(draws_)))));
}

double GradientNoise::hill_tail_index() const {
  const long k = hill_k();
  if (k < 10) return std::numeric_limits<double>::quiet_NaN();
  std::vector<double> top(largest_);
  for (double& v : top) v = std::sqrt(v);  // the norms (the heap holds their squares)
  std::sort(top.begin(), top.end(), std::greater<double>());
  const double threshold = top[std::size_t(k)];
  if (!(threshold > 0.0)) return std::numeric_limits<double>::quiet_NaN();
  double sum_log = 0.0;
  for (long i = 0; i < k; ++i) sum_log += std::log(top[std::size_t(i)] / threshold);
  return double(k) / sum_log;
}

void GradientNoise::report(RunStats& stats) const {
  if (!active() || draws_ == 0) return;
  stats.emplace_back("noise_mean_sq_norm", sum_sq_norm_ / double(draws_));
  stats.emplace_back("noise_max_norm", std::sqrt(max_norm2_));
  if (hill_k() >= 10) {
    stats.emplace_back("noise_tail_index_hill", hill_tail_index());
    stats.emplace_back("noise_hill_k", double(hill_k()));
  }
}

template <bool Checked>
long ExactGradientOracle::fused_sgd(VecRef x, long t_first, long t_last, const Schedule& schedule, double limit2) {
  const bool noisy = noise_.active();
  if (diagonal_.h)
    return noisy ? fused_sgd_steps_of<Checked, true, true>(x, t_first, t_last, schedule, limit2)
                 : fused_sgd_steps_of<Checked, false, true>(x, t_first, t_last, schedule, limit2);
  return noisy ? fused_sgd_steps_of<Checked, true, false>(x, t_first, t_last, schedule, limit2)
               : fused_sgd_steps_of<Checked, false, false>(x, t_first, t_last, schedule, limit2);
}

template <bool Checked, bool Noisy, bool Diagonal>
long ExactGradientOracle::fused_sgd_steps_of(VecRef x, long t_first, long t_last, const Schedule& schedule,
                                             double limit2) {
  using namespace Eigen::internal;
  double* xd = x.data();
  const double *gd = g_.data(), *h = diagonal_.h, *c = diagonal_.c;
  const Eigen::Index d = x.size();
  const double scale = noise_.scale();
  constexpr std::size_t kSums = std::size_t(Noisy) + std::size_t(Checked);
  for (long t = t_first;; ++t) {
    if constexpr (!Diagonal) problem_.gradient(x, g_);
    const double eta = schedule(t);
    const double* xi = Noisy ? noise_.gaussian_of_step(std::uint64_t(t), noise_stream_) : nullptr;
    // g = h .* (x - c) as the problem computes it (or its gradient()), g + scale * xi as apply() adds it,
    // x - eta * g as sgd subtracts it; xi's squared norm for the noise statistics, x's for the check.
    const auto sums = packet_passes::sweep_and_sum<kSums>(d, [&]<class T>(Eigen::Index j, T* terms) {
      const T xj = ploadu<T>(xd + j);
      T g = Diagonal ? pmul(ploadu<T>(h + j), psub(xj, ploadu<T>(c + j))) : ploadu<T>(gd + j);
      T z{};
      if constexpr (Noisy) z = ploadu<T>(xi + j), g = padd(g, pmul(pset1<T>(scale), z));
      const T xn = psub(xj, pmul(pset1<T>(eta), g));
      pstoreu(xd + j, xn);
      if constexpr (Noisy) terms[0] = pmul(z, z);
      if constexpr (Checked) terms[kSums - 1] = pmul(xn, xn);
    });
    if constexpr (Noisy) noise_.record_additive_draw(sums[0]);
    const bool passed = !Checked || sums[kSums - 1] <= limit2;
    if (!passed || t == t_last) {
      // The noise stream where the step-by-step loop leaves it: seeked to this step, its normals drawn.
      if constexpr (Noisy) noise_stream_.seek(std::uint64_t(t)), noise_stream_.skip_normals(std::size_t(d));
      return passed ? 0 : t;
    }
  }
}

template long ExactGradientOracle::fused_sgd<false>(VecRef, long, long, const Schedule&, double);
template long ExactGradientOracle::fused_sgd<true>(VecRef, long, long, const Schedule&, double);

}  // namespace ratelab
