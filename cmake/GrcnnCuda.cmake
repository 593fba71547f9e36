# GRCNN_ENABLE_CUDA: on by default when nvcc and cuDNN are both found. cuDNN is searched under CUDNN_ROOT
# (a hint, e.g. the Python nvidia-cudnn package's folder), then the CUDA toolkit prefix. A machine
# without nvcc configures and builds the CPU library unchanged.
include(CheckLanguage)
check_language(CUDA)
set(_grcnn_cuda_default OFF)
if(CMAKE_CUDA_COMPILER)
  find_package(CUDAToolkit QUIET)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
            PATH_SUFFIXES include)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
               PATH_SUFFIXES lib lib64)
  if(CUDAToolkit_FOUND AND CUDNN_INCLUDE_DIR AND CUDNN_LIBRARY)
    set(_grcnn_cuda_default ON)
  endif()
endif()
option(GRCNN_ENABLE_CUDA "Build the CUDA backend component (grcnn::cuda)" ${_grcnn_cuda_default})
if(GRCNN_ENABLE_CUDA)
  if(NOT CMAKE_CUDA_COMPILER OR NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    message(FATAL_ERROR "GRCNN_ENABLE_CUDA=ON needs nvcc and cuDNN (set CUDNN_ROOT); found nvcc='${CMAKE_CUDA_COMPILER}' "
                        "cudnn.h='${CUDNN_INCLUDE_DIR}' libcudnn='${CUDNN_LIBRARY}'")
  endif()
  message(STATUS "grcnn: CUDA backend enabled (cuDNN ${CUDNN_INCLUDE_DIR})")
else()
  message(STATUS "grcnn: CUDA backend disabled (nvcc or cuDNN not found, or GRCNN_ENABLE_CUDA=OFF)")
endif()
