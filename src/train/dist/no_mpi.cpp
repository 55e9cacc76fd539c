// world_communicator() of a build without MPI (HIPPO_WITH_MPI=OFF).
#include "core/error.h"
#include "train/dist/communicator.h"

namespace hippo {

bool mpi_available() { return false; }

Communicator& world_communicator() {
  const int n = launched_ranks();
  HIPPO_CHECK(n <= 1, "this hippo was built without MPI (HIPPO_WITH_MPI=OFF), so it cannot train as ",
              n, " ranks: rebuild with libopenmpi-dev installed, or run without mpirun");
  static const std::unique_ptr<Communicator> single = make_single_process_communicator();
  return *single;
}

}  // namespace hippo
