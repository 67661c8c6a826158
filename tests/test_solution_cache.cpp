// The on-disk cache of data-set problems' solutions (problems/solution_cache.hpp): the second problem made
// from the same data, parameters and build reads x* instead of solving, with the same bits; a damaged or
// stale entry is recomputed; a directory where nothing can be written gives no cache and no error.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/registry.hpp"
#include "problems/data.hpp"
#include "problems/solution_cache.hpp"

using namespace ratelab;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("ratelab_solution_cache_" + std::to_string(::getpid()));
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A small three-class data set: Newton solves it in milliseconds.
void write_data(const fs::path& file, double shift) {
  Dataset data;
  data.X.resize(60, 4);
  data.y.resize(60);
  RandomStream s(5, 0, StreamPurpose::instance);
  for (Eigen::Index i = 0; i < 60; ++i) {
    data.y[i] = double(i % 3);
    for (Eigen::Index j = 0; j < 4; ++j) data.X(i, j) = s.normal() + (j == i % 3 ? 1.5 : 0.0) + shift;
  }
  write_csv(data, file.string());
}

std::shared_ptr<const Problem> make_softmax(const fs::path& file, const std::string& build) {
  static const Registry registry = builtin_registry();
  std::vector<std::string> errors;
  ParamSet p = resolve_params(registry.info(ComponentKind::problem, "softmax").params,
                              {{"dataset", file.string()}, {"lambda", "0.01"}}, "problem", errors);
  REQUIRE(errors.empty());
  ProblemContext ctx{RandomStream(1, 0, StreamPurpose::instance), "", serial_for, build};
  return registry.make_problem("softmax", p, ctx);
}

}  // namespace

TEST_CASE("a data-set problem's x* is cached beside the data and read back with the same bits", "[problems][cache]") {
  TempDir dir;
  const fs::path data = dir.path / "three.csv";
  write_data(data, 0.0);
  auto& counters = solution_cache_counters();
  const long hits0 = counters.hits, writes0 = counters.writes;

  const auto solved = make_softmax(data, "build A");  // solves and writes the entry
  CHECK(counters.writes == writes0 + 1);
  CHECK(counters.hits == hits0);
  const std::string entry = solution_cache_path({{data.string()}, "softmax", "build A"});
  REQUIRE(fs::path(entry).parent_path() == dir.path / ".ratelab-cache");
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path / ".ratelab-cache")) entries += e.is_regular_file();
  CHECK(entries == 1);  // no temporary left behind

  const auto cached = make_softmax(data, "build A");  // reads it
  CHECK(counters.hits == hits0 + 1);
  CHECK(counters.writes == writes0 + 1);
  CHECK(*cached->facts().f_star == *solved->facts().f_star);  // the same bits
  CHECK(cached->x_star() == solved->x_star());
  CHECK(cached->facts().f_star_method == solved->facts().f_star_method);
  CHECK(*cached->facts().sigma2 == *solved->facts().sigma2);

  SECTION("another build solves again (its rounding may differ)") {
    make_softmax(data, "build B");
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 2);
  }
  SECTION("no build (a problem made outside an experiment): no cache") {
    make_softmax(data, "");
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 1);
  }
  SECTION("a damaged entry is recomputed and rewritten") {
    for (const auto& e : fs::directory_iterator(dir.path / ".ratelab-cache")) {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(std::streamoff(fs::file_size(e.path()) / 2));
      f.put('\x5a');  // flips the checksum
    }
    const auto again = make_softmax(data, "build A");
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 2);
    CHECK(again->x_star() == solved->x_star());
    make_softmax(data, "build A");
    CHECK(counters.hits == hits0 + 2);  // the rewritten entry is good
  }
  SECTION("an entry cut short is recomputed") {
    for (const auto& e : fs::directory_iterator(dir.path / ".ratelab-cache")) fs::resize_file(e.path(), 20);
    make_softmax(data, "build A");
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 2);
  }
  SECTION("changed data make the entry stale: solved again, with the new data's solution") {
    write_data(data, 0.25);
    const auto changed = make_softmax(data, "build A");
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 2);
    CHECK(changed->x_star() != solved->x_star());
  }
  SECTION("where nothing can be written, nothing is cached and nothing fails") {
    // The cache directory's name taken by a file: creating it fails as in a read-only data directory (a
    // permission test would not fail for root, who runs CI).
    fs::remove_all(dir.path / ".ratelab-cache");
    std::ofstream(dir.path / ".ratelab-cache") << "not a directory";
    const auto uncached = make_softmax(data, "build A");
    CHECK(uncached->x_star() == solved->x_star());
    CHECK(counters.hits == hits0 + 1);
    CHECK(counters.writes == writes0 + 1);
  }
}
