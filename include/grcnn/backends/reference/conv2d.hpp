#pragma once
// Convolution with groups, stride, padding and dilation, forward and backward, as im2col + matrix
// products (Eigen) in the reference's scalar: exact enough in double to be the oracle of whole-model
// checks, and an algorithm independent of oneDNN's.
#include <Eigen/Core>

#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {

template <class T>
struct kernel<reference<T>, ops::conv2d_op> {
  using P = ops::conv2d_problem;
  using matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using map = Eigen::Map<matrix>;
  using const_map = Eigen::Map<const matrix>;
  static status can_implement(const P&) { return status::yes(); }

  struct geometry {
    std::int64_t N, C, H, W, O, KH, KW, OH, OW, G, Cg, Og, K, L;
  };
  static geometry geom(const P& pr) {
    geometry g{pr.x.dims[0], pr.x.dims[1], pr.x.dims[2], pr.x.dims[3], pr.w.dims[0], pr.w.dims[2], pr.w.dims[3],
               pr.y.dims[2], pr.y.dims[3], pr.p.groups, 0, 0, 0, 0};
    g.Cg = g.C / g.G;
    g.Og = g.O / g.G;
    g.K = g.Cg * g.KH * g.KW;  // rows of the column matrix
    g.L = g.OH * g.OW;         // its columns
    return g;
  }
  // Calls f(row, col, input index) for every in-bounds tap of image n, group gi.
  template <class F>
  static void taps(const P& pr, const geometry& g, std::int64_t n, std::int64_t gi, F&& f) {
    for (std::int64_t ic = 0; ic < g.Cg; ++ic)
      for (std::int64_t kh = 0; kh < g.KH; ++kh)
        for (std::int64_t kw = 0; kw < g.KW; ++kw) {
          const std::int64_t row = (ic * g.KH + kh) * g.KW + kw;
          for (std::int64_t oh = 0; oh < g.OH; ++oh) {
            const auto ih = oh * pr.p.stride_h - pr.p.pad_h + kh * pr.p.dilation_h;
            if (ih < 0 || ih >= g.H) continue;
            for (std::int64_t ow = 0; ow < g.OW; ++ow) {
              const auto iw = ow * pr.p.stride_w - pr.p.pad_w + kw * pr.p.dilation_w;
              if (iw < 0 || iw >= g.W) continue;
              f(row, oh * g.OW + ow, static_cast<std::size_t>(((n * g.C + gi * g.Cg + ic) * g.H + ih) * g.W + iw));
            }
          }
        }
  }
  static matrix im2col(const P& pr, const geometry& g, const std::vector<T>& x, std::int64_t n, std::int64_t gi) {
    matrix col = matrix::Zero(g.K, g.L);
    taps(pr, g, n, gi, [&](std::int64_t r, std::int64_t c, std::size_t i) { col(r, c) = x[i]; });
    return col;
  }

  static tensor forward(const P& pr, const tensor& x, const tensor& w, const tensor& b,
                        std::unique_ptr<autograd::payload>&) {
    const geometry g = geom(pr);
    const auto xv = x.values<T>(), wv = w.values<T>();
    std::vector<T> y(static_cast<std::size_t>(pr.y.dims.numel()));
    const auto bv = pr.bias ? b.values<T>() : std::vector<T>();
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t gi = 0; gi < g.G; ++gi) {
        const_map wg(wv.data() + gi * g.Og * g.K, g.Og, g.K);
        map yg(y.data() + (n * g.O + gi * g.Og) * g.L, g.Og, g.L);
        yg.noalias() = wg * im2col(pr, g, xv, n, gi);
        if (pr.bias)
          for (std::int64_t o = 0; o < g.Og; ++o) yg.row(o).array() += bv[static_cast<std::size_t>(gi * g.Og + o)];
      }
    return ref_detail::make(pr.y, y);
  }

  static void backward(const P& pr, autograd::payload*, const tensor& dy, const tensor& x, const tensor& w,
                       tensor* dx, tensor* dw, tensor* db) {
    const geometry g = geom(pr);
    const auto dyv = dy.values<T>();
    const auto xv = dw ? x.values<T>() : std::vector<T>(), wv = dx ? w.values<T>() : std::vector<T>();
    std::vector<T> dxv(dx ? static_cast<std::size_t>(pr.x.dims.numel()) : 0, T(0)),
        dwv(dw ? static_cast<std::size_t>(pr.w.dims.numel()) : 0, T(0));
    for (std::int64_t n = 0; n < g.N; ++n)
      for (std::int64_t gi = 0; gi < g.G; ++gi) {
        const_map dyg(dyv.data() + (n * g.O + gi * g.Og) * g.L, g.Og, g.L);
        if (dw) {
          map dwg(dwv.data() + gi * g.Og * g.K, g.Og, g.K);
          dwg.noalias() += dyg * im2col(pr, g, xv, n, gi).transpose();
        }
        if (dx) {
          const_map wg(wv.data() + gi * g.Og * g.K, g.Og, g.K);
          const matrix dcol = wg.transpose() * dyg;
          taps(pr, g, n, gi, [&](std::int64_t r, std::int64_t c, std::size_t i) { dxv[i] += dcol(r, c); });
        }
      }
    if (dx) *dx = ref_detail::make(pr.x, dxv);
    if (dw) *dw = ref_detail::make(pr.w, dwv);
    if (db) {
      std::vector<T> dbv(static_cast<std::size_t>(g.O), T(0));
      for (std::int64_t n = 0; n < g.N; ++n)
        for (std::int64_t o = 0; o < g.O; ++o)
          for (std::int64_t l = 0; l < g.L; ++l) dbv[static_cast<std::size_t>(o)] += dyv[static_cast<std::size_t>((n * g.O + o) * g.L + l)];
      *db = ref_detail::make(grcnn::shape{g.O}, pr.w.type, dbv);
    }
  }
};

}  // namespace grcnn::backends
