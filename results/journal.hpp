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
#include <string>
#include <vector>

#include "core/run.hpp"
#include "results/trace_file.hpp"

namespace ratelab::results {

// Identifies an experiment for resume and merge: a hash of the resolved experiment text (comment lines
// excluded, so the path it was read from does not matter), the configuration ids, replicates,
// checkpoints, views and metrics.
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

class Journal {
 public:
  // Creates (truncates) the journal at `path` and writes `records` first, via a temporary file renamed
  // into place, so an existing journal is replaced atomically. Throws ConfigError on I/O failure.
  Journal(const std::string& path, std::uint64_t fingerprint, const std::vector<JournalRecord>& records = {});
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  void append(std::size_t configuration, long replicate, const RunResult& result);
  void remove();  // after the HDF5 file is committed

 private:
  std::string path_;
  int fd_ = -1;
  std::vector<unsigned char> buffer_;
};

struct JournalContents {
  std::uint64_t fingerprint = 0;
  std::vector<JournalRecord> records;
  bool truncated = false;  // a partial record at the end (the writer was killed mid-record) was dropped
};

// Throws ConfigError if the file is missing or is not a ratelab journal.
JournalContents read_journal(const std::string& path);

}  // namespace ratelab::results
