# GRCNN_ENABLE_MPI: the data-parallel component grcnn::dist (include/grcnn/dist/mpi.hpp and what uses
# it), on by default where an MPI library is found (Debian: libopenmpi-dev). Without it everything else
# builds; dist/communicator.hpp and dist/sampler.hpp need no MPI. The NCCL engine (dist/nccl.hpp) is
# part of it when the CUDA component is on and nccl.h is found (CUDA toolkit prefix, NCCL_ROOT, or the
# Python nvidia-nccl package).
find_package(MPI QUIET COMPONENTS CXX)
option(GRCNN_ENABLE_MPI "Build the MPI data-parallel component (grcnn::dist)" ${MPI_CXX_FOUND})
if(GRCNN_ENABLE_MPI)
  if(NOT MPI_CXX_FOUND)
    message(FATAL_ERROR "GRCNN_ENABLE_MPI=ON needs an MPI library (Debian: libopenmpi-dev openmpi-bin)")
  endif()
  add_library(grcnn_dist INTERFACE)
  add_library(grcnn::dist ALIAS grcnn_dist)
  set_target_properties(grcnn_dist PROPERTIES EXPORT_NAME dist)
  target_link_libraries(grcnn_dist INTERFACE grcnn MPI::MPI_CXX)
  target_compile_definitions(grcnn_dist INTERFACE GRCNN_HAS_MPI=1)
  install(TARGETS grcnn_dist EXPORT grcnnTargets)
  message(STATUS "grcnn: MPI data-parallel component enabled (MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
  # How tests launch ranks (FindMPI's mpiexec).
  set(GRCNN_MPIEXEC "${MPIEXEC_EXECUTABLE}")
else()
  message(STATUS "grcnn: MPI data-parallel component disabled (no MPI found, or GRCNN_ENABLE_MPI=OFF)")
endif()
