#pragma once
#include "grcnn/ops/detail.hpp"
#include "grcnn/ops/elementwise.hpp"

namespace grcnn::ops {

struct pool2d_params {
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  static pool2d_params square(int kernel, int stride, int pad = 0) { return {kernel, kernel, stride, stride, pad, pad}; }
};

inline pool2d_problem make_pool2d_problem(const tensor& x, pool_kind kind, const pool2d_params& p) {
  const std::string_view op = kind == pool_kind::max ? "max_pool2d" : "avg_pool2d";
  detail::expect_rank(op, "input", x, 4);
  detail::expect_activation(op, "input", x);
  GRCNN_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.pad_h >= 0 &&
                  p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w,
              shape_error, op, ": invalid kernel ", p.kernel_h, "x", p.kernel_w, " stride ", p.stride_h, ",",
              p.stride_w, " padding ", p.pad_h, ",", p.pad_w, " (padding must be at most half the kernel)");
  const auto OH = (x.dim(2) + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1;
  const auto OW = (x.dim(3) + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  GRCNN_CHECK(x.dim(2) + 2 * p.pad_h >= p.kernel_h && x.dim(3) + 2 * p.pad_w >= p.kernel_w, shape_error, op,
              ": kernel ", p.kernel_h, "x", p.kernel_w, " larger than input ", x.describe());
  pool2d_problem pr;
  pr.x = tensor_desc::of(x);
  pr.y = {grcnn::shape{x.dim(0), x.dim(1), OH, OW}, x.type(), x.memory_layout()};
  pr.kind = kind;
  pr.kernel_h = p.kernel_h;
  pr.kernel_w = p.kernel_w;
  pr.stride_h = p.stride_h;
  pr.stride_w = p.stride_w;
  pr.pad_h = p.pad_h;
  pr.pad_w = p.pad_w;
  return pr;
}

template <class B = backends::default_backend>
variable pool2d(const variable& x, pool_kind kind, const pool2d_params& p) {
  const pool2d_problem pr = make_pool2d_problem(x.value(), kind, p);
  return backends::dispatch<B, pool2d_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    std::unique_ptr<autograd::payload> state;
    const bool rec = autograd::should_record({&x});
    variable y = variable::result(K::forward(pr, x.value(), state), rec);
    if (rec)
      autograd::record_op(pool2d_op::name, {&x}, {&y}, {}, std::move(state),
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, n.state.get(), detail::as_layout(og[0], pr.y.memory_layout));
                          });
    return y;
  });
}

// Max pooling (PyTorch MaxPool2d, floor mode).
template <class B = backends::default_backend>
variable max_pool2d(const variable& x, int kernel, int stride, int pad = 0) {
  return pool2d<B>(x, pool_kind::max, pool2d_params::square(kernel, stride, pad));
}
// Average pooling (PyTorch AvgPool2d, count_include_pad=True, floor mode).
template <class B = backends::default_backend>
variable avg_pool2d(const variable& x, int kernel, int stride, int pad = 0) {
  return pool2d<B>(x, pool_kind::avg, pool2d_params::square(kernel, stride, pad));
}
// [N, C, H, W] -> [N, C]: the mean over H and W.
template <class B = backends::default_backend>
variable global_avg_pool(const variable& x) {
  detail::expect_rank("global_avg_pool", "input", x.value(), 4);
  const auto H = static_cast<int>(x.dims()[2]), W = static_cast<int>(x.dims()[3]);
  variable pooled = pool2d<B>(x, pool_kind::avg, pool2d_params{H, W, H, W, 0, 0});
  return reshape(pooled, grcnn::shape{x.dims()[0], x.dims()[1]});
}

}  // namespace grcnn::ops
