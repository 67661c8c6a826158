#include "problems/solution_cache.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace ratelab {
namespace {

// The layout of an entry; a change here or in how problems solve (problem key texts carry their solver)
// makes old entries unreadable, which only costs a solve.
constexpr char kMagic[8] = {'R', 'L', 'F', 'S', 'T', 'A', 'R', '1'};

std::uint64_t fnv1a(const void* data, std::size_t size, std::uint64_t h = 0xcbf29ce484222325ULL) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

std::string hex(std::uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The full key text: the data files' names and contents, the problem, the build. Empty when a data file
// cannot be read (then nothing is cached).
std::string key_text(const SolutionCacheKey& key) {
  std::string text = "problem " + key.problem + "\nbuild " + key.build + "\n";
  for (const auto& file : key.data_files) {
    // Hashed as it is read, 64 KiB at a time: the same hash as of the whole contents at once, without a copy
    // of a data file that may be many megabytes (the stream into a string took 20 ms of a 6 MB file's run).
    std::ifstream in(file, std::ios::binary);
    if (!in) return "";
    std::uint64_t hash = fnv1a(nullptr, 0), size = 0;
    std::vector<char> chunk(1 << 16);
    while (in) {
      in.read(chunk.data(), std::streamsize(chunk.size()));
      const auto got = std::size_t(in.gcount());
      hash = fnv1a(chunk.data(), got, hash);
      size += got;
    }
    if (in.bad()) return "";
    text += "data " + std::filesystem::path(file).filename().string() + " fnv1a64 " + hex(hash) + " bytes " +
            std::to_string(size) + "\n";
  }
  return text;
}

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}
template <class T>
bool get(const std::string& in, std::size_t& at, T& value) {
  if (in.size() - at < sizeof value) return false;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return true;
}

std::string path_for(const SolutionCacheKey& key) {
  const std::filesystem::path first(key.data_files.front());
  // The name tells a person what the entry is; the hash tells the entries of one data file apart.
  const std::string problem_name = key.problem.substr(0, key.problem.find(' '));
  return (first.parent_path() / ".ratelab-cache" /
          (first.filename().string() + "." + problem_name + "." + hex(fnv1a(key.problem.data(), key.problem.size(),
                                                                            fnv1a(key.build.data(), key.build.size()))) +
           ".xstar"))
      .string();
}

}  // namespace

SolutionCacheCounters& solution_cache_counters() {
  static SolutionCacheCounters counters;
  return counters;
}

std::string solution_cache_path(const SolutionCacheKey& key) { return key.data_files.empty() ? "" : path_for(key); }

std::optional<CachedSolution> read_cached_solution(const SolutionCacheKey& key) {
  if (key.build.empty() || key.data_files.empty()) return std::nullopt;
  std::ifstream in(path_for(key), std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string file = bytes.str();
  // magic, key length, key, dim, x*, gradient norm, iterations, FNV-1a of everything before it.
  std::size_t at = 0;
  if (file.size() < sizeof kMagic + sizeof(std::uint64_t) || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
    return std::nullopt;
  const std::uint64_t body = file.size() - sizeof(std::uint64_t);
  std::uint64_t checksum = 0;
  std::memcpy(&checksum, file.data() + body, sizeof checksum);
  if (checksum != fnv1a(file.data(), body)) return std::nullopt;  // damaged or cut short
  at = sizeof kMagic;
  std::uint64_t key_size = 0, dim = 0;
  if (!get(file, at, key_size) || key_size > body - at) return std::nullopt;
  const std::string stored_key = file.substr(at, key_size);
  at += key_size;
  const std::string expected_key = key_text(key);
  if (expected_key.empty() || stored_key != expected_key) return std::nullopt;  // stale: data or key changed
  CachedSolution solution;
  if (!get(file, at, dim) || dim > (body - at) / sizeof(double)) return std::nullopt;
  solution.x.resize(Eigen::Index(dim));
  for (Eigen::Index i = 0; i < solution.x.size(); ++i)
    if (!get(file, at, solution.x[i])) return std::nullopt;
  std::int64_t iterations = 0;
  if (!get(file, at, solution.gradient_norm) || !get(file, at, iterations) || at != body) return std::nullopt;
  solution.iterations = long(iterations);
  ++solution_cache_counters().hits;
  return solution;
}

void write_cached_solution(const SolutionCacheKey& key, const CachedSolution& solution) {
  if (key.build.empty() || key.data_files.empty()) return;
  try {
    const std::string text = key_text(key);
    if (text.empty()) return;
    std::string out(kMagic, sizeof kMagic);
    put(out, std::uint64_t(text.size()));
    out += text;
    put(out, std::uint64_t(solution.x.size()));
    for (Eigen::Index i = 0; i < solution.x.size(); ++i) put(out, solution.x[i]);
    put(out, solution.gradient_norm);
    put(out, std::int64_t(solution.iterations));
    put(out, fnv1a(out.data(), out.size()));
    const std::filesystem::path path = path_for(key);
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return;  // a read-only data directory: no cache
    // A temporary name of this process, renamed over the entry: readers see the old entry or the new one.
    const std::filesystem::path tmp = path.string() + ".tmp" + std::to_string(::getpid());
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      if (!f) return;
      f.write(out.data(), std::streamsize(out.size()));
      f.close();
      if (!f) {
        std::filesystem::remove(tmp, ec);
        return;
      }
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::filesystem::remove(tmp, ec);
      return;
    }
    ++solution_cache_counters().writes;
  } catch (const std::exception&) {  // a cache that cannot be written is no cache, never an error
  }
}

}  // namespace ratelab
