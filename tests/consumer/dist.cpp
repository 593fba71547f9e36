// grcnn::dist: the MPI engine's header (links MPI); run outside mpirun it only reports how it started.
#include <grcnn/dist/mpi.hpp>

#include <cstdio>

#include "no_foreign_headers.hpp"

int main() {
  std::printf("dist consumer: %s\n", grcnn::dist::launched_by_mpi() ? "under an MPI launcher" : "a plain run");
  return 0;
}
