// experiments/distributed.hpp over MPI (the C API; built with -DRATELAB_MPI=ON).
//
// Messages (all MPI_BYTE, MPI_COMM_WORLD), between rank 0 and each rank w > 0:
//   w -> 0  request  (empty)             w wants more runs
//   0 -> w  work     int64 run indices   the next chunk; empty: there is no more
//   w -> 0  result   a journal record    one finished run (results/journal.hpp: size, CRC, payload)
//   w -> 0  done     int8 cancelled      w finished: every result sent, no request outstanding
//   0 -> w  stop     (empty)             stop starting runs and interrupt the ones in flight
//   0 -> w  final    the sweep summary   rank 0 committed the file; w exits with the same outcome
// Messages between two ranks arrive in the order sent, so a rank's results all precede its `done`, and
// rank 0's `final` is the last message a rank receives. Every send is nonblocking (its buffer kept until
// MPI is done with it), so two ranks sending large messages to each other never wait on each other.
#include <mpi.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "core/params.hpp"
#include "experiments/distributed.hpp"
#include "results/journal.hpp"

namespace ratelab::distributed {

namespace {

enum Tag : int { kRequest = 1, kWork = 2, kResult = 3, kDone = 4, kStop = 5, kFinal = 6 };

// How long a waiting main thread sleeps between polls: short next to a run, long enough that a waiting
// rank does not take a core from the ranks that compute (blocking MPI calls would spin).
constexpr auto kPollInterval = std::chrono::milliseconds(1);
// A worker rank stops computing while more than this many of its results are not yet received.
constexpr std::size_t kMaxResultsInFlight = 64;

using Bytes = std::vector<unsigned char>;

template <class T>
T get(const Bytes& in, std::size_t& pos) {
  if (in.size() - pos < sizeof(T)) throw std::runtime_error("MPI message shorter than its content");
  T v;
  std::memcpy(&v, in.data() + pos, sizeof(T));
  pos += sizeof(T);
  return v;
}
template <class T>
Bytes bytes_of(const T* values, std::size_t count) {
  Bytes out(count * sizeof(T));
  if (count) std::memcpy(out.data(), values, out.size());
  return out;
}

// The sweep's summary as rank 0 sends it to the others.
struct SummaryMessage {
  std::int64_t ok, diverged, error, nonfinite, interrupted, not_started, cancelled;
  double seconds;
};
Bytes pack_summary(const SweepSummary& s) {
  const SummaryMessage m{s.ok, s.diverged, s.error, s.nonfinite, s.interrupted, s.not_started, s.cancelled ? 1 : 0, s.seconds};
  return bytes_of(&m, 1);
}
SweepSummary unpack_summary(const Bytes& in) {
  std::size_t pos = 0;
  const auto m = get<SummaryMessage>(in, pos);
  SweepSummary s;
  s.ok = long(m.ok);
  s.diverged = long(m.diverged);
  s.error = long(m.error);
  s.nonfinite = long(m.nonfinite);
  s.interrupted = long(m.interrupted);
  s.not_started = long(m.not_started);
  s.cancelled = m.cancelled != 0;
  s.seconds = m.seconds;
  return s;
}

struct Message {
  int source = 0, tag = 0;
  Bytes bytes;
};

// The next message from `source` (or any rank), if one has arrived.
std::optional<Message> poll_message(int source) {
  int flag = 0;
  MPI_Status status;
  MPI_Iprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
  if (!flag) return std::nullopt;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  Message m{status.MPI_SOURCE, status.MPI_TAG, Bytes(std::size_t(count))};
  MPI_Recv(m.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return m;
}

void wait_polling(MPI_Request& request) {
  for (;;) {
    int done = 0;
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done) return;
    std::this_thread::sleep_for(kPollInterval);
  }
}

// Nonblocking sends, each buffer kept until MPI has finished with it.
class Outbox {
 public:
  void send(int destination, int tag, Bytes bytes) {
    pending_.push_back({std::move(bytes), MPI_REQUEST_NULL});
    auto& p = pending_.back();
    MPI_Isend(p.bytes.data(), int(p.bytes.size()), MPI_BYTE, destination, tag, MPI_COMM_WORLD, &p.request);
  }
  void progress() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      int done = 0;
      MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
      it = done ? pending_.erase(it) : std::next(it);
    }
  }
  std::size_t pending() const { return pending_.size(); }
  void drain() {
    for (progress(); !pending_.empty(); progress()) std::this_thread::sleep_for(kPollInterval);
  }

 private:
  struct Pending {
    Bytes bytes;
    MPI_Request request;
  };
  std::list<Pending> pending_;  // stable addresses: MPI holds pointers into the buffers
};

// Rank 0's source: its own threads take single runs, the other ranks take guided chunks on request.
class Coordinator final : public RunSource {
 public:
  Coordinator(std::vector<long> todo, std::vector<int> threads, std::size_t configurations, long replicates)
      : todo_(std::move(todo)),
        threads_(std::move(threads)),
        done_(threads_.size(), false),
        taken_(threads_.size(), 0),
        configurations_(configurations),
        replicates_(replicates) {
    for (int t : threads_) total_threads_ += t;
    done_[0] = true;  // this rank
  }
  long expected() const override { return long(todo_.size()); }
  std::optional<long> take() override {
    std::lock_guard lock(mutex_);
    if (stopped_ || next_ == todo_.size()) return std::nullopt;
    ++taken_[0];
    return todo_[next_++];
  }
  std::vector<long> taken() {
    std::lock_guard lock(mutex_);
    return taken_;
  }
  bool pump(const RunSink& deliver) override {
    // A bounded number per call, so this rank's own results are written in between.
    for (int n = 0; n < 64; ++n) {
      auto m = poll_message(MPI_ANY_SOURCE);
      if (!m) break;
      switch (m->tag) {
        case kRequest: hand_out(m->source); break;
        case kResult: {
          results::JournalRecord rec = results::decode_record(m->bytes.data(), m->bytes.size());
          if (rec.configuration >= configurations_ || rec.replicate < 0 || rec.replicate >= replicates_)
            throw std::runtime_error("rank " + std::to_string(m->source) + " sent a run outside the experiment");
          deliver(rec.configuration, rec.replicate, rec.result);
          break;
        }
        case kDone:
          done_[std::size_t(m->source)] = true;
          ++finished_;
          if (!m->bytes.empty() && m->bytes[0]) stop_requested_ = true;  // that rank was interrupted
          break;
        default:
          throw std::runtime_error("rank 0 received an unexpected MPI message (tag " + std::to_string(m->tag) +
                                   ") from rank " + std::to_string(m->source));
      }
    }
    outbox_.progress();
    return stop_requested_;
  }
  void stop() override {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    for (std::size_t r = 1; r < done_.size(); ++r)
      if (!done_[r]) outbox_.send(int(r), kStop, {});
  }
  bool complete() override { return finished_ + 1 == done_.size(); }
  void drain() { outbox_.drain(); }

 private:
  // Guided: half of this rank's thread share of what remains, at least one run per thread.
  void hand_out(int rank) {
    std::vector<std::int64_t> chunk;
    {
      std::lock_guard lock(mutex_);
      const long remaining = stopped_ ? 0 : long(todo_.size() - next_);
      const long t = threads_[std::size_t(rank)];
      long n = (remaining * t + 2 * total_threads_ - 1) / (2 * total_threads_);
      n = std::min(std::max(n, t), remaining);
      for (long i = 0; i < n; ++i) chunk.push_back(todo_[next_++]);
      taken_[std::size_t(rank)] += n;
    }
    outbox_.send(rank, kWork, bytes_of(chunk.data(), chunk.size()));
  }

  std::vector<long> todo_;
  std::vector<int> threads_;
  long total_threads_ = 0;
  std::vector<bool> done_;  // [rank]: sent `done`
  std::vector<long> taken_;  // [rank]: runs handed out
  std::size_t finished_ = 0;
  std::size_t configurations_ = 0;
  long replicates_ = 0;
  std::mutex mutex_;  // next_ and stopped_: this rank's worker threads take runs concurrently
  std::size_t next_ = 0;
  bool stopped_ = false;
  bool stop_requested_ = false;
  Outbox outbox_;
};

// A rank > 0's source: chunks requested from rank 0 ahead of need, so its threads rarely wait.
class Worker final : public RunSource {
 public:
  explicit Worker(int threads) : threads_(threads) {}
  long expected() const override {
    std::lock_guard lock(mutex_);
    return handed_;
  }
  std::optional<long> take() override {
    std::unique_lock lock(mutex_);
    ready_.wait(lock, [&] { return stopped_ || no_more_ || !buffer_.empty(); });
    if (stopped_ || buffer_.empty()) return std::nullopt;
    const long j = buffer_.front();
    buffer_.pop_front();
    return j;
  }
  bool pump(const RunSink&) override {
    while (auto m = poll_message(0)) receive(*m);
    bool ask = false;
    {
      std::lock_guard lock(mutex_);
      ask = !request_pending_ && !no_more_ && !stopped_ && long(buffer_.size()) < threads_;
    }
    if (ask) {
      request_pending_ = true;
      outbox_.send(0, kRequest, {});
    }
    outbox_.progress();
    return stop_requested_;
  }
  void stop() override {
    std::lock_guard lock(mutex_);
    stopped_ = true;
    ready_.notify_all();
  }
  bool complete() override { return true; }

  // The sink: one finished run to rank 0.
  void send_result(std::size_t configuration, long replicate, const RunResult& result) {
    Bytes bytes;
    results::encode_record(bytes, configuration, replicate, result);
    outbox_.send(0, kResult, std::move(bytes));
    for (outbox_.progress(); outbox_.pending() > kMaxResultsInFlight; outbox_.progress())
      std::this_thread::sleep_for(kPollInterval);
  }

  // After the sweep: `done` to rank 0, then its verdict.
  SweepSummary finish(bool cancelled) {
    while (request_pending_) {
      if (auto m = poll_message(0)) receive(*m);
      else std::this_thread::sleep_for(kPollInterval);
    }
    outbox_.send(0, kDone, Bytes{static_cast<unsigned char>(cancelled ? 1 : 0)});
    while (!final_) {
      if (auto m = poll_message(0)) receive(*m);
      else std::this_thread::sleep_for(kPollInterval);
    }
    outbox_.drain();
    return *final_;
  }

 private:
  void receive(const Message& m) {
    switch (m.tag) {
      case kWork: {
        request_pending_ = false;
        std::lock_guard lock(mutex_);
        if (m.bytes.empty()) no_more_ = true;
        for (std::size_t pos = 0; pos < m.bytes.size();) {
          buffer_.push_back(long(get<std::int64_t>(m.bytes, pos)));
          ++handed_;
        }
        ready_.notify_all();
        break;
      }
      case kStop: stop_requested_ = true; break;
      case kFinal: final_ = unpack_summary(m.bytes); break;
      default:
        throw std::runtime_error("a rank received an unexpected MPI message (tag " + std::to_string(m.tag) +
                                 ") from rank 0");
    }
  }

  const long threads_;
  mutable std::mutex mutex_;  // buffer_, handed_, no_more_, stopped_: shared with the worker threads
  std::condition_variable ready_;
  std::deque<long> buffer_;
  long handed_ = 0;
  bool no_more_ = false;
  bool stopped_ = false;
  // The main thread's alone:
  bool request_pending_ = false;
  bool stop_requested_ = false;
  std::optional<SweepSummary> final_;
  Outbox outbox_;
};

class MpiCluster final : public Cluster {
 public:
  MpiCluster() {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (provided < MPI_THREAD_FUNNELED) {
      MPI_Finalize();
      throw ConfigError("the MPI library does not support MPI_THREAD_FUNNELED (one thread making MPI calls while "
                        "others compute), which ratelab needs; use an MPI built with thread support (Debian's "
                        "Open MPI has it)");
    }
  }
  ~MpiCluster() override { MPI_Finalize(); }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void agree(int threads) override {
    const std::vector<int> statuses = exchange(0, threads);
    for (int s : statuses)
      if (s != 0) throw PeerFailure(statuses[0] != 0 ? statuses[0] : s);
  }

  void fail(int exit_code, const std::function<void()>& report) override {
    if (size_ == 1) {
      report();
    } else if (points_ < kPoints) {
      const std::vector<int> statuses = exchange(exit_code, 0);
      if (rank_ == 0 || statuses[0] == 0) report();
    } else {
      report();
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, exit_code);
    }
  }

  SweepSummary coordinate(const PreparedExperiment& experiment, const SweepOptions& options,
                          const RunSink& sink) override {
    const auto& plan = experiment.plan();
    Coordinator source(runs_to_do(experiment, options.skip), threads_, plan.configurations.size(),
                       plan.options.replicates);
    SweepSummary summary = run_sweep(experiment, options, sink, source);
    source.drain();
    summary.runs_per_rank = source.taken();
    return summary;
  }

  void release(const SweepSummary& summary) override {
    Outbox outbox;
    for (int r = 1; r < size_; ++r) outbox.send(r, kFinal, pack_summary(summary));
    outbox.drain();
  }

  SweepSummary work(const PreparedExperiment& experiment, const SweepOptions& options) override {
    SweepOptions local = options;
    local.progress = SweepOptions::Progress::quiet;  // rank 0 reports
    local.time_limit_seconds = 0;                    // rank 0 keeps the time and sends `stop`
    local.skip.clear();                              // rank 0 decides what runs
    Worker source(threads_[std::size_t(rank_)]);
    const SweepSummary mine = run_sweep(
        experiment, local,
        [&](std::size_t c, long r, const RunResult& result) { source.send_result(c, r, result); }, source);
    return source.finish(mine.cancelled && options.cancel && options.cancel->load());
  }

 private:
  static constexpr int kPoints = 2;

  // One agreement point: every rank's {status, threads}, gathered without a spinning wait.
  std::vector<int> exchange(int status, int threads) {
    std::array<int, 2> mine{status, threads};
    std::vector<int> all(2 * std::size_t(size_));
    MPI_Request request;
    MPI_Iallgather(mine.data(), 2, MPI_INT, all.data(), 2, MPI_INT, MPI_COMM_WORLD, &request);
    wait_polling(request);
    ++points_;
    std::vector<int> statuses(static_cast<std::size_t>(size_));
    if (points_ == 1) threads_.assign(std::size_t(size_), 1);
    for (int r = 0; r < size_; ++r) {
      statuses[std::size_t(r)] = all[2 * std::size_t(r)];
      if (points_ == 1) threads_[std::size_t(r)] = std::max(1, all[2 * std::size_t(r) + 1]);
    }
    return statuses;
  }

  int rank_ = 0, size_ = 1;
  int points_ = 0;
  std::vector<int> threads_;  // [rank]: worker threads, from agreement point 1
};

}  // namespace

std::unique_ptr<Cluster> join_mpi() { return std::make_unique<MpiCluster>(); }  // distributed.hpp

}  // namespace ratelab::distributed
