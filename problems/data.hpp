// Data sets for the data-driven problems (least_squares, logistic, softmax).
//
// Readers for the LIBSVM/SVMlight text format ("label index:value ...", 1-based increasing indices, '#'
// comments, SVMlight "qid:" fields ignored; Chang & Lin, LIBSVM) and for numeric CSV (comma- or whitespace-separated, label in the last
// column unless told otherwise). Malformed input raises ConfigError "path:line:column: what is wrong",
// column counting characters from 1.
//
// Named data sets are the small ones Debian's python3-sklearn ships (problems/fetch_sklearn_data.sh copies
// them into a directory): breast_cancer (569 x 30, labels 0/1), digits (1797 x 64, 10 classes), diabetes
// (442 x 10, regression target). Anything else is a path: *.csv is CSV, everything else LIBSVM.
#pragma once

#include <Eigen/Core>
#include <string>
#include <vector>

#include "core/problem.hpp"

namespace ratelab {

using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Dataset {
  std::string name;
  RowMat X;  // n x d, one example per row
  Vec y;     // labels or regression targets
};

Dataset read_libsvm(const std::string& path);
// A rectangular numeric table (comma- or blank-separated); a non-numeric first line is taken as a header.
RowMat read_numeric_table(const std::string& path, int skip_lines = 0);
// label_column: 0-based field index of the label, or -1 for the last field. A first line with a
// non-numeric field is taken as a header and skipped; skip_lines skips that many lines first.
Dataset read_csv(const std::string& path, int label_column = -1, int skip_lines = 0);
void write_libsvm(const Dataset& data, const std::string& path);  // 17 significant digits, zeros omitted
void write_csv(const Dataset& data, const std::string& path);     // features then label

// Centers every feature and scales it to unit (population) standard deviation; constant features become 0.
void standardize_features(Dataset& data);

// A named data set (looked up in data_directory, default "data") or a path.
Dataset load_dataset(const std::string& name_or_path, const std::string& data_directory, bool standardize);

// The files load_dataset reads for `name_or_path` (a named set's files in data_directory, else the path
// itself), whether they exist or not: what run fingerprints hash the contents of.
std::vector<std::string> dataset_files(const std::string& name_or_path, const std::string& data_directory);

// Maps labels to 0..K-1 in increasing order of the distinct values; returns K.
int index_labels(Vec& y);

}  // namespace ratelab
