# Installs the grcnn build tree into a temporary prefix, then configures, builds and runs tests/consumer
# against it with find_package(grcnn): once as an existing consumer does (grcnn::grcnn, nothing hidden),
# then once per component (core, data, eval; cuda and dist where this build has them) with the packages of
# the other components hidden from find_package (CMAKE_DISABLE_FIND_PACKAGE_<Pkg>, so a find_package(Pkg)
# that runs fails). Each component's program is also checked for other components' third-party headers
# (no_foreign_headers.hpp), and its link command for their libraries.
# Negative controls show that the hiding bites: a consumer that needs a hidden package must fail.
#   cmake -DSOURCE_DIR=... -DBUILD_DIR=... -DWORK_DIR=... -DGENERATOR=... [-DLAUNCHER=ccache] -P run_consumer_test.cmake
cmake_minimum_required(VERSION 3.20)
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()

# What the installed package was built with (its grcnnConfig.cmake).
file(GLOB config "${WORK_DIR}/prefix/*/cmake/grcnn/grcnnConfig.cmake")
file(READ "${config}" config_text)
string(REGEX MATCH "set\\(GRCNN_HAS_CUDA ([A-Za-z0-9]*)\\)" _ "${config_text}")
set(has_cuda "${CMAKE_MATCH_1}")
string(REGEX MATCH "set\\(GRCNN_HAS_MPI ([A-Za-z0-9]*)\\)" _ "${config_text}")
set(has_mpi "${CMAKE_MATCH_1}")
string(REGEX MATCH "set\\(_grcnn_dist_needs_cuda ([A-Za-z0-9]*)\\)" _ "${config_text}")
set(dist_needs_cuda "${CMAKE_MATCH_1}")

# The packages of each component (cmake/GrcnnDependencies.cmake) and the shared libraries they bring.
set(pkgs_core Eigen3 Boost dnnl OpenMP nlohmann_json)
set(pkgs_data ZLIB PNG libjpeg-turbo)
set(pkgs_eval netCDF)
set(pkgs_cuda CUDAToolkit)
set(pkgs_dist MPI)
set(lib_PNG "libpng[0-9]*\\.(so|a)")
set(lib_libjpeg-turbo "libturbojpeg\\.(so|a)")
set(lib_netCDF "libnetcdf[^ /]*\\.(so|a)")
set(lib_MPI "libmpi[^ /]*\\.(so|a)")
set(lib_CUDAToolkit "libcuda|libcublas|libcudnn")
set(lib_ZLIB "libz\\.(so|a)")  # checked only where netCDF is hidden too: netCDF's own target links libz

# consumer(<name> <component> [RUN] [LINK target] [HIDE pkg...] [FAIL_NAMING regex]): configures
# tests/consumer into WORK_DIR/<name>; with FAIL_NAMING the configure must fail and its output match.
function(consumer name component)
  cmake_parse_arguments(C "RUN" "LINK;FAIL_NAMING" "HIDE" ${ARGN})
  set(dir "${WORK_DIR}/${name}")
  set(args -S "${SOURCE_DIR}/tests/consumer" -B "${dir}" -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
           -DCMAKE_BUILD_TYPE=Release "-DGRCNN_CONSUMER_COMPONENT=${component}"
           "-DGRCNN_CONSUMER_SOURCE_DIR=${SOURCE_DIR}")
  if(LAUNCHER)
    list(APPEND args "-DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER}")
  endif()
  if(C_LINK)
    list(APPEND args "-DGRCNN_CONSUMER_LINK=${C_LINK}")
  endif()
  foreach(pkg IN LISTS C_HIDE)
    list(APPEND args "-DCMAKE_DISABLE_FIND_PACKAGE_${pkg}=TRUE")
  endforeach()
  list(JOIN C_HIDE " " hidden)
  execute_process(COMMAND "${CMAKE_COMMAND}" ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(C_FAIL_NAMING)
    if(NOT rc)
      message(FATAL_ERROR "${name}: configured although ${hidden} hidden; the hiding does not work\n${out}")
    endif()
    if(NOT out MATCHES "${C_FAIL_NAMING}")
      message(FATAL_ERROR "${name}: failed, but not over a hidden package (${C_FAIL_NAMING}):\n${out}")
    endif()
    message(STATUS "${name}: refused as it must be (hidden: ${hidden})")
    return()
  endif()
  if(rc)
    message(FATAL_ERROR "${name}: configuring failed (hidden: ${hidden}):\n${out}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${dir}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc)
    message(FATAL_ERROR "${name}: building failed (hidden: ${hidden}):\n${out}")
  endif()
  # The link command (Ninja's build.ninja, or the Makefiles' link.txt) names none of the hidden libraries.
  file(GLOB link_files "${dir}/build*.ninja" "${dir}/CMakeFiles/consumer.dir/link.txt")
  set(link_lines "")
  foreach(f IN LISTS link_files)
    file(STRINGS "${f}" lines REGEX "LINK_LIBRARIES|-o consumer")
    list(APPEND link_lines ${lines})
  endforeach()
  if(NOT link_lines)
    message(FATAL_ERROR "${name}: no link command found in ${dir} (generator ${GENERATOR})")
  endif()
  foreach(pkg IN LISTS C_HIDE)
    if(NOT DEFINED lib_${pkg})
      continue()
    endif()
    list(FIND C_HIDE netCDF netcdf_hidden)
    if(pkg STREQUAL "ZLIB" AND netcdf_hidden EQUAL -1)
      continue()
    endif()
    if(link_lines MATCHES "[^ ]*(${lib_${pkg}})")
      message(FATAL_ERROR "${name}: links ${CMAKE_MATCH_0} although ${pkg} is hidden")
    endif()
  endforeach()
  if(C_RUN)
    execute_process(COMMAND "${dir}/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
    message(STATUS "${name}: ${out}")
    if(rc)
      message(FATAL_ERROR "${name}: the program failed: ${rc}")
    endif()
  else()
    message(STATUS "${name}: built (hidden: ${hidden})")
  endif()
endfunction()

# An existing consumer: find_package(grcnn) and grcnn::grcnn.
consumer(all grcnn RUN)
# The umbrella named as a component: core, data and eval, with cuda's and dist's packages hidden.
consumer(umbrella umbrella RUN HIDE ${pkgs_cuda} ${pkgs_dist})
# One consumer per component, the other components' packages hidden.
consumer(core core RUN HIDE ${pkgs_data} ${pkgs_eval} ${pkgs_cuda} ${pkgs_dist})
consumer(data data RUN HIDE ${pkgs_eval} ${pkgs_cuda} ${pkgs_dist})
consumer(eval eval RUN HIDE ${pkgs_data} ${pkgs_cuda} ${pkgs_dist})
if(has_cuda)  # built and linked, not run (the machine may have no GPU)
  consumer(cuda cuda HIDE ${pkgs_data} ${pkgs_eval} ${pkgs_dist})
else()
  message(STATUS "cuda: skipped (this build has no CUDA component)")
endif()
if(has_mpi)
  set(dist_hide ${pkgs_data} ${pkgs_eval})
  if(NOT dist_needs_cuda)
    list(APPEND dist_hide ${pkgs_cuda})
  endif()
  consumer(dist dist RUN HIDE ${dist_hide})
else()
  message(STATUS "dist: skipped (this build has no MPI component)")
endif()

# Negative controls (configure only): hiding a package a consumer needs makes it fail, whether the package
# belongs to the component asked for or to a target linked beyond it.
# hidden_regex: what CMake says when a hidden package is looked for (REQUIRED or not).
function(hidden_regex out pkg)
  set(${out} "CMAKE_DISABLE_FIND_PACKAGE_${pkg}|dependency ${pkg} could not be found|Could NOT find ${pkg}" PARENT_SCOPE)
endfunction()
foreach(control "core;Eigen3" "data;PNG" "eval;netCDF" "cuda;CUDAToolkit" "dist;MPI")
  list(GET control 0 c)
  list(GET control 1 pkg)
  if((c STREQUAL "cuda" AND NOT has_cuda) OR (c STREQUAL "dist" AND NOT has_mpi))
    continue()
  endif()
  hidden_regex(re ${pkg})
  consumer(control_${c}_hides_own ${c} HIDE ${pkg} FAIL_NAMING "${re}")
endforeach()
consumer(control_core_links_all core LINK grcnn::grcnn HIDE ${pkgs_data} ${pkgs_eval}
         FAIL_NAMING "(ZLIB::ZLIB|PNG::PNG|libjpeg-turbo::turbojpeg|netCDF::netcdf).*but the target was not found")
