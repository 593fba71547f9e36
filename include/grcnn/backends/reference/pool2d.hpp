#pragma once
// Max and average pooling with PyTorch's semantics (padding never wins a max; average pooling counts
// padding, count_include_pad=True; floor output size).
#include <limits>
#include <type_traits>

#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::pool2d_op> {
  using P = ops::pool2d_problem;
  static status can_implement(const P&) { return status::yes(); }

  struct saved : autograd::payload {
    std::vector<std::size_t> argmax;
  };

  // Calls f(output index, window input indices, divisor) for every output element.
  template <class F>
  static void windows(const P& pr, F&& f) {
    const auto N = pr.x.dims[0], C = pr.x.dims[1], H = pr.x.dims[2], W = pr.x.dims[3];
    const auto OH = pr.y.dims[2], OW = pr.y.dims[3];
    std::vector<std::size_t> idx;
    for (std::int64_t nc = 0; nc < N * C; ++nc)
      for (std::int64_t oh = 0; oh < OH; ++oh)
        for (std::int64_t ow = 0; ow < OW; ++ow) {
          const auto hs = oh * pr.stride_h - pr.pad_h, ws = ow * pr.stride_w - pr.pad_w;
          const auto he = std::min(hs + pr.kernel_h, H + pr.pad_h), we = std::min(ws + pr.kernel_w, W + pr.pad_w);
          const auto divisor = static_cast<T>((he - hs) * (we - ws));
          idx.clear();
          for (auto h = std::max<std::int64_t>(hs, 0); h < std::min(he, H); ++h)
            for (auto w = std::max<std::int64_t>(ws, 0); w < std::min(we, W); ++w)
              idx.push_back(static_cast<std::size_t>((nc * H + h) * W + w));
          f(static_cast<std::size_t>((nc * OH + oh) * OW + ow), idx, divisor);
        }
  }

  static tensor forward(const P& pr, const tensor& x, std::unique_ptr<autograd::payload>& state) {
    const auto xv = x.values<T>();
    std::vector<T> y(static_cast<std::size_t>(pr.y.dims.numel()));
    auto s = std::make_unique<saved>();
    if (pr.kind == ops::pool_kind::max) s->argmax.resize(y.size());
    windows(pr, [&](std::size_t yi, const std::vector<std::size_t>& idx, T divisor) {
      if (pr.kind == ops::pool_kind::max) {
        std::size_t best = idx.front();
        for (auto i : idx)
          if (xv[i] > xv[best] || std::isnan(xv[i])) best = i;
        s->argmax[yi] = best;
        y[yi] = xv[best];
      } else {  // f32 sums in double: a global average runs over thousands of pixels (SKConv's pooling)
        using A = std::conditional_t<(sizeof(T) < sizeof(double)), double, T>;
        A sum = 0;
        for (auto i : idx) sum += xv[i];
        y[yi] = static_cast<T>(sum / static_cast<A>(divisor));
      }
    });
    state = std::move(s);
    return ref_detail::make(pr.y, y);
  }

  static tensor backward(const P& pr, autograd::payload* state, const tensor& dy) {
    const auto g = dy.values<T>();
    std::vector<T> dx(static_cast<std::size_t>(pr.x.dims.numel()), T(0));
    const auto& s = *static_cast<saved*>(state);
    windows(pr, [&](std::size_t yi, const std::vector<std::size_t>& idx, T divisor) {
      if (pr.kind == ops::pool_kind::max)
        dx[s.argmax[yi]] += g[yi];
      else
        for (auto i : idx) dx[i] += g[yi] / divisor;
    });
    return ref_detail::make(pr.x, dx);
  }
};

}  // namespace grcnn::backends
