# The third-party packages of each component of grcnn (README, "Using grcnn from CMake"), found the same
# way in our build (CMakeLists.txt) and in a consumer's find_package(grcnn [COMPONENTS ...])
# (cmake/grcnnConfig.cmake.in), which looks only for the packages of the components it is asked for:
#   core  Eigen3, Boost headers, oneDNN, OpenMP, nlohmann_json: core, autograd, contract, ops, backends
#         (CPU), nn, models, train (not train/trainer.hpp, which reads data), io (not io/netcdf*), dist
#         (not dist/mpi.hpp, dist/nccl.hpp)
#   data  zlib, libpng, libjpeg-turbo: include/grcnn/data (image codecs, IDX/MNIST, datasets, loader) and
#         train/trainer.hpp
#   eval  netCDF: include/grcnn/eval, io/netcdf* (eval/activations.hpp and eval/commitment.hpp run a
#         network on stimulus images and need grcnn::data as well)
#   cuda  CUDAToolkit (the compiled grcnn::cuda, where it was built; cuDNN is linked by path)
#   dist  MPI (grcnn::dist: dist/mpi.hpp; with the NCCL engine, dist/nccl.hpp, it needs cuda too)
include(CMakeFindDependencyMacro)

set(GRCNN_KNOWN_COMPONENTS core data eval cuda dist)

# grcnn_find_component_packages(<mode> <component>...): finds the packages of the components.
#   BUILD     our own build: every package REQUIRED.
#   REQUIRED  in grcnnConfig.cmake: find_dependency, which ends the config file with grcnn_FOUND false (or
#             a fatal error under find_package(grcnn REQUIRED)) when a package is missing.
#   OPTIONAL  in grcnnConfig.cmake: quietly; grcnn_<component>_FOUND is false when a package is missing.
# A macro (not a function): find_dependency's return() must leave grcnnConfig.cmake, and the packages'
# result variables belong in the caller's scope.
macro(grcnn_find_component_packages _grcnn_mode_arg)
  set(_grcnn_mode "${_grcnn_mode_arg}")  # a variable: a macro's parameters are not seen by the macros it calls
  foreach(_grcnn_c IN ITEMS ${ARGN})
    set(_grcnn_component_ok TRUE)
    if(_grcnn_c STREQUAL "core")
      _grcnn_find_package(Eigen3 3.4 NO_MODULE)
      _grcnn_find_package(Boost 1.74)
      _grcnn_find_package(dnnl)
      _grcnn_find_package(OpenMP)
      _grcnn_find_package(nlohmann_json 3)
      if(NOT TARGET Boost::headers AND TARGET Boost::boost)
        add_library(Boost::headers ALIAS Boost::boost)
      endif()
    elseif(_grcnn_c STREQUAL "data")
      _grcnn_find_package(ZLIB)
      _grcnn_find_package(PNG)
      _grcnn_find_package(libjpeg-turbo)
    elseif(_grcnn_c STREQUAL "eval")
      _grcnn_find_package(netCDF)  # NeuroidAssembly files (eval/neuroid_assembly.hpp)
    elseif(_grcnn_c STREQUAL "cuda")
      _grcnn_find_package(CUDAToolkit)
    elseif(_grcnn_c STREQUAL "dist")
      _grcnn_find_package(MPI COMPONENTS CXX)
    else()
      set(_grcnn_component_ok FALSE)
    endif()
    set(_grcnn_component_ok_${_grcnn_c} ${_grcnn_component_ok})
  endforeach()
endmacro()

macro(_grcnn_find_package _grcnn_pkg)
  if(_grcnn_mode STREQUAL "BUILD")
    find_package(${_grcnn_pkg} ${ARGN} REQUIRED)
  elseif(_grcnn_mode STREQUAL "REQUIRED")
    find_dependency(${_grcnn_pkg} ${ARGN})
  else()
    find_package(${_grcnn_pkg} ${ARGN} QUIET)
    if(NOT ${_grcnn_pkg}_FOUND)
      set(_grcnn_component_ok FALSE)
    endif()
  endif()
endmacro()
