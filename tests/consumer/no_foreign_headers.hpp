// Included last by each component's consumer: fails the build when a grcnn header it used pulled in the
// third-party header of a component it did not ask for (the packages are hidden from find_package, but a
// system-wide header would still be found by the compiler; this catches that).
#pragma once
#if defined(GRCNN_CONSUMER_WITHOUT_DATA) && (defined(PNG_H) || defined(TJ_NUMSAMP) || defined(ZLIB_H))
#error "a header of this component includes png.h, turbojpeg.h or zlib.h (grcnn::data's packages)"
#endif
#if defined(GRCNN_CONSUMER_WITHOUT_EVAL) && defined(NC_NOERR)
#error "a header of this component includes netcdf.h (grcnn::eval's package)"
#endif
#if defined(GRCNN_CONSUMER_WITHOUT_DIST) && defined(MPI_VERSION)
#error "a header of this component includes mpi.h (grcnn::dist's package)"
#endif
#if defined(GRCNN_CONSUMER_WITHOUT_CUDA) && (defined(CUDART_VERSION) || defined(CUDNN_MAJOR))
#error "a header of this component includes the CUDA runtime or cuDNN (grcnn::cuda's packages)"
#endif
