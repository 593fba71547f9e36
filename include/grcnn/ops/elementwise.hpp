#pragma once
// relu, sigmoid, add, mul, the fused gate x + sigmoid(a + b) * y, reshape/flatten and row ranges.
#include <cstring>

#include "grcnn/ops/detail.hpp"

namespace grcnn::ops {

template <class B = backends::default_backend>
variable eltwise(const variable& x, eltwise_kind kind) {
  detail::expect_activation(kind == eltwise_kind::relu ? "relu" : "sigmoid", "input", x.value());
  const eltwise_problem pr{tensor_desc::of(x.value()), kind};
  return backends::dispatch<B, eltwise_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&x});
    variable y = variable::result(K::forward(pr, x.value()), rec);
    if (rec)
      autograd::record_op(eltwise_op::name, {&x}, {&y}, {y.value()}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            ig[0] = K::backward(pr, detail::as_layout(og[0], pr.x.memory_layout), n.saved[0]);
                          });
    return y;
  });
}
template <class B = backends::default_backend>
variable relu(const variable& x) {
  return eltwise<B>(x, eltwise_kind::relu);
}
template <class B = backends::default_backend>
variable sigmoid(const variable& x) {
  return eltwise<B>(x, eltwise_kind::sigmoid);
}

template <class B = backends::default_backend>
variable binary(const variable& a, const variable& b, binary_kind kind) {
  const std::string_view op = kind == binary_kind::add ? "add" : "mul";
  detail::expect_activation(op, "a", a.value());
  detail::expect_same(op, "b", a.value(), b.value());
  const binary_problem pr{tensor_desc::of(a.value()), kind};
  return backends::dispatch<B, binary_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&a, &b});
    variable y = variable::result(K::forward(pr, a.value(), b.value()), rec);
    if (rec) {
      std::vector<tensor> saved;
      if (kind == binary_kind::mul) saved = {b.requires_grad() ? a.value() : tensor(), a.requires_grad() ? b.value() : tensor()};
      autograd::record_op(binary_op::name, {&a, &b}, {&y}, std::move(saved), nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            const tensor none;
                            K::backward(pr, detail::as_layout(og[0], pr.a.memory_layout),
                                        n.saved.empty() ? none : n.saved[0], n.saved.empty() ? none : n.saved[1],
                                        detail::slot(n, ig, 0), detail::slot(n, ig, 1));
                          });
    }
    return y;
  });
}
template <class B = backends::default_backend>
variable add(const variable& a, const variable& b) {
  return binary<B>(a, b, binary_kind::add);
}
template <class B = backends::default_backend>
variable mul(const variable& a, const variable& b) {
  return binary<B>(a, b, binary_kind::mul);
}

// The GRCL update: x + sigmoid(a + b) * y in one pass.
template <class B = backends::default_backend>
variable gated_update(const variable& x, const variable& a, const variable& b, const variable& y) {
  constexpr std::string_view op = "gated_update";
  detail::expect_activation(op, "x", x.value());
  detail::expect_same(op, "a", x.value(), a.value());
  detail::expect_same(op, "b", x.value(), b.value());
  detail::expect_same(op, "y", x.value(), y.value());
  const gated_update_problem pr{tensor_desc::of(x.value())};
  return backends::dispatch<B, gated_update_op>::run(pr, [&]<class K>(std::type_identity<K>) {
    const bool rec = autograd::should_record({&x, &a, &b, &y});
    variable out = variable::result(K::forward(pr, x.value(), a.value(), b.value(), y.value()), rec);
    if (rec)
      autograd::record_op(gated_update_op::name, {&x, &a, &b, &y}, {&out}, {a.value(), b.value(), y.value()}, nullptr,
                          [pr](autograd::node& n, grad_inputs og, grad_slots ig) {
                            tensor dgate;
                            const bool gate = n.needs_grad(1) || n.needs_grad(2);
                            K::backward(pr, detail::as_layout(og[0], pr.x.memory_layout), n.saved[0], n.saved[1],
                                        n.saved[2], detail::slot(n, ig, 0), gate ? &dgate : nullptr,
                                        detail::slot(n, ig, 3));
                            if (n.needs_grad(1)) ig[1] = dgate;
                            if (n.needs_grad(2)) ig[2] = dgate;
                          });
    return out;
  });
}

// A view with a new shape (element order unchanged); nhwc inputs are made plain first when needed.
inline variable reshape(const variable& x, const grcnn::shape& s) {
  const tensor& v = x.value();
  GRCNN_CHECK(s.numel() == v.numel(), shape_error, "reshape: ", v.describe(), " to ", s, " changes the size");
  const bool view = v.memory_layout() == layout::plain || (v.memory_layout() == layout::nhwc && v.dim(2) * v.dim(3) == 1);
  const tensor src = view ? v : v.to_layout(layout::plain);
  const bool rec = autograd::should_record({&x});
  variable y = variable::result(src.reshape(s), rec);
  if (rec) {
    const grcnn::shape from = v.dims();
    const layout from_layout = v.memory_layout();
    autograd::record_op("reshape", {&x}, {&y}, {}, nullptr,
                        [from, from_layout](autograd::node&, grad_inputs og, grad_slots ig) {
                          ig[0] = detail::as_layout(og[0].to_layout(layout::plain).reshape(from), from_layout);
                        });
  }
  return y;
}

// [N, C, H, W] -> [N, C*H*W].
inline variable flatten(const variable& x) {
  const auto& d = x.dims();
  std::int64_t rest = 1;
  for (int i = 1; i < d.rank(); ++i) rest *= d[i];
  return reshape(x, grcnn::shape{d[0], rest});
}

// Rows [begin, end) of a plain tensor along dim 0 (a copy on x's device; the gradient is scattered back
// into zeros). Splits a multi-view batch's logits into its views.
inline variable rows(const variable& x, std::int64_t begin, std::int64_t end) {
  const tensor& v = x.value();
  GRCNN_CHECK(v.rank() >= 1 && v.memory_layout() == layout::plain, shape_error, "rows: needs a plain tensor, got ",
              v.describe());
  GRCNN_CHECK(begin >= 0 && begin <= end && end <= v.dim(0), shape_error, "rows: [", begin, ", ", end, ") outside [0, ",
              v.dim(0), ") of ", v.describe());
  grcnn::shape s = v.dims();
  const std::size_t row_bytes = v.dim(0) > 0 ? v.bytes() / static_cast<std::size_t>(v.dim(0)) : 0;
  auto copy = [row_bytes](const tensor& from, std::int64_t from_row, tensor& to, std::int64_t to_row, std::int64_t n) {
    const auto* src = static_cast<const std::byte*>(from.raw()) + static_cast<std::size_t>(from_row) * row_bytes;
    auto* dst = static_cast<std::byte*>(to.raw()) + static_cast<std::size_t>(to_row) * row_bytes;
    const std::size_t bytes = static_cast<std::size_t>(n) * row_bytes;
    if (bytes == 0) return;
    if (to.on_host() && from.on_host())
      std::memcpy(dst, src, bytes);
    else
      runtime_for(to.on_host() ? from.where() : to.where()).copy(dst, to.where(), src, from.where(), bytes);
  };
  s[0] = end - begin;
  tensor out = tensor::empty(s, v.type(), layout::plain, v.where());
  copy(v, begin, out, 0, end - begin);
  const bool rec = autograd::should_record({&x});
  variable y = variable::result(out, rec);
  if (rec) {
    const grcnn::shape full = v.dims();
    autograd::record_op("rows", {&x}, {&y}, {}, nullptr,
                        [full, begin, end, copy](autograd::node&, grad_inputs og, grad_slots ig) {
                          const tensor g = og[0].memory_layout() == layout::plain ? og[0] : og[0].to_layout(layout::plain);
                          tensor d = tensor::full(full, 0.0, g.type(), layout::plain, g.where());
                          copy(g, 0, d, begin, end - begin);
                          ig[0] = d;
                        });
  }
  return y;
}

}  // namespace grcnn::ops
