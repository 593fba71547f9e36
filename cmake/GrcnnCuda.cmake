# GRCNN_ENABLE_CUDA: on by default when nvcc and cuDNN are both found. cuDNN is searched under CUDNN_ROOT
# (a hint), then the CUDA toolkit prefix, then the Python nvidia-cudnn package's folder (where pip puts
# cuDNN 9 next to PyTorch). A machine without nvcc configures and builds the CPU library unchanged.
include(CheckLanguage)
# The folder of a pip package of NVIDIA's libraries (nvidia.cudnn, nvidia.nccl) for the python3 on the
# path, or "" without one: where pip puts them next to PyTorch.
function(grcnn_python_package_dir out module)
  set(dir "")
  find_program(_grcnn_python NAMES python3)
  if(_grcnn_python)
    execute_process(COMMAND ${_grcnn_python} -c "import ${module} as m; print(list(m.__path__)[0])"
                    OUTPUT_VARIABLE dir OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  set(${out} "${dir}" PARENT_SCOPE)
endfunction()
check_language(CUDA)
set(_grcnn_cuda_default OFF)
if(CMAKE_CUDA_COMPILER)
  find_package(CUDAToolkit QUIET)
  grcnn_python_package_dir(_grcnn_cudnn_python nvidia.cudnn)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
            ${_grcnn_cudnn_python} PATH_SUFFIXES include)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
               ${_grcnn_cudnn_python} PATH_SUFFIXES lib lib64)
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
