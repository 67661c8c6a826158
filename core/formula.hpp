// Formulas of named numbers: the one expression language of ratelab. Claims use it for bounds, at=,
// scale= and thresholds (experiments/claims.hpp: the names are a trace file's T, R, t and configuration
// parameters); experiment files use it for parameter values derived from other parameters
// (`schedule.eta = 1/problem.L`: experiments/experiment.hpp). What a name means is the caller's business
// (a Lookup); the syntax and the arithmetic are declared here once.
//
// Syntax: numbers, + - * / ^ (right associative; unary minus binds looser: -2^2 = -4), parentheses,
// functions sqrt log exp abs sin cos floor ceil round (half away from zero) min max, sum(i, lo, hi, expr)
// (i = lo..hi integers), the constants inf and pi, and names (letters, digits, '_' and '.', starting with a
// letter or '_': "problem.mu").
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ratelab {

class Formula {
 public:
  struct Node;
  // The value of a free name; throws ConfigError for a name it does not know (the message says which
  // names there are).
  using Lookup = std::function<double(const std::string& name)>;

  Formula() = default;
  // Throws ConfigError("<what>: formula '<text>': ...") on a syntax error.
  static Formula parse(const std::string& text, const std::string& what);
  const std::string& text() const { return text_; }
  bool empty() const { return !root_; }
  // The free names the formula refers to, first occurrence first (not the constants, not summation variables).
  std::vector<std::string> names() const;
  // Evaluates it; an error of the lookup is rethrown as ConfigError("formula '<text>': <error>").
  double evaluate(const Lookup& lookup) const;

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

}  // namespace ratelab
