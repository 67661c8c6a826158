#include "core/problem.hpp"

#include <stdexcept>

namespace ratelab {

const char* domain_name(Domain domain) {
  switch (domain) {
    case Domain::euclidean: return "euclidean";
    case Domain::simplex: return "simplex";
    case Domain::ball: return "ball";
    case Domain::box: return "box";
  }
  return "?";
}

ConstVecRef Problem::x_star() const {
  throw std::logic_error("x_star() called on a problem that does not declare x* (facts().x_star_known)");
}

}  // namespace ratelab
