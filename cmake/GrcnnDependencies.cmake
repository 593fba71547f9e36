# The dependencies of grcnn::grcnn, found the same way in our build and in a consumer's find_package(grcnn).
include(CMakeFindDependencyMacro)
find_dependency(Eigen3 3.4 NO_MODULE)
find_dependency(Boost 1.74)
find_dependency(dnnl)
find_dependency(OpenMP)
if(NOT TARGET Boost::headers AND TARGET Boost::boost)
  add_library(Boost::headers ALIAS Boost::boost)
endif()
