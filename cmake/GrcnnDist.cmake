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
  target_link_libraries(grcnn_dist INTERFACE grcnn_core MPI::MPI_CXX)  # dist headers need core only
  target_compile_definitions(grcnn_dist INTERFACE GRCNN_HAS_MPI=1)
  install(TARGETS grcnn_dist EXPORT grcnnTargets)
  message(STATUS "grcnn: MPI data-parallel component enabled (MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE})")
  # The NCCL engine: with the CUDA component and nccl.h. libnccl itself is loaded at run time (dlopen),
  # so neither the build nor a program that never makes an NCCL communicator needs the library.
  if(TARGET grcnn_cuda)
    grcnn_python_package_dir(_grcnn_nccl_python nvidia.nccl)
    find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} $ENV{NCCL_ROOT} ${CUDAToolkit_INCLUDE_DIRS} ${_grcnn_nccl_python}
              PATH_SUFFIXES include)
    option(GRCNN_ENABLE_NCCL "Build the NCCL engine (dist/nccl.hpp) into grcnn::dist" ON)
    if(GRCNN_ENABLE_NCCL AND NCCL_INCLUDE_DIR)
      enable_language(CUDA)  # src/cuda enabled it in its own scope only
      add_library(grcnn_nccl STATIC ${PROJECT_SOURCE_DIR}/src/cuda/nccl.cu)
      set_target_properties(grcnn_nccl PROPERTIES EXPORT_NAME nccl CUDA_ARCHITECTURES "${GRCNN_CUDA_ARCHITECTURES}"
                                                  POSITION_INDEPENDENT_CODE ON)
      target_compile_options(grcnn_nccl PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20 --expt-relaxed-constexpr -Xcompiler=-Wall>)
      target_include_directories(grcnn_nccl PRIVATE ${NCCL_INCLUDE_DIR} ${CUDNN_INCLUDE_DIR} ${PROJECT_SOURCE_DIR}/src/cuda)
      target_link_libraries(grcnn_nccl PUBLIC grcnn_cuda MPI::MPI_CXX ${CMAKE_DL_LIBS})
      target_compile_definitions(grcnn_nccl PUBLIC GRCNN_HAS_NCCL=1)
      if(_grcnn_nccl_python AND EXISTS "${_grcnn_nccl_python}/lib/libnccl.so.2")
        target_compile_definitions(grcnn_nccl PRIVATE GRCNN_NCCL_LIBRARY_HINT="${_grcnn_nccl_python}/lib/libnccl.so.2")
      endif()
      target_link_libraries(grcnn_dist INTERFACE grcnn_nccl)
      install(TARGETS grcnn_nccl EXPORT grcnnTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
      message(STATUS "grcnn: NCCL engine enabled (${NCCL_INCLUDE_DIR}/nccl.h; libnccl.so.2 loaded at run time)")
    else()
      message(STATUS "grcnn: NCCL engine disabled (no nccl.h: set NCCL_ROOT, or GRCNN_ENABLE_NCCL=OFF)")
    endif()
  endif()
  # How tests launch ranks (FindMPI's mpiexec).
  set(GRCNN_MPIEXEC "${MPIEXEC_EXECUTABLE}")
else()
  message(STATUS "grcnn: MPI data-parallel component disabled (no MPI found, or GRCNN_ENABLE_MPI=OFF)")
endif()
