// Data readers: exact round trips, malformed input rejected with file, line and column, the named
// sklearn data sets' layouts, standardization.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "core/params.hpp"
#include "core/registry.hpp"
#include "problems/data.hpp"

using namespace ratelab;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("ratelab_test_data_" + std::to_string(::getpid()))) {
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

Dataset sample_data() {
  Dataset d;
  d.X.resize(3, 4);
  d.X << 1.0 / 3.0, 0.0, -2.5e-300, 7.0,  //
      0.0, 0.0, 0.0, 0.0,                 //
      6.02214076e23, -0.1, 0.0, 1e-5;
  d.y.resize(3);
  d.y << 1, -1, 0.5;
  return d;
}

}  // namespace

TEST_CASE("data: LIBSVM and CSV round trips are exact", "[problems][data]") {
  TempDir dir;
  const Dataset d = sample_data();
  write_libsvm(d, (dir.path / "a.svm").string());
  Dataset back = read_libsvm((dir.path / "a.svm").string());
  // The all-zero row has no index:value pairs, and the last column is present only through row 0.
  REQUIRE(back.X.rows() == 3);
  REQUIRE(back.X.cols() == 4);
  CHECK(back.X == d.X);
  CHECK(back.y == d.y);
  write_csv(d, (dir.path / "a.csv").string());
  Dataset csv = read_csv((dir.path / "a.csv").string());
  CHECK(csv.X == d.X);
  CHECK(csv.y == d.y);
  // Comments, blank lines, whitespace-separated CSV, a header line and a label in the first column.
  Dataset s = read_libsvm(dir.write("b.svm", "# header comment\n+1 qid:3 2:0.5 10:-1 # trailing\n\n-1 1:3\n"));
  CHECK(s.X.rows() == 2);
  CHECK(s.X.cols() == 10);
  CHECK(s.X(0, 1) == 0.5);
  CHECK(s.X(0, 9) == -1.0);
  CHECK(s.X(1, 0) == 3.0);
  CHECK(s.y[0] == 1.0);
  Dataset c = read_csv(dir.write("c.csv", "label,x1,x2\n1,2,3\n0,5,6\n"), 0);
  CHECK(c.X.rows() == 2);
  CHECK(c.X(1, 1) == 6.0);
  CHECK(c.y[1] == 0.0);
  Dataset w = read_csv(dir.write("w.txt", "1 2 3\n  4\t5 6\n"));
  CHECK(w.X(1, 0) == 4.0);
  CHECK(w.y[1] == 6.0);
}

TEST_CASE("data: malformed input names the file, line and column", "[problems][data]") {
  TempDir dir;
  const std::string p1 = dir.write("bad1.svm", "1 1:0.5 2:1\n-1 3:x\n");
  CHECK_THAT(error_of([&] { read_libsvm(p1); }), Catch::Contains(p1 + ":2:6: value 'x' is not a number"));
  const std::string p2 = dir.write("bad2.svm", "1 1:0.5\n1 1:1\n-1 2:1 2:3\n");
  CHECK_THAT(error_of([&] { read_libsvm(p2); }), Catch::Contains(p2 + ":3:8: index 2 does not increase"));
  const std::string p3 = dir.write("bad3.svm", "1 0:1\n");
  CHECK_THAT(error_of([&] { read_libsvm(p3); }), Catch::Contains(p3 + ":1:3: index '0' is not a positive integer"));
  const std::string p4 = dir.write("bad4.svm", "1 1:1\nabc 1:2\n");
  CHECK_THAT(error_of([&] { read_libsvm(p4); }), Catch::Contains(p4 + ":2:1: label 'abc' is not a number"));
  const std::string p5 = dir.write("bad5.svm", "1 1 2\n");
  CHECK_THAT(error_of([&] { read_libsvm(p5); }), Catch::Contains(p5 + ":1:3: expected index:value, got '1'"));
  const std::string c1 = dir.write("bad1.csv", "1,2,3\n4,5\n");
  CHECK_THAT(error_of([&] { read_csv(c1); }), Catch::Contains(c1 + ":2:3: expected 3 fields"));
  const std::string c2 = dir.write("bad2.csv", "1,2,3\n4, nan?,6\n");
  CHECK_THAT(error_of([&] { read_csv(c2); }), Catch::Contains(c2 + ":2:4: field 2 'nan?' is not a number"));
  const std::string c3 = dir.write("bad3.csv", "a,b\n1,2\nx,3\n");
  CHECK_THAT(error_of([&] { read_csv(c3); }), Catch::Contains(c3 + ":3:1: field 1 'x' is not a number"));
  CHECK_THAT(error_of([&] { read_csv((dir.path / "missing.csv").string()); }), Catch::Contains("cannot open"));
  CHECK_THAT(error_of([&] { load_dataset("digits", dir.path.string(), true); }),
             Catch::Contains("fetch_sklearn_data.sh"));
}

TEST_CASE("data: the sklearn layouts load into problems, standardized by default", "[problems][data]") {
  // Small files in the layouts of python3-sklearn 1.2.1 (checked against the package): breast_cancer.csv
  // has a "n,d,names" first line and the label last; digits.csv has 64 pixels then the label;
  // diabetes_data_raw.csv is blank-separated features, diabetes_target.csv one target per line.
  TempDir dir;
  dir.write("breast_cancer.csv", "4,2,malignant,benign\n1.0,10,0\n2.0,30,1\n3.0,20,0\n6.0,40,1\n");
  std::string digits;
  for (int i = 0; i < 6; ++i) {
    for (int j = 0; j < 64; ++j) digits += std::to_string((i * 7 + j * 3) % 17) + ",";
    digits += std::to_string(i % 3) + "\n";
  }
  dir.write("digits.csv", digits);
  dir.write("diabetes_data_raw.csv", "59 2 32.1\n48 1 21.6\n72 2 30.5\n");
  dir.write("diabetes_target.csv", "1.51e+02\n7.5e+01\n1.41e+02\n");

  Dataset bc = load_dataset("breast_cancer", dir.path.string(), true);
  REQUIRE(bc.X.rows() == 4);
  REQUIRE(bc.X.cols() == 2);
  // Standardized: column means 0 and population standard deviations 1 (to rounding).
  for (int j = 0; j < 2; ++j) {
    CHECK(std::abs(bc.X.col(j).mean()) < 1e-15);
    CHECK(bc.X.col(j).squaredNorm() / 4 == Approx(1.0).epsilon(1e-14));
  }
  CHECK(bc.X(0, 0) == Approx((1.0 - 3.0) / std::sqrt(3.5)));  // mean 3, variance (4+1+0+9)/4 = 3.5
  Dataset raw = load_dataset("breast_cancer", dir.path.string(), false);
  CHECK(raw.X(3, 1) == 40.0);
  Dataset dg = load_dataset("digits", dir.path.string(), false);
  CHECK(dg.X.cols() == 64);
  CHECK(dg.y[4] == 1.0);
  Dataset db = load_dataset("diabetes", dir.path.string(), false);
  CHECK(db.X.cols() == 3);
  CHECK(db.X(2, 2) == 30.5);
  CHECK(db.y[1] == 75.0);

  // The problems take them by name from the data directory.
  Registry registry = builtin_registry();
  auto make = [&](const std::string& key, std::map<std::string, std::string> raw_params) {
    std::vector<std::string> errors;
    ParamSet p = resolve_params(registry.info(ComponentKind::problem, key).params, raw_params, "problem", errors);
    REQUIRE(errors.empty());
    ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), dir.path.string()};
    return registry.make_problem(key, p, ctx);
  };
  auto ls = make("least_squares", {{"dataset", "diabetes"}, {"intercept", "true"}});
  CHECK(ls->dim() == 4);
  // 3 examples, 4 unknowns: the minimum-norm solution interpolates, f* = 0, x* not unique.
  CHECK(*ls->facts().f_star < 1e-20);
  CHECK(!ls->facts().x_star_known);
  auto lg = make("logistic", {{"dataset", "breast_cancer"}, {"lambda", "0.1"}});
  CHECK(lg->dim() == 2);
  auto sm = make("softmax", {{"dataset", "digits"}, {"lambda", "0.1"}});
  CHECK(sm->dim() == 64 * 3);
  Vec g(sm->dim());
  sm->gradient(sm->x_star(), g);
  CHECK(g.norm() < 1e-12);
  CHECK_THAT(error_of([&] { make("logistic", {{"dataset", "digits"}}); }), Catch::Contains("exactly two classes"));
}
