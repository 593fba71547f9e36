#pragma once
// The memory orders the CUDA backend asks networks for: activations (plain in f32/tf32, channels-last
// in bf16) and convolution weights (held in the activations' order, the filter format cuDNN wants).
#include "grcnn/backends/cuda/context.hpp"

namespace grcnn::backends {

// With the legacy cuDNN convolution API, f32 and tf32 convolutions ran 1.3-1.9x faster in NCHW than in
// NHWC on an H100 (docs/benchmarks.md): plain is this backend's preferred activation order. bf16
// activations go channels-last, the order of cuDNN's tensor-core kernels.
template <class P>
struct backend_traits<cuda_t<P>> {
  static constexpr grcnn::device where = cuda_device;
  static constexpr layout activations = layout::plain;
  static constexpr layout mixed_activations = layout::nhwc;
};

// Conv weights held channels-last (O, KH, KW, C/groups): cuDNN's fast NHWC kernels want that filter
// format. Converted once, on the device.
template <class P>
struct weight_layout<cuda_t<P>> {
  static tensor conv(const ops::conv2d_problem& pr, const tensor& w) {
    tensor d = w.to_device(cuda_device);
    return pr.x.memory_layout == layout::nhwc ? d.to_layout(layout::nhwc) : d;
  }
};

// Under mixed precision the f32 master is held in the activations' order too (the bf16 cast keeps it).
template <class P>
struct mixed_weight_order<cuda_t<P>> {
  static layout conv(layout activations) { return activations == layout::nhwc ? layout::nhwc : layout::plain; }
};

}  // namespace grcnn::backends
