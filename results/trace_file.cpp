// HDF5 trace files (schema version 2, see results/SCHEMA.md), through the HDF5 C API and the high-level
// dimension-scale library (H5DS). Schema 2 is a netCDF-4 file (CF conventions where they apply): every
// variable sits in the root group beside the dimension scales it uses, so xarray (h5netcdf and netcdf4
// engines), ncdump and the other netCDF tools read the whole study without ratelab. Files of schema 1
// (metrics under /traces, parameters as attributes of /configurations/cNNNN) are still read.
//
// Memory stays bounded however many runs a file holds: write_run() writes the V x K block of each metric
// straight from RunResult::traces (metric-major, so each metric's block is already a [V, K] row-major
// hyperslab of the [C, V, R, K] dataset) into a chunk of exactly that shape, so no chunk is ever read
// back or merged; the only per-call state is the selection on dataspaces created once.
#include "results/trace_file.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <system_error>
#include <tuple>
#include <utility>
#include <variant>

#include "results/fault_points.hpp"

namespace ratelab::results {

namespace {

// largest_run_read(): one compare-and-swap per read of run data (a window), not per run.
std::atomic<long> g_largest_run_read{0};
void note_runs_read(long runs) {
  for (long seen = g_largest_run_read.load(); runs > seen && !g_largest_run_read.compare_exchange_weak(seen, runs);) {
  }
}

constexpr const char* kFormat = "ratelab-trace";
constexpr const char* kConventions = "CF-1.8";
// CF flags of the status variable: code i means the i-th word (RunStatus's order).
constexpr const char* kStatusMeanings = "ok diverged error interrupted missing nonfinite";
constexpr const char* kStatusCodesSchema1 = "0 ok, 1 diverged, 2 error, 3 interrupted, 4 missing, 5 nonfinite";
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kStopStepFill = -1;  // "never written"; a run that started has stop_step >= 0
constexpr const char* kScaleNames[4] = {"configuration", "view", "replicate", "step"};

// ---- HDF5 plumbing ------------------------------------------------------------------------------

// HDF5 closes every file still open when the process exits (an atexit handler). A file whose flush
// failed (the disk is full) stays open after its H5Fclose fails, and HDF5 1.10's exit handler then
// crashes in H5F__close_cb trying to flush it again (or prints "infinite loop closing library" after a
// damaged file). Every file here is closed explicitly (Id below), and a file whose close failed is a
// partial file being discarded, so the exit handler has nothing to do: it is not installed. Must run
// before the library initializes itself, i.e. before any other HDF5 call: a static initializer.
[[maybe_unused]] const herr_t kNoHdf5ExitHandler = H5dont_atexit();

// Owns one HDF5 identifier and closes it with the matching H5?close.
class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id() = default;
  Id(hid_t id, Closer close) : id_(id), close_(close) {}
  Id(Id&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), close_(other.close_) {}
  Id& operator=(Id&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      close_ = other.close_;
    }
    return *this;
  }
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  herr_t reset() {
    herr_t status = 0;
    if (id_ >= 0 && close_) status = close_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// HDF5 prints its error stack to stderr by default; we turn its errors into exceptions instead. The
// previous handler is restored on exit, so other users of the library in the process are unaffected.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost description on HDF5's error stack: the most specific reason ("errno = 13, ...").
std::string hdf5_error_text() {
  std::string innermost;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* err, void* out) -> herr_t {
        if (err->desc && *err->desc) *static_cast<std::string*>(out) = err->desc;
        return 0;
      },
      &innermost);
  H5Eclear2(H5E_DEFAULT);
  return innermost.empty() ? "unknown HDF5 error" : innermost;
}

// A read that failed because a chunk's Fletcher-32 checksum does not match its data (run_chunk_properties).
struct ChunkChecksumMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Whether HDF5's error stack holds a failed filter: on our files, only the Fletcher-32 check of a read can fail
// ("data error detected by Fletcher32 checksum", under "filter returned failure during read").
bool filter_failed() {
  bool failed = false;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* err, void* out) -> herr_t {
        if (err->maj_num == H5E_PLINE || (err->desc && std::strstr(err->desc, "Fletcher32")))
          *static_cast<bool*>(out) = true;
        return 0;
      },
      &failed);
  return failed;
}

[[noreturn]] void fail(const std::string& what) {
  const bool checksum = filter_failed();  // before hdf5_error_text() clears the stack
  const std::string text = what + ": " + hdf5_error_text();
  if (checksum) throw ChunkChecksumMismatch(text);
  throw std::runtime_error(text);
}
void check(herr_t status, const std::string& what) {
  if (status < 0) fail(what);
}
Id checked(hid_t id, Id::Closer close, const std::string& what) {
  if (id < 0) fail(what);
  return Id(id, close);
}

Id utf8_string_type() {
  Id type = checked(H5Tcopy(H5T_C_S1), H5Tclose, "string type");
  check(H5Tset_size(type.get(), H5T_VARIABLE), "string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), "string type");
  return type;
}

// Schema 1 wrote bools as the enum h5py writes for numpy bools.
bool is_bool_enum(hid_t type) {
  if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2) return false;
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(type, i);
    const bool expected = name && std::strcmp(name, i == 0 ? "FALSE" : "TRUE") == 0;
    H5free_memory(name);
    if (!expected) return false;
  }
  return true;
}

Id scalar_space() { return checked(H5Screate(H5S_SCALAR), H5Sclose, "scalar dataspace"); }
Id simple_space(std::initializer_list<hsize_t> dims) {
  std::vector<hsize_t> d(dims);
  return checked(H5Screate_simple(int(d.size()), d.data(), nullptr), H5Sclose, "dataspace");
}

// Transfer properties of every read and write: a 64 KiB type-conversion buffer instead of HDF5's default 1 MiB.
// HDF5 allocates that buffer zeroed, and a background buffer of the same size, for every H5Dwrite or H5Dread
// that converts (strings, the configuration columns): 34 MiB of page faults and memset were two thirds of a
// 1-step run's 0.12 s. Larger transfers are converted in 64 KiB strips; every element here is far smaller.
// Created once and never closed: HDF5 releases it when the library shuts down.
hid_t transfer_properties() {
  static const hid_t dxpl = [] {
    const hid_t p = H5Pcreate(H5P_DATASET_XFER);
    if (p < 0 || H5Pset_buffer(p, 64 * 1024, nullptr, nullptr) < 0) throw std::runtime_error("HDF5 transfer properties");
    return p;
  }();
  return dxpl;
}

// Creation properties shared by every object: no modification times (so identical content gives identical
// files) and attributes kept in creation order (so parameters read back in their declaration order).
void set_common_creation_properties(hid_t plist) {
  check(H5Pset_obj_track_times(plist, false), "creation properties");
  check(H5Pset_attr_creation_order(plist, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation properties");
}

// Creation properties of a per-run dataset of doubles (traces, extra metrics): chunks of `chunk`, one per
// run, NaN where no run was written, and HDF5's Fletcher-32 checksum on every chunk, which HDF5 verifies on
// each read and fails the read on a mismatch (a flipped bit, a block overwritten on disk), so damaged data
// is reported (checksum_mismatch below) instead of being analyzed or merged. 4 bytes per chunk.
Id run_chunk_properties(std::initializer_list<hsize_t> chunk) {
  Id dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
  set_common_creation_properties(dcpl.get());
  const std::vector<hsize_t> dims(chunk);
  check(H5Pset_chunk(dcpl.get(), int(dims.size()), dims.data()), "run chunking");
  check(H5Pset_fill_value(dcpl.get(), H5T_NATIVE_DOUBLE, &kNaN), "run fill value");
  check(H5Pset_fletcher32(dcpl.get()), "run checksum");
  return dcpl;
}

Id create_group(hid_t parent, const std::string& name) {
  Id gcpl = checked(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, "group properties");
  set_common_creation_properties(gcpl.get());
  check(H5Pset_link_creation_order(gcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "group properties");
  return checked(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose,
                 "create group " + name);
}

// ---- attributes -----------------------------------------------------------------------------------

void write_attribute(hid_t object, const std::string& name, const ParamValue& value) {
  const std::string what = "write attribute " + name;
  auto create = [&](hid_t type, hid_t space) {
    return checked(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose, what);
  };
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, double>) {
          Id attr = create(H5T_IEEE_F64LE, scalar_space().get());
          check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &v), what);
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          Id attr = create(H5T_STD_I64LE, scalar_space().get());
          check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &v), what);
        } else if constexpr (std::is_same_v<T, bool>) {
          // int8 0/1, not HDF5's enum (h5py's bool), which netCDF-C readers drop; an int8 scalar attribute
          // reads back as a bool (no other attribute is int8).
          Id attr = create(H5T_STD_I8LE, scalar_space().get());
          const std::int8_t byte = v ? 1 : 0;
          check(H5Awrite(attr.get(), H5T_NATIVE_INT8, &byte), what);
        } else if constexpr (std::is_same_v<T, std::string>) {
          Id type = utf8_string_type();
          Id attr = create(type.get(), scalar_space().get());
          const char* text = v.c_str();
          check(H5Awrite(attr.get(), type.get(), &text), what);
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          Id attr = create(H5T_IEEE_F64LE, simple_space({hsize_t(v.size())}).get());
          if (!v.empty()) check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, v.data()), what);
        } else {
          static_assert(std::is_same_v<T, std::vector<std::string>>);
          Id type = utf8_string_type();
          Id attr = create(type.get(), simple_space({hsize_t(v.size())}).get());
          std::vector<const char*> texts;
          for (const auto& s : v) texts.push_back(s.c_str());
          if (!v.empty()) check(H5Awrite(attr.get(), type.get(), texts.data()), what);
        }
      },
      value);
}

// Reads `count` strings of a string-typed attribute or dataset through `read(memory_type, buffer)`.
template <class Read>
std::vector<std::string> read_strings(hid_t file_type, std::size_t count, hid_t space, Read read) {
  std::vector<std::string> out(count);
  if (count == 0) return out;
  if (H5Tis_variable_str(file_type) > 0) {
    Id memory_type = checked(H5Tcopy(file_type), H5Tclose, "string type");
    std::vector<char*> texts(count, nullptr);
    check(read(memory_type.get(), texts.data()), "read strings");
    for (std::size_t i = 0; i < count; ++i) out[i] = texts[i] ? texts[i] : "";
    H5Dvlen_reclaim(memory_type.get(), space, H5P_DEFAULT, texts.data());
  } else {
    const std::size_t size = H5Tget_size(file_type);
    std::vector<char> bytes(count * size);
    check(read(file_type, bytes.data()), "read strings");
    for (std::size_t i = 0; i < count; ++i) {
      const char* s = bytes.data() + i * size;
      out[i].assign(s, strnlen(s, size));
    }
  }
  return out;
}

ParamValue read_attribute(hid_t object, const std::string& name) {
  const std::string what = "read attribute " + name;
  Id attr = checked(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose, what);
  Id type = checked(H5Aget_type(attr.get()), H5Tclose, what);
  Id space = checked(H5Aget_space(attr.get()), H5Sclose, what);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank > 1) throw std::runtime_error(what + ": attributes of rank " + std::to_string(rank) + " are not supported");
  const std::size_t count = std::size_t(H5Sget_simple_extent_npoints(space.get()));
  const bool scalar = rank == 0;
  auto reader = [&](hid_t memory_type, void* buffer) { return H5Aread(attr.get(), memory_type, buffer); };
  switch (H5Tget_class(type.get())) {
    case H5T_STRING: {
      auto texts = read_strings(type.get(), count, space.get(), reader);
      if (scalar) return texts.at(0);
      return texts;
    }
    case H5T_ENUM:
      if (scalar && is_bool_enum(type.get())) {
        std::int8_t byte = 0;
        check(H5Aread(attr.get(), type.get(), &byte), what);
        return byte != 0;
      }
      break;
    case H5T_INTEGER:
      if (scalar && H5Tget_size(type.get()) == 1) {
        std::int8_t byte = 0;
        check(H5Aread(attr.get(), H5T_NATIVE_INT8, &byte), what);
        return byte != 0;
      }
      if (scalar) {
        std::int64_t v = 0;
        check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), what);
        return v;
      }
      [[fallthrough]];
    case H5T_FLOAT: {
      std::vector<double> values(count);
      if (count) check(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data()), what);
      if (scalar) return values.at(0);
      return values;
    }
    default: break;
  }
  throw std::runtime_error(what + ": unsupported attribute type");
}

// Names in creation order when the object tracks it (everything ratelab writes), else in name order.
std::vector<std::string> attribute_names(hid_t object) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
  };
  if (H5Aiterate2(object, H5_INDEX_CRT_ORDER, H5_ITER_INC, nullptr, collect, &names) >= 0) return names;
  H5Eclear2(H5E_DEFAULT);
  names.clear();
  check(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names), "list attributes");
  return names;
}

std::vector<std::string> link_names(hid_t group) {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->push_back(name);
    return 0;
  };
  if (H5Literate(group, H5_INDEX_CRT_ORDER, H5_ITER_INC, nullptr, collect, &names) >= 0) return names;
  H5Eclear2(H5E_DEFAULT);
  names.clear();
  check(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names), "list group");
  return names;
}

bool path_exists(hid_t file, const std::string& path) { return H5LTpath_valid(file, path.c_str(), true) > 0; }

// ---- datasets -------------------------------------------------------------------------------------

std::size_t element_count(hid_t dataset) {
  Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
  return std::size_t(H5Sget_simple_extent_npoints(space.get()));
}

std::vector<std::string> read_string_dataset(hid_t dataset) {
  Id type = checked(H5Dget_type(dataset), H5Tclose, "dataset type");
  if (H5Tget_class(type.get()) != H5T_STRING) throw std::runtime_error("expected a string dataset");
  Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
  return read_strings(type.get(), element_count(dataset), space.get(), [&](hid_t memory_type, void* buffer) {
    return H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, transfer_properties(), buffer);
  });
}

template <class T>
std::vector<T> read_numeric_dataset(hid_t dataset, hid_t memory_type) {
  std::vector<T> values(element_count(dataset));
  if (!values.empty()) check(H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, transfer_properties(), values.data()), "read dataset");
  return values;
}

hsize_t rows_of(hid_t dataset) {
  Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
  hsize_t dims[H5S_MAX_RANK];
  return H5Sget_simple_extent_ndims(space.get()) > 0 && H5Sget_simple_extent_dims(space.get(), dims, nullptr) > 0 ? dims[0] : 0;
}

// Rows [begin, end) along the first dimension of a dataset, as a file space selection and a memory space.
struct RowWindow {
  Id file_space, memory_space;
  std::size_t count = 0;
};
RowWindow select_rows(hid_t dataset, std::size_t begin, std::size_t end) {
  RowWindow w;
  w.file_space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
  std::vector<hsize_t> dims(std::size_t(std::max(0, H5Sget_simple_extent_ndims(w.file_space.get()))));
  H5Sget_simple_extent_dims(w.file_space.get(), dims.data(), nullptr);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = begin;
  count[0] = end - begin;
  check(H5Sselect_hyperslab(w.file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr),
        "select rows");
  w.count = 1;
  for (hsize_t c : count) w.count *= std::size_t(c);
  // The memory space has the selection's shape (not a flat one): HDF5 then maps the selection onto each
  // chunk on its fast path, which with one small chunk per run is most of the cost of reading a window.
  w.memory_space = checked(H5Screate_simple(int(count.size()), count.data(), nullptr), H5Sclose, "memory space");
  return w;
}

// How many rows (configurations) of a chunked dataset one H5Dread reads at most: HDF5 builds bookkeeping for
// each chunk a read touches (its selections, several KB) and holds it until the read ends, so a read of a
// whole per-run dataset of a 100,000-run file (a chunk per run) held about 400 MB besides its 56-168 MB of
// data. Reads of at most kChunksPerRead chunks, or one row, keep that to a few MB.
constexpr hsize_t kChunksPerRead = 1024;
std::size_t rows_per_read(hid_t dataset) {
  Id dcpl = checked(H5Dget_create_plist(dataset), H5Pclose, "dataset creation properties");
  if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) return SIZE_MAX;
  Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(std::size_t(std::max(rank, 0))), chunk(dims.size());
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (rank <= 0 || H5Pget_chunk(dcpl.get(), rank, chunk.data()) != rank) return SIZE_MAX;
  hsize_t chunks_per_row = 1;
  for (std::size_t i = 1; i < dims.size(); ++i) chunks_per_row *= (dims[i] + chunk[i] - 1) / std::max<hsize_t>(chunk[i], 1);
  return std::size_t(std::max<hsize_t>(1, kChunksPerRead / std::max<hsize_t>(chunks_per_row, 1) * std::max<hsize_t>(chunk[0], 1)));
}

template <class T>
std::vector<T> read_numeric_rows(hid_t dataset, hid_t memory_type, std::size_t begin, std::size_t end) {
  const std::size_t step = rows_per_read(dataset);
  // The whole dataset in one read without a selection where that touches few chunks: HDF5 maps a selection
  // onto each chunk it touches, which costs more than the data when the chunks are small (one run each).
  if (begin == 0 && end == std::size_t(rows_of(dataset)) && end <= step) return read_numeric_dataset<T>(dataset, memory_type);
  std::vector<T> values;
  for (std::size_t first = begin, last; first < end; first = last) {
    last = first + std::min(step, end - first);
    RowWindow w = select_rows(dataset, first, last);
    const std::size_t at = values.size();
    if (first == begin) values.reserve(w.count / (last - first) * (end - begin));
    values.resize(at + w.count);
    if (w.count)
      check(H5Dread(dataset, memory_type, w.memory_space.get(), w.file_space.get(), transfer_properties(), values.data() + at),
            "read dataset");
  }
  return values;
}

std::vector<std::string> read_string_rows(hid_t dataset, std::size_t begin, std::size_t end) {
  if (begin == 0 && end == std::size_t(rows_of(dataset))) return read_string_dataset(dataset);
  Id type = checked(H5Dget_type(dataset), H5Tclose, "dataset type");
  if (H5Tget_class(type.get()) != H5T_STRING) throw std::runtime_error("expected a string dataset");
  RowWindow w = select_rows(dataset, begin, end);
  return read_strings(type.get(), w.count, w.memory_space.get(), [&](hid_t memory_type, void* buffer) {
    return H5Dread(dataset, memory_type, w.memory_space.get(), w.file_space.get(), transfer_properties(), buffer);
  });
}

// Labels a dataset's dimensions and attaches the matching dimension scales.
void attach_scales(hid_t dataset, const std::vector<std::pair<hid_t, const char*>>& scales) {
  for (unsigned i = 0; i < scales.size(); ++i) {
    check(H5DSattach_scale(dataset, scales[i].first, i), std::string("attach dimension scale ") + scales[i].second);
    check(H5DSset_label(dataset, i, scales[i].second), std::string("label dimension ") + scales[i].second);
  }
}

// Runs the file-level checks shared by every reader and opens the file read-only.
Id open_for_reading(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw ConfigError("trace file '" + path + "' does not exist");
  if (std::filesystem::is_directory(status))
    throw ConfigError("trace file '" + path + "' is a directory, not an HDF5 file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  if (is_hdf5 <= 0)
    throw ConfigError("'" + path + "' is not an HDF5 file (no HDF5 signature); expected a trace file written by ratelab");
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  // H5Fis_hdf5 read the signature, so the file is there and readable: what fails is its content.
  if (file < 0)
    throw ConfigError("trace file '" + path + "' is damaged: it has an HDF5 signature but HDF5 cannot open it (" +
                      hdf5_error_text() + "); restore it from a copy, or run its experiment again");
  return Id(file, H5Fclose);
}

std::string as_text(const ParamValue& value) {
  return std::holds_alternative<std::string>(value) ? std::get<std::string>(value) : format_value(value);
}

std::string escape_for_message(std::string s) {
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// ---- schema 2 names ---------------------------------------------------------------------------------

// Variables of run statistics and of problem-specific metrics are named with a prefix, so that no name a
// component chooses can collide with a metric, a run field or a parameter.
const std::string kStatPrefix = "stats.", kExtraPrefix = "extra.", kInstancePrefix = "instance.";
const std::string kStreamSaltKey = "stream_salt";
// The fixed variables of the root group; parameters may not take these names.
const std::set<std::string> kFixedVariables = {
    "experiment", "configuration", "view",   "replicate",    "step",         "label",   "f_star",
    "f_star_source", "f_star_method", "run_fingerprint", "status", "stop_step", "wall_seconds", "eval_seconds", "message",
    "gradient_evaluations", "elapsed_seconds", "target", "target_step", "target_gradient_evaluations", "best_so_far",
    "component", "dimension", "iterate"};

std::optional<std::uint64_t> parse_uint64(const std::string& text) {
  if (text.empty() || text.size() > 20 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') return std::nullopt;
  return std::uint64_t(v);
}

// One key of the configurations' parameters (or instance values): its variable name and each
// configuration's value (nullptr where the configuration lacks the key).
struct ConfigurationColumn {
  std::string name;
  std::vector<const ParamValue*> values;
};
// Every key once, in an order that keeps each configuration's own order (its parameters read back in
// declaration order: sgd's and heavy_ball's optimizer keys interleave where each has them): a topological
// order of "a comes right before b in some configuration", the first-seen key first among those free to go.
std::vector<ConfigurationColumn> configuration_columns(const std::vector<ConfigurationRecord>& records, bool instance) {
  std::vector<std::string> names;
  std::map<std::string, std::size_t> index;
  std::vector<std::set<std::size_t>> successors;
  std::vector<std::size_t> predecessors;
  auto entries = [&](std::size_t c) -> const Attributes& { return instance ? records[c].instance : records[c].parameters; };
  for (std::size_t c = 0; c < records.size(); ++c) {
    std::size_t previous = SIZE_MAX;
    for (const auto& [key, value] : entries(c)) {
      auto [it, inserted] = index.emplace(instance ? kInstancePrefix + key : key, names.size());
      if (inserted) {
        names.push_back(it->first);
        successors.emplace_back();
        predecessors.push_back(0);
      }
      if (previous != SIZE_MAX && successors[previous].insert(it->second).second) ++predecessors[it->second];
      previous = it->second;
    }
  }
  std::vector<std::size_t> order;
  std::vector<bool> placed(names.size(), false);
  std::set<std::size_t> free;
  for (std::size_t i = 0; i < names.size(); ++i)
    if (predecessors[i] == 0) free.insert(i);
  while (order.size() < names.size()) {
    std::size_t next = SIZE_MAX;
    if (!free.empty()) {
      next = *free.begin();
      free.erase(free.begin());
    } else {  // configurations disagree on an order (a cycle): the first-seen key left goes next
      for (std::size_t i = 0; i < names.size() && next == SIZE_MAX; ++i)
        if (!placed[i]) next = i;
    }
    placed[next] = true;
    order.push_back(next);
    for (std::size_t s : successors[next])
      if (!placed[s] && --predecessors[s] == 0) free.insert(s);
  }
  std::vector<ConfigurationColumn> columns(names.size());
  std::vector<std::size_t> position(names.size());
  for (std::size_t p = 0; p < order.size(); ++p) {
    position[order[p]] = p;
    columns[p] = {names[order[p]], std::vector<const ParamValue*>(records.size(), nullptr)};
  }
  for (std::size_t c = 0; c < records.size(); ++c)
    for (const auto& [key, value] : entries(c)) columns[position[index.at(instance ? kInstancePrefix + key : key)]].values[c] = &value;
  return columns;
}

// ---- layout validation ----------------------------------------------------------------------------

void check_unique_keys(const Attributes& attributes, const std::string& where, const std::set<std::string>& reserved,
                       std::vector<std::string>& problems) {
  std::set<std::string> seen;
  for (const auto& [key, value] : attributes) {
    if (key.empty()) problems.push_back(where + " has an empty attribute name");
    if (reserved.count(key)) problems.push_back(where + " uses the reserved attribute name '" + key + "'");
    if (!seen.insert(key).second) problems.push_back(where + " has attribute '" + key + "' twice");
  }
}

void validate(const TraceLayout& layout) {
  std::vector<std::string> problems;
  if (layout.configurations.empty()) problems.push_back("trace layout: no configurations to record");
  if (layout.replicates < 1) problems.push_back("trace layout: replicates = " + std::to_string(layout.replicates) + " violates replicates >= 1");
  if (layout.checkpoints.empty()) problems.push_back("trace layout: no checkpoints to record");
  for (std::size_t k = 1; k < layout.checkpoints.size(); ++k)
    if (layout.checkpoints[k] <= layout.checkpoints[k - 1]) {
      problems.push_back("trace layout: checkpoints must increase strictly (step " + std::to_string(layout.checkpoints[k]) +
                         " follows " + std::to_string(layout.checkpoints[k - 1]) + ")");
      break;
    }
  if (layout.views.empty()) problems.push_back("trace layout: no views to record");
  if (layout.metrics.empty()) problems.push_back("trace layout: no metrics to record");
  std::set<std::string> seen;
  for (const auto& view : layout.views) {
    if (view.empty() || view.find('/') != std::string::npos) problems.push_back("trace layout: view name '" + view + "' is empty or contains '/'");
    if (!seen.insert(view).second) problems.push_back("trace layout: view '" + view + "' is listed twice");
  }
  seen.clear();
  for (const auto& metric : layout.metrics) {
    try {
      metric_from_name(metric);
    } catch (const ConfigError& e) {
      problems.push_back(std::string("trace layout: ") + e.what());
    }
    if (!seen.insert(metric).second) problems.push_back("trace layout: metric '" + metric + "' is listed twice");
  }
  std::map<std::string, std::size_t> ids;
  for (std::size_t c = 0; c < layout.configurations.size(); ++c) {
    const auto& record = layout.configurations[c];
    const std::string where = "configuration " + std::to_string(c) + " ('" + record.label + "')";
    if (auto [it, inserted] = ids.emplace(record.id, c); !inserted)
      problems.push_back(where + " has the same id '" + record.id + "' as configuration " + std::to_string(it->second) +
                         "; configuration ids must be unique");
    check_unique_keys(record.parameters, where + " parameters", {"id", "label"}, problems);
    check_unique_keys(record.instance, where + " instance", {}, problems);
    for (const auto& [key, value] : record.parameters) {
      for (const std::string& prefix : {kInstancePrefix, kStatPrefix, kExtraPrefix})
        if (key.rfind(prefix, 0) == 0)
          problems.push_back(where + " parameter '" + key + "' starts with the reserved prefix '" + prefix + "'");
      if (kFixedVariables.count(key) || std::find(layout.metrics.begin(), layout.metrics.end(), key) != layout.metrics.end())
        problems.push_back(where + " parameter '" + key + "' has the name of a variable of the file");
      if (key.find('/') != std::string::npos) problems.push_back(where + " parameter '" + key + "' contains '/'");
    }
    for (const auto& [key, value] : record.instance)
      if (key.empty() || key.find('/') != std::string::npos)
        problems.push_back(where + " instance value '" + key + "' is empty or contains '/'");
  }
  for (const auto& name : layout.extra_metrics)
    if (name.empty() || name.find('/') != std::string::npos)
      problems.push_back("trace layout: extra metric name '" + name + "' is empty or contains '/'");
  if (!layout.targets.empty()) {
    try {
      metric_from_name(layout.target_metric);
    } catch (const ConfigError& e) {
      problems.push_back(std::string("trace layout: target metric: ") + e.what());
    }
    for (double target : layout.targets)
      if (!std::isfinite(target)) problems.push_back("trace layout: target " + format_value(target) + " is not finite");
  } else if (!layout.target_metric.empty()) {
    problems.push_back("trace layout: target metric '" + layout.target_metric + "' without targets");
  }
  if (layout.iterate_dimension > 0)
    for (const auto& record : layout.configurations)
      if (record.dimension < 1 || record.dimension > layout.iterate_dimension)
        problems.push_back("trace layout: configuration '" + record.label + "' has dimension " + std::to_string(record.dimension) +
                           ", outside 1 .. " + std::to_string(layout.iterate_dimension) + " (the iterate dimension)");
  check_unique_keys(layout.root, "root attributes", {"schema_version", "format", "Conventions"}, problems);
  for (const auto& [key, value] : layout.root)
    if (key == "experiment_name" && !(std::holds_alternative<std::string>(value) && std::get<std::string>(value) == layout.experiment_name))
      problems.push_back("root attribute experiment_name = '" + format_value(value) + "' differs from the layout's experiment name '" +
                         layout.experiment_name + "'");
  if (!problems.empty()) throw ConfigError(problems);
}

std::string configuration_group_name(std::size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "c%04zu", index);
  return name;
}

}  // namespace

void check_iterate_size(const TraceLayout& layout) {
  if (layout.iterate_dimension <= 0) return;
  const std::uint64_t factors[] = {layout.configurations.size(), layout.views.size(), std::uint64_t(layout.replicates),
                                   layout.checkpoints.size(), std::uint64_t(layout.iterate_dimension)};
  long double bytes = 8;  // long double: the product of five factors may pass 2^64 before it is refused
  for (std::uint64_t f : factors) bytes *= (long double)f;
  if (bytes <= (long double)kMaxIterateBytes) return;
  char size[64];
  std::snprintf(size, sizeof size, "%.3g GB", double(bytes) / 1e9);
  throw ConfigError("experiment.record_iterates: the iterates would take " + std::to_string(factors[0]) + " configurations x " +
                    std::to_string(factors[1]) + " views x " + std::to_string(factors[2]) + " replicates x " +
                    std::to_string(factors[3]) + " checkpoints x d = " + std::to_string(factors[4]) + " x 8 bytes = " + size +
                    ", above the bound of " + std::to_string(kMaxIterateBytes >> 20) +
                    " MiB; record fewer (experiment.checkpoints, experiment.views, experiment.replicates, or a sweep "
                    "of fewer configurations) or set experiment.record_iterates = false");
}

const char* metric_units(Metric metric) {
  switch (metric) {
    case Metric::value:
    case Metric::subopt: return "objective";
    case Metric::dist2: return "parameter^2";
    case Metric::gradnorm2: return "(objective/parameter)^2";
  }
  return "";
}

// ---- writer ---------------------------------------------------------------------------------------

namespace {
const char* file_type_name(std::filesystem::file_type type) {
  using std::filesystem::file_type;
  switch (type) {
    case file_type::directory: return "a directory";
    case file_type::symlink: return "a symbolic link";
    case file_type::block: return "a block device";
    case file_type::character: return "a character device";
    case file_type::fifo: return "a FIFO";
    case file_type::socket: return "a socket";
    default: return "not a regular file";
  }
}
}  // namespace

struct TraceWriter::Impl {
  std::string path, partial_path;
  WriteMode mode = WriteMode::create_new;
  bool committed = false;
  hsize_t configurations = 0, views = 0, replicates = 0, checkpoints = 0;
  std::string coordinates;  // the CF `coordinates` attribute of every variable along configuration

  // Declared first so it is closed last.
  Id file;
  Id string_type;
  Id configuration_scale, replicate_scale;  // kept open to attach scales to lazily created stats
  Id trace_space, trace_block_space;        // [C, V, R, K] with the selection of one run; [V * K] in memory
  Id run_space, one_value_space;            // [C, R] with the selection of one run; one element in memory
  std::vector<Id> traces;                   // one per metric
  std::vector<std::string> extra_names;
  std::vector<Id> extra;                    // extra.<name>: [C, R, K]
  Id extra_space, extra_block_space;        // with the selection of one run; [K] in memory
  Id gradient_evaluations, elapsed_seconds;  // [C, R, K], laid out as the extra metrics
  hsize_t targets = 0;                       // T; 0: no target data
  Id target_steps, target_gradient_evaluations, best_so_far;  // [C, R, T], [C, R, T], [C, R, K]
  Id target_space, target_block_space;       // [C, R, T] with the selection of one run; [T] in memory
  hsize_t iterate_dimension = 0;             // D; 0: no iterates recorded
  std::vector<hsize_t> dimensions;           // per configuration: its d
  Id iterate, iterate_space, iterate_block_space;  // [C, V, R, K, D] with the selection of one run; [V * K * D]
  std::vector<double> iterate_block;         // one run's iterates padded to D with NaN
  Id status, stop_step, wall_seconds, eval_seconds, message;
  std::vector<std::pair<std::string, Id>> stats;  // a handful per run: a linear search beats a map here
  long runs_written = 0;  // for the crash tests' fault point in the middle of a run write (fault_points.hpp)

  ~Impl() {
    if (committed) return;
    close_all();
    std::error_code ignored;
    std::filesystem::remove(partial_path, ignored);
  }

  herr_t close_all() {
    stats.clear();
    for (Id* id : {&message, &eval_seconds, &wall_seconds, &stop_step, &status, &one_value_space, &run_space,
                   &trace_block_space, &trace_space, &replicate_scale, &configuration_scale, &string_type})
      id->reset();
    traces.clear();
    extra.clear();
    iterate.reset();
    iterate_block_space.reset();
    iterate_space.reset();
    elapsed_seconds.reset();
    gradient_evaluations.reset();
    best_so_far.reset();
    target_gradient_evaluations.reset();
    target_steps.reset();
    target_block_space.reset();
    target_space.reset();
    extra_block_space.reset();
    extra_space.reset();
    return file.reset();
  }

  Id create_run_dataset(const std::string& name, hid_t file_type, const void* fill, hid_t fill_type) {
    Id dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
    set_common_creation_properties(dcpl.get());
    if (fill) check(H5Pset_fill_value(dcpl.get(), fill_type, fill), "fill value of " + name);
    Id dataset = checked(H5Dcreate2(file.get(), name.c_str(), file_type, run_space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         H5Dclose, "create dataset " + name);
    attach_scales(dataset.get(), {{configuration_scale.get(), "configuration"}, {replicate_scale.get(), "replicate"}});
    return dataset;
  }

  hid_t stat_dataset(const std::string& name) {
    for (const auto& [existing, dataset] : stats)
      if (existing == name) return dataset.get();
    if (name.empty() || name.find('/') != std::string::npos || name == "." )
      throw std::invalid_argument("run stat name '" + name + "' cannot be an HDF5 dataset name (empty or contains '/')");
    Id dataset = create_run_dataset(kStatPrefix + name, H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE);
    write_attribute(dataset.get(), "long_name", "run statistic " + name + " reported by a component");
    write_attribute(dataset.get(), "coordinates", coordinates);
    stats.emplace_back(name, std::move(dataset));
    return stats.back().second.get();
  }

  void create_layout(const TraceLayout& layout);
  void write_configuration_column(const ConfigurationColumn& column, hid_t dcpl);

  void write_run_value(hid_t dataset, hid_t memory_type, const void* value, const char* what) {
    check(H5Dwrite(dataset, memory_type, one_value_space.get(), run_space.get(), transfer_properties(), value),
          std::string("write ") + what + " to " + partial_path);
  }
};

// One variable along `configuration` for a parameter (or instance value): numbers as numbers, booleans as
// int8 with CF flags, text as strings. A configuration without the key holds the variable's
// `missing_value` (written only when some configuration lacks it, since xarray turns a variable with a
// missing_value into floats); parameters whose configurations disagree on the type are written as text.
void TraceWriter::Impl::write_configuration_column(const ConfigurationColumn& column, hid_t dcpl) {
  const hid_t f = file.get();
  const std::size_t C = column.values.size();
  std::optional<std::size_t> kind;
  bool mixed = false, absent = false;
  for (const ParamValue* v : column.values) {
    if (!v) {
      absent = true;
      continue;
    }
    if (kind && *kind != v->index()) mixed = true;
    kind = v->index();
  }
  const std::string what = "write variable " + column.name;
  auto create = [&](hid_t file_type) {
    Id dataset = checked(H5Dcreate2(f, column.name.c_str(), file_type, simple_space({hsize_t(C)}).get(), H5P_DEFAULT, dcpl,
                                    H5P_DEFAULT),
                         H5Dclose, "create variable " + column.name);
    attach_scales(dataset.get(), {{configuration_scale.get(), "configuration"}});
    return dataset;
  };
  auto numbers = [&]<class T>(hid_t file_type, hid_t memory_type, T missing, auto convert) {
    std::vector<T> values(C, missing);
    for (std::size_t c = 0; c < C; ++c)
      if (column.values[c]) values[c] = convert(*column.values[c]);
    Id dataset = create(file_type);
    check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, transfer_properties(), values.data()), what);
    if (absent) {
      Id attr = checked(H5Acreate2(dataset.get(), "missing_value", file_type, scalar_space().get(), H5P_DEFAULT, H5P_DEFAULT),
                        H5Aclose, what);
      check(H5Awrite(attr.get(), memory_type, &missing), what);
    }
    return dataset;
  };
  auto holds = [&]<class T>(T) { return kind && !mixed && *kind == ParamValue(T{}).index(); };
  if (holds(double{})) {
    numbers(H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, kNaN, [](const ParamValue& v) { return std::get<double>(v); });
  } else if (holds(std::int64_t{})) {
    numbers(H5T_STD_I64LE, H5T_NATIVE_INT64, std::numeric_limits<std::int64_t>::min(),
            [](const ParamValue& v) { return std::get<std::int64_t>(v); });
  } else if (holds(false)) {
    Id dataset = numbers(H5T_STD_I8LE, H5T_NATIVE_INT8, std::int8_t{-1},
                         [](const ParamValue& v) { return std::int8_t(std::get<bool>(v) ? 1 : 0); });
    const std::int8_t flags[2] = {0, 1};
    Id attr = checked(H5Acreate2(dataset.get(), "flag_values", H5T_STD_I8LE, simple_space({2}).get(), H5P_DEFAULT, H5P_DEFAULT),
                      H5Aclose, what);
    check(H5Awrite(attr.get(), H5T_NATIVE_INT8, flags), what);
    write_attribute(dataset.get(), "flag_meanings", std::string("false true"));
  } else if (holds(std::string{}) && column.name == kStreamSaltKey && !absent &&
             std::all_of(column.values.begin(), column.values.end(), [](const ParamValue* v) {
               return parse_uint64(std::get<std::string>(*v)).has_value();
             })) {
    // The salt is a 64-bit unsigned number: ParamValue carries it as decimal text, the file as a number.
    std::vector<std::uint64_t> values;
    for (const ParamValue* v : column.values) values.push_back(*parse_uint64(std::get<std::string>(*v)));
    Id dataset = create(H5T_STD_U64LE);
    check(H5Dwrite(dataset.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, transfer_properties(), values.data()), what);
  } else {
    // Text: strings, lists (comma-separated, with a `list_of` attribute to read them back) and mixed types.
    std::vector<std::string> texts(C);
    for (std::size_t c = 0; c < C; ++c)
      if (column.values[c]) texts[c] = format_value(*column.values[c]);
    std::vector<const char*> pointers;
    for (const auto& t : texts) pointers.push_back(t.c_str());
    Id dataset = create(string_type.get());
    check(H5Dwrite(dataset.get(), string_type.get(), H5S_ALL, H5S_ALL, transfer_properties(), pointers.data()), what);
    if (absent) write_attribute(dataset.get(), "missing_value", std::string());
    if (holds(std::vector<double>{})) write_attribute(dataset.get(), "list_of", std::string("reals"));
    if (holds(std::vector<std::string>{})) write_attribute(dataset.get(), "list_of", std::string("choices"));
  }
}

void TraceWriter::Impl::create_layout(const TraceLayout& layout) {
  Impl& w = *this;
  const hid_t file = w.file.get();
  w.string_type = utf8_string_type();
  const hid_t string_type = w.string_type.get();

  // Root attributes: identity first, then provenance in the caller's order.
  write_attribute(file, "schema_version", std::int64_t{kSchemaVersion});
  write_attribute(file, "format", std::string(kFormat));
  write_attribute(file, "Conventions", std::string(kConventions));
  write_attribute(file, "experiment_name", layout.experiment_name);
  for (const auto& [key, value] : layout.root)
    if (key != "experiment_name") write_attribute(file, key, value);

  Id dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
  set_common_creation_properties(dcpl.get());
  auto write_strings = [&](const char* name, const std::vector<std::string>& values) {
    std::vector<const char*> texts;
    for (const auto& v : values) texts.push_back(v.c_str());
    Id dataset = checked(H5Dcreate2(file, name, string_type, simple_space({hsize_t(values.size())}).get(), H5P_DEFAULT, dcpl.get(),
                                    H5P_DEFAULT),
                         H5Dclose, std::string("create variable ") + name);
    check(H5Dwrite(dataset.get(), string_type, H5S_ALL, H5S_ALL, transfer_properties(), texts.data()), std::string("write ") + name);
    return dataset;
  };
  {
    Id experiment = checked(H5Dcreate2(file, "experiment", string_type, scalar_space().get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                            H5Dclose, "create dataset experiment");
    const char* text = layout.experiment_text.c_str();
    check(H5Dwrite(experiment.get(), string_type, H5S_ALL, H5S_ALL, transfer_properties(), &text), "write dataset experiment");
    write_attribute(experiment.get(), "long_name", std::string("the resolved experiment file; `ratelab run` on it reproduces this file"));
  }

  // Dimension scales: netCDF-4 dimensions with their coordinate variables.
  auto make_scale = [&](const char* name, Id dataset, const char* long_name) {
    check(H5DSset_scale(dataset.get(), name), std::string("make dimension scale ") + name);
    write_attribute(dataset.get(), "long_name", std::string(long_name));
    return dataset;
  };
  auto integers = [&](const char* name, const std::vector<std::int64_t>& values) {
    Id dataset = checked(H5Dcreate2(file, name, H5T_STD_I64LE, simple_space({hsize_t(values.size())}).get(), H5P_DEFAULT, dcpl.get(),
                                    H5P_DEFAULT),
                         H5Dclose, std::string("create variable ") + name);
    check(H5Dwrite(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, transfer_properties(), values.data()), std::string("write ") + name);
    return dataset;
  };
  std::vector<std::string> ids;
  for (const auto& record : layout.configurations) ids.push_back(record.id);
  w.configuration_scale = make_scale("configuration", write_strings("configuration", ids),
                                     "configuration id (a hash of its resolved parameters)");
  Id view_scale = make_scale("view", write_strings("view", layout.views), "iterate view");
  std::vector<std::int64_t> numbers(std::size_t(w.replicates));
  for (std::size_t r = 0; r < numbers.size(); ++r) numbers[r] = std::int64_t(r);
  w.replicate_scale = make_scale("replicate", integers("replicate", numbers), "replicate (seed index)");
  Id step_scale = make_scale("step", integers("step", std::vector<std::int64_t>(layout.checkpoints.begin(), layout.checkpoints.end())),
                             "checkpoint step t");

  // What each configuration is: its label, F*, then every parameter and what set-up measured, one
  // variable each along `configuration` (label and the parameters are CF auxiliary coordinates).
  {
    std::vector<std::string> labels, sources, methods, fingerprints;
    std::vector<double> f_star;
    for (const auto& record : layout.configurations) {
      labels.push_back(record.label);
      fingerprints.push_back(record.run_fingerprint);
      f_star.push_back(record.f_star.value_or(kNaN));
      sources.push_back(record.f_star_source);
      methods.push_back(record.f_star_method);
    }
    Id label = write_strings("label", labels);
    attach_scales(label.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(label.get(), "long_name", std::string("configuration label"));
    Id value = checked(H5Dcreate2(file, "f_star", H5T_IEEE_F64LE, simple_space({w.configurations}).get(), H5P_DEFAULT, dcpl.get(),
                                  H5P_DEFAULT),
                       H5Dclose, "create variable f_star");
    check(H5Dwrite(value.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, transfer_properties(), f_star.data()), "write f_star");
    attach_scales(value.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(value.get(), "long_name", std::string("optimal value F* of the full objective (NaN: unknown)"));
    write_attribute(value.get(), "units", std::string("objective"));
    Id source = write_strings("f_star_source", sources);
    attach_scales(source.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(source.get(), "long_name", std::string("how F* was obtained: closed form, given, solved or unknown"));
    Id method = write_strings("f_star_method", methods);
    attach_scales(method.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(method.get(), "long_name", std::string("the problem's account of how F* was obtained"));
    Id fingerprint = write_strings("run_fingerprint", fingerprints);
    attach_scales(fingerprint.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(fingerprint.get(), "long_name",
                    std::string("hash of everything that determines the bits of the configuration's runs but the "
                                "replicate index (results/SCHEMA.md)"));
  }
  w.coordinates = "label";
  for (const auto& column : configuration_columns(layout.configurations, false)) {
    w.write_configuration_column(column, dcpl.get());
    w.coordinates += " " + column.name;
  }
  for (const auto& column : configuration_columns(layout.configurations, true)) w.write_configuration_column(column, dcpl.get());

  // Traces: one chunk per (configuration, replicate) run, which is exactly what write_run writes.
  // Uncompressed on purpose: shuffle + deflate made writing 100,000 runs (640 MB of traces) 5x slower
  // (65 s instead of 11 s) for an 18% smaller file; `h5repack -f SHUF -f GZIP=4 -f FLET` compresses afterwards.
  w.trace_space = simple_space({w.configurations, w.views, w.replicates, w.checkpoints});
  w.trace_block_space = simple_space({w.views * w.checkpoints});
  {
    Id trace_dcpl = run_chunk_properties({1, w.views, 1, w.checkpoints});
    for (const auto& name : layout.metrics) {
      const Metric metric = metric_from_name(name);
      Id dataset = checked(H5Dcreate2(file, name.c_str(), H5T_IEEE_F64LE, w.trace_space.get(), H5P_DEFAULT, trace_dcpl.get(),
                                      H5P_DEFAULT),
                           H5Dclose, "create trace dataset " + name);
      attach_scales(dataset.get(), {{w.configuration_scale.get(), "configuration"},
                                    {view_scale.get(), "view"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {step_scale.get(), "step"}});
      write_attribute(dataset.get(), "description", std::string(metric_doc(metric)));
      write_attribute(dataset.get(), "units", std::string(metric_units(metric)));
      write_attribute(dataset.get(), "coordinates", w.coordinates);
      w.traces.push_back(std::move(dataset));
    }
  }

  // Run fields.
  w.run_space = simple_space({w.configurations, w.replicates});
  w.one_value_space = simple_space({1});
  const auto missing = static_cast<std::int8_t>(RunStatus::missing);
  w.status = w.create_run_dataset("status", H5T_STD_I8LE, &missing, H5T_NATIVE_INT8);
  {
    std::int8_t codes[int(RunStatus::nonfinite) + 1];
    for (int i = 0; i <= int(RunStatus::nonfinite); ++i) codes[i] = std::int8_t(i);
    write_attribute(w.status.get(), "long_name", std::string("run status"));
    Id attr = checked(H5Acreate2(w.status.get(), "flag_values", H5T_STD_I8LE, simple_space({std::size(codes)}).get(), H5P_DEFAULT,
                                 H5P_DEFAULT),
                      H5Aclose, "write attribute flag_values");
    check(H5Awrite(attr.get(), H5T_NATIVE_INT8, codes), "write attribute flag_values");
    write_attribute(w.status.get(), "flag_meanings", std::string(kStatusMeanings));
    write_attribute(w.status.get(), "coordinates", w.coordinates);
  }
  w.stop_step = w.create_run_dataset("stop_step", H5T_STD_I64LE, &kStopStepFill, H5T_NATIVE_INT64);
  write_attribute(w.stop_step.get(), "long_name", std::string("last step executed (diverged: the step divergence was detected; -1: never written)"));
  write_attribute(w.stop_step.get(), "coordinates", w.coordinates);
  w.wall_seconds = w.create_run_dataset("wall_seconds", H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE);
  write_attribute(w.wall_seconds.get(), "long_name", std::string("time of the step loop"));
  write_attribute(w.wall_seconds.get(), "units", std::string("s"));
  write_attribute(w.wall_seconds.get(), "coordinates", w.coordinates);
  w.eval_seconds = w.create_run_dataset("eval_seconds", H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE);
  write_attribute(w.eval_seconds.get(), "long_name", std::string("time of the metric evaluation"));
  write_attribute(w.eval_seconds.get(), "units", std::string("s"));
  write_attribute(w.eval_seconds.get(), "coordinates", w.coordinates);
  w.message = w.create_run_dataset("message", string_type, nullptr, 0);
  write_attribute(w.message.get(), "long_name", std::string("error message, or the first metric that is not finite"));
  write_attribute(w.message.get(), "coordinates", w.coordinates);

  // Per-run series over the checkpoints: the runs' costs, then the problem-specific metrics of the last
  // iterate; [C, R, K], one chunk per run.
  w.extra_names = layout.extra_metrics;
  w.extra_space = simple_space({w.configurations, w.replicates, w.checkpoints});
  w.extra_block_space = simple_space({w.checkpoints});
  {
    Id series_dcpl = run_chunk_properties({1, 1, w.checkpoints});
    // `attributes` in the order SCHEMA.md lists them, `coordinates` last.
    auto create_series = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& attributes) {
      Id dataset = checked(H5Dcreate2(file, name.c_str(), H5T_IEEE_F64LE, w.extra_space.get(), H5P_DEFAULT, series_dcpl.get(),
                                      H5P_DEFAULT),
                           H5Dclose, "create dataset " + name);
      attach_scales(dataset.get(), {{w.configuration_scale.get(), "configuration"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {step_scale.get(), "step"}});
      for (const auto& [key, value] : attributes) write_attribute(dataset.get(), key, value);
      write_attribute(dataset.get(), "coordinates", w.coordinates);
      return dataset;
    };
    w.gradient_evaluations = create_series(
        "gradient_evaluations",
        {{"long_name", "oracle samples drawn up to the checkpoint (a minibatch of B counts B; NaN: the optimizer does not count them)"}});
    w.elapsed_seconds = create_series("elapsed_seconds", {{"long_name", "time of the step loop up to the checkpoint"}, {"units", "s"}});
    for (const auto& name : layout.extra_metrics)
      w.extra.push_back(create_series(
          kExtraPrefix + name,
          {{"description", "problem-specific metric of the last iterate (see `ratelab describe` of the problem)"}}));
    if (!layout.targets.empty())
      w.best_so_far = create_series(
          "best_so_far", {{"long_name", "lowest " + layout.target_metric +
                                            " of the last iterate over the steps evaluated up to the checkpoint (target checks and checkpoints)"}});
  }

  // Hitting times measured in the run loop: the `target` dimension (its values the targets, its `metric`
  // attribute what they are levels of) and [C, R, T] per run, one chunk per run.
  if (!layout.targets.empty()) {
    w.targets = layout.targets.size();
    Id values = checked(H5Dcreate2(file, "target", H5T_IEEE_F64LE, simple_space({w.targets}).get(), H5P_DEFAULT, dcpl.get(),
                                   H5P_DEFAULT),
                        H5Dclose, "create variable target");
    check(H5Dwrite(values.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, transfer_properties(), layout.targets.data()), "write target");
    Id target_scale = make_scale("target", std::move(values), "hitting-time target: a run reaches it at the first evaluated step with metric < target");
    write_attribute(target_scale.get(), "metric", layout.target_metric);
    w.target_space = simple_space({w.configurations, w.replicates, w.targets});
    w.target_block_space = simple_space({w.targets});
    Id target_dcpl = run_chunk_properties({1, 1, w.targets});
    auto create_hits = [&](const char* name, const std::string& long_name) {
      Id dataset = checked(H5Dcreate2(file, name, H5T_IEEE_F64LE, w.target_space.get(), H5P_DEFAULT, target_dcpl.get(), H5P_DEFAULT),
                           H5Dclose, std::string("create dataset ") + name);
      attach_scales(dataset.get(), {{w.configuration_scale.get(), "configuration"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {target_scale.get(), "target"}});
      write_attribute(dataset.get(), "long_name", long_name);
      write_attribute(dataset.get(), "coordinates", w.coordinates);
      return dataset;
    };
    w.target_steps = create_hits("target_step", "first step at which " + layout.target_metric +
                                                    " of the last iterate was < the target (inf: never; NaN: not measured)");
    w.target_gradient_evaluations = create_hits(
        "target_gradient_evaluations", "oracle samples drawn up to target_step (inf: never; NaN: not measured or not counted)");
  }

  // The iterates themselves (experiment.record_iterates): a dimension `component` (i = 0 .. D-1), each
  // configuration's d, and x of every view at every checkpoint, one chunk per run as the metrics.
  if (layout.iterate_dimension > 0) {
    w.iterate_dimension = hsize_t(layout.iterate_dimension);
    std::vector<std::int64_t> components(w.iterate_dimension), dimensions;
    for (std::size_t i = 0; i < components.size(); ++i) components[i] = std::int64_t(i);
    Id component_scale = make_scale("component", integers("component", components), "component index i of the iterate x");
    for (const auto& record : layout.configurations) {
      w.dimensions.push_back(hsize_t(record.dimension));
      dimensions.push_back(record.dimension);
    }
    Id dimension = integers("dimension", dimensions);
    attach_scales(dimension.get(), {{w.configuration_scale.get(), "configuration"}});
    write_attribute(dimension.get(), "long_name",
                    std::string("the problem's dimension d: components 0 .. d-1 of `iterate` hold x, the others NaN"));
    w.iterate_space = simple_space({w.configurations, w.views, w.replicates, w.checkpoints, w.iterate_dimension});
    w.iterate_block_space = simple_space({w.views * w.checkpoints * w.iterate_dimension});
    Id iterate_dcpl = run_chunk_properties({1, w.views, 1, w.checkpoints, w.iterate_dimension});
    w.iterate = checked(H5Dcreate2(file, "iterate", H5T_IEEE_F64LE, w.iterate_space.get(), H5P_DEFAULT, iterate_dcpl.get(),
                                   H5P_DEFAULT),
                        H5Dclose, "create dataset iterate");
    attach_scales(w.iterate.get(), {{w.configuration_scale.get(), "configuration"},
                                    {view_scale.get(), "view"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {step_scale.get(), "step"},
                                    {component_scale.get(), "component"}});
    write_attribute(w.iterate.get(), "long_name",
                    std::string("the iterate x of the view at the checkpoint (NaN where not reached and beyond the "
                                "configuration's dimension)"));
    write_attribute(w.iterate.get(), "coordinates", w.coordinates);
  }
}

TraceWriter::TraceWriter(const std::string& path, const TraceLayout& layout, WriteMode mode) : impl_(std::make_unique<Impl>()) {
  validate(layout);
  Impl& w = *impl_;
  w.path = path;
  w.partial_path = path + ".partial";
  w.mode = mode;
  w.committed = true;  // nothing of ours to remove until the partial file exists
  w.configurations = layout.configurations.size();
  w.views = layout.views.size();
  w.replicates = hsize_t(layout.replicates);
  w.checkpoints = layout.checkpoints.size();

  std::error_code ec;
  const auto status = std::filesystem::symlink_status(path, ec);
  if (std::filesystem::is_directory(status))
    throw ConfigError("cannot write trace file '" + path + "': it is an existing directory");
  // Replacing is for trace files: a device, a FIFO or a socket would be destroyed or written through,
  // and a symlink would be replaced by a regular file while its target stays as it was.
  for (const std::string& p : {path, w.partial_path}) {
    const auto s = p == path ? status : std::filesystem::symlink_status(p, ec);
    if (std::filesystem::exists(s) && !std::filesystem::is_regular_file(s))
      throw ConfigError("cannot write trace file '" + path + "': '" + p + "' is not a regular file (it is " +
                        file_type_name(s.type()) + "); ratelab writes and replaces only regular files: choose another path");
  }
  if (mode == WriteMode::create_new && std::filesystem::exists(status))
    throw ConfigError("trace file '" + path + "' already exists; use --overwrite to replace it or --resume to continue it");

  // Probe with the OS first: its reason ("Permission denied", "Not a directory") is clearer than HDF5's.
  const int fd = ::open(w.partial_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    const int err = errno;
    throw ConfigError("cannot write trace file '" + path + "': cannot create '" + w.partial_path + "': " + std::strerror(err));
  }
  ::close(fd);
  w.committed = false;

  QuietHdf5Errors quiet;
  Id fcpl = checked(H5Pcreate(H5P_FILE_CREATE), H5Pclose, "file properties");
  set_common_creation_properties(fcpl.get());
  check(H5Pset_link_creation_order(fcpl.get(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "file properties");
  Id fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "file access properties");
  check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "file access properties");
  const hid_t file = H5Fcreate(w.partial_path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get());
  if (file < 0) throw ConfigError("cannot write trace file '" + path + "': HDF5 cannot create '" + w.partial_path + "': " + hdf5_error_text());
  w.file = Id(file, H5Fclose);
  w.create_layout(layout);
  check(H5Fflush(file, H5F_SCOPE_GLOBAL), "flush " + w.partial_path);
}

TraceWriter::~TraceWriter() {
  QuietHdf5Errors quiet;
  impl_.reset();
}

void TraceWriter::write_run(std::size_t configuration, long replicate, const RunResult& result) {
  Impl& w = *impl_;
  if (!w.file) throw std::logic_error("TraceWriter::write_run after commit()");
  if (configuration >= w.configurations || replicate < 0 || hsize_t(replicate) >= w.replicates)
    throw std::out_of_range("TraceWriter::write_run: run (configuration " + std::to_string(configuration) + ", replicate " +
                            std::to_string(replicate) + ") is outside the layout's " + std::to_string(w.configurations) +
                            " x " + std::to_string(w.replicates));
  const std::size_t block = std::size_t(w.views * w.checkpoints);
  if (!result.traces.empty() && result.traces.size() != w.traces.size() * block)
    throw std::invalid_argument("TraceWriter::write_run: the run has " + std::to_string(result.traces.size()) +
                                " trace values, the layout expects metrics x views x checkpoints = " +
                                std::to_string(w.traces.size() * block));
  QuietHdf5Errors quiet;

  if (!result.traces.empty()) {
    const hsize_t start[4] = {configuration, 0, hsize_t(replicate), 0};
    const hsize_t count[4] = {1, w.views, 1, w.checkpoints};
    check(H5Sselect_hyperslab(w.trace_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select trace block");
    for (std::size_t m = 0; m < w.traces.size(); ++m)
      check(H5Dwrite(w.traces[m].get(), H5T_NATIVE_DOUBLE, w.trace_block_space.get(), w.trace_space.get(), transfer_properties(),
                     result.traces.data() + m * block),
            "write traces to " + w.partial_path);
  }
  ++w.runs_written;
  if (const auto fault = fault_points().in_run_write) fault(w.runs_written);
  {
    const hsize_t start[3] = {configuration, hsize_t(replicate), 0};
    const hsize_t count[3] = {1, 1, w.checkpoints};
    check(H5Sselect_hyperslab(w.extra_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select run series");
  }
  for (const auto& [dataset, values, name] : {std::tuple{w.gradient_evaluations.get(), &result.gradient_evaluations, "gradient_evaluations"},
                                              std::tuple{w.elapsed_seconds.get(), &result.elapsed_seconds, "elapsed_seconds"}}) {
    if (values->empty()) continue;  // not measured: the fill value (NaN) stays
    if (values->size() != w.checkpoints)
      throw std::invalid_argument(std::string("TraceWriter::write_run: the run's ") + name + " has " + std::to_string(values->size()) +
                                  " values, the layout has " + std::to_string(w.checkpoints) + " checkpoints");
    check(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, w.extra_block_space.get(), w.extra_space.get(), transfer_properties(), values->data()),
          std::string("write ") + name + " to " + w.partial_path);
  }
  if (w.targets > 0) {
    const auto write_series = [&](hid_t dataset, const std::vector<double>& values, hsize_t size, hid_t memory, hid_t file_space,
                                  const char* name) {
      if (values.empty()) return;  // not measured: the fill value (NaN) stays
      if (values.size() != size)
        throw std::invalid_argument(std::string("TraceWriter::write_run: the run's ") + name + " has " + std::to_string(values.size()) +
                                    " values, the layout has " + std::to_string(size));
      check(H5Dwrite(dataset, H5T_NATIVE_DOUBLE, memory, file_space, transfer_properties(), values.data()),
            std::string("write ") + name + " to " + w.partial_path);
    };
    write_series(w.best_so_far.get(), result.best_so_far, w.checkpoints, w.extra_block_space.get(), w.extra_space.get(), "best_so_far");
    const hsize_t start[3] = {configuration, hsize_t(replicate), 0};
    const hsize_t count[3] = {1, 1, w.targets};
    check(H5Sselect_hyperslab(w.target_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select run targets");
    write_series(w.target_steps.get(), result.target_steps, w.targets, w.target_block_space.get(), w.target_space.get(), "target_steps");
    write_series(w.target_gradient_evaluations.get(), result.target_gradient_evaluations, w.targets, w.target_block_space.get(),
                 w.target_space.get(), "target_gradient_evaluations");
  }
  if (!result.extra_names.empty()) {
    for (std::size_t e = 0; e < result.extra_names.size(); ++e) {
      const auto it = std::find(w.extra_names.begin(), w.extra_names.end(), result.extra_names[e]);
      if (it == w.extra_names.end())
        throw std::invalid_argument("TraceWriter::write_run: extra metric '" + result.extra_names[e] +
                                    "' is not in the layout's extra_metrics");
      if (result.extra_traces.size() < (e + 1) * w.checkpoints)
        throw std::invalid_argument("TraceWriter::write_run: the run's extra traces are shorter than extra x checkpoints");
      check(H5Dwrite(w.extra[std::size_t(it - w.extra_names.begin())].get(), H5T_NATIVE_DOUBLE, w.extra_block_space.get(),
                     w.extra_space.get(), transfer_properties(), result.extra_traces.data() + e * w.checkpoints),
            "write extra metric to " + w.partial_path);
    }
  }

  if (!result.iterates.empty()) {
    if (!w.iterate_dimension)
      throw std::invalid_argument("TraceWriter::write_run: the run has recorded iterates, the layout has no iterate dimension");
    const std::size_t d = std::size_t(w.dimensions[configuration]), D = std::size_t(w.iterate_dimension);
    if (result.iterates.size() != block * d)
      throw std::invalid_argument("TraceWriter::write_run: the run has " + std::to_string(result.iterates.size()) +
                                  " iterate values, the layout expects views x checkpoints x d = " + std::to_string(block * d));
    // Padded to D: the chunk is written whole, never read back.
    w.iterate_block.assign(block * D, kNaN);
    for (std::size_t j = 0; j < block; ++j)
      std::copy_n(result.iterates.begin() + long(j * d), d, w.iterate_block.begin() + long(j * D));
    const hsize_t start[5] = {configuration, 0, hsize_t(replicate), 0, 0};
    const hsize_t count[5] = {1, w.views, 1, w.checkpoints, w.iterate_dimension};
    check(H5Sselect_hyperslab(w.iterate_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select iterate block");
    check(H5Dwrite(w.iterate.get(), H5T_NATIVE_DOUBLE, w.iterate_block_space.get(), w.iterate_space.get(), transfer_properties(),
                   w.iterate_block.data()),
          "write iterates to " + w.partial_path);
  }

  const hsize_t start[2] = {configuration, hsize_t(replicate)};
  const hsize_t count[2] = {1, 1};
  check(H5Sselect_hyperslab(w.run_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select run");
  const auto status = static_cast<std::int8_t>(result.status);
  const std::int64_t stop_step = result.stop_step;
  w.write_run_value(w.status.get(), H5T_NATIVE_INT8, &status, "status");
  w.write_run_value(w.stop_step.get(), H5T_NATIVE_INT64, &stop_step, "stop_step");
  w.write_run_value(w.wall_seconds.get(), H5T_NATIVE_DOUBLE, &result.wall_seconds, "wall_seconds");
  w.write_run_value(w.eval_seconds.get(), H5T_NATIVE_DOUBLE, &result.eval_seconds, "eval_seconds");
  // Empty messages stay unwritten (read back as ""), so ok runs add nothing to the string heap.
  if (!result.message.empty()) {
    const char* text = result.message.c_str();
    w.write_run_value(w.message.get(), w.string_type.get(), &text, "message");
  }
  for (const auto& [name, value] : result.stats) w.write_run_value(w.stat_dataset(name), H5T_NATIVE_DOUBLE, &value, "run stat");
}

void TraceWriter::commit() {
  Impl& w = *impl_;
  if (!w.file) throw std::logic_error("TraceWriter::commit called twice");
  {
    QuietHdf5Errors quiet;
    check(H5Fflush(w.file.get(), H5F_SCOPE_GLOBAL), "flush " + w.partial_path);
    if (w.close_all() < 0) fail("close " + w.partial_path);
  }
  std::error_code ec;
  if (w.mode == WriteMode::create_new && std::filesystem::exists(w.path, ec))
    throw ConfigError("trace file '" + w.path + "' appeared while this run was writing; use --overwrite to replace it");
  std::filesystem::rename(w.partial_path, w.path, ec);
  if (ec) throw ConfigError("cannot move '" + w.partial_path + "' to '" + w.path + "': " + ec.message());
  w.committed = true;
}

// ---- reader ---------------------------------------------------------------------------------------

double TraceData::trace(std::size_t metric, std::size_t c, std::size_t v, std::size_t r, std::size_t k) const {
  const std::size_t V = layout.views.size(), R = std::size_t(layout.replicates), K = layout.checkpoints.size();
  return traces.at(metric).at((((c - first_configuration) * V + v) * R + r) * K + k);
}

double TraceData::iterate(std::size_t c, std::size_t v, std::size_t r, std::size_t k, std::size_t i) const {
  const std::size_t V = layout.views.size(), R = std::size_t(layout.replicates), K = layout.checkpoints.size(),
                    D = std::size_t(layout.iterate_dimension);
  return iterates.at(((((c - first_configuration) * V + v) * R + r) * K + k) * D + i);
}

std::optional<std::size_t> TraceData::metric_index(const std::string& name) const {
  for (std::size_t m = 0; m < layout.metrics.size(); ++m)
    if (layout.metrics[m] == name) return m;
  return std::nullopt;
}

namespace {

// Where a file keeps its run data: the dataset paths of its schema.
struct DatasetPaths {
  std::vector<std::string> metrics, extra;                    // per layout.metrics / layout.extra_metrics
  std::vector<std::pair<std::string, std::string>> stats;     // (statistic name, path)
  std::string status, stop_step, wall_seconds, eval_seconds, message;
  std::string gradient_evaluations, elapsed_seconds;  // empty in files written before them
  bool targets = false;  // target_step, target_gradient_evaluations [C, R, T] and best_so_far [C, R, K]
  std::string iterate;                                 // empty without recorded iterates
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  std::size_t start = 0;
  for (std::size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
    parts.push_back(text.substr(start, comma - start));
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

struct TraceReader::Impl {
  std::string path;
  Id file;
  int schema = 0;
  TraceData outline;
  DatasetPaths paths;
  hsize_t C = 0, V = 0, R = 0, K = 0;
  hsize_t target_count = 0;  // layout.targets.size(): 0 without targets

  Id open_dataset(const std::string& name) const {
    if (!path_exists(file.get(), name))
      throw ConfigError("trace file '" + path + "' is incomplete: dataset '" + name + "' is missing");
    return checked(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose, "open " + name);
  }
  std::vector<hsize_t> shape(hid_t dataset) const {
    Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
    std::vector<hsize_t> dims(std::size_t(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return dims;
  }
  void check_shape(hid_t dataset, const std::string& name, const std::vector<hsize_t>& expected) const {
    if (shape(dataset) != expected)
      throw ConfigError("trace file '" + path + "' is damaged: dataset '" + name + "' has the wrong shape");
  }
  std::vector<std::string> strings(const std::string& name, hsize_t size) const {
    Id dataset = open_dataset(name);
    check_shape(dataset.get(), name, {size});
    return read_string_dataset(dataset.get());
  }

  void read_root_attributes() {
    for (const auto& name : attribute_names(file.get())) {
      if (name == "schema_version" || name == "format" || (schema >= 2 && name == "Conventions")) continue;
      ParamValue value = read_attribute(file.get(), name);
      if (name == "experiment_name" && std::holds_alternative<std::string>(value))
        outline.layout.experiment_name = std::get<std::string>(value);
      outline.layout.root.emplace_back(name, std::move(value));
    }
  }

  void read_scales() {
    TraceLayout& layout = outline.layout;
    {
      Id experiment = open_dataset("experiment");
      auto text = read_string_dataset(experiment.get());
      layout.experiment_text = text.empty() ? "" : text[0];
    }
    Id configuration_scale = open_dataset("configuration");
    const auto ids = read_string_dataset(configuration_scale.get());
    layout.configurations.resize(ids.size());
    for (std::size_t c = 0; c < ids.size(); ++c) layout.configurations[c].id = ids[c];
    Id view_scale = open_dataset("view");
    layout.views = read_string_dataset(view_scale.get());
    Id replicate_scale = open_dataset("replicate");
    layout.replicates = long(element_count(replicate_scale.get()));
    Id step_scale = open_dataset("step");
    for (auto step : read_numeric_dataset<std::int64_t>(step_scale.get(), H5T_NATIVE_INT64)) layout.checkpoints.push_back(long(step));
    C = ids.size(), V = layout.views.size(), R = hsize_t(layout.replicates), K = layout.checkpoints.size();
  }

  // Schema 1: parameters as attributes of /configurations/cNNNN, run data under /traces, /runs, /extra.
  void read_layout_schema1() {
    TraceLayout& layout = outline.layout;
    for (std::size_t c = 0; c < C; ++c) {
      const std::string name = "configurations/" + configuration_group_name(c);
      if (!path_exists(file.get(), name))
        throw ConfigError("trace file '" + path + "' is incomplete: group '" + name + "' is missing");
      Id group = checked(H5Gopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Gclose, "open " + name);
      ConfigurationRecord& record = layout.configurations[c];
      const std::string id = record.id;
      record.id.clear();
      for (const auto& key : attribute_names(group.get())) {
        ParamValue value = read_attribute(group.get(), key);
        if (key == "id") record.id = as_text(value);
        else if (key == "label") record.label = as_text(value);
        else if (key.rfind(kInstancePrefix, 0) == 0) record.instance.emplace_back(key.substr(kInstancePrefix.size()), std::move(value));
        else record.parameters.emplace_back(key, std::move(value));
      }
      if (record.id != id)
        throw ConfigError("trace file '" + path + "' is damaged: " + name + " has id '" + record.id + "' but /configuration[" +
                          std::to_string(c) + "] is '" + id + "'");
    }
    if (!path_exists(file.get(), "traces")) throw ConfigError("trace file '" + path + "' is incomplete: group 'traces' is missing");
    Id traces = checked(H5Gopen2(file.get(), "traces", H5P_DEFAULT), H5Gclose, "open traces");
    for (const auto& metric : link_names(traces.get())) add_metric(metric, "traces/" + metric);
    if (path_exists(file.get(), "extra")) {
      Id group = checked(H5Gopen2(file.get(), "extra", H5P_DEFAULT), H5Gclose, "open extra");
      for (const auto& name : link_names(group.get())) add_extra(name, "extra/" + name);
    }
    if (path_exists(file.get(), "runs/stats")) {
      Id group = checked(H5Gopen2(file.get(), "runs/stats", H5P_DEFAULT), H5Gclose, "open runs/stats");
      for (const auto& stat : link_names(group.get())) add_stat(stat, "runs/stats/" + stat);
    }
    paths.status = "runs/status", paths.stop_step = "runs/stop_step", paths.wall_seconds = "runs/wall_seconds";
    paths.eval_seconds = "runs/eval_seconds", paths.message = "runs/message";
  }

  void add_metric(const std::string& metric, const std::string& name) {
    Id dataset = open_dataset(name);
    check_shape(dataset.get(), name, {C, V, R, K});
    outline.layout.metrics.push_back(metric);
    outline.metric_units.push_back(H5Aexists(dataset.get(), "units") > 0 ? as_text(read_attribute(dataset.get(), "units")) : "");
    paths.metrics.push_back(name);
  }
  void add_extra(const std::string& extra, const std::string& name) {
    Id dataset = open_dataset(name);
    check_shape(dataset.get(), name, {C, R, K});
    outline.layout.extra_metrics.push_back(extra);
    paths.extra.push_back(name);
  }
  void add_stat(const std::string& stat, const std::string& name) {
    Id dataset = open_dataset(name);
    check_shape(dataset.get(), name, {C, R});
    paths.stats.emplace_back(stat, name);
  }

  // Schema 2: everything in the root group; what a variable is follows from its name and dimensions.
  void read_layout_schema2() {
    TraceLayout& layout = outline.layout;
    const auto labels = strings("label", C);
    const auto sources = strings("f_star_source", C);
    const auto methods = strings("f_star_method", C);
    // Files written before run fingerprints have no such variable: their runs have none.
    const auto fingerprints = path_exists(file.get(), "run_fingerprint") ? strings("run_fingerprint", C)
                                                                       : std::vector<std::string>(C);
    Id f_star = open_dataset("f_star");
    check_shape(f_star.get(), "f_star", {C});
    const auto values = read_numeric_dataset<double>(f_star.get(), H5T_NATIVE_DOUBLE);
    for (std::size_t c = 0; c < C; ++c) {
      ConfigurationRecord& record = layout.configurations[c];
      record.label = labels[c];
      if (!std::isnan(values[c])) record.f_star = values[c];
      record.f_star_source = sources[c];
      record.f_star_method = methods[c];
      record.run_fingerprint = fingerprints[c];
    }
    for (const auto& name : link_names(file.get())) {
      if (kFixedVariables.count(name)) continue;
      if (name.rfind(kStatPrefix, 0) == 0) {
        add_stat(name.substr(kStatPrefix.size()), name);
        continue;
      }
      if (name.rfind(kExtraPrefix, 0) == 0) {
        add_extra(name.substr(kExtraPrefix.size()), name);
        continue;
      }
      H5O_info_t info;
      if (H5Oget_info_by_name(file.get(), name.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET) continue;
      Id dataset = open_dataset(name);
      const auto dims = shape(dataset.get());
      if (dims.size() == 4) add_metric(name, name);
      else if (dims == std::vector<hsize_t>{C}) read_column(dataset.get(), name);
    }
    paths.status = "status", paths.stop_step = "stop_step", paths.wall_seconds = "wall_seconds";
    paths.eval_seconds = "eval_seconds", paths.message = "message";
    for (auto [name, path] : {std::pair{"gradient_evaluations", &paths.gradient_evaluations},
                              std::pair{"elapsed_seconds", &paths.elapsed_seconds}})
      if (path_exists(file.get(), name)) *path = name;
    if (path_exists(file.get(), "iterate")) {
      Id component = open_dataset("component");
      const auto D = hsize_t(element_count(component.get()));
      Id dimension = open_dataset("dimension");
      check_shape(dimension.get(), "dimension", {C});
      const auto dimensions = read_numeric_dataset<std::int64_t>(dimension.get(), H5T_NATIVE_INT64);
      Id iterate = open_dataset("iterate");
      check_shape(iterate.get(), "iterate", {C, V, R, K, D});
      for (std::size_t c = 0; c < C; ++c) {
        if (dimensions[c] < 1 || hsize_t(dimensions[c]) > D)
          throw ConfigError("trace file '" + path + "' is damaged: dimension[" + std::to_string(c) + "] = " +
                            std::to_string(dimensions[c]) + " is outside 1 .. " + std::to_string(D));
        layout.configurations[c].dimension = long(dimensions[c]);
      }
      layout.iterate_dimension = long(D);
      paths.iterate = "iterate";
    }
    if (path_exists(file.get(), "target")) read_targets();
  }

  // The run loop's hitting-time targets: the `target` scale, its metric, and the per-run data of both shapes.
  void read_targets() {
    TraceLayout& layout = outline.layout;
    Id scale = open_dataset("target");
    layout.targets = read_numeric_dataset<double>(scale.get(), H5T_NATIVE_DOUBLE);
    target_count = layout.targets.size();
    if (target_count == 0 || H5Aexists(scale.get(), "metric") <= 0)
      throw ConfigError("trace file '" + path + "' is damaged: variable 'target' is empty or has no 'metric' attribute");
    layout.target_metric = as_text(read_attribute(scale.get(), "metric"));
    for (const char* name : {"target_step", "target_gradient_evaluations"}) {
      Id dataset = open_dataset(name);
      check_shape(dataset.get(), name, {C, R, target_count});
    }
    Id best = open_dataset("best_so_far");
    check_shape(best.get(), "best_so_far", {C, R, K});
    paths.targets = true;
  }

  // A parameter (or instance value) variable back into the configurations' records.
  void read_column(hid_t dataset, const std::string& name) {
    const bool instance = name.rfind(kInstancePrefix, 0) == 0;
    const std::string key = instance ? name.substr(kInstancePrefix.size()) : name;
    const bool has_missing = H5Aexists(dataset, "missing_value") > 0;
    Id type = checked(H5Dget_type(dataset), H5Tclose, "type of " + name);
    std::vector<std::optional<ParamValue>> values(C);
    auto numbers = [&]<class T>(hid_t memory_type, T, auto make) {
      const auto raw = read_numeric_dataset<T>(dataset, memory_type);
      T missing{};
      if (has_missing) {
        Id attr = checked(H5Aopen(dataset, "missing_value", H5P_DEFAULT), H5Aclose, "missing_value of " + name);
        check(H5Aread(attr.get(), memory_type, &missing), "missing_value of " + name);
      }
      for (std::size_t c = 0; c < C; ++c) {
        const bool absent = has_missing && (raw[c] == missing || (std::is_floating_point_v<T> && raw[c] != raw[c]));
        if (!absent) values[c] = make(raw[c]);
      }
    };
    switch (H5Tget_class(type.get())) {
      case H5T_FLOAT:
        numbers(H5T_NATIVE_DOUBLE, double{}, [](double v) { return ParamValue(v); });
        break;
      case H5T_INTEGER:
        if (H5Tget_size(type.get()) == 1)
          numbers(H5T_NATIVE_INT8, std::int8_t{}, [](std::int8_t v) { return ParamValue(v != 0); });
        else if (H5Tget_sign(type.get()) == H5T_SGN_NONE)
          numbers(H5T_NATIVE_UINT64, std::uint64_t{}, [](std::uint64_t v) { return ParamValue(std::to_string(v)); });
        else
          numbers(H5T_NATIVE_INT64, std::int64_t{}, [](std::int64_t v) { return ParamValue(v); });
        break;
      case H5T_STRING: {
        const auto texts = read_string_dataset(dataset);
        const std::string missing = has_missing ? as_text(read_attribute(dataset, "missing_value")) : "";
        const std::string list_of = H5Aexists(dataset, "list_of") > 0 ? as_text(read_attribute(dataset, "list_of")) : "";
        for (std::size_t c = 0; c < C; ++c) {
          if (has_missing && texts[c] == missing) continue;
          if (list_of == "choices") {
            values[c] = split_commas(texts[c]);
          } else if (list_of == "reals") {
            std::vector<double> reals;
            for (const auto& part : split_commas(texts[c])) {
              double v = 0;
              const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), v);
              if (error != std::errc() || end != part.data() + part.size()) throw ConfigError("trace file '" + path + "' is damaged: variable '" + name + "' holds '" + texts[c] +
                                        "', not a list of reals");
              reals.push_back(v);
            }
            values[c] = reals;
          } else {
            values[c] = texts[c];
          }
        }
        break;
      }
      default: return;  // not a variable ratelab writes along configuration
    }
    for (std::size_t c = 0; c < C; ++c) {
      if (!values[c]) continue;
      auto& record = outline.layout.configurations[c];
      (instance ? record.instance : record.parameters).emplace_back(key, std::move(*values[c]));
    }
  }

  std::vector<RunStatus> read_status(std::size_t begin, std::size_t end) const {
    Id dataset = open_dataset(paths.status);
    check_shape(dataset.get(), paths.status, {C, R});
    std::vector<RunStatus> status;
    for (auto code : read_numeric_rows<std::int8_t>(dataset.get(), H5T_NATIVE_INT8, begin, end)) {
      if (code < 0 || code > static_cast<std::int8_t>(RunStatus::nonfinite))
        throw ConfigError("trace file '" + path + "' is damaged: " + paths.status + " holds the unknown code " + std::to_string(code));
      status.push_back(static_cast<RunStatus>(code));
    }
    return status;
  }

  // Values of `name` in the hyperslab start/count, in row-major order.
  template <class T>
  std::vector<T> read_slab(const std::string& name, hid_t memory_type, const std::vector<hsize_t>& start,
                           const std::vector<hsize_t>& count) const {
    Id dataset = open_dataset(name);
    Id file_space = checked(H5Dget_space(dataset.get()), H5Sclose, "dataset space");
    check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), "select " + name);
    hsize_t n = 1;
    for (hsize_t c : count) n *= c;
    Id memory_space = checked(H5Screate_simple(1, &n, nullptr), H5Sclose, "memory space");
    std::vector<T> values(n);
    if (n) check(H5Dread(dataset.get(), memory_type, memory_space.get(), file_space.get(), transfer_properties(), values.data()), "read " + name);
    return values;
  }

  // A read of the per-run dataset `name` failed on a chunk's checksum: the runs of configurations [begin, end),
  // replicates [first, first + count), are read one by one (only now, on the failure path) to name the
  // damaged one.
  [[noreturn]] void checksum_mismatch(const std::string& name, std::size_t begin, std::size_t end, long first, long count) const {
    const std::vector<hsize_t> dims = shape(open_dataset(name).get());  // a metric [C, V, R, K], iterate [C, V, R, K, D], extra [C, R, K]
    std::string where = "configurations " + std::to_string(begin) + " to " + std::to_string(end - 1);
    for (std::size_t c = begin; c < end; ++c)
      for (long r = first; r < first + count; ++r) {
        const hsize_t hc = c, hr = hsize_t(r);
        try {
          if (dims.size() == 5) read_slab<double>(name, H5T_NATIVE_DOUBLE, {hc, 0, hr, 0, 0}, {1, V, 1, K, dims[4]});
          else if (dims.size() == 4) read_slab<double>(name, H5T_NATIVE_DOUBLE, {hc, 0, hr, 0}, {1, V, 1, K});
          else read_slab<double>(name, H5T_NATIVE_DOUBLE, {hc, hr, 0}, {1, 1, dims.back()});  // [C, R, K] or [C, R, T]
        } catch (const ChunkChecksumMismatch&) {
          where = "the run of configuration " + std::to_string(c) + " '" + outline.layout.configurations[c].label +
                  "', replicate " + std::to_string(r);
          c = end;
          break;
        }
      }
    throw ConfigError("trace file '" + path + "' is damaged: checksum mismatch in dataset '" + name + "' (" + where +
                      ": its data changed after they were written, the Fletcher-32 checksum stored with them does not "
                      "match); restore the file from a copy, or run its experiment again");
  }

  // `metrics`: read only these, and the extra metrics only with `extra` (nullptr: every metric and extra metric).
  TraceData configurations(std::size_t begin, std::size_t end, const std::vector<std::string>* metrics = nullptr,
                           bool extra = true) const {
    end = std::min<std::size_t>(end, C);
    if (begin > end)
      throw std::out_of_range("read_trace_configurations: configurations [" + std::to_string(begin) + ", " + std::to_string(end) +
                              ") of a file with " + std::to_string(C));
    note_runs_read(long(end - begin) * long(R));
    TraceData data;
    data.schema_version = outline.schema_version;
    data.layout = outline.layout;
    data.metric_units = outline.metric_units;
    data.first_configuration = begin;
    auto rows = [&]<class T>(const std::string& name, hid_t memory_type, T) {
      Id dataset = open_dataset(name);
      try {
        return read_numeric_rows<T>(dataset.get(), memory_type, begin, end);
      } catch (const ChunkChecksumMismatch&) {
        checksum_mismatch(name, begin, end, 0, long(R));
      }
    };
    if (metrics) {
      data.layout.metrics.clear();
      data.metric_units.clear();
    }
    if (!extra) data.layout.extra_metrics.clear();
    for (std::size_t m = 0; m < paths.metrics.size(); ++m) {
      const std::string& metric = outline.layout.metrics[m];
      if (metrics && std::find(metrics->begin(), metrics->end(), metric) == metrics->end()) continue;
      if (metrics) {
        data.layout.metrics.push_back(metric);
        data.metric_units.push_back(outline.metric_units.at(m));
      }
      data.traces.push_back(rows(paths.metrics[m], H5T_NATIVE_DOUBLE, double{}));
    }
    data.status = read_status(begin, end);
    for (auto step : rows(paths.stop_step, H5T_NATIVE_INT64, std::int64_t{})) data.stop_step.push_back(long(step));
    data.wall_seconds = rows(paths.wall_seconds, H5T_NATIVE_DOUBLE, double{});
    data.eval_seconds = rows(paths.eval_seconds, H5T_NATIVE_DOUBLE, double{});
    {
      Id dataset = open_dataset(paths.message);
      check_shape(dataset.get(), paths.message, {C, R});
      data.messages = read_string_rows(dataset.get(), begin, end);
    }
    for (const auto& [stat, name] : paths.stats) data.run_stats.emplace_back(stat, rows(name, H5T_NATIVE_DOUBLE, double{}));
    if (extra)
      for (const auto& name : paths.extra) data.extra.push_back(rows(name, H5T_NATIVE_DOUBLE, double{}));
    for (auto [path, values] : {std::pair{&paths.gradient_evaluations, &data.gradient_evaluations},
                                std::pair{&paths.elapsed_seconds, &data.elapsed_seconds}})
      *values = path->empty() ? std::vector<double>((end - begin) * R * K, kNaN) : rows(*path, H5T_NATIVE_DOUBLE, double{});
    if (paths.targets) {
      data.target_steps = rows("target_step", H5T_NATIVE_DOUBLE, double{});
      data.target_gradient_evaluations = rows("target_gradient_evaluations", H5T_NATIVE_DOUBLE, double{});
      data.best_so_far = rows("best_so_far", H5T_NATIVE_DOUBLE, double{});
    }
    // The iterates go with the whole run data (resume, merge, reuse copy them), not with a window of metrics.
    if (!metrics && extra && !paths.iterate.empty()) data.iterates = rows(paths.iterate, H5T_NATIVE_DOUBLE, double{});
    for (const auto* array : {&data.wall_seconds, &data.eval_seconds})
      if (array->size() != (end - begin) * R)
        throw ConfigError("trace file '" + path + "' is damaged: a run dataset has the wrong shape");
    return data;
  }

  RunBlock runs(std::size_t configuration, long first, long count) const {
    if (configuration >= C || first < 0 || count < 0 || hsize_t(first + count) > R)
      throw std::out_of_range("TraceReader::runs: replicates [" + std::to_string(first) + ", " + std::to_string(first + count) +
                              ") of configuration " + std::to_string(configuration) + " in a file of " + std::to_string(C) + " x " +
                              std::to_string(R));
    note_runs_read(count);
    RunBlock block;
    block.configuration = configuration;
    block.first_replicate = first;
    block.count = count;
    const hsize_t c = configuration, r = hsize_t(first), n = hsize_t(count);
    auto per_run = [&](const std::string& name, const std::vector<hsize_t>& start, const std::vector<hsize_t>& counts) {
      try {
        return read_slab<double>(name, H5T_NATIVE_DOUBLE, start, counts);
      } catch (const ChunkChecksumMismatch&) {
        checksum_mismatch(name, configuration, configuration + 1, first, count);
      }
    };
    for (const auto& name : paths.metrics) block.traces.push_back(per_run(name, {c, 0, r, 0}, {1, V, n, K}));
    for (auto code : read_slab<std::int8_t>(paths.status, H5T_NATIVE_INT8, {c, r}, {1, n})) {
      if (code < 0 || code > static_cast<std::int8_t>(RunStatus::nonfinite))
        throw ConfigError("trace file '" + path + "' is damaged: " + paths.status + " holds the unknown code " + std::to_string(code));
      block.status.push_back(static_cast<RunStatus>(code));
    }
    for (auto step : read_slab<std::int64_t>(paths.stop_step, H5T_NATIVE_INT64, {c, r}, {1, n})) block.stop_step.push_back(long(step));
    block.wall_seconds = read_slab<double>(paths.wall_seconds, H5T_NATIVE_DOUBLE, {c, r}, {1, n});
    block.eval_seconds = read_slab<double>(paths.eval_seconds, H5T_NATIVE_DOUBLE, {c, r}, {1, n});
    {
      Id dataset = open_dataset(paths.message);
      Id type = checked(H5Dget_type(dataset.get()), H5Tclose, "dataset type");
      Id file_space = checked(H5Dget_space(dataset.get()), H5Sclose, "dataset space");
      const hsize_t start[2] = {c, r}, counts[2] = {1, n};
      check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, counts, nullptr), "select messages");
      Id memory_space = checked(H5Screate_simple(1, &n, nullptr), H5Sclose, "memory space");
      block.messages = read_strings(type.get(), std::size_t(n), memory_space.get(), [&](hid_t memory_type, void* buffer) {
        return H5Dread(dataset.get(), memory_type, memory_space.get(), file_space.get(), transfer_properties(), buffer);
      });
    }
    for (const auto& [stat, name] : paths.stats)
      block.run_stats.emplace_back(stat, read_slab<double>(name, H5T_NATIVE_DOUBLE, {c, r}, {1, n}));
    for (const auto& name : paths.extra) block.extra.push_back(per_run(name, {c, r, 0}, {1, n, K}));
    for (auto [path, values] : {std::pair{&paths.gradient_evaluations, &block.gradient_evaluations},
                                std::pair{&paths.elapsed_seconds, &block.elapsed_seconds}})
      *values = path->empty() ? std::vector<double>(std::size_t(n * K), kNaN) : per_run(*path, {c, r, 0}, {1, n, K});
    if (paths.targets) {
      block.target_steps = per_run("target_step", {c, r, 0}, {1, n, target_count});
      block.target_gradient_evaluations = per_run("target_gradient_evaluations", {c, r, 0}, {1, n, target_count});
      block.best_so_far = per_run("best_so_far", {c, r, 0}, {1, n, K});
    }
    return block;
  }
};

TraceReader::TraceReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  QuietHdf5Errors quiet;
  Impl& d = *impl_;
  d.path = path;
  d.file = open_for_reading(path);
  const hid_t f = d.file.get();
  const std::string not_ours = "'" + path + "' is an HDF5 file but not a ratelab trace file: ";
  try {
    // H5Aexists < 0 is not "absent": the root's header could not be read (a damaged file), reported below.
    const auto has_root_attribute = [&](const char* name) {
      const htri_t exists = H5Aexists(f, name);
      if (exists < 0) fail(std::string("its root group's header cannot be read (looking for '") + name + "')");
      return exists > 0;
    };
    if (!has_root_attribute("format")) throw ConfigError(not_ours + "its root has no 'format' attribute");
    const ParamValue format = read_attribute(f, "format");
    if (!std::holds_alternative<std::string>(format) || std::get<std::string>(format) != kFormat)
      throw ConfigError(not_ours + "its root attribute format = '" + escape_for_message(format_value(format)) + "', expected '" + kFormat + "'");
    if (!has_root_attribute("schema_version")) throw ConfigError(not_ours + "its root has no 'schema_version' attribute");
    const ParamValue version = read_attribute(f, "schema_version");
    if (!std::holds_alternative<std::int64_t>(version))
      throw ConfigError(not_ours + "its schema_version attribute is not an integer");
    const std::int64_t schema = std::get<std::int64_t>(version);
    if (schema < kOldestReadableSchemaVersion || schema > kSchemaVersion)
      throw ConfigError("trace file '" + path + "' has schema version " + std::to_string(schema) + "; this build of ratelab reads schema versions " +
                        std::to_string(kOldestReadableSchemaVersion) + " to " + std::to_string(kSchemaVersion) +
                        (schema > kSchemaVersion ? " (the file was written by a newer ratelab)" : ""));
    d.schema = int(schema);
    d.outline.schema_version = d.schema;
    d.read_root_attributes();
    d.read_scales();
    if (d.schema == 1) d.read_layout_schema1();
    else d.read_layout_schema2();
    d.outline.status = d.read_status(0, d.C);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("trace file '" + path + "' is damaged: " + e.what());
  }
}

TraceReader::~TraceReader() {
  QuietHdf5Errors quiet;
  impl_.reset();
}

const TraceData& TraceReader::outline() const { return impl_->outline; }

std::vector<std::string> TraceReader::run_statistics() const {
  std::vector<std::string> names;
  for (const auto& [name, path] : impl_->paths.stats) names.push_back(name);
  return names;
}

TraceData TraceReader::configurations(std::size_t begin, std::size_t end) const {
  QuietHdf5Errors quiet;
  const TraceLayout& layout = impl_->outline.layout;
  const std::size_t last = std::min(end, layout.configurations.size());
  AllocationContext context("reading " + impl_->path + ": " + std::to_string(last > begin ? last - begin : 0) +
                            " configurations x " + std::to_string(layout.replicates) + " replicates x " +
                            std::to_string(layout.checkpoints.size()) + " checkpoints at once");
  try {
    return impl_->configurations(begin, end);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::out_of_range&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("trace file '" + impl_->path + "' is damaged: " + e.what());
  }
}

bool TraceReader::checksummed() const {
  QuietHdf5Errors quiet;
  const auto& paths = impl_->paths;
  const std::string& name = !paths.metrics.empty() ? paths.metrics.front() : paths.extra.empty() ? std::string() : paths.extra.front();
  if (name.empty()) return false;
  Id dataset = impl_->open_dataset(name);
  Id dcpl = checked(H5Dget_create_plist(dataset.get()), H5Pclose, "creation properties of " + name);
  unsigned flags = 0;
  std::size_t values = 0;
  const bool has = H5Pget_filter_by_id2(dcpl.get(), H5Z_FILTER_FLETCHER32, &flags, &values, nullptr, 0, nullptr, nullptr) >= 0;
  H5Eclear2(H5E_DEFAULT);
  return has;
}

TraceData TraceReader::window(std::size_t begin, std::size_t end, const std::vector<std::string>& metrics,
                              bool extra_metrics) const {
  QuietHdf5Errors quiet;
  const TraceLayout& layout = impl_->outline.layout;
  end = std::min(end, layout.configurations.size());
  if (begin > end)
    throw std::out_of_range("TraceReader::window: configurations [" + std::to_string(begin) + ", " + std::to_string(end) +
                            ") of a file with " + std::to_string(layout.configurations.size()));
  AllocationContext context("reading " + impl_->path + ": " + std::to_string(end - begin) + " configurations x " +
                            std::to_string(layout.replicates) + " replicates x " + std::to_string(layout.checkpoints.size()) +
                            " checkpoints at once");
  TraceData data;
  try {
    data = impl_->configurations(begin, end, &metrics, extra_metrics);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("trace file '" + impl_->path + "' is damaged: " + e.what());
  }
  data.layout.configurations.assign(layout.configurations.begin() + std::ptrdiff_t(begin),
                                    layout.configurations.begin() + std::ptrdiff_t(end));
  data.first_configuration = 0;
  return data;
}

RunBlock TraceReader::runs(std::size_t configuration, long first, long count) const {
  QuietHdf5Errors quiet;
  try {
    return impl_->runs(configuration, first, count);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::out_of_range&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("trace file '" + impl_->path + "' is damaged: " + e.what());
  }
}

long largest_run_read() { return g_largest_run_read.load(); }
void reset_largest_run_read() { g_largest_run_read.store(0); }

TraceData read_trace_file(const std::string& path) {
  TraceReader reader(path);
  return reader.configurations(0, SIZE_MAX);
}

TraceData read_trace_outline(const std::string& path) {
  TraceReader reader(path);
  return reader.outline();
}

TraceData read_trace_configurations(const std::string& path, std::size_t begin, std::size_t end) {
  TraceReader reader(path);
  return reader.configurations(begin, end);
}

std::vector<unsigned char> read_dataset_bytes(const std::string& path, const std::string& dataset) {
  QuietHdf5Errors quiet;
  Id file = open_for_reading(path);
  if (!path_exists(file.get(), dataset))
    throw ConfigError("HDF5 file '" + path + "' has no dataset '" + dataset + "'");
  Id d = checked(H5Dopen2(file.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + dataset);
  Id type = checked(H5Dget_type(d.get()), H5Tclose, "dataset type");
  std::vector<unsigned char> bytes;
  if (H5Tget_class(type.get()) == H5T_STRING) {
    for (const auto& s : read_string_dataset(d.get())) {
      bytes.insert(bytes.end(), s.begin(), s.end());
      bytes.push_back(0);
    }
    return bytes;
  }
  if (H5Tdetect_class(type.get(), H5T_VLEN) > 0 || H5Tdetect_class(type.get(), H5T_REFERENCE) > 0)
    throw ConfigError("dataset '" + dataset + "' in '" + path + "' holds variable-length or reference data; its bytes are not comparable");
  bytes.resize(element_count(d.get()) * H5Tget_size(type.get()));
  if (!bytes.empty()) check(H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, transfer_properties(), bytes.data()), "read " + dataset);
  return bytes;
}

std::vector<DimensionInfo> dataset_dimensions(const std::string& path, const std::string& dataset) {
  QuietHdf5Errors quiet;
  Id file = open_for_reading(path);
  if (!path_exists(file.get(), dataset))
    throw ConfigError("HDF5 file '" + path + "' has no dataset '" + dataset + "'");
  Id d = checked(H5Dopen2(file.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose, "open dataset " + dataset);
  Id space = checked(H5Dget_space(d.get()), H5Sclose, "dataset space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<DimensionInfo> dims(std::size_t(std::max(rank, 0)));
  for (int i = 0; i < rank; ++i) {
    char label[256] = {0};
    if (H5DSget_label(d.get(), unsigned(i), label, sizeof label) > 0) dims[std::size_t(i)].label = label;
    if (H5DSget_num_scales(d.get(), unsigned(i)) <= 0) continue;
    H5DSiterate_scales(
        d.get(), unsigned(i), nullptr,
        [](hid_t, unsigned, hid_t scale, void* out) -> herr_t {
          char name[256] = {0};
          if (H5Iget_name(scale, name, sizeof name) > 0) static_cast<std::vector<std::string>*>(out)->push_back(name);
          return 0;
        },
        &dims[std::size_t(i)].scales);
  }
  H5Eclear2(H5E_DEFAULT);
  return dims;
}

std::vector<std::pair<std::string, std::vector<std::string>>> attribute_inventory(const std::string& path) {
  QuietHdf5Errors quiet;
  Id file = open_for_reading(path);
  static const std::set<std::string> kScaleAttributes = {"CLASS", "NAME", "REFERENCE_LIST", "DIMENSION_LIST", "DIMENSION_LABELS"};
  auto own = [&](hid_t object) {
    std::vector<std::string> names;
    for (const auto& name : attribute_names(object))
      if (!kScaleAttributes.count(name)) names.push_back(name);
    return names;
  };
  std::vector<std::pair<std::string, std::vector<std::string>>> out{{"/", own(file.get())}};
  for (const auto& name : link_names(file.get())) {
    H5O_info_t info;
    if (H5Oget_info_by_name(file.get(), name.c_str(), &info, H5P_DEFAULT) < 0 || info.type != H5O_TYPE_DATASET) continue;
    Id dataset = checked(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose, "open " + name);
    out.emplace_back(name, own(dataset.get()));
  }
  return out;
}

void write_plain_hdf5_file(const std::string& path, const Attributes& root_attributes) {
  QuietHdf5Errors quiet;
  Id file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose, "create " + path);
  for (const auto& [key, value] : root_attributes) write_attribute(file.get(), key, value);
  const double values[3] = {1.0, 2.0, 3.0};
  Id dataset = checked(H5Dcreate2(file.get(), "data", H5T_IEEE_F64LE, simple_space({3}).get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       H5Dclose, "create dataset data");
  check(H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, transfer_properties(), values), "write dataset data");
}

}  // namespace ratelab::results
