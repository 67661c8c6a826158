#include "problems/data.hpp"

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string_view>
#include <vector>

#include "core/params.hpp"

namespace ratelab {
namespace {

[[noreturn]] void fail(const std::string& path, long line, long column, const std::string& what) {
  throw ConfigError(path + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
}

std::ifstream open_or_fail(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("cannot open data file '" + path + "'");
  return in;
}

// Parses a whole token as a finite double; false if anything is left over or it is not a number. std::from_chars
// (correctly rounded, as glibc's strtod: the same bits) takes the common case, a normal number in plain
// decimal notation, at a fraction of strtod's cost; everything else (zero, subnormal or out-of-range values,
// a leading '+', hexadecimal) goes to strtod as before, so what is accepted does not change.
bool parse_double(std::string_view token, double& out) {
  if (token.empty()) return false;
  const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), out);
  if (error == std::errc() && end == token.data() + token.size() && std::isnormal(out)) return true;
  const std::string text(token);
  char* stop = nullptr;
  errno = 0;
  out = std::strtod(text.c_str(), &stop);
  return stop == text.c_str() + text.size() && errno != ERANGE && std::isfinite(out);
}

struct Token {
  std::string_view text;  // into the line it was split from
  long column;            // 1-based
};

// Splits on commas when the line has one, otherwise on blanks, into `out` (cleared first; its capacity is reused).
void split_fields(const std::string& line, std::vector<Token>& out) {
  out.clear();
  const std::string_view view(line);
  const bool comma = line.find(',') != std::string::npos;
  std::size_t i = 0;
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (i <= line.size()) {
    if (comma) {
      std::size_t j = line.find(',', i);
      if (j == std::string::npos) j = line.size();
      std::size_t a = i, b = j;
      while (a < b && blank(line[a])) ++a;
      while (b > a && blank(line[b - 1])) --b;
      out.push_back({view.substr(a, b - a), long(a) + 1});
      i = j + 1;
    } else {
      while (i < line.size() && blank(line[i])) ++i;
      if (i >= line.size()) break;
      std::size_t j = i;
      while (j < line.size() && !blank(line[j])) ++j;
      out.push_back({view.substr(i, j - i), long(i) + 1});
      i = j;
    }
  }
}

Dataset from_rows(const std::string& path, const std::vector<std::vector<double>>& rows,
                  const std::vector<double>& labels, long d) {
  Dataset data;
  data.name = path;
  data.X = RowMat::Zero(long(rows.size()), d);
  data.y.resize(long(labels.size()));
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (std::size_t j = 0; j < rows[i].size(); ++j) data.X(long(i), long(j)) = rows[i][j];
    data.y[long(i)] = labels[i];
  }
  return data;
}

}  // namespace

Dataset read_libsvm(const std::string& path) {
  std::ifstream in = open_or_fail(path);
  std::vector<std::vector<double>> rows;  // dense rows, grown to the largest index seen
  std::vector<double> labels;
  std::string line;
  std::vector<Token> tokens;
  long line_no = 0, d = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::size_t hash = line.find('#');
    const std::string content = line.substr(0, hash);
    split_fields(content, tokens);
    if (tokens.empty()) continue;
    if (content.find(',') != std::string::npos)
      fail(path, line_no, long(content.find(',')) + 1, "unexpected ',' in LIBSVM line (is this a CSV file?)");
    double label;
    if (!parse_double(tokens[0].text, label))
      fail(path, line_no, tokens[0].column, "label '" + std::string(tokens[0].text) + "' is not a number");
    std::vector<double> row;
    long previous = 0;
    for (std::size_t k = 1; k < tokens.size(); ++k) {
      const Token& t = tokens[k];
      if (t.text.rfind("qid:", 0) == 0) continue;  // SVMlight ranking groups: not a feature
      const std::size_t colon = t.text.find(':');
      if (colon == std::string::npos) fail(path, line_no, t.column, "expected index:value, got '" + std::string(t.text) + "'");
      const std::string index_text(t.text.substr(0, colon)), value_text(t.text.substr(colon + 1));
      char* end = nullptr;
      const long index = std::strtol(index_text.c_str(), &end, 10);
      if (index_text.empty() || end != index_text.c_str() + index_text.size() || index < 1)
        fail(path, line_no, t.column, "index '" + index_text + "' is not a positive integer");
      if (index <= previous)
        fail(path, line_no, t.column,
             "index " + std::to_string(index) + " does not increase (previous " + std::to_string(previous) + ")");
      double value;
      if (!parse_double(value_text, value))
        fail(path, line_no, t.column + long(colon) + 1, "value '" + value_text + "' is not a number");
      if (long(row.size()) < index) row.resize(std::size_t(index), 0.0);
      row[std::size_t(index - 1)] = value;
      previous = index;
      d = std::max(d, index);
    }
    rows.push_back(std::move(row));
    labels.push_back(label);
  }
  if (rows.empty()) throw ConfigError("data file '" + path + "' holds no examples");
  return from_rows(path, rows, labels, d);
}

RowMat read_numeric_table(const std::string& path, int skip_lines) {
  std::ifstream in = open_or_fail(path);
  std::vector<std::vector<double>> rows;
  std::string line;
  long line_no = 0;
  std::size_t fields = 0;
  std::vector<Token> tokens;
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no <= skip_lines) continue;
    split_fields(line, tokens);
    if (tokens.empty() || (tokens.size() == 1 && tokens[0].text.empty())) continue;
    std::vector<double> values(tokens.size());
    bool numeric = true;
    std::size_t bad = 0;
    for (std::size_t k = 0; k < tokens.size() && numeric; ++k)
      if (!parse_double(tokens[k].text, values[k])) numeric = false, bad = k;
    if (!numeric) {
      if (rows.empty() && line_no == skip_lines + 1) continue;  // a header line
      fail(path, line_no, tokens[bad].column,
           "field " + std::to_string(bad + 1) + " '" + std::string(tokens[bad].text) + "' is not a number");
    }
    if (fields == 0) fields = tokens.size();
    if (tokens.size() != fields)
      fail(path, line_no, tokens.back().column,
           "expected " + std::to_string(fields) + " fields like the first data line, found " +
               std::to_string(tokens.size()));
    rows.push_back(std::move(values));
  }
  if (rows.empty()) throw ConfigError("data file '" + path + "' holds no examples");
  RowMat table(long(rows.size()), long(fields));
  for (std::size_t i = 0; i < rows.size(); ++i)
    for (std::size_t j = 0; j < fields; ++j) table(long(i), long(j)) = rows[i][j];
  return table;
}

Dataset read_csv(const std::string& path, int label_column, int skip_lines) {
  RowMat table = read_numeric_table(path, skip_lines);
  const long fields = table.cols();
  if (fields < 2) fail(path, skip_lines + 1, 1, "need at least one feature and a label per line");
  const long label_at = label_column < 0 ? fields - 1 : label_column;
  if (label_at >= fields)
    fail(path, skip_lines + 1, 1,
         "label column " + std::to_string(label_at + 1) + " is beyond the " + std::to_string(fields) + " fields");
  Dataset data;
  data.name = path;
  data.y = table.col(label_at);
  data.X.resize(table.rows(), fields - 1);
  data.X.leftCols(label_at) = table.leftCols(label_at);
  data.X.rightCols(fields - 1 - label_at) = table.rightCols(fields - 1 - label_at);
  return data;
}

void write_libsvm(const Dataset& data, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw ConfigError("cannot write data file '" + path + "'");
  for (Eigen::Index i = 0; i < data.X.rows(); ++i) {
    std::fprintf(f, "%.17g", data.y[i]);
    for (Eigen::Index j = 0; j < data.X.cols(); ++j)
      if (data.X(i, j) != 0.0) std::fprintf(f, " %ld:%.17g", long(j + 1), data.X(i, j));
    std::fputc('\n', f);
  }
  std::fclose(f);
}

void write_csv(const Dataset& data, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw ConfigError("cannot write data file '" + path + "'");
  for (Eigen::Index i = 0; i < data.X.rows(); ++i) {
    for (Eigen::Index j = 0; j < data.X.cols(); ++j) std::fprintf(f, "%.17g,", data.X(i, j));
    std::fprintf(f, "%.17g\n", data.y[i]);
  }
  std::fclose(f);
}

void standardize_features(Dataset& data) {
  const double n = double(data.X.rows());
  for (Eigen::Index j = 0; j < data.X.cols(); ++j) {
    auto col = data.X.col(j);
    const double mean = col.sum() / n;
    col.array() -= mean;
    const double sd = std::sqrt(col.squaredNorm() / n);
    if (sd > 0.0) col /= sd;
    else col.setZero();
  }
}

int index_labels(Vec& y) {
  std::map<double, int> ids;
  for (Eigen::Index i = 0; i < y.size(); ++i) ids.emplace(y[i], 0);
  int k = 0;
  for (auto& [value, id] : ids) id = k++;
  for (Eigen::Index i = 0; i < y.size(); ++i) y[i] = ids.at(y[i]);
  return k;
}

namespace {
// The named data sets and the files of each, in the data directory (declared once: load_dataset reads
// them, dataset_files lists them for run fingerprints).
const std::map<std::string, std::vector<std::string>>& named_dataset_files() {
  static const std::map<std::string, std::vector<std::string>> files{
      {"breast_cancer", {"breast_cancer.csv"}},
      {"digits", {"digits.csv"}},
      {"diabetes", {"diabetes_data_raw.csv", "diabetes_target.csv"}}};
  return files;
}

std::filesystem::path data_directory_or_default(const std::string& data_directory) {
  return data_directory.empty() ? std::filesystem::path("data") : std::filesystem::path(data_directory);
}
}  // namespace

std::vector<std::string> dataset_files(const std::string& name_or_path, const std::string& data_directory) {
  const auto& named = named_dataset_files();
  const auto it = named.find(name_or_path);
  if (it == named.end()) return {name_or_path};
  std::vector<std::string> out;
  for (const auto& file : it->second) out.push_back((data_directory_or_default(data_directory) / file).string());
  return out;
}

Dataset load_dataset(const std::string& name_or_path, const std::string& data_directory, bool standardize) {
  namespace fs = std::filesystem;
  const fs::path dir = data_directory_or_default(data_directory);
  const std::vector<std::string> files = dataset_files(name_or_path, data_directory);
  for (const auto& p : files)
    if (named_dataset_files().count(name_or_path) && !fs::exists(p))
      throw ConfigError("data set '" + name_or_path + "' needs " + p +
                        "; run problems/fetch_sklearn_data.sh " + dir.string() + " to fetch it");
  Dataset data;
  if (name_or_path == "breast_cancer") {
    data = read_csv(files[0], -1, 1);  // first line: "569,30,malignant,benign"
  } else if (name_or_path == "digits") {
    data = read_csv(files[0]);
  } else if (name_or_path == "diabetes") {
    // Features and target live in two files (the target one value per line).
    data.X = read_numeric_table(files[0], 0);
    const RowMat target = read_numeric_table(files[1], 0);
    if (target.cols() != 1 || target.rows() != data.X.rows())
      throw ConfigError("diabetes: expected one target per line for each of the " +
                        std::to_string(data.X.rows()) + " examples");
    data.y = target.col(0);
  } else {
    const bool csv = fs::path(name_or_path).extension() == ".csv";
    data = csv ? read_csv(name_or_path) : read_libsvm(name_or_path);
  }
  data.name = name_or_path;
  if (standardize) standardize_features(data);
  return data;
}

}  // namespace ratelab
