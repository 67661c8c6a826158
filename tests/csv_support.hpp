// Reading the CSV a command prints, for tests that compare its columns (summary --csv and the like).
#pragma once

#include <map>
#include <sstream>
#include <string>

namespace ratelab_test {

// The first data row of a CSV text, by column name (no quoted fields: the columns compared are numbers).
inline std::map<std::string, std::string> csv_row(const std::string& csv) {
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  std::map<std::string, std::string> out;
  std::istringstream h(header), v(row);
  for (std::string name, value; std::getline(h, name, ',') && std::getline(v, value, ',');) out[name] = value;
  return out;
}

}  // namespace ratelab_test
