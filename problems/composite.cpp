#include "problems/composite.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

namespace ratelab {

ParamTable<RegularizerOptions> RegularizerOptions::params() {
  using K = Kind;
  return {
      choice(&RegularizerOptions::kind, "regularizer",
             {{"none", K::none},
              {"l1", K::l1},
              {"l2", K::l2},
              {"elastic_net", K::elastic_net},
              {"linf", K::linf},
              {"box", K::box},
              {"ball", K::ball},
              {"simplex", K::simplex}},
             "composite term h: a penalty (l1, l2, elastic_net, linf; weight reg_weight) or the indicator of a "
             "set (box [-r, r]^d, ball ||x|| <= r, simplex {x >= 0, sum x = r}; r = reg_radius; a constraint set's runs "
             "start at the Euclidean projection of the problem's x0 onto it, e.g. x0 = 0 -> (r/d, ..., r/d) on the simplex)"),
      param(&RegularizerOptions::weight, "reg_weight", nonnegative(),
            "lambda of the penalty: l1 lambda||x||_1, l2 (lambda/2)||x||^2, linf lambda||x||_inf, elastic_net "
            "lambda (rho||x||_1 + (1-rho)/2 ||x||^2)"),
      param(&RegularizerOptions::l1_ratio, "reg_l1_ratio", in_closed(0, 1), "rho of elastic_net"),
      param(&RegularizerOptions::radius, "reg_radius", positive(), "r of the box, ball or simplex constraint"),
  };
}

void RegularizerOptions::validate() const {
  const bool penalty = kind == Kind::l1 || kind == Kind::l2 || kind == Kind::elastic_net || kind == Kind::linf;
  if (penalty && weight <= 0.0)
    throw ConfigError("problem.reg_weight = 0 with a penalty regularizer: need reg_weight > 0 (or set "
                      "regularizer = none)");
}

// ---- projections and proxes ------------------------------------------------------------------------

void project_box(VecRef x, double radius) { x = x.cwiseMax(-radius).cwiseMin(radius); }

void project_ball(VecRef x, double radius) {
  const double n = x.norm();
  if (n > radius) x *= radius / n;
}

namespace {
// The threshold theta such that sum_i max(u_i - theta, 0) = radius, for u >= 0 with sum u > radius
// (Held, Wolfe & Crowder 1974): sort descending, rho = max{j : u_(j) > (cumsum_j - radius)/j}.
double simplex_threshold(std::vector<double>& u, double radius) {
  std::sort(u.begin(), u.end(), std::greater<double>());
  double cumsum = 0.0, theta = 0.0;
  for (std::size_t j = 0; j < u.size(); ++j) {
    cumsum += u[j];
    const double candidate = (cumsum - radius) / double(j + 1);
    if (u[j] > candidate) theta = candidate;
    else break;  // the condition holds exactly for j = 1..rho and fails after
  }
  return theta;
}
}  // namespace

void project_simplex(VecRef x, double radius, std::vector<double>& scratch) {
  scratch.resize(std::size_t(x.size()));
  for (Eigen::Index i = 0; i < x.size(); ++i) scratch[std::size_t(i)] = x[i];
  const double theta = simplex_threshold(scratch, radius);
  x = (x.array() - theta).cwiseMax(0.0);
}

void project_l1_ball(VecRef x, double radius, std::vector<double>& scratch) {
  if (x.lpNorm<1>() <= radius) return;
  scratch.resize(std::size_t(x.size()));
  for (Eigen::Index i = 0; i < x.size(); ++i) scratch[std::size_t(i)] = std::abs(x[i]);
  const double theta = simplex_threshold(scratch, radius);
  soft_threshold(x, theta);
}

void soft_threshold(VecRef x, double threshold) {
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double a = std::abs(x[i]) - threshold;
    x[i] = a > 0.0 ? std::copysign(a, x[i]) : 0.0;
  }
}

void prox_linf(VecRef x, double t, std::vector<double>& scratch) {
  // Moreau: prox_{t||.||_inf}(v) = v - P_{l1 ball of radius t}(v). With P(v) = soft(v, theta) this is
  // sign(v_i) min(|v_i|, theta), and 0 when ||v||_1 <= t.
  if (x.lpNorm<1>() <= t) {
    x.setZero();
    return;
  }
  scratch.resize(std::size_t(x.size()));
  for (Eigen::Index i = 0; i < x.size(); ++i) scratch[std::size_t(i)] = std::abs(x[i]);
  const double theta = simplex_threshold(scratch, t);
  x = x.cwiseMax(-theta).cwiseMin(theta);
}

// ---- Regularizer -------------------------------------------------------------------------------------

Regularizer::Regularizer(const RegularizerOptions& options) : options_(options) { options_.validate(); }

bool Regularizer::is_constraint() const {
  using K = RegularizerOptions::Kind;
  return options_.kind == K::box || options_.kind == K::ball || options_.kind == K::simplex;
}

Domain Regularizer::domain() const {
  switch (options_.kind) {
    case RegularizerOptions::Kind::box: return Domain::box;
    case RegularizerOptions::Kind::ball: return Domain::ball;
    case RegularizerOptions::Kind::simplex: return Domain::simplex;
    default: return Domain::euclidean;
  }
}

double Regularizer::value(ConstVecRef x) const {
  using K = RegularizerOptions::Kind;
  const double lambda = options_.weight, r = options_.radius, slack = 1e-9;
  constexpr double inf = std::numeric_limits<double>::infinity();
  switch (options_.kind) {
    case K::none: return 0.0;
    case K::l1: return lambda * x.lpNorm<1>();
    case K::l2: return 0.5 * lambda * x.squaredNorm();
    case K::elastic_net:
      return lambda * (options_.l1_ratio * x.lpNorm<1>() + 0.5 * (1.0 - options_.l1_ratio) * x.squaredNorm());
    case K::linf: return lambda * x.lpNorm<Eigen::Infinity>();
    case K::box: return x.lpNorm<Eigen::Infinity>() <= r * (1.0 + slack) ? 0.0 : inf;
    case K::ball: return x.norm() <= r * (1.0 + slack) ? 0.0 : inf;
    case K::simplex: {
      const double tol = slack * (r + x.lpNorm<1>());
      return x.minCoeff() >= -tol && std::abs(x.sum() - r) <= tol ? 0.0 : inf;
    }
  }
  return 0.0;
}

void Regularizer::prox(double eta, VecRef x) const {
  using K = RegularizerOptions::Kind;
  thread_local std::vector<double> scratch;
  const double lambda = options_.weight, r = options_.radius;
  switch (options_.kind) {
    case K::none: return;
    case K::l1: soft_threshold(x, eta * lambda); return;
    case K::l2: x /= 1.0 + eta * lambda; return;
    case K::elastic_net:
      soft_threshold(x, eta * lambda * options_.l1_ratio);
      x /= 1.0 + eta * lambda * (1.0 - options_.l1_ratio);
      return;
    case K::linf: prox_linf(x, eta * lambda, scratch); return;
    case K::box: project_box(x, r); return;
    case K::ball: project_ball(x, r); return;
    case K::simplex: project_simplex(x, r, scratch); return;
  }
}

std::string Regularizer::describe() const {
  using K = RegularizerOptions::Kind;
  char buf[128];
  switch (options_.kind) {
    case K::none: return "none";
    case K::l1: std::snprintf(buf, sizeof buf, "l1, lambda = %.17g", options_.weight); break;
    case K::l2: std::snprintf(buf, sizeof buf, "l2, lambda = %.17g", options_.weight); break;
    case K::elastic_net:
      std::snprintf(buf, sizeof buf, "elastic_net, lambda = %.17g, rho = %.17g", options_.weight, options_.l1_ratio);
      break;
    case K::linf: std::snprintf(buf, sizeof buf, "linf, lambda = %.17g", options_.weight); break;
    case K::box: std::snprintf(buf, sizeof buf, "box, r = %.17g", options_.radius); break;
    case K::ball: std::snprintf(buf, sizeof buf, "ball, r = %.17g", options_.radius); break;
    case K::simplex: std::snprintf(buf, sizeof buf, "simplex, r = %.17g", options_.radius); break;
  }
  return buf;
}

// ---- CompositeProblem --------------------------------------------------------------------------------

CompositeProblem::CompositeProblem(const RegularizerOptions& regularizer) : regularizer_(regularizer) {
  facts_.domain = regularizer_.domain();
  // Diameters that do not depend on the dimension; the box's (2 r sqrt d) is set by solve_composite.
  if (regularizer_.domain() == Domain::ball) facts_.D = 2.0 * regularizer.radius;
  if (regularizer_.domain() == Domain::simplex) facts_.D = std::sqrt(2.0) * regularizer.radius;
}

void CompositeProblem::initial_point(VecRef x0, RandomStream& init) const {
  initial_point_before_projection(x0, init);
  if (regularizer_.is_constraint()) regularizer_.prox(1.0, x0);  // the prox of an indicator is the projection
}

double CompositeProblem::value(ConstVecRef x) const {
  return smooth_value(x) + (regularizer_.active() ? regularizer_.value(x) : 0.0);
}

void CompositeProblem::values(ConstMatRef X, VecRef out) const {
  smooth_values(X, out);
  if (regularizer_.active())
    for (Eigen::Index j = 0; j < X.cols(); ++j) out[j] += regularizer_.value(X.col(j));
}

void CompositeProblem::smooth_values(ConstMatRef X, VecRef out) const {
  for (Eigen::Index j = 0; j < X.cols(); ++j) out[j] = smooth_value(X.col(j));
}

void CompositeProblem::solve_composite(double L, double tolerance, long max_iterations) {
  const Eigen::Index d = dim();
  if (facts_.domain == Domain::box) facts_.D = 2.0 * regularizer_.options().radius * std::sqrt(double(d));
  Vec x = Vec::Zero(d), y(d), x_next(d), g(d);
  prox(1.0 / L, x);  // a feasible start for the constraint kinds
  y = x;
  auto gradient_mapping = [&](const Vec& at, Vec& next) {
    gradient(at, g);
    next = at - g / L;
    prox(1.0 / L, next);
    return L * (at - next).norm();
  };
  const double scale = std::max(1.0, gradient_mapping(x, x_next));
  double t = 1.0, gm = std::numeric_limits<double>::infinity();
  long k = 0;
  for (; k < max_iterations; ++k) {
    gradient_mapping(y, x_next);
    // Restart the momentum when it points against the step (O'Donoghue & Candes): keeps the linear rate
    // of strongly convex instances without knowing mu.
    if ((y - x_next).dot(x_next - x) > 0.0) {
      t = 1.0;
      y = x_next;
    } else {
      const double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
      y = x_next + ((t - 1.0) / t_next) * (x_next - x);
      t = t_next;
    }
    x = x_next;
    if ((k & 15) == 15 || k + 1 == max_iterations) {
      gm = gradient_mapping(x, x_next);
      if (gm <= tolerance * scale) {
        ++k;
        break;
      }
    }
  }
  // Report the better of x and its prox-gradient step; both are within the recorded accuracy.
  gm = gradient_mapping(x, x_next);
  x_star_ = value(x_next) <= value(x) ? x_next : x;
  facts_.f_star = value(x_star_);
  facts_.x_star_known = true;
  char buf[200];
  std::snprintf(buf, sizeof buf, "fista (adaptive restart, step 1/L), gradient-mapping norm %.3g after %ld iterations",
                gm, k);
  facts_.f_star_method = buf;
  instance_stats_.emplace_back("f_star_gradient_mapping_norm", gm);
  instance_stats_.emplace_back("f_star_iterations", double(k));
}

}  // namespace ratelab
