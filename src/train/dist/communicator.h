// The processes of a data-parallel training run and the few collective operations the trainer
// needs (docs/scaling.md). One implementation runs over MPI (mpirun -np N hippo train; built
// when HIPPO_WITH_MPI is on), the other is the single process of a plain run, so the training
// loop has no #ifdef. Every collective is called by all ranks in the same order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace hippo {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Ranks on this machine (for the default thread count: the cores shared among them).
  virtual int local_size() const = 0;
  // In place: data becomes the element-wise sum over all ranks. For two ranks each gets
  // a + b exactly (IEEE addition is commutative), the basis of the bit-identity with
  // --grad-accum (docs/scaling.md).
  virtual void allreduce_sum(float* data, size_t n) = 0;
  virtual void allreduce_sum(double* data, size_t n) = 0;
  // Nonblocking allreduce_sum of data[0..n) (MPI_Iallreduce, in pieces like allreduce_sum):
  // starts it and returns; data must stay untouched until wait_all() returns. The bucketed
  // gradient all-reduce (grad_buckets.h) starts one per bucket during the backward. Same
  // result as allreduce_sum bit for bit with two ranks (a + b either way).
  virtual void start_allreduce_sum(float* data, size_t n) = 0;
  // Lets the started all-reduces advance (MPI_Testall): without a progress thread (Open MPI's
  // default) they move only while their rank is inside an MPI call. Never waits.
  virtual void progress() = 0;
  // Waits until every started all-reduce is complete (under the watchdog).
  virtual void wait_all() = 0;
  // bytes of root's buffer to every rank.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the job now (MPI_Abort) after printing `why` on stderr; a single
  // process only prints nothing and returns, so the caller throws as usual.
  virtual void abort_all(const std::string& why) = 0;
  // Collectives that wait longer than this for the other ranks end the job (a rank that died
  // or hangs; watchdog). 0: wait for ever. `context` (e.g. "step 12") goes into the message.
  virtual void set_timeout(double seconds) = 0;
  virtual void set_context(const std::string& context) = 0;
};

// The single process of a plain run: rank 0 of 1; the collectives are no-ops.
std::unique_ptr<Communicator> make_single_process_communicator();

// The ranks of this job: under mpirun (-np > 1) the MPI world, initialised once per process
// and finalised at exit; otherwise the single process. Without MPI support built in, a launch
// as several ranks is refused with an Error saying so, rather than N independent runs.
Communicator& world_communicator();

// How many ranks the launcher started (from its environment: Open MPI, MPICH/PMI, PMIx);
// 1 when not launched by mpirun.
int launched_ranks();

// Whether this build can run as several ranks (HIPPO_WITH_MPI).
bool mpi_available();

}  // namespace hippo
