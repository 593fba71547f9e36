#pragma once
// The MPI engine (Open MPI; needs the grcnn::dist component, which links MPI): host buffers, processes
// started by mpirun or srun, one node or many.
//
// One thread makes every MPI call (the "MPI thread"): it initialises MPI (MPI_THREAD_FUNNELED is enough
// and is what every MPI library provides), runs the collectives the callers queue as non-blocking MPI
// operations in queue order (the same order on every rank: MPI's rule for non-blocking collectives),
// polls them with a short sleep (a busy-waiting MPI would take a core from the computation), and
// finalises MPI at the end. So gradient buckets reduce while backward goes on, a timeout can be
// enforced, and no OpenMP or loader thread ever enters MPI.
//
// Faults: each rank sends a heartbeat to the next rank every second (a ring, on its own communicator)
// and watches the previous one; a silent peer (SIGSTOP, a dead node) or a collective still open after the
// timeout makes the rank that noticed print which rank failed and MPI_Abort the job, so every rank exits
// non-zero. A rank that throws calls abort() with its message. A rank killed outright is reported by
// mpirun itself ("exited on signal 9"), which then ends the others.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // the C API only: MPI's deprecated C++ bindings warn under -Wextra
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "grcnn/dist/communicator.hpp"

namespace grcnn::dist {

// True when a launcher started this process (mpirun, srun, hydra): only then is MPI initialised, since
// Open MPI's singleton start forks a helper daemon that a plain run must not pay for.
inline bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS", "SLURM_STEP_ID"})
    if (std::getenv(v)) return true;
  return false;
}

struct mpi_options {
  std::chrono::milliseconds timeout{std::chrono::seconds(300)};  // a collective still open after this fails
  std::chrono::milliseconds heartbeat_timeout{std::chrono::seconds(20)};  // a silent peer after this fails
  std::chrono::milliseconds heartbeat_period{std::chrono::seconds(1)};

  // The defaults, with GRCNN_DIST_TIMEOUT and GRCNN_DIST_HEARTBEAT_TIMEOUT (seconds) from the environment
  // where set (a launcher passes the same environment to every rank).
  static mpi_options from_environment() {
    mpi_options o;
    auto seconds = [](const char* name, std::chrono::milliseconds& into) {
      const char* v = std::getenv(name);
      if (!v || !*v) return;
      char* end = nullptr;
      const double s = std::strtod(v, &end);
      GRCNN_CHECK(end && *end == '\0' && s > 0 && s < 1e6, error, name, "='", v, "': a number of seconds expected");
      into = std::chrono::milliseconds(static_cast<long long>(s * 1000));
    };
    seconds("GRCNN_DIST_TIMEOUT", o.timeout);
    seconds("GRCNN_DIST_HEARTBEAT_TIMEOUT", o.heartbeat_timeout);
    if (o.heartbeat_period * 2 > o.heartbeat_timeout) o.heartbeat_period = o.heartbeat_timeout / 4;
    return o;
  }
};

namespace mpi_detail {

inline void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw dist_error(::grcnn::detail::concat("mpi: ", what, ": ", std::string(text, static_cast<std::size_t>(len))));
}

inline MPI_Datatype wire_type(dtype t) {
  switch (t) {
    case dtype::f32: return MPI_FLOAT;
    case dtype::f64: return MPI_DOUBLE;
    case dtype::i64: return MPI_INT64_T;
    case dtype::bf16: case dtype::f16: return MPI_FLOAT;  // reduced through an f32 copy
  }
  return MPI_DATATYPE_NULL;
}
inline MPI_Op wire_op(reduce_op op) {
  return op == reduce_op::sum ? MPI_SUM : op == reduce_op::min ? MPI_MIN : MPI_MAX;
}

// The state a caller waits on: done + an error, shared with the MPI thread.
struct completion {
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  std::exception_ptr failure;
  std::chrono::steady_clock::time_point at;
  void finish(std::exception_ptr e = nullptr) {
    {
      std::lock_guard lock(mu);
      finished = true;
      failure = e;
      at = std::chrono::steady_clock::now();
    }
    cv.notify_all();
  }
  bool poll() {
    std::lock_guard lock(mu);
    if (finished && failure) std::rethrow_exception(failure);
    return finished;
  }
  void wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished; });
    if (failure) std::rethrow_exception(failure);
  }
};

// One queued collective.
struct operation {
  enum kind_t { all_reduce, broadcast, barrier } kind = barrier;
  void* data = nullptr;
  std::size_t count = 0;
  dtype type = dtype::f32;
  reduce_op op = reduce_op::sum;
  int root = 0;
  std::string what;                     // for messages: "all_reduce of 1234 f32"
  std::shared_ptr<completion> done = std::make_shared<completion>();
  // While in flight:
  std::vector<MPI_Request> requests;
  std::vector<float> staging;           // bf16/f16 as f32
  std::chrono::steady_clock::time_point started;
  std::uint64_t sequence = 0;
  int channel = 0;  // 0: the main MPI communicator; 1: the side channel's (side_channel())
};

}  // namespace mpi_detail

class mpi_communicator final : public communicator {
 public:
  explicit mpi_communicator(mpi_options o = {}) : o_(o) {
    std::promise<void> ready;
    auto started = ready.get_future();
    thread_ = std::thread([this, &ready] { run(ready); });
    try {
      started.get();
    } catch (...) {
      thread_.join();
      throw;
    }
  }
  ~mpi_communicator() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  mpi_communicator(const mpi_communicator&) = delete;
  mpi_communicator& operator=(const mpi_communicator&) = delete;

  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  std::string_view engine() const override { return "mpi"; }
  bool accepts(device d) const override { return d.kind == device_kind::cpu; }

  void all_reduce(void* data, std::size_t count, dtype t, reduce_op op) override {
    all_reduce_async(data, count, t, op)->wait();
  }
  std::unique_ptr<pending> all_reduce_async(void* data, std::size_t count, dtype t, reduce_op op) override {
    return all_reduce_on(0, data, count, t, op);
  }
  void broadcast(void* data, std::size_t count, dtype t, int root) override { broadcast_on(0, data, count, t, root); }
  void barrier() override { barrier_on(0); }
  // The side channel: the same ranks over a duplicated MPI communicator, on the same thread, its
  // collectives matched and completed independently of the main channel's (for collectives inside
  // backward, such as a synchronised batch norm's, while gradient buckets start at points that may
  // differ between ranks).
  communicator& side_channel() override { return side_; }
  // MPI is called from the MPI thread only (MPI_THREAD_FUNNELED): another thread hands the abort to it
  // (it polls every 50 ms at most) and ends the process itself if that has not happened within 10 s.
  [[noreturn]] void abort(const std::string& why, int code) override {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::fflush(stderr);
    if (std::this_thread::get_id() == mpi_thread_id_) {
      MPI_Abort(MPI_COMM_WORLD, code);
      std::_Exit(code);
    }
    abort_code_.store(code);
    cv_.notify_all();
    std::this_thread::sleep_for(std::chrono::seconds(10));
    std::_Exit(code);
  }

  const mpi_options& options() const { return o_; }

 private:
  class mpi_pending final : public pending {
   public:
    explicit mpi_pending(std::shared_ptr<mpi_detail::completion> c) : c_(std::move(c)) {}
    bool done() override { return c_->poll(); }
    void wait() override { c_->wait(); }
    std::chrono::steady_clock::time_point completed_at() override {
      c_->wait();
      std::lock_guard lock(c_->mu);
      return c_->at;
    }

   private:
    std::shared_ptr<mpi_detail::completion> c_;
  };

  std::unique_ptr<pending> all_reduce_on(int channel, void* data, std::size_t count, dtype t, reduce_op op) {
    auto o = std::make_unique<mpi_detail::operation>();
    o->kind = mpi_detail::operation::all_reduce;
    o->data = data, o->count = count, o->type = t, o->op = op, o->channel = channel;
    o->what = ::grcnn::detail::concat(channel ? "side-channel " : "", "all_reduce (", op_name(op), ") of ", count, " ",
                                      name_of(t));
    return submit(std::move(o));
  }
  void broadcast_on(int channel, void* data, std::size_t count, dtype t, int root) {
    GRCNN_CHECK(root >= 0 && root < world_, error, "broadcast: root ", root, " in a world of ", world_);
    auto o = std::make_unique<mpi_detail::operation>();
    o->kind = mpi_detail::operation::broadcast;
    o->data = data, o->count = count, o->type = t, o->root = root, o->channel = channel;
    o->what = ::grcnn::detail::concat(channel ? "side-channel " : "", "broadcast from rank ", root, " of ", count, " ",
                                      name_of(t));
    submit(std::move(o))->wait();
  }
  void barrier_on(int channel) {
    auto o = std::make_unique<mpi_detail::operation>();
    o->kind = mpi_detail::operation::barrier;
    o->channel = channel;
    o->what = channel ? "side-channel barrier" : "barrier";
    submit(std::move(o))->wait();
  }

  class side final : public communicator {
   public:
    explicit side(mpi_communicator& m) : m_(m) {}
    int rank() const override { return m_.rank(); }
    int world_size() const override { return m_.world_size(); }
    int local_rank() const override { return m_.local_rank(); }
    int local_size() const override { return m_.local_size(); }
    std::string_view engine() const override { return "mpi"; }
    bool accepts(device d) const override { return m_.accepts(d); }
    void all_reduce(void* data, std::size_t count, dtype t, reduce_op op) override {
      all_reduce_async(data, count, t, op)->wait();
    }
    std::unique_ptr<pending> all_reduce_async(void* data, std::size_t count, dtype t, reduce_op op) override {
      return m_.all_reduce_on(1, data, count, t, op);
    }
    void broadcast(void* data, std::size_t count, dtype t, int root) override { m_.broadcast_on(1, data, count, t, root); }
    void barrier() override { m_.barrier_on(1); }
    [[noreturn]] void abort(const std::string& why, int code) override { m_.abort(why, code); }

   private:
    mpi_communicator& m_;
  };

  std::unique_ptr<pending> submit(std::unique_ptr<mpi_detail::operation> o) {
    auto done = o->done;
    {
      std::lock_guard lock(mu_);
      GRCNN_CHECK(!stopping_, dist_error, "mpi: ", o->what, " after the communicator stopped");
      queue_.push_back(std::move(o));
    }
    cv_.notify_all();
    return std::make_unique<mpi_pending>(std::move(done));
  }

  // ---- the MPI thread ----
  void run(std::promise<void>& ready) {
    mpi_thread_id_ = std::this_thread::get_id();
    try {
      int initialised = 0;
      MPI_Initialized(&initialised);
      if (initialised) {
        int level = 0;
        MPI_Query_thread(&level);
        GRCNN_CHECK(level == MPI_THREAD_MULTIPLE, dist_error,
                    "mpi: the program initialised MPI itself with a thread level below MPI_THREAD_MULTIPLE; "
                    "grcnn makes its MPI calls from its own thread (initialise with MPI_THREAD_MULTIPLE, or let "
                    "grcnn initialise MPI)");
      } else {
        int provided = 0;
        mpi_detail::check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
        owns_mpi_ = true;
        GRCNN_CHECK(provided >= MPI_THREAD_FUNNELED, dist_error, "mpi: the MPI library provides thread level ", provided,
                    ", below MPI_THREAD_FUNNELED");
      }
      mpi_detail::check(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
      mpi_detail::check(MPI_Comm_dup(MPI_COMM_WORLD, &heartbeat_comm_), "MPI_Comm_dup");
      mpi_detail::check(MPI_Comm_dup(MPI_COMM_WORLD, &side_comm_), "MPI_Comm_dup");
      MPI_Comm_set_errhandler(side_comm_, MPI_ERRORS_RETURN);
      MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
      MPI_Comm_set_errhandler(heartbeat_comm_, MPI_ERRORS_RETURN);
      MPI_Comm_rank(comm_, &rank_);
      MPI_Comm_size(comm_, &world_);
      MPI_Comm node;
      mpi_detail::check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
                        "MPI_Comm_split_type");
      MPI_Comm_rank(node, &local_rank_);
      MPI_Comm_size(node, &local_size_);
      MPI_Comm_free(&node);
    } catch (const std::exception& e) {
      // Once MPI is up, a rank that cannot go on must end the job: the others would wait for it.
      int up = 0;
      MPI_Initialized(&up);
      if (up && owns_mpi_) {
        std::fprintf(stderr, "grcnn: setting up MPI failed: %s; aborting the job\n", e.what());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    loop();
    finalise();
  }

  void finalise() {
    if (heartbeat_comm_ != MPI_COMM_NULL) {
      // A last beat of -1 tells the next rank this one leaves (it stops watching); then what the ring left
      // open is cancelled (the receive) or let go (the sends), and the communicators are freed.
      if (world_ > 1) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        int flag = heartbeat_requests_[0] == MPI_REQUEST_NULL;
        while (!flag && std::chrono::steady_clock::now() < deadline) {
          MPI_Test(&heartbeat_requests_[0], &flag, MPI_STATUS_IGNORE);
          if (!flag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        if (flag) {
          beat_out_ = -1;
          MPI_Isend(&beat_out_, 1, MPI_INT64_T, (rank_ + 1) % world_, beat_tag, heartbeat_comm_, &heartbeat_requests_[0]);
          flag = 0;
          while (!flag && std::chrono::steady_clock::now() < deadline) {
            MPI_Test(&heartbeat_requests_[0], &flag, MPI_STATUS_IGNORE);
            if (!flag) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }
      }
      if (heartbeat_requests_[0] != MPI_REQUEST_NULL) MPI_Request_free(&heartbeat_requests_[0]);
      if (heartbeat_requests_[1] != MPI_REQUEST_NULL) {
        MPI_Cancel(&heartbeat_requests_[1]);
        MPI_Request_free(&heartbeat_requests_[1]);
      }
      MPI_Comm_free(&heartbeat_comm_);
    }
    if (side_comm_ != MPI_COMM_NULL) MPI_Comm_free(&side_comm_);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owns_mpi_ && !finalized) MPI_Finalize();
  }

  void loop() {
    using clock = std::chrono::steady_clock;
    // Started collectives per channel, completed in order within each.
    std::array<std::deque<std::unique_ptr<mpi_detail::operation>>, 2> active;
    auto idle = [&] { return active[0].empty() && active[1].empty(); };
    last_heard_ = clock::now();
    next_beat_ = clock::now();
    auto last_pass = clock::now();
    for (;;) {
      if (const int code = abort_code_.load(); code >= 0) {
        MPI_Abort(MPI_COMM_WORLD, code);
        std::_Exit(code);
      }
      // A gap far beyond the polling interval means this process itself was stopped (SIGSTOP, a suspended
      // job): that time counts against no peer and no collective.
      const auto now = clock::now();
      if (now - last_pass > 2 * o_.heartbeat_period + std::chrono::milliseconds(200)) {
        const auto gap = now - last_pass;
        last_heard_ += gap;
        next_beat_ = now;
        for (auto& channel : active)
          for (auto& o : channel) o->started += gap;
      }
      last_pass = now;
      {
        std::unique_lock lock(mu_);
        if (idle() && queue_.empty() && !stopping_)
          cv_.wait_for(lock, std::chrono::milliseconds(50),
                       [&] { return stopping_ || !queue_.empty() || abort_code_.load() >= 0; });
        if (stopping_ && queue_.empty() && idle()) break;
        // Start queued operations in order.
        while (!queue_.empty()) {
          auto o = std::move(queue_.front());
          queue_.pop_front();
          lock.unlock();
          try {
            start(*o);
          } catch (const std::exception& e) {
            fault(::grcnn::detail::concat("starting collective #", o->sequence, " (", o->what, "): ", e.what()));
          }
          const int channel = o->channel;
          active[static_cast<std::size_t>(channel)].push_back(std::move(o));
          lock.lock();
        }
      }
      // Complete what finished, in order within each channel.
      for (auto& channel : active) {
        while (!channel.empty()) {
          auto& o = *channel.front();
          int flag = 0;
          const int rc = MPI_Testall(static_cast<int>(o.requests.size()), o.requests.data(), &flag, MPI_STATUSES_IGNORE);
          if (rc != MPI_SUCCESS) fault(::grcnn::detail::concat("collective #", o.sequence, " (", o.what, ") failed"));
          if (!flag) break;
          finish(o);
          o.done->finish();
          channel.pop_front();
        }
        if (!channel.empty() && clock::now() - channel.front()->started > o_.timeout)
          fault(::grcnn::detail::concat("collective #", channel.front()->sequence, " (", channel.front()->what,
                                        ") did not complete within ", o_.timeout.count() / 1000.0,
                                        " s: some rank stopped calling collectives"));
      }
      heartbeats();
      if (!idle()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  void start(mpi_detail::operation& o) {
    o.started = std::chrono::steady_clock::now();
    o.sequence = ++sequence_;
    const bool staged = (o.kind != mpi_detail::operation::barrier) && (o.type == dtype::bf16 || o.type == dtype::f16);
    void* buffer = o.data;
    if (staged) {
      o.staging.resize(o.count);
      if (o.type == dtype::bf16) {
        const auto* in = static_cast<const bf16*>(o.data);
        for (std::size_t i = 0; i < o.count; ++i) o.staging[i] = static_cast<float>(in[i]);
      } else {
        const auto* in = static_cast<const f16*>(o.data);
        for (std::size_t i = 0; i < o.count; ++i) o.staging[i] = static_cast<float>(in[i]);
      }
      buffer = o.staging.data();
    }
    if (o.kind == mpi_detail::operation::barrier) {
      o.requests.emplace_back();
      mpi_detail::check(MPI_Ibarrier(o.channel ? side_comm_ : comm_, &o.requests.back()), "MPI_Ibarrier");
      return;
    }
    // MPI counts are int, and some transports misbehave above 2 GiB a call: chunks of at most 1 GiB.
    const std::size_t width = o.type == dtype::f64 || o.type == dtype::i64 ? 8 : 4, chunk = (std::size_t{1} << 30) / width;
    const MPI_Datatype type = mpi_detail::wire_type(o.type);
    for (std::size_t begin = 0; begin < o.count; begin += chunk) {
      const int n = static_cast<int>(std::min(chunk, o.count - begin));
      void* p = static_cast<char*>(buffer) + begin * width;
      o.requests.emplace_back();
      if (o.kind == mpi_detail::operation::all_reduce)
        mpi_detail::check(MPI_Iallreduce(MPI_IN_PLACE, p, n, type, mpi_detail::wire_op(o.op), o.channel ? side_comm_ : comm_,
                                         &o.requests.back()),
                          "MPI_Iallreduce");
      else
        mpi_detail::check(MPI_Ibcast(p, n, type, o.root, o.channel ? side_comm_ : comm_, &o.requests.back()), "MPI_Ibcast");
    }
  }

  static void finish(mpi_detail::operation& o) {
    if (o.staging.empty()) return;
    if (o.type == dtype::bf16) {
      auto* out = static_cast<bf16*>(o.data);
      for (std::size_t i = 0; i < o.count; ++i) out[i] = bf16(o.staging[i]);
    } else {
      auto* out = static_cast<f16*>(o.data);
      for (std::size_t i = 0; i < o.count; ++i) out[i] = f16(o.staging[i]);
    }
  }

  // The ring: send a beat to rank+1, take the beats of rank-1; silence past heartbeat_timeout is a fault.
  void heartbeats() {
    if (world_ < 2) return;
    using clock = std::chrono::steady_clock;
    const auto now = clock::now();
    const int next = (rank_ + 1) % world_, previous = (rank_ + world_ - 1) % world_;
    if (now >= next_beat_) {
      // At most one beat in flight: a stopped peer must not make this rank queue sends without bound.
      int flag = 1;
      if (heartbeat_requests_[0] != MPI_REQUEST_NULL) MPI_Test(&heartbeat_requests_[0], &flag, MPI_STATUS_IGNORE);
      if (flag) {
        beat_out_ = static_cast<std::int64_t>(sequence_);
        MPI_Isend(&beat_out_, 1, MPI_INT64_T, next, beat_tag, heartbeat_comm_, &heartbeat_requests_[0]);
      }
      next_beat_ = now + o_.heartbeat_period;
    }
    while (!previous_left_) {
      if (heartbeat_requests_[1] == MPI_REQUEST_NULL)
        MPI_Irecv(&beat_in_, 1, MPI_INT64_T, previous, beat_tag, heartbeat_comm_, &heartbeat_requests_[1]);
      int flag = 0;
      MPI_Test(&heartbeat_requests_[1], &flag, MPI_STATUS_IGNORE);
      if (!flag) break;
      last_heard_ = now;
      if (beat_in_ < 0) previous_left_ = true;
    }
    if (!previous_left_ && now - last_heard_ > o_.heartbeat_timeout)
      fault(::grcnn::detail::concat("rank ", previous, " stopped answering (no heartbeat for ",
                                    std::chrono::duration_cast<std::chrono::seconds>(now - last_heard_).count(), " s)"));
  }

  [[noreturn]] void fault(const std::string& what) {
    abort(::grcnn::detail::concat("grcnn: rank ", rank_, " of ", world_, ": ", what, "; aborting the job"), 1);
  }

  static constexpr int beat_tag = 7;
  mpi_options o_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<mpi_detail::operation>> queue_;
  bool stopping_ = false;
  bool owns_mpi_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL, heartbeat_comm_ = MPI_COMM_NULL, side_comm_ = MPI_COMM_NULL;
  side side_{*this};
  int rank_ = 0, world_ = 1, local_rank_ = 0, local_size_ = 1;
  std::uint64_t sequence_ = 0;
  MPI_Request heartbeat_requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
  std::int64_t beat_out_ = 0, beat_in_ = 0;
  bool previous_left_ = false;
  std::thread::id mpi_thread_id_;
  std::atomic<int> abort_code_{-1};
  std::chrono::steady_clock::time_point last_heard_, next_beat_;
};

}  // namespace grcnn::dist
