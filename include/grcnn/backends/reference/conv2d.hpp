#pragma once
// Direct convolution with groups, stride, padding and dilation, forward and backward.
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::conv2d_op> {
  using P = ops::conv2d_problem;
  static status can_implement(const P&) { return status::yes(); }

  // Visits every (output, input, weight) index triple of the convolution.
  template <class F>
  static void loop(const P& pr, F&& f) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], H = pr.x.dims[2], W = pr.x.dims[3];
    const auto O = pr.w.dims[0], KH = pr.w.dims[2], KW = pr.w.dims[3], OH = pr.y.dims[2], OW = pr.y.dims[3];
    const std::int64_t G = pr.p.groups, Cg = C / G, Og = O / G;
    for (std::int64_t n = 0; n < N; ++n)
      for (std::int64_t o = 0; o < O; ++o) {
        const auto g = o / Og;
        for (std::int64_t oh = 0; oh < OH; ++oh)
          for (std::int64_t ow = 0; ow < OW; ++ow) {
            const std::size_t yi = static_cast<std::size_t>(((n * O + o) * OH + oh) * OW + ow);
            for (std::int64_t ic = 0; ic < Cg; ++ic)
              for (std::int64_t kh = 0; kh < KH; ++kh) {
                const auto ih = oh * pr.p.stride_h - pr.p.pad_h + kh * pr.p.dilation_h;
                if (ih < 0 || ih >= H) continue;
                for (std::int64_t kw = 0; kw < KW; ++kw) {
                  const auto iw = ow * pr.p.stride_w - pr.p.pad_w + kw * pr.p.dilation_w;
                  if (iw < 0 || iw >= W) continue;
                  const std::size_t xi = static_cast<std::size_t>(((n * C + g * Cg + ic) * H + ih) * W + iw);
                  const std::size_t wi = static_cast<std::size_t>(((o * Cg + ic) * KH + kh) * KW + kw);
                  f(yi, xi, wi);
                }
              }
          }
      }
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    const auto xv = x.values<T>(), wv = w.values<T>();
    std::vector<T> y(static_cast<std::size_t>(pr.y.dims.numel()), T(0));
    loop(pr, [&](std::size_t yi, std::size_t xi, std::size_t wi) { y[yi] += xv[xi] * wv[wi]; });
    if (pr.bias) {
      const auto bv = b.values<T>();
      const auto O = pr.y.dims[1], HW = pr.y.dims[2] * pr.y.dims[3];
      for (std::size_t i = 0; i < y.size(); ++i) y[i] += bv[static_cast<std::size_t>((static_cast<std::int64_t>(i) / HW) % O)];
    }
    return ref_detail::make(pr.y, y);
  }

  static void backward(const P& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w,
                       tensor* dx, tensor* dw, tensor* db) {
    const auto dyv = dy.values<T>();
    const auto xv = dw ? x.values<T>() : std::vector<T>(), wv = dx ? w.values<T>() : std::vector<T>();
    std::vector<T> dxv(dx ? static_cast<std::size_t>(pr.x.dims.numel()) : 0, T(0)),
        dwv(dw ? static_cast<std::size_t>(pr.w.dims.numel()) : 0, T(0));
    loop(pr, [&](std::size_t yi, std::size_t xi, std::size_t wi) {
      if (dx) dxv[xi] += dyv[yi] * wv[wi];
      if (dw) dwv[wi] += dyv[yi] * xv[xi];
    });
    if (dx) *dx = ref_detail::make(pr.x, dxv);
    if (dw) *dw = ref_detail::make(pr.w, dwv);
    if (db) {
      const auto O = pr.y.dims[1], HW = pr.y.dims[2] * pr.y.dims[3];
      std::vector<T> dbv(static_cast<std::size_t>(O), T(0));
      for (std::size_t i = 0; i < dyv.size(); ++i) dbv[static_cast<std::size_t>((static_cast<std::int64_t>(i) / HW) % O)] += dyv[i];
      *db = ref_detail::make(grcnn::shape{O}, pr.w.type, dbv);
    }
  }
};

}  // namespace grcnn::backends
