// world_communicator() over MPI (HIPPO_WITH_MPI=ON), with a watchdog: a collective that waits
// longer than the timeout for the other ranks (one died without the launcher noticing, or
// hangs) prints what it waited for and ends the whole job with MPI_Abort.
#include <mpi.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "train/dist/communicator.h"

namespace hippo {

bool mpi_available() { return true; }

namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  fail("MPI ", what, " failed: ", std::string(msg, static_cast<size_t>(len)));
}

// Collectives go in pieces of 16 MB: one call over a 500 MB buffer (a 125M model's gradients)
// took 10x the CPU time and 7-14x the wall time of the same bytes in 16 MB calls here (Open
// MPI 4.1, 2 ranks: it allocates and faults in a temporary as large as each call's buffer).
constexpr size_t kPieceBytes = size_t{1} << 24;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "init");
    thread_multiple_ = provided >= MPI_THREAD_MULTIPLE;
    // Errors come back as codes (reported as hippo::Error), not as MPI's own abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    watchdog_ = std::thread([this] { watch(); });
  }

  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    watchdog_.join();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  void allreduce_sum(float* data, size_t n) override {
    Guard g(*this, "the gradient all-reduce");
    for (size_t done = 0; done < n;) {
      const int k = static_cast<int>(std::min(n - done, kPieceBytes / sizeof(float)));
      check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + done, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
                "all-reduce");
      done += static_cast<size_t>(k);
    }
  }
  void allreduce_sum(double* data, size_t n) override {
    Guard g(*this, "an all-reduce of the step's statistics");
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), MPI_DOUBLE, MPI_SUM,
                            MPI_COMM_WORLD), "all-reduce");
  }
  void start_allreduce_sum(float* data, size_t n) override {
    for (size_t done = 0; done < n;) {
      const int k = static_cast<int>(std::min(n - done, kPieceBytes / sizeof(float)));
      MPI_Request r = MPI_REQUEST_NULL;
      check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data + done, k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r),
                "nonblocking all-reduce");
      pending_.push_back(r);
      done += static_cast<size_t>(k);
    }
  }
  void progress() override {
    if (pending_.empty()) return;
    int all_done = 0;
    check_mpi(MPI_Testall(static_cast<int>(pending_.size()), pending_.data(), &all_done,
                          MPI_STATUSES_IGNORE), "test of the nonblocking all-reduces");
    if (all_done) pending_.clear();  // completed requests are MPI_REQUEST_NULL now
  }
  void wait_all() override {
    if (pending_.empty()) return;
    Guard g(*this, "the gradient all-reduce (bucketed)");
    check_mpi(MPI_Waitall(static_cast<int>(pending_.size()), pending_.data(), MPI_STATUSES_IGNORE),
              "wait for the nonblocking all-reduces");
    pending_.clear();
  }
  void broadcast(void* data, size_t bytes, int root) override {
    Guard g(*this, "a broadcast from rank 0");
    char* p = static_cast<char*>(data);
    for (size_t done = 0; done < bytes;) {
      const int k = static_cast<int>(std::min(bytes - done, kPieceBytes));
      check_mpi(MPI_Bcast(p + done, k, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
      done += static_cast<size_t>(k);
    }
  }
  void barrier() override {
    Guard g(*this, "a barrier");
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "barrier");
  }

  void abort_all(const std::string& why) override {
    std::fprintf(stderr, "hippo: rank %d of %d: %s\nhippo: ending all ranks\n", rank_, size_,
                 why.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);  // MPI_Abort does not return; this is in case it did
  }

  void set_timeout(double seconds) override { timeout_s_.store(seconds); }
  void set_context(const std::string& context) override {
    std::lock_guard<std::mutex> g(mu_);
    context_ = context;
  }

 private:
  // Marks a collective in flight for the watchdog.
  struct Guard {
    MpiCommunicator& c;
    Guard(MpiCommunicator& comm, const char* what) : c(comm) {
      std::lock_guard<std::mutex> g(c.mu_);
      c.op_ = what;
      c.since_ = now_s();
    }
    ~Guard() {
      std::lock_guard<std::mutex> g(c.mu_);
      c.op_ = nullptr;
    }
  };

  void watch() {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      cv_.wait_for(lk, std::chrono::milliseconds(200));
      const double limit = timeout_s_.load();
      if (stop_ || !op_ || limit <= 0) continue;
      const double waited = now_s() - since_;
      if (waited < limit) continue;
      std::fprintf(stderr,
                   "hippo: rank %d of %d: no reply from the other ranks for %.0f s in %s%s%s "
                   "(--dist-timeout %g): a rank died or hangs. Ending the job; the last checkpoint "
                   "on disk is intact (continue with --resume)\n",
                   rank_, size_, waited, op_, context_.empty() ? "" : " at ", context_.c_str(), limit);
      std::fflush(stderr);
      if (thread_multiple_) MPI_Abort(MPI_COMM_WORLD, 3);
      std::_Exit(3);  // the launcher ends the other ranks when one exits without finalizing
    }
  }

  std::vector<MPI_Request> pending_;  // started by start_allreduce_sum, not yet waited for
  int rank_ = 0, size_ = 1, local_size_ = 1;
  bool thread_multiple_ = false;
  std::atomic<double> timeout_s_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  const char* op_ = nullptr;
  double since_ = 0;
  std::string context_;
  std::thread watchdog_;
};

}  // namespace

Communicator& world_communicator() {
  static std::unique_ptr<Communicator> world;
  static std::once_flag once;
  std::call_once(once, [] {
    if (launched_ranks() > 1) {
      world = std::make_unique<MpiCommunicator>();
      // MPI_Finalize at exit, after main returns (a Communicator is process-wide: MPI cannot be
      // initialised twice).
      std::atexit([] { world.reset(); });
    } else {
      world = make_single_process_communicator();
    }
  });
  return *world;
}

}  // namespace hippo
