#pragma once
// The few elementwise loops the layers above core need without a backend: accumulation of gradients
// and the comparisons used by tests. Works on raw memory when formats match, so opaque formats are fine.
#include <algorithm>
#include <cmath>

#include "grcnn/core/cpu_dispatch.hpp"
#include "grcnn/core/tensor.hpp"

namespace grcnn {

// dst += src, element by element. Converts src to dst's format first when they differ.
inline void add_inplace(tensor& dst, const tensor& src) {
  GRCNN_CHECK(dst.dims() == src.dims(), shape_error, "add_inplace: expected ", dst.describe(), ", got ",
              src.describe());
  tensor s = src;
  if (!dst.same_format(s)) {
    s = s.to_dtype(dst.type());
    s = dst.memory_layout() == layout::opaque ? s.to_format(dst.format()) : s.to_layout(dst.memory_layout());
  }
  s = s.to_device(dst.where());  // accumulate where the destination lives
  if (!dst.on_host()) {
    runtime_for(dst.where()).add_inplace(dst.type(), dst.raw(), s.raw(), static_cast<std::size_t>(dst.numel()));
    return;
  }
  detail::visit_dtype(dst.type(), [&]<class T>() {
    const std::size_t n = dst.bytes() / sizeof(T);
    T* d = static_cast<T*>(dst.raw());
    const T* p = static_cast<const T*>(s.raw());
    // Gradient accumulation of large activations: worth the threads (OpenMP, as the backends use) and
    // the machine's widest vectors (core/cpu_dispatch.hpp). No `simd` clause: GCC then privatises the bf16
    // temporaries per lane and vectorises nothing, while the plain loop vectorises (-fopt-info-vec).
    vectorised_chunks(static_cast<std::int64_t>(n), 1 << 14, 1 << 16, [&](std::int64_t lo, std::int64_t hi) GRCNN_VECTOR_BODY {
      if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) {
        for (std::int64_t i = lo; i < hi; ++i) d[i] = T(static_cast<float>(d[i]) + static_cast<float>(p[i]));
      } else {
        for (std::int64_t i = lo; i < hi; ++i) d[i] += p[i];
      }
    });
  });
}

// max |a - b| / max(max |b|, floor): the relative error used by every numeric check.
inline double relative_error(const tensor& a, const tensor& b, double floor = 1e-30) {
  GRCNN_CHECK(a.dims() == b.dims(), shape_error, "relative_error: ", a.describe(), " vs ", b.describe());
  const auto va = a.values<double>(), vb = b.values<double>();
  double diff = 0, mag = floor;
  for (std::size_t i = 0; i < va.size(); ++i) {
    const double d = std::abs(va[i] - vb[i]);
    diff = std::isnan(d) ? INFINITY : std::max(diff, d);
    mag = std::max(mag, std::abs(vb[i]));
  }
  return diff / mag;
}

}  // namespace grcnn
