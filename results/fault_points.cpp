#include "results/fault_points.hpp"

namespace ratelab::results {

FaultPoints& fault_points() {
  static FaultPoints points;
  return points;
}

}  // namespace ratelab::results
