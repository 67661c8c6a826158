// Composite objectives F(x) = f(x) + h(x): f smooth (or a subgradient problem), h a simple function with an
// exact prox, shared by every problem through one option group (`.with(&Options::regularizer, ...)`):
//
//   none          h = 0
//   l1            h = lambda ||x||_1                        prox: soft thresholding at eta lambda
//   l2            h = (lambda/2) ||x||^2                    prox: x / (1 + eta lambda)
//   elastic_net   h = lambda (rho ||x||_1 + (1-rho)/2 ||x||^2)   prox: soft(x, eta lambda rho) / (1 + eta lambda (1-rho))
//   linf          h = lambda ||x||_inf                      prox: Moreau, x - P_{l1 ball of radius eta lambda}(x)
//   box           h = indicator of [-r, r]^d                prox: clamping
//   ball          h = indicator of {||x||_2 <= r}           prox: radial projection
//   simplex       h = indicator of {x >= 0, sum x = r}      prox: sort-based projection
//
// The l1-ball and simplex projections are the sort-based O(d log d) algorithm of Held, Wolfe & Crowder
// (1974), as in Duchi, Shalev-Shwartz, Singer & Chandra (ICML 2008). The l_inf prox uses the Moreau
// decomposition prox_{t||.||_inf}(v) = v - P_{||.||_1 <= t}(v) (Parikh & Boyd, "Proximal algorithms", 6.5).
//
// CompositeProblem is the base of the problems that take a regularizer: it adds h to value(), exposes
// prox(), sets facts().domain for the constraint kinds, and, when h is present, computes F* and x* at
// set-up with FISTA (Beck & Teboulle 2009) with adaptive gradient restart (O'Donoghue & Candes 2015) run
// until the gradient mapping L ||x - prox_{h/L}(x - grad f(x)/L)|| is below a recorded tolerance.
#pragma once

#include <string>
#include <vector>

#include "core/params.hpp"
#include "core/problem.hpp"

namespace ratelab {

struct RegularizerOptions {
  enum class Kind { none, l1, l2, elastic_net, linf, box, ball, simplex };
  Kind kind = Kind::none;
  double weight = 0.0;    // lambda for l1, l2, elastic_net, linf
  double l1_ratio = 0.5;  // rho for elastic_net
  double radius = 1.0;    // r for box, ball, simplex

  static ParamTable<RegularizerOptions> params();
  // Throws ConfigError when a penalty has weight 0 (say regularizer = none instead).
  void validate() const;
};

// Euclidean projections and proxes on plain vectors, in place. `scratch` is grown to x.size() once;
// after that nothing allocates.
void project_box(VecRef x, double radius);
void project_ball(VecRef x, double radius);
void project_simplex(VecRef x, double radius, std::vector<double>& scratch);
void project_l1_ball(VecRef x, double radius, std::vector<double>& scratch);
void soft_threshold(VecRef x, double threshold);
void prox_linf(VecRef x, double t, std::vector<double>& scratch);  // prox of t ||.||_inf

class Regularizer {
 public:
  Regularizer() = default;
  explicit Regularizer(const RegularizerOptions& options);
  const RegularizerOptions& options() const { return options_; }
  bool active() const { return options_.kind != RegularizerOptions::Kind::none; }
  bool is_constraint() const;
  Domain domain() const;
  // h(x); +inf outside a constraint set (with relative slack 1e-9 for rounding of projected points).
  double value(ConstVecRef x) const;
  // x <- prox_{eta h}(x). Sort-based kinds use a thread-local workspace that grows once per thread.
  void prox(double eta, VecRef x) const;
  std::string describe() const;

 private:
  RegularizerOptions options_;
};

class CompositeProblem : public Problem {
 public:
  explicit CompositeProblem(const RegularizerOptions& regularizer);

  const ProblemFacts& facts() const override { return facts_; }
  // A run starts where it is feasible: the problem's own start (initial_point_before_projection) projected
  // onto the constraint set when the regularizer is one (box, ball, simplex); F(x0) would be inf otherwise.
  void initial_point(VecRef x0, RandomStream& init) const final;
  double value(ConstVecRef x) const override;
  void values(ConstMatRef X, VecRef out) const override;
  bool is_composite() const override { return regularizer_.active(); }
  void prox(double eta, VecRef x) const override { regularizer_.prox(eta, x); }
  ConstVecRef x_star() const override { return x_star_; }
  RunStats instance_stats() const override { return instance_stats_; }
  const Regularizer& regularizer() const { return regularizer_; }

  // The start before projection onto the constraint set; 0 unless the problem says otherwise.
  virtual void initial_point_before_projection(VecRef x0, RandomStream& init) const { (void)init, x0.setZero(); }

  // The smooth (or subdifferentiable) part f alone.
  virtual double smooth_value(ConstVecRef x) const = 0;
  virtual void smooth_values(ConstMatRef X, VecRef out) const;

 protected:
  // Sets facts_.f_star, x_star_, f_star_method and instance_stats_ from FISTA on F = f + h with step 1/L.
  // Call at the end of the most derived constructor (it calls the virtual gradient and value).
  // The tolerance is on the gradient-mapping norm, relative to max(1, ||G(x0)||).
  void solve_composite(double L, double tolerance = 1e-11, long max_iterations = 200000);

  ProblemFacts facts_;
  Vec x_star_;
  RunStats instance_stats_;
  Regularizer regularizer_;
};

}  // namespace ratelab
