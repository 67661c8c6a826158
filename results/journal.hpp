// The run journal: an append-only log of finished runs kept beside the HDF5 file (PATH.journal) while a
// sweep writes PATH.partial.
//
// Why a journal: HDF5 1.10 cannot promise a readable file after the process is killed in the middle of a
// write (SWMR would, but only for appends to existing datasets, and it ties readers to 1.10 semantics), so
// durability comes from this log instead. Each run is one record written with a single write() call
// after the run finished; once write() returned, the record is in the kernel's page cache and survives
// SIGKILL at any later moment. A record cut short by a kill is detected (length and CRC-32) and dropped.
// `ratelab run --resume` rebuilds the file from the committed PATH (if any) plus the journal, and runs
// only what is missing; the journal is removed after a successful commit.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/run.hpp"
#include "results/trace_file.hpp"

namespace ratelab::results {

// Identifies an experiment for resume and merge: a hash of the resolved experiment text (comment lines
// excluded, so the path it was read from does not matter), the configuration ids, replicates,
// checkpoints, views and metrics, and the random-stream layout (root attribute stream_layout_version).
std::uint64_t layout_fingerprint(const TraceLayout& layout);

struct JournalRecord {
  std::size_t configuration = 0;
  long replicate = 0;
  RunResult result;
};

// One finished run as one self-checking record: payload size and CRC-32, then the payload. This is the
// journal's on-disk record and also the message in which MPI ranks send finished runs to rank 0
// (experiments/distributed_mpi.cpp): one encoding, bit-exact for every double.
void encode_record(std::vector<unsigned char>& out, std::size_t configuration, long replicate, const RunResult& result);
// Decodes exactly one record of `size` bytes; throws std::runtime_error if it is cut short, too long, or
// its CRC does not match.
JournalRecord decode_record(const unsigned char* data, std::size_t size);

// Writing the journal or the trace file failed after the sweep started (disk full, I/O error): what
// failed and why. Every run finished before it is in the journal (run --resume continues).
class WriteError : public std::runtime_error {
 public:
  WriteError(const std::string& path, int error_number)
      : std::runtime_error(path + ": " + std::strerror(error_number)), path_(path), errno_(error_number) {}
  const std::string& path() const { return path_; }
  int error_number() const { return errno_; }

 private:
  std::string path_;
  int errno_;
};

// Receives runs one at a time (configuration, replicate, run), for passes over more runs than the memory holds.
using RunVisitor = std::function<void(std::size_t configuration, long replicate, const RunResult& result)>;

class Journal {
 public:
  // Creates (truncates) the journal at `path` and writes first the runs `recovered` passes to its visitor
  // (one at a time: `run --resume` streams them from the old file and journal), via a temporary file renamed
  // into place, so an existing journal is replaced atomically. Throws ConfigError on I/O failure; whatever
  // `recovered` throws propagates, the old journal unchanged.
  Journal(const std::string& path, std::uint64_t fingerprint,
          const std::function<void(const RunVisitor&)>& recovered = {});
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Throws WriteError when the record cannot be written whole (a part written is dropped on reading).
  void append(std::size_t configuration, long replicate, const RunResult& result);
  void remove();  // after the HDF5 file is committed
  const std::string& path() const { return path_; }
  long records() const { return records_; }  // complete records in the journal (recovered + appended)

 private:
  std::string path_;
  int fd_ = -1;
  long records_ = 0;
  std::vector<unsigned char> buffer_;
};

struct JournalContents {
  std::uint64_t fingerprint = 0;
  std::vector<JournalRecord> records;
  bool truncated = false;  // a partial record at the end (the writer was killed mid-record) was dropped
  // Damaged stretches in the middle (a record failing its CRC, followed by valid ones): skipped, and the
  // reading resumed at the next valid record, so one bad record costs only itself.
  long damaged_stretches = 0;
  std::size_t damaged_bytes = 0;
};

// Throws ConfigError if the file is missing or is not a ratelab journal. A record that fails its checks is
// skipped up to the next record that passes them (its size fits, its CRC-32 matches and it decodes); a
// random stretch passes by chance with probability 2^-32 per byte offset. Holds every record: for tests and
// small journals; `run --resume` reads with JournalReader.
JournalContents read_journal(const std::string& path);

// A journal read record by record, so that a journal larger than the memory resumes: scan() passes each valid
// record to its visitor and forgets it, record_at() reads one of them again. Memory: about one record (and a
// read buffer of 1 MiB), whatever the journal's size.
class JournalReader {
 public:
  explicit JournalReader(const std::string& path);  // ConfigError: missing, or not a ratelab journal
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  std::uint64_t fingerprint() const { return fingerprint_; }
  // Every valid record in order, with the checks and the resynchronization of read_journal (which is this
  // scan keeping the records); `each` gets the record's offset and the record. The summary's records are empty.
  JournalContents scan(const std::function<void(std::uint64_t offset, JournalRecord&& record)>& each);
  // The record at an offset scan() reported.
  JournalRecord record_at(std::uint64_t offset);

 private:
  const unsigned char* bytes(std::uint64_t pos, std::size_t n);  // [pos, pos + n) of the file, valid until the next call
  std::optional<JournalRecord> valid_record(std::uint64_t pos, std::size_t largest, std::size_t& length);
  std::string path_;
  int fd_ = -1;
  std::uint64_t size_ = 0, fingerprint_ = 0;
  std::vector<unsigned char> buffer_;
  std::uint64_t buffer_start_ = 0;
};

// The right to write the trace file PATH (and PATH.partial, PATH.journal): an exclusive flock() on
// PATH.lock, which names its holder (pid, host, start time, command line from /proc/self/cmdline). Taken before anything of PATH
// is touched, so a second `run` or `merge` on the same path stops before it truncates or deletes the
// first one's files, whatever HDF5's own file locking is set to (HDF5_USE_FILE_LOCKING=FALSE is the
// usual setting on NFS and Lustre; Linux NFS clients implement flock() with the server's byte-range
// locks, Lustre with its `flock` mount option). A holder killed by any signal releases the lock with its
// last file descriptor; the stale PATH.lock it leaves is taken over by the next writer.
class OutputLock {
 public:
  // Throws ConfigError naming the holder if another process holds the lock. Where the filesystem has no
  // locks at all, warns on stderr and goes on unlocked.
  explicit OutputLock(const std::string& output_path);
  ~OutputLock();  // removes PATH.lock, then releases the lock
  OutputLock(const OutputLock&) = delete;
  OutputLock& operator=(const OutputLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace ratelab::results
