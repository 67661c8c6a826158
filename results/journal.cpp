#include "results/journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>

namespace ratelab::results {

namespace {

constexpr char kMagic[8] = {'R', 'L', 'J', 'O', 'U', 'R', 'N', '1'};

// CRC-32 in parts: crc32_final(crc32_update(crc32_update(kCrcStart, a), b)) is the CRC of a then b.
constexpr std::uint32_t kCrcStart = 0xFFFFFFFFu;
std::uint32_t crc32_update(std::uint32_t c, const unsigned char* data, std::size_t size) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (std::size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c;
}
std::uint32_t crc32(const unsigned char* data, std::size_t size) { return crc32_update(kCrcStart, data, size) ^ 0xFFFFFFFFu; }

std::uint64_t fnv1a(const std::string& s, std::uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

template <class T>
void put(std::vector<unsigned char>& out, const T& value) {
  const auto* p = reinterpret_cast<const unsigned char*>(&value);
  out.insert(out.end(), p, p + sizeof(T));
}
void put_string(std::vector<unsigned char>& out, const std::string& s) {
  put(out, std::uint32_t(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

class Reader {
 public:
  Reader(const unsigned char* data, std::size_t size) : p_(data), end_(data + size) {}
  template <class T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<std::uint32_t>();
    need(n);
    std::string s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  bool done() const { return p_ == end_; }
  std::size_t remaining() const { return std::size_t(end_ - p_); }

 private:
  void need(std::size_t n) {
    if (std::size_t(end_ - p_) < n) throw std::runtime_error("journal record shorter than its content");
  }
  const unsigned char* p_;
  const unsigned char* end_;
};

void encode(std::vector<unsigned char>& out, std::size_t configuration, long replicate, const RunResult& r) {
  // Header (payload size, CRC-32) first, filled in once the payload is known.
  out.assign(8, 0);
  put(out, std::uint64_t(configuration));
  put(out, std::int64_t(replicate));
  put(out, std::int8_t(r.status));
  put(out, std::int64_t(r.stop_step));
  put(out, r.wall_seconds);
  put(out, r.eval_seconds);
  put_string(out, r.message);
  put(out, std::uint32_t(r.traces.size()));
  for (double v : r.traces) put(out, v);
  put(out, std::uint32_t(r.stats.size()));
  for (const auto& [name, value] : r.stats) {
    put_string(out, name);
    put(out, value);
  }
  put(out, std::uint32_t(r.extra_names.size()));
  for (const auto& name : r.extra_names) put_string(out, name);
  put(out, std::uint32_t(r.extra_traces.size()));
  for (double v : r.extra_traces) put(out, v);
  // The per-checkpoint costs come last: records written before them end here and still decode.
  for (const auto* costs : {&r.gradient_evaluations, &r.elapsed_seconds}) {
    put(out, std::uint32_t(costs->size()));
    for (double v : *costs) put(out, v);
  }
  // The recorded iterates (experiment.record_iterates), after the costs for the same reason.
  put(out, std::uint64_t(r.iterates.size()));
  for (double v : r.iterates) put(out, v);
  // Then the hitting times (empty without targets), so records written before them end above.
  for (const auto* series : {&r.target_steps, &r.target_gradient_evaluations, &r.best_so_far}) {
    put(out, std::uint32_t(series->size()));
    for (double v : *series) put(out, v);
  }
  const auto size = std::uint32_t(out.size() - 8);
  const std::uint32_t crc = crc32(out.data() + 8, size);
  std::memcpy(out.data(), &size, 4);
  std::memcpy(out.data() + 4, &crc, 4);
}

JournalRecord decode(const unsigned char* data, std::size_t size) {
  Reader in(data, size);
  JournalRecord rec;
  rec.configuration = std::size_t(in.get<std::uint64_t>());
  rec.replicate = long(in.get<std::int64_t>());
  rec.result.status = RunStatus(in.get<std::int8_t>());
  rec.result.stop_step = long(in.get<std::int64_t>());
  rec.result.wall_seconds = in.get<double>();
  rec.result.eval_seconds = in.get<double>();
  rec.result.message = in.get_string();
  rec.result.traces.resize(in.get<std::uint32_t>());
  for (double& v : rec.result.traces) v = in.get<double>();
  const auto stats = in.get<std::uint32_t>();
  for (std::uint32_t i = 0; i < stats; ++i) {
    std::string name = in.get_string();
    rec.result.stats.emplace_back(std::move(name), in.get<double>());
  }
  rec.result.extra_names.resize(in.get<std::uint32_t>());
  for (auto& name : rec.result.extra_names) name = in.get_string();
  rec.result.extra_traces.resize(in.get<std::uint32_t>());
  for (double& v : rec.result.extra_traces) v = in.get<double>();
  if (!in.done())
    for (auto* costs : {&rec.result.gradient_evaluations, &rec.result.elapsed_seconds}) {
      costs->resize(in.get<std::uint32_t>());
      for (double& v : *costs) v = in.get<double>();
    }
  if (!in.done()) {
    const auto count = in.get<std::uint64_t>();
    if (count > in.remaining() / sizeof(double)) throw std::runtime_error("journal record shorter than its content");
    rec.result.iterates.resize(std::size_t(count));
    for (double& v : rec.result.iterates) v = in.get<double>();
  }
  if (!in.done())
    for (auto* series : {&rec.result.target_steps, &rec.result.target_gradient_evaluations, &rec.result.best_so_far}) {
      series->resize(in.get<std::uint32_t>());
      for (double& v : *series) v = in.get<double>();
    }
  if (!in.done()) throw std::runtime_error("journal record longer than its content");
  return rec;
}

void write_all(int fd, const unsigned char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw WriteError(path, errno);
    }
    data += n;
    size -= std::size_t(n);
  }
}

}  // namespace

void encode_record(std::vector<unsigned char>& out, std::size_t configuration, long replicate, const RunResult& result) {
  encode(out, configuration, replicate, result);
}

JournalRecord decode_record(const unsigned char* data, std::size_t size) {
  if (size < 8) throw std::runtime_error("run record shorter than its header");
  std::uint32_t payload, crc;
  std::memcpy(&payload, data, 4);
  std::memcpy(&crc, data + 4, 4);
  if (size - 8 != payload) throw std::runtime_error("run record size does not match its header");
  if (crc32(data + 8, payload) != crc) throw std::runtime_error("run record fails its CRC check");
  return decode(data + 8, payload);
}

std::uint64_t layout_fingerprint(const TraceLayout& layout) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  std::istringstream text(layout.experiment_text);
  std::string line;
  while (std::getline(text, line))
    if (!line.empty() && line[0] != '#') h = fnv1a(line + "\n", h);
  for (const auto& c : layout.configurations) h = fnv1a("config " + c.id + "\n", h);
  h = fnv1a("replicates " + std::to_string(layout.replicates) + "\n", h);
  for (long t : layout.checkpoints) h = fnv1a("step " + std::to_string(t) + "\n", h);
  for (const auto& v : layout.views) h = fnv1a("view " + v + "\n", h);
  for (const auto& m : layout.metrics) h = fnv1a("metric " + m + "\n", h);
  for (const auto& m : layout.extra_metrics) h = fnv1a("extra " + m + "\n", h);
  if (layout.iterate_dimension > 0) h = fnv1a("iterates " + std::to_string(layout.iterate_dimension) + "\n", h);
  // The random-stream layout the runs were drawn with (absent: layout 1, hashed as nothing, so files and
  // journals written before it keep their fingerprints): a file never mixes runs of two layouts.
  for (const auto& [key, value] : layout.root)
    if (const auto* version = std::get_if<std::int64_t>(&value); key == "stream_layout_version" && version && *version != 1)
      h = fnv1a("stream_layout_version " + std::to_string(*version) + "\n", h);
  return h;
}

Journal::Journal(const std::string& path, std::uint64_t fingerprint, const std::function<void(const RunVisitor&)>& recovered)
    : path_(path) {
  const std::string tmp = path + ".tmp";
  fd_ = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw ConfigError("cannot create the run journal " + tmp + ": " + std::strerror(errno));
  std::vector<unsigned char> header(kMagic, kMagic + sizeof kMagic);
  put(header, fingerprint);
  bool any = false;
  try {
    write_all(fd_, header.data(), header.size(), tmp);
    if (recovered)
      recovered([&](std::size_t configuration, long replicate, const RunResult& result) {
        any = true;
        encode(buffer_, configuration, replicate, result);
        write_all(fd_, buffer_.data(), buffer_.size(), tmp);
        ++records_;
      });
  } catch (const WriteError& e) {
    // Nothing was replaced yet: the old journal (if any) still holds every recovered record.
    ::close(fd_);
    ::unlink(tmp.c_str());
    throw ConfigError("cannot create the run journal " + tmp + ": " + std::strerror(e.error_number()) +
                      (any ? "; " + path + " is unchanged and still holds the finished runs" : std::string()));
  } catch (...) {  // reading the recovered runs failed (a damaged file): the old journal stays as it was
    ::close(fd_);
    ::unlink(tmp.c_str());
    throw;
  }
  // Recovered records must be on disk before the old journal that holds them is replaced by this one (a
  // power cut after the rename would otherwise lose both copies). A new journal carries nothing, so it
  // is not synced: the journal's guarantee is against kills (a record in the page cache survives
  // SIGKILL), never per-run durability, and the fsync was half of a 1-step run's 0.12 s.
  if ((any && ::fsync(fd_) != 0) || ::rename(tmp.c_str(), path.c_str()) != 0)
    throw ConfigError("cannot install the run journal " + path + ": " + std::strerror(errno));
}

Journal::~Journal() {
  if (fd_ >= 0) ::close(fd_);
}

void Journal::append(std::size_t configuration, long replicate, const RunResult& result) {
  encode(buffer_, configuration, replicate, result);
  write_all(fd_, buffer_.data(), buffer_.size(), path_);
  ++records_;
}

void Journal::remove() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(path_.c_str());
}

JournalReader::JournalReader(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd_ < 0 || ::fstat(fd_, &st) != 0) {
    if (fd_ >= 0) ::close(fd_);
    throw ConfigError("cannot read the run journal " + path);
  }
  size_ = std::uint64_t(st.st_size);
  if (size_ < sizeof kMagic + 8 || std::memcmp(bytes(0, sizeof kMagic), kMagic, sizeof kMagic) != 0) {
    ::close(fd_);
    throw ConfigError(path + " is not a ratelab run journal");
  }
  std::memcpy(&fingerprint_, bytes(sizeof kMagic, 8), 8);
}

JournalReader::~JournalReader() { ::close(fd_); }

const unsigned char* JournalReader::bytes(std::uint64_t pos, std::size_t n) {
  // A window of at least 1 MiB moving forward with the reads: the scan and the resynchronization move forward.
  constexpr std::size_t kWindow = std::size_t(1) << 20;
  if (pos < buffer_start_ || pos + n > buffer_start_ + buffer_.size()) {
    buffer_.resize(std::size_t(std::min<std::uint64_t>(std::max(n, kWindow), size_ - pos)));
    std::size_t done = 0;
    while (done < buffer_.size()) {
      const ssize_t got = ::pread(fd_, buffer_.data() + done, buffer_.size() - done, off_t(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) throw ConfigError("cannot read the run journal " + path_ + ": " + (got < 0 ? std::strerror(errno) : "it shrank while read"));
      done += std::size_t(got);
    }
    buffer_start_ = pos;
  }
  return buffer_.data() + (pos - buffer_start_);
}

// The record at `pos`, if it passes every check; its size (header included) in `length`. A record far larger
// than the largest valid one seen (`largest`, 0: none yet) is not checked, which keeps the scan over a damaged
// stretch from summing CRCs over the file.
std::optional<JournalRecord> JournalReader::valid_record(std::uint64_t pos, std::size_t largest, std::size_t& length) {
  if (size_ - pos < 8) return std::nullopt;
  std::uint32_t size, crc;
  const unsigned char* header = bytes(pos, 8);
  std::memcpy(&size, header, 4);
  std::memcpy(&crc, header + 4, 4);
  if (size_ - pos - 8 < size) return std::nullopt;
  if (largest > 0 && size > 2 * largest + 4096) return std::nullopt;
  // The CRC in parts of at most the window, so that a damaged size field costs no memory.
  std::uint32_t sum = kCrcStart;
  for (std::uint64_t at = pos + 8, end = pos + 8 + size; at < end;) {
    const std::size_t part = std::size_t(std::min<std::uint64_t>(end - at, std::uint64_t(1) << 20));
    sum = crc32_update(sum, bytes(at, part), part);
    at += part;
  }
  if ((sum ^ 0xFFFFFFFFu) != crc) return std::nullopt;
  try {
    JournalRecord record = decode(bytes(pos + 8, size), size);
    length = 8 + std::size_t(size);
    return record;
  } catch (const std::runtime_error&) {
    return std::nullopt;  // the CRC matched by chance over bytes that are not a record
  }
}

JournalContents JournalReader::scan(const std::function<void(std::uint64_t offset, JournalRecord&& record)>& each) {
  JournalContents out;
  out.fingerprint = fingerprint_;
  // Records of one journal have nearly one size (the same layout).
  std::size_t largest = 0;
  std::uint64_t pos = sizeof kMagic + 8;
  while (pos < size_) {
    std::size_t length = 0;
    if (auto record = valid_record(pos, largest, length)) {
      largest = std::max(largest, length - 8);
      each(pos, std::move(*record));
      pos += length;
      continue;
    }
    // Damaged here: the next valid record, if any. First where this record's own header says it ends (its
    // payload was damaged, its size was not), then every later byte offset.
    std::uint64_t next = size_;
    std::uint32_t claimed = 0;
    if (size_ - pos >= 8) std::memcpy(&claimed, bytes(pos, 8), 4);
    std::size_t probe_length = 0;
    if (size_ - pos >= 8 && size_ - pos - 8 > claimed && valid_record(pos + 8 + claimed, largest, probe_length))
      next = pos + 8 + claimed;
    for (std::uint64_t q = pos + 1; next == size_ && q + 8 <= size_; ++q)
      if (valid_record(q, largest, probe_length)) next = q;
    if (next == size_) {
      out.truncated = true;  // cut short by a kill (or damaged to the end); everything before it is intact
      break;
    }
    out.damaged_stretches += 1;
    out.damaged_bytes += std::size_t(next - pos);
    pos = next;
  }
  return out;
}

JournalRecord JournalReader::record_at(std::uint64_t offset) {
  std::size_t length = 0;
  if (auto record = valid_record(offset, 0, length)) return std::move(*record);
  throw ConfigError("the run journal " + path_ + " changed while it was read: its record at byte " + std::to_string(offset) +
                    " no longer passes its checks; run --resume again");
}

JournalContents read_journal(const std::string& path) {
  JournalReader reader(path);
  std::vector<JournalRecord> records;
  JournalContents out = reader.scan([&](std::uint64_t, JournalRecord&& record) { records.push_back(std::move(record)); });
  out.records = std::move(records);
  return out;
}

namespace {
std::string own_command_line() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\0') text.pop_back();
  for (char& c : text)
    if (c == '\0') c = ' ';
  return text.empty() ? "command line unknown" : text;
}
}  // namespace

OutputLock::OutputLock(const std::string& output_path) : path_(output_path + ".lock") {
  // Another writer may remove PATH.lock between our open() and flock(): then we hold a lock on a file no
  // one else will see, so check that the locked file is still the one at PATH.lock, and try again if not.
  for (int attempt = 0; attempt < 100; ++attempt) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0)
      throw ConfigError("cannot create the lock file " + path_ + " for writing " + output_path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      if (err == EWOULDBLOCK) {
        char text[1024] = {};
        const ssize_t n = ::pread(fd_, text, sizeof text - 1, 0);
        ::close(fd_);
        fd_ = -1;
        std::string holder = n > 0 ? std::string(text, std::size_t(n)) : std::string("a process that has not yet said who it is");
        while (!holder.empty() && holder.back() == '\n') holder.pop_back();
        throw ConfigError("another ratelab process is writing " + output_path + ": " + holder + " (it holds " + path_ +
                          "). Wait until it ends (or stop it: its finished runs are kept for --resume), or write to "
                          "another file");
      }
      std::fprintf(stderr, "warning: cannot lock %s (%s): a second process writing %s at the same time would not be "
                   "noticed\n", path_.c_str(), std::strerror(err), output_path.c_str());
      return;
    }
    struct stat locked {}, named {};
    if (::fstat(fd_, &locked) == 0 && ::stat(path_.c_str(), &named) == 0 && locked.st_dev == named.st_dev &&
        locked.st_ino == named.st_ino)
      break;
    ::close(fd_);
    fd_ = -1;
  }
  if (fd_ < 0) throw ConfigError("cannot lock " + path_ + ": it is removed and created again all the time");
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  char date[32] = {};
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const std::string holder = "pid " + std::to_string(::getpid()) + " on " + host + " since " + date + " (" +
                             own_command_line() + ")\n";
  // The holder's name is a courtesy for the message above; the lock itself is the flock(), which holds
  // even where the name cannot be written (a full disk).
  [[maybe_unused]] const bool named =
      ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, holder.data(), holder.size(), 0) == ssize_t(holder.size());
}

OutputLock::~OutputLock() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());  // while still holding the lock: a waiting writer then sees the file change
  ::close(fd_);
}

}  // namespace ratelab::results
