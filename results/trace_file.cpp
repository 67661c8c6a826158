// HDF5 trace files (schema version 1, see results/SCHEMA.md), through the HDF5 C API and the high-level
// dimension-scale library (H5DS), so that h5py, netCDF-4/h5netcdf and xarray see labelled dimensions.
//
// Memory stays bounded however many runs a file holds: write_run() writes the V x K block of each metric
// straight from RunResult::traces (metric-major, so each metric's block is already a [V, K] row-major
// hyperslab of the [C, V, R, K] dataset) into a chunk of exactly that shape, so no chunk is ever read
// back or merged; the only per-call state is the selection on dataspaces created once.
#include "results/trace_file.hpp"

#include <csignal>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <variant>

namespace ratelab::results {

namespace {

constexpr const char* kFormat = "ratelab-trace";
constexpr const char* kStatusCodes = "0 ok, 1 diverged, 2 error, 3 interrupted, 4 missing, 5 nonfinite";
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

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + hdf5_error_text());
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

// The same enum h5py writes for numpy bools, so h5py reads these attributes back as bools.
Id bool_enum_type() {
  Id type = checked(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose, "bool type");
  std::int8_t no = 0, yes = 1;
  check(H5Tenum_insert(type.get(), "FALSE", &no), "bool type");
  check(H5Tenum_insert(type.get(), "TRUE", &yes), "bool type");
  return type;
}

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

// Creation properties shared by every object: no modification times (so identical content gives identical
// files) and attributes kept in creation order (so parameters read back in their declaration order).
void set_common_creation_properties(hid_t plist) {
  check(H5Pset_obj_track_times(plist, false), "creation properties");
  check(H5Pset_attr_creation_order(plist, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED), "creation properties");
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
          Id type = bool_enum_type();
          Id attr = create(type.get(), scalar_space().get());
          const std::int8_t byte = v ? 1 : 0;
          check(H5Awrite(attr.get(), type.get(), &byte), what);
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
    return H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
  });
}

template <class T>
std::vector<T> read_numeric_dataset(hid_t dataset, hid_t memory_type) {
  std::vector<T> values(element_count(dataset));
  if (!values.empty()) check(H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), "read dataset");
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
  const hsize_t flat = w.count;
  w.memory_space = checked(H5Screate_simple(1, &flat, nullptr), H5Sclose, "memory space");
  return w;
}

template <class T>
std::vector<T> read_numeric_rows(hid_t dataset, hid_t memory_type, std::size_t begin, std::size_t end) {
  // The whole dataset without a selection: HDF5 maps a selection onto each chunk it touches, which costs
  // more than the data when the chunks are small (one run each).
  if (begin == 0 && end == std::size_t(rows_of(dataset))) return read_numeric_dataset<T>(dataset, memory_type);
  RowWindow w = select_rows(dataset, begin, end);
  std::vector<T> values(w.count);
  if (!values.empty())
    check(H5Dread(dataset, memory_type, w.memory_space.get(), w.file_space.get(), H5P_DEFAULT, values.data()), "read dataset");
  return values;
}

std::vector<std::string> read_string_rows(hid_t dataset, std::size_t begin, std::size_t end) {
  if (begin == 0 && end == std::size_t(rows_of(dataset))) return read_string_dataset(dataset);
  Id type = checked(H5Dget_type(dataset), H5Tclose, "dataset type");
  if (H5Tget_class(type.get()) != H5T_STRING) throw std::runtime_error("expected a string dataset");
  RowWindow w = select_rows(dataset, begin, end);
  return read_strings(type.get(), w.count, w.memory_space.get(), [&](hid_t memory_type, void* buffer) {
    return H5Dread(dataset, memory_type, w.memory_space.get(), w.file_space.get(), H5P_DEFAULT, buffer);
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
  if (file < 0) throw ConfigError("cannot open HDF5 file '" + path + "': " + hdf5_error_text());
  return Id(file, H5Fclose);
}

std::string as_text(const ParamValue& value) {
  return std::holds_alternative<std::string>(value) ? std::get<std::string>(value) : format_value(value);
}

std::string escape_for_message(std::string s) {
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
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
    for (const auto& [key, value] : record.parameters)
      if (key.rfind("instance.", 0) == 0) problems.push_back(where + " parameter '" + key + "' starts with the reserved prefix 'instance.'");
  }
  check_unique_keys(layout.root, "root attributes", {"schema_version", "format"}, problems);
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

  // Declared first so it is closed last.
  Id file;
  Id string_type;
  Id configuration_scale, replicate_scale;  // kept open to attach scales to lazily created stats
  Id trace_space, trace_block_space;        // [C, V, R, K] with the selection of one run; [V * K] in memory
  Id run_space, one_value_space;            // [C, R] with the selection of one run; one element in memory
  std::vector<Id> traces;                   // one per metric
  std::vector<std::string> extra_names;
  std::vector<Id> extra;                    // /extra/<name>: [C, R, K]
  Id extra_space, extra_block_space;        // with the selection of one run; [K] in memory
  Id status, stop_step, wall_seconds, eval_seconds, message;
  Id stats_group;
  std::vector<std::pair<std::string, Id>> stats;  // a handful per run: a linear search beats a map here
  // Crash-safety tests: RATELAB_FAULT_KILL_IN_WRITE=n kills the process with SIGKILL in the middle of the
  // n-th write_run (traces written, run fields not), the worst moment for the HDF5 file.
  long fault_kill_in_write = [] {
    const char* v = std::getenv("RATELAB_FAULT_KILL_IN_WRITE");
    return v ? std::atol(v) : 0L;
  }();
  long runs_written = 0;

  ~Impl() {
    if (committed) return;
    close_all();
    std::error_code ignored;
    std::filesystem::remove(partial_path, ignored);
  }

  herr_t close_all() {
    stats.clear();
    for (Id* id : {&stats_group, &message, &eval_seconds, &wall_seconds, &stop_step, &status, &one_value_space, &run_space,
                   &trace_block_space, &trace_space, &replicate_scale, &configuration_scale, &string_type})
      id->reset();
    traces.clear();
    extra.clear();
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
    stats.emplace_back(name, create_run_dataset("/runs/stats/" + name, H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE));
    return stats.back().second.get();
  }

  void create_layout(const TraceLayout& layout);

  void write_run_value(hid_t dataset, hid_t memory_type, const void* value, const char* what) {
    check(H5Dwrite(dataset, memory_type, one_value_space.get(), run_space.get(), H5P_DEFAULT, value),
          std::string("write ") + what + " to " + partial_path);
  }
};

void TraceWriter::Impl::create_layout(const TraceLayout& layout) {
  Impl& w = *this;
  const hid_t file = w.file.get();
  w.string_type = utf8_string_type();
  const hid_t string_type = w.string_type.get();

  // Root attributes: identity first, then provenance in the caller's order.
  write_attribute(file, "schema_version", std::int64_t{kSchemaVersion});
  write_attribute(file, "format", std::string(kFormat));
  write_attribute(file, "experiment_name", layout.experiment_name);
  for (const auto& [key, value] : layout.root)
    if (key != "experiment_name") write_attribute(file, key, value);

  Id dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
  set_common_creation_properties(dcpl.get());
  {
    Id experiment = checked(H5Dcreate2(file, "experiment", string_type, scalar_space().get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                            H5Dclose, "create dataset experiment");
    const char* text = layout.experiment_text.c_str();
    check(H5Dwrite(experiment.get(), string_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &text), "write dataset experiment");
  }

  // Dimension scales.
  auto make_scale = [&](const char* name, hid_t file_type, hsize_t size, hid_t memory_type, const void* values) {
    Id dataset = checked(H5Dcreate2(file, name, file_type, simple_space({size}).get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                         H5Dclose, std::string("create dimension scale ") + name);
    check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), std::string("write ") + name);
    check(H5DSset_scale(dataset.get(), name), std::string("make dimension scale ") + name);
    return dataset;
  };
  std::vector<const char*> texts;
  for (const auto& record : layout.configurations) texts.push_back(record.id.c_str());
  w.configuration_scale = make_scale("configuration", string_type, w.configurations, string_type, texts.data());
  texts.clear();
  for (const auto& view : layout.views) texts.push_back(view.c_str());
  Id view_scale = make_scale("view", string_type, w.views, string_type, texts.data());
  std::vector<std::int64_t> integers(std::size_t(w.replicates));
  for (std::size_t r = 0; r < integers.size(); ++r) integers[r] = std::int64_t(r);
  w.replicate_scale = make_scale("replicate", H5T_STD_I64LE, w.replicates, H5T_NATIVE_INT64, integers.data());
  integers.assign(layout.checkpoints.begin(), layout.checkpoints.end());
  Id step_scale = make_scale("step", H5T_STD_I64LE, w.checkpoints, H5T_NATIVE_INT64, integers.data());

  // Configuration records.
  {
    Id group = create_group(file, "configurations");
    for (std::size_t c = 0; c < layout.configurations.size(); ++c) {
      const auto& record = layout.configurations[c];
      Id entry = create_group(group.get(), configuration_group_name(c));
      write_attribute(entry.get(), "id", record.id);
      write_attribute(entry.get(), "label", record.label);
      for (const auto& [key, value] : record.parameters) write_attribute(entry.get(), key, value);
      for (const auto& [key, value] : record.instance) write_attribute(entry.get(), "instance." + key, value);
    }
  }

  // Traces: one chunk per (configuration, replicate) run, which is exactly what write_run writes.
  // Uncompressed on purpose: shuffle + deflate made writing 100,000 runs (640 MB of traces) 5x slower
  // (65 s instead of 11 s) for an 18% smaller file; `h5repack -f SHUF -f GZIP=4` compresses afterwards.
  w.trace_space = simple_space({w.configurations, w.views, w.replicates, w.checkpoints});
  w.trace_block_space = simple_space({w.views * w.checkpoints});
  {
    Id group = create_group(file, "traces");
    Id trace_dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
    set_common_creation_properties(trace_dcpl.get());
    const hsize_t chunk[4] = {1, w.views, 1, w.checkpoints};
    check(H5Pset_chunk(trace_dcpl.get(), 4, chunk), "trace chunking");
    check(H5Pset_fill_value(trace_dcpl.get(), H5T_NATIVE_DOUBLE, &kNaN), "trace fill value");
    for (const auto& name : layout.metrics) {
      const Metric metric = metric_from_name(name);
      Id dataset = checked(H5Dcreate2(group.get(), name.c_str(), H5T_IEEE_F64LE, w.trace_space.get(), H5P_DEFAULT,
                                      trace_dcpl.get(), H5P_DEFAULT),
                           H5Dclose, "create trace dataset " + name);
      attach_scales(dataset.get(), {{w.configuration_scale.get(), "configuration"},
                                    {view_scale.get(), "view"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {step_scale.get(), "step"}});
      write_attribute(dataset.get(), "description", std::string(metric_doc(metric)));
      write_attribute(dataset.get(), "units", std::string(metric_units(metric)));
      w.traces.push_back(std::move(dataset));
    }
  }

  // Problem-specific metrics of the last iterate: [C, R, K], one chunk per run.
  w.extra_names = layout.extra_metrics;
  w.extra_space = simple_space({w.configurations, w.replicates, w.checkpoints});
  w.extra_block_space = simple_space({w.checkpoints});
  {
    Id group = create_group(file, "extra");
    Id extra_dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, "dataset properties");
    set_common_creation_properties(extra_dcpl.get());
    const hsize_t chunk[3] = {1, 1, w.checkpoints};
    check(H5Pset_chunk(extra_dcpl.get(), 3, chunk), "extra chunking");
    check(H5Pset_fill_value(extra_dcpl.get(), H5T_NATIVE_DOUBLE, &kNaN), "extra fill value");
    for (const auto& name : layout.extra_metrics) {
      Id dataset = checked(H5Dcreate2(group.get(), name.c_str(), H5T_IEEE_F64LE, w.extra_space.get(), H5P_DEFAULT,
                                      extra_dcpl.get(), H5P_DEFAULT),
                           H5Dclose, "create extra metric dataset " + name);
      attach_scales(dataset.get(), {{w.configuration_scale.get(), "configuration"},
                                    {w.replicate_scale.get(), "replicate"},
                                    {step_scale.get(), "step"}});
      write_attribute(dataset.get(), "description",
                      std::string("problem-specific metric of the last iterate (see `ratelab describe` of the problem)"));
      w.extra.push_back(std::move(dataset));
    }
  }

  // Run fields.
  w.run_space = simple_space({w.configurations, w.replicates});
  w.one_value_space = simple_space({1});
  Id runs = create_group(file, "runs");
  const auto missing = static_cast<std::int8_t>(RunStatus::missing);
  w.status = w.create_run_dataset("/runs/status", H5T_STD_I8LE, &missing, H5T_NATIVE_INT8);
  write_attribute(w.status.get(), "codes", std::string(kStatusCodes));
  w.stop_step = w.create_run_dataset("/runs/stop_step", H5T_STD_I64LE, &kStopStepFill, H5T_NATIVE_INT64);
  w.wall_seconds = w.create_run_dataset("/runs/wall_seconds", H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE);
  write_attribute(w.wall_seconds.get(), "units", std::string("s"));
  w.eval_seconds = w.create_run_dataset("/runs/eval_seconds", H5T_IEEE_F64LE, &kNaN, H5T_NATIVE_DOUBLE);
  write_attribute(w.eval_seconds.get(), "units", std::string("s"));
  w.message = w.create_run_dataset("/runs/message", string_type, nullptr, 0);
  w.stats_group = create_group(runs.get(), "stats");
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
      check(H5Dwrite(w.traces[m].get(), H5T_NATIVE_DOUBLE, w.trace_block_space.get(), w.trace_space.get(), H5P_DEFAULT,
                     result.traces.data() + m * block),
            "write traces to " + w.partial_path);
  }
  if (++w.runs_written == w.fault_kill_in_write) std::raise(SIGKILL);
  if (!result.extra_names.empty()) {
    const hsize_t start[3] = {configuration, hsize_t(replicate), 0};
    const hsize_t count[3] = {1, 1, w.checkpoints};
    check(H5Sselect_hyperslab(w.extra_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr), "select extra block");
    for (std::size_t e = 0; e < result.extra_names.size(); ++e) {
      const auto it = std::find(w.extra_names.begin(), w.extra_names.end(), result.extra_names[e]);
      if (it == w.extra_names.end())
        throw std::invalid_argument("TraceWriter::write_run: extra metric '" + result.extra_names[e] +
                                    "' is not in the layout's extra_metrics");
      if (result.extra_traces.size() < (e + 1) * w.checkpoints)
        throw std::invalid_argument("TraceWriter::write_run: the run's extra traces are shorter than extra x checkpoints");
      check(H5Dwrite(w.extra[std::size_t(it - w.extra_names.begin())].get(), H5T_NATIVE_DOUBLE, w.extra_block_space.get(),
                     w.extra_space.get(), H5P_DEFAULT, result.extra_traces.data() + e * w.checkpoints),
            "write extra metric to " + w.partial_path);
    }
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

std::optional<std::size_t> TraceData::metric_index(const std::string& name) const {
  for (std::size_t m = 0; m < layout.metrics.size(); ++m)
    if (layout.metrics[m] == name) return m;
  return std::nullopt;
}

namespace {

// run_data: also the runs' data (else the outline: layout and statuses); window: the configurations whose
// run data and statuses are read (all when empty).
struct ConfigurationWindow {
  std::size_t begin = 0, end = SIZE_MAX;
};
TraceData read_contents(hid_t file, const std::string& path, bool run_data, ConfigurationWindow window) {
  TraceData data;
  auto open_dataset = [&](const std::string& name) {
    if (!path_exists(file, name))
      throw ConfigError("trace file '" + path + "' is incomplete: dataset '" + name + "' is missing");
    return checked(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose, "open " + name);
  };
  auto check_shape = [&](hid_t dataset, const std::string& name, std::vector<hsize_t> expected) {
    Id space = checked(H5Dget_space(dataset), H5Sclose, "dataset space");
    std::vector<hsize_t> dims(std::size_t(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    if (dims != expected) throw ConfigError("trace file '" + path + "' is damaged: dataset '" + name + "' has the wrong shape");
  };

  for (const auto& name : attribute_names(file)) {
    ParamValue value = read_attribute(file, name);
    if (name == "schema_version") continue;
    if (name == "format") continue;
    if (name == "experiment_name" && std::holds_alternative<std::string>(value)) data.layout.experiment_name = std::get<std::string>(value);
    data.layout.root.emplace_back(name, std::move(value));
  }
  data.schema_version = kSchemaVersion;
  {
    Id experiment = open_dataset("experiment");
    auto text = read_string_dataset(experiment.get());
    data.layout.experiment_text = text.empty() ? "" : text[0];
  }

  Id configuration_scale = open_dataset("configuration");
  const auto ids = read_string_dataset(configuration_scale.get());
  Id view_scale = open_dataset("view");
  data.layout.views = read_string_dataset(view_scale.get());
  Id replicate_scale = open_dataset("replicate");
  data.layout.replicates = long(element_count(replicate_scale.get()));
  Id step_scale = open_dataset("step");
  for (auto step : read_numeric_dataset<std::int64_t>(step_scale.get(), H5T_NATIVE_INT64)) data.layout.checkpoints.push_back(long(step));
  const hsize_t C = ids.size(), V = data.layout.views.size(), R = hsize_t(data.layout.replicates), K = data.layout.checkpoints.size();
  window.end = std::min<std::size_t>(window.end, C);
  if (window.begin > window.end)
    throw std::out_of_range("read_trace_configurations: configurations [" + std::to_string(window.begin) + ", " +
                            std::to_string(window.end) + ") of a file with " + std::to_string(C));
  data.first_configuration = window.begin;
  auto numeric_rows = [&]<class T>(hid_t dataset, hid_t memory_type, T) {
    return read_numeric_rows<T>(dataset, memory_type, window.begin, window.end);
  };

  for (std::size_t c = 0; c < ids.size(); ++c) {
    const std::string name = "configurations/" + configuration_group_name(c);
    if (!path_exists(file, name))
      throw ConfigError("trace file '" + path + "' is incomplete: group '" + name + "' is missing");
    Id group = checked(H5Gopen2(file, name.c_str(), H5P_DEFAULT), H5Gclose, "open " + name);
    ConfigurationRecord record;
    for (const auto& key : attribute_names(group.get())) {
      ParamValue value = read_attribute(group.get(), key);
      if (key == "id") record.id = as_text(value);
      else if (key == "label") record.label = as_text(value);
      else if (key.rfind("instance.", 0) == 0) record.instance.emplace_back(key.substr(9), std::move(value));
      else record.parameters.emplace_back(key, std::move(value));
    }
    if (record.id != ids[c])
      throw ConfigError("trace file '" + path + "' is damaged: " + name + " has id '" + record.id + "' but /configuration[" +
                        std::to_string(c) + "] is '" + ids[c] + "'");
    data.layout.configurations.push_back(std::move(record));
  }

  if (!path_exists(file, "traces")) throw ConfigError("trace file '" + path + "' is incomplete: group 'traces' is missing");
  {
    Id group = checked(H5Gopen2(file, "traces", H5P_DEFAULT), H5Gclose, "open traces");
    for (const auto& metric : link_names(group.get())) {
      const std::string name = "traces/" + metric;
      Id dataset = open_dataset(name);
      check_shape(dataset.get(), name, {C, V, R, K});
      data.layout.metrics.push_back(metric);
      data.metric_units.push_back(H5Aexists(dataset.get(), "units") > 0 ? as_text(read_attribute(dataset.get(), "units")) : "");
      if (run_data) data.traces.push_back(numeric_rows(dataset.get(), H5T_NATIVE_DOUBLE, double{}));
    }
  }

  auto read_run_doubles = [&](const std::string& name) {
    Id dataset = open_dataset(name);
    check_shape(dataset.get(), name, {C, R});
    return numeric_rows(dataset.get(), H5T_NATIVE_DOUBLE, double{});
  };
  {
    Id dataset = open_dataset("runs/status");
    check_shape(dataset.get(), "runs/status", {C, R});
    for (auto code : numeric_rows(dataset.get(), H5T_NATIVE_INT8, std::int8_t{})) {
      if (code < 0 || code > static_cast<std::int8_t>(RunStatus::nonfinite))
        throw ConfigError("trace file '" + path + "' is damaged: runs/status holds the unknown code " + std::to_string(code));
      data.status.push_back(static_cast<RunStatus>(code));
    }
  }
  if (!run_data) {
    // The outline: the extra metrics' names belong to the layout; their values, like the rest, are skipped.
    if (path_exists(file, "extra")) {
      Id group = checked(H5Gopen2(file, "extra", H5P_DEFAULT), H5Gclose, "open extra");
      for (const auto& name : link_names(group.get())) data.layout.extra_metrics.push_back(name);
    }
    return data;
  }
  {
    Id dataset = open_dataset("runs/stop_step");
    check_shape(dataset.get(), "runs/stop_step", {C, R});
    for (auto step : numeric_rows(dataset.get(), H5T_NATIVE_INT64, std::int64_t{})) data.stop_step.push_back(long(step));
  }
  data.wall_seconds = read_run_doubles("runs/wall_seconds");
  data.eval_seconds = read_run_doubles("runs/eval_seconds");
  {
    Id dataset = open_dataset("runs/message");
    check_shape(dataset.get(), "runs/message", {C, R});
    data.messages = read_string_rows(dataset.get(), window.begin, window.end);
  }
  if (path_exists(file, "runs/stats")) {
    Id group = checked(H5Gopen2(file, "runs/stats", H5P_DEFAULT), H5Gclose, "open runs/stats");
    for (const auto& stat : link_names(group.get())) data.run_stats.emplace_back(stat, read_run_doubles("runs/stats/" + stat));
  }
  if (path_exists(file, "extra")) {
    Id group = checked(H5Gopen2(file, "extra", H5P_DEFAULT), H5Gclose, "open extra");
    for (const auto& name : link_names(group.get())) {
      Id dataset = open_dataset("extra/" + name);
      check_shape(dataset.get(), "extra/" + name, {C, R, K});
      data.layout.extra_metrics.push_back(name);
      data.extra.push_back(numeric_rows(dataset.get(), H5T_NATIVE_DOUBLE, double{}));
    }
  }
  return data;
}

}  // namespace

namespace {
TraceData read_file(const std::string& path, bool run_data, ConfigurationWindow window = {}) {
  QuietHdf5Errors quiet;
  Id file = open_for_reading(path);
  const hid_t f = file.get();
  const std::string not_ours = "'" + path + "' is an HDF5 file but not a ratelab trace file: ";
  if (H5Aexists(f, "format") <= 0) throw ConfigError(not_ours + "its root has no 'format' attribute");
  const ParamValue format = read_attribute(f, "format");
  if (!std::holds_alternative<std::string>(format) || std::get<std::string>(format) != kFormat)
    throw ConfigError(not_ours + "its root attribute format = '" + escape_for_message(format_value(format)) + "', expected '" + kFormat + "'");
  if (H5Aexists(f, "schema_version") <= 0) throw ConfigError(not_ours + "its root has no 'schema_version' attribute");
  const ParamValue version = read_attribute(f, "schema_version");
  if (!std::holds_alternative<std::int64_t>(version))
    throw ConfigError(not_ours + "its schema_version attribute is not an integer");
  const std::int64_t schema = std::get<std::int64_t>(version);
  if (schema != kSchemaVersion)
    throw ConfigError("trace file '" + path + "' has schema version " + std::to_string(schema) + "; this build of ratelab reads schema version " +
                      std::to_string(kSchemaVersion) + (schema > kSchemaVersion ? " (the file was written by a newer ratelab)" : ""));
  try {
    return read_contents(f, path, run_data, window);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError("trace file '" + path + "' is damaged: " + e.what());
  }
}
}  // namespace

TraceData read_trace_file(const std::string& path) { return read_file(path, true); }

TraceData read_trace_outline(const std::string& path) { return read_file(path, false); }

TraceData read_trace_configurations(const std::string& path, std::size_t begin, std::size_t end) {
  return read_file(path, true, {begin, end});
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
  if (!bytes.empty()) check(H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "read " + dataset);
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

void write_plain_hdf5_file(const std::string& path, const Attributes& root_attributes) {
  QuietHdf5Errors quiet;
  Id file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose, "create " + path);
  for (const auto& [key, value] : root_attributes) write_attribute(file.get(), key, value);
  const double values[3] = {1.0, 2.0, 3.0};
  Id dataset = checked(H5Dcreate2(file.get(), "data", H5T_IEEE_F64LE, simple_space({3}).get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                       H5Dclose, "create dataset data");
  check(H5Dwrite(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), "write dataset data");
}

}  // namespace ratelab::results
