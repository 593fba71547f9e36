#pragma once
// Standard normal tensors drawn by counter (core/philox.hpp). Element (n, j) of a tensor, n its index
// along dim 0 (its sample) and j its row-major index within the sample, is the draw at (seed, stream,
// n, j) whatever the tensor's layout, dtype or device: CPU and GPU draws agree, and a sample's draws do
// not depend on the batch around it. Host draws run on OpenMP threads, vectorised for the machine's
// ISA (core/cpu_dispatch.hpp); device draws go through the device runtime.
#include <algorithm>
#include <cstdint>

#include "grcnn/core/cpu_dispatch.hpp"
#include "grcnn/core/philox.hpp"
#include "grcnn/core/tensor.hpp"

namespace grcnn {

// Which draws: seed and stream (for example a call counter) of a noise map.
struct normal_key {
  std::uint64_t seed = 0, stream = 0;
};

namespace detail {

// The draws of sample `sample` at indices [j0, j1) into out[0 .. j1 - j0): whole groups of four in a
// loop GCC vectorises, partial groups at the two ends one value at a time. All three loops are compiled
// for the one ISA, so a value does not depend on which loop drew it (with FMA, the ISA contracts the
// float math into fused multiply-adds: values then differ from another ISA's in the last bit or two).
inline void normal_draws(float* out, const normal_key& k, std::uint32_t sample, std::int64_t j0, std::int64_t j1,
                         cpu_isa isa) {
  const std::uint64_t seed = k.seed, stream = k.stream;
  run_vectorised(isa, [&]() GRCNN_VECTOR_BODY {
    const std::int64_t g0 = (j0 + 3) >> 2, g1 = j1 >> 2;
    const std::int64_t head_end = std::min(j1, 4 * g0), tail_begin = std::max(head_end, 4 * g1);
    for (std::int64_t j = j0; j < head_end; ++j)
      out[j - j0] = philox::normal4(seed, stream, sample, static_cast<std::uint32_t>(j >> 2)).v[j & 3];
    float* o = out + (4 * g0 - j0);
    for (std::int64_t g = g0; g < g1; ++g) {
      const philox::normals z = philox::normal4(seed, stream, sample, static_cast<std::uint32_t>(g));
      for (int l = 0; l < 4; ++l) o[4 * (g - g0) + l] = z.v[l];
    }
    for (std::int64_t j = tail_begin; j < j1; ++j)
      out[j - j0] = philox::normal4(seed, stream, sample, static_cast<std::uint32_t>(j >> 2)).v[j & 3];
  });
}

// Fills host memory of an [n, c, h, w] tensor (c * h * w values per sample; rank other than 4 passes
// [n, per, 1, 1]) in plain or channels-last order.
template <class T>
void fill_normal_host(T* dst, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w, bool channels_last,
                      const normal_key& k) {
  const cpu_isa isa = active_cpu_isa();
  const std::int64_t hw = h * w, per = c * hw;
  if (!channels_last) {
    // Work items of `chunk` indices of one sample; floats are drawn in place, other types via a buffer.
    constexpr std::int64_t chunk = 4096;
    const std::int64_t per_sample = (per + chunk - 1) / chunk, items = n * per_sample;
#pragma omp parallel for schedule(static) if (items * chunk > (1 << 15))
    for (std::int64_t it = 0; it < items; ++it) {
      const std::int64_t s = it / per_sample, j0 = (it % per_sample) * chunk, j1 = std::min(per, j0 + chunk);
      T* d = dst + s * per + j0;
      if constexpr (std::is_same_v<T, float>) {
        normal_draws(d, k, static_cast<std::uint32_t>(s), j0, j1, isa);
      } else {
        float buf[chunk];
        normal_draws(buf, k, static_cast<std::uint32_t>(s), j0, j1, isa);
        for (std::int64_t i = 0; i < j1 - j0; ++i) d[i] = static_cast<T>(buf[i]);
      }
    }
    return;
  }
  // Channels-last: draw a block of channels over a run of positions (plain order), then write it
  // transposed, each position's channels contiguous.
  constexpr std::int64_t cb = 16, pb = 256;
  const std::int64_t c_blocks = (c + cb - 1) / cb, p_blocks = (hw + pb - 1) / pb, items = n * c_blocks * p_blocks;
#pragma omp parallel for schedule(static) if (items * cb * pb > (1 << 15))
  for (std::int64_t it = 0; it < items; ++it) {
    const std::int64_t s = it / (c_blocks * p_blocks), rest = it % (c_blocks * p_blocks);
    const std::int64_t c0 = (rest / p_blocks) * cb, c1 = std::min(c, c0 + cb);
    const std::int64_t p0 = (rest % p_blocks) * pb, p1 = std::min(hw, p0 + pb);
    float buf[cb][pb];
    for (std::int64_t ci = c0; ci < c1; ++ci)
      normal_draws(buf[ci - c0], k, static_cast<std::uint32_t>(s), ci * hw + p0, ci * hw + p1, isa);
    T* d = dst + s * per;
    for (std::int64_t p = p0; p < p1; ++p)
      for (std::int64_t ci = c0; ci < c1; ++ci) d[p * c + ci] = static_cast<T>(buf[ci - c0][p - p0]);
  }
}

}  // namespace detail

// A tensor of standard normal draws (f32 arithmetic: f64 tensors hold widened floats, bf16 and f16
// ones rounded floats). On one machine a value depends on (key, sample, index) only, bit for bit,
// whatever the layout, batch size or thread count; another ISA or a GPU may fuse multiply-adds
// differently and differ in the last bit or two.
inline tensor standard_normal(const shape& s, const normal_key& key, dtype t = dtype::f32, layout l = layout::plain,
                              device d = cpu_device) {
  GRCNN_CHECK(is_floating(t), dtype_error, "standard_normal: dtype must be floating point, got ", name_of(t));
  GRCNN_CHECK(l == layout::plain || l == layout::nhwc, error, "standard_normal: layout must be plain or nhwc, got ",
              name_of(l));
  GRCNN_CHECK(l != layout::nhwc || s.rank() == 4, shape_error, "standard_normal: nhwc needs a rank-4 shape, got ", s);
  const std::int64_t n = s.rank() == 0 ? 1 : s[0];
  std::int64_t per = 1;
  for (int i = 1; i < s.rank(); ++i) per *= s[i];
  // The counter holds the sample in 32 bits and the group of four within it in 32 bits.
  GRCNN_CHECK(n <= (std::int64_t(1) << 32) && per <= (std::int64_t(1) << 34), shape_error, "standard_normal: ", s,
              " exceeds the draw counter (at most 2^32 samples along dim 0 and 2^34 values per sample)");
  tensor out = tensor::empty(s, t, l, d);
  if (out.numel() == 0) return out;
  const bool cl = l == layout::nhwc;
  const std::int64_t c = cl ? s[1] : per, h = cl ? s[2] : 1, w = cl ? s[3] : 1;
  if (!out.on_host()) {
    runtime_for(d).fill_normal(t, out.raw(), n, c, h, w, cl, key.seed, key.stream);
    return out;
  }
  detail::visit_dtype(t, [&]<class T>() {
    if constexpr (std::is_same_v<T, std::int64_t>) {
      throw dtype_error("standard_normal: i64");  // refused above
    } else {
      detail::fill_normal_host(static_cast<T*>(out.raw()), n, c, h, w, cl, key);
    }
  });
  return out;
}

}  // namespace grcnn
