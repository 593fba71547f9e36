#pragma once
// A dense tensor: shared storage from the caching allocator (host) or the device runtime's pool, a
// run-time shape, dtype, layout and device. Tensors know nothing of networks or autograd; copies share
// storage (use clone() for a deep copy). Element access (values, assign, fill, layout and dtype
// conversions) works on device tensors too, through a host copy: convenient for tests and set-up,
// never the steady-state path, which stays in the backend's kernels.
#include <cmath>
#include <cstdint>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "grcnn/core/allocator.hpp"
#include "grcnn/core/device.hpp"
#include "grcnn/core/device_runtime.hpp"
#include "grcnn/core/dtype.hpp"
#include "grcnn/core/error.hpp"
#include "grcnn/core/layout.hpp"
#include "grcnn/core/shape.hpp"

namespace grcnn {

class storage {
 public:
  // Memory on device d; host memory page-locked by the runtime of `pinned_for` when that is a GPU.
  explicit storage(std::size_t bytes, device d = cpu_device, device pinned_for = cpu_device)
      : bytes_(bytes), rounded_(host_allocator::round_size(bytes)), device_(d),
        pinned_for_(d.kind == device_kind::cpu ? pinned_for : cpu_device), ptr_(acquire()) {}
  ~storage() {
    if (pinned_for_.kind != device_kind::cpu)
      runtime_for(pinned_for_).deallocate_pinned(ptr_, rounded_);
    else if (device_.kind == device_kind::cpu)
      host_allocator::instance().deallocate(ptr_, rounded_);
    else
      runtime_for(device_).deallocate(ptr_, rounded_);
  }
  storage(const storage&) = delete;
  storage& operator=(const storage&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  bool pinned() const { return pinned_for_.kind != device_kind::cpu; }

 private:
  void* acquire() const {
    if (pinned_for_.kind != device_kind::cpu) return runtime_for(pinned_for_).allocate_pinned(rounded_);
    return device_.kind == device_kind::cpu ? host_allocator::instance().allocate(rounded_)
                                            : runtime_for(device_).allocate(rounded_);
  }
  std::size_t bytes_, rounded_;
  device device_, pinned_for_;
  void* ptr_;
};

namespace detail {
template <class T>
inline double load_as_double(const void* p, std::size_t i) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    return static_cast<double>(static_cast<float>(static_cast<const T*>(p)[i]));
  else
    return static_cast<double>(static_cast<const T*>(p)[i]);
}
template <class T>
inline void store_from_double(void* p, std::size_t i, double v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>)
    static_cast<T*>(p)[i] = T(static_cast<float>(v));
  else
    static_cast<T*>(p)[i] = static_cast<T>(v);
}
// Calls f.template operator()<T>() with T the C++ type of `t`.
template <class F>
decltype(auto) visit_dtype(dtype t, F&& f) {
  switch (t) {
    case dtype::f32: return f.template operator()<float>();
    case dtype::bf16: return f.template operator()<bf16>();
    case dtype::f64: return f.template operator()<double>();
    case dtype::i64: return f.template operator()<std::int64_t>();
    case dtype::f16: return f.template operator()<f16>();
  }
  throw dtype_error("visit_dtype: unknown dtype");
}
}  // namespace detail

class tensor {
 public:
  tensor() = default;

  static tensor empty(const shape& s, dtype t = dtype::f32, layout l = layout::plain, device d = cpu_device) {
    GRCNN_CHECK(l != layout::opaque, error, "tensor::empty: opaque tensors need their format (use empty_opaque)");
    GRCNN_CHECK(l != layout::nhwc || s.rank() == 4, shape_error, "tensor::empty: nhwc needs a rank-4 shape, got ",
                s);
    tensor r;
    r.shape_ = s;
    r.dtype_ = t;
    r.layout_ = l;
    r.device_ = d;
    r.storage_ = std::make_shared<storage>(storage_bytes(s, t), d);
    return r;
  }
  // The bytes a tensor of this shape and dtype holds: negative extents and products beyond 64 bits (a
  // corrupt file's header, an overflowing computed size) are refused before anything is allocated.
  static std::size_t storage_bytes(const shape& s, dtype t) {
    for (const auto d : s)
      GRCNN_CHECK(d >= 0, shape_error, "tensor: shape ", s, " has a negative extent");
    std::size_t bytes = 0;
    GRCNN_CHECK(!__builtin_mul_overflow(static_cast<std::size_t>(s.numel()), size_of(t), &bytes), shape_error,
                "tensor: the byte size of shape ", s, " overflows");
    return bytes;
  }
  // A host tensor in page-locked memory of `for_device`'s runtime (a plain host tensor when that is
  // the CPU): to_device(for_device) then returns before the copy is done, so do not write into the
  // tensor until the device has consumed it (the data loader hands out each batch once).
  static tensor empty_pinned(const shape& s, dtype t, layout l, device for_device) {
    if (for_device.kind == device_kind::cpu) return empty(s, t, l);
    GRCNN_CHECK(l != layout::opaque && (l != layout::nhwc || s.rank() == 4), shape_error,
                "tensor::empty_pinned: the layout must be plain, or nhwc with a rank-4 shape; got ", name_of(l), " ", s);
    tensor r;
    r.shape_ = s;
    r.dtype_ = t;
    r.layout_ = l;
    r.storage_ = std::make_shared<storage>(storage_bytes(s, t), cpu_device, for_device);
    return r;
  }
  bool pinned() const { return storage_ && storage_->pinned(); }
  static tensor empty_opaque(const shape& s, dtype t, std::shared_ptr<const opaque_format> fmt) {
    tensor r;
    r.shape_ = s;
    r.dtype_ = t;
    r.layout_ = layout::opaque;
    r.storage_ = std::make_shared<storage>(fmt->bytes());
    r.format_ = std::move(fmt);
    return r;
  }
  static tensor empty_like(const tensor& o) {
    return o.layout_ == layout::opaque ? empty_opaque(o.shape_, o.dtype_, o.format_)
                                       : empty(o.shape_, o.dtype_, o.layout_, o.device_);
  }
  static tensor full(const shape& s, double v, dtype t = dtype::f32, layout l = layout::plain, device d = cpu_device) {
    tensor r = empty(s, t, l, d);
    r.fill(v);
    return r;
  }
  static tensor zeros(const shape& s, dtype t = dtype::f32, layout l = layout::plain) { return full(s, 0.0, t, l); }
  static tensor zeros_like(const tensor& o) {
    tensor r = empty_like(o);
    r.fill(0.0);
    return r;
  }
  // Values are given in logical (plain row-major) order whatever the layout.
  template <class T>
  static tensor from_values(const shape& s, std::span<const T> values, dtype t = dtype_of_v<T>,
                            layout l = layout::plain) {
    tensor r = empty(s, t, l);
    r.assign(values);
    return r;
  }
  template <class T>
  static tensor from_values(const shape& s, const std::vector<T>& values, dtype t = dtype_of_v<T>,
                            layout l = layout::plain) {
    return from_values(s, std::span<const T>(values), t, l);
  }
  static tensor scalar(double v, dtype t = dtype::f32) { return full(shape{}, v, t); }

  bool defined() const { return static_cast<bool>(storage_); }
  const grcnn::shape& dims() const { return shape_; }
  std::int64_t dim(int i) const { return shape_[i]; }
  int rank() const { return shape_.rank(); }
  std::int64_t numel() const { return shape_.numel(); }
  grcnn::dtype type() const { return dtype_; }
  grcnn::layout memory_layout() const { return layout_; }
  const std::shared_ptr<const opaque_format>& format() const { return format_; }
  grcnn::device where() const { return device_; }
  bool on_host() const { return device_.kind == device_kind::cpu; }
  std::size_t bytes() const { return storage_ ? storage_->bytes() : 0; }
  void* raw() const { return storage_ ? storage_->data() : nullptr; }
  const void* storage_id() const { return storage_.get(); }
  long use_count() const { return storage_.use_count(); }

  template <class T>
  T* data() const {
    GRCNN_CHECK(dtype_ == dtype_of_v<T>, dtype_error, "tensor::data: tensor is ", name_of(dtype_), ", asked for ",
                name_of(dtype_of_v<T>));
    return static_cast<T*>(raw());
  }

  // Same shape, dtype and physical format: elementwise kernels may then work on raw memory.
  bool same_format(const tensor& o) const {
    if (!(shape_ == o.shape_) || dtype_ != o.dtype_ || layout_ != o.layout_ || device_ != o.device_) return false;
    return layout_ != layout::opaque || format_->same_as(*o.format_);
  }

  std::string describe() const {
    std::ostringstream os;
    os << name_of(dtype_) << shape_ << ' ' << name_of(layout_);
    if (format_) os << '(' << format_->describe() << ')';
    return os.str();
  }

  void fill(double v) {
    GRCNN_CHECK(layout_ != layout::opaque || v == 0.0, error, "tensor::fill: nonzero fill of opaque ", describe());
    if (!on_host()) {
      if (v == 0.0) {
        runtime_for(device_).zero(raw(), bytes());
      } else {
        tensor h = empty(shape_, dtype_, layout_);
        h.fill(v);
        runtime_for(device_).copy(raw(), device_, h.raw(), cpu_device, bytes());
      }
      return;
    }
    detail::visit_dtype(dtype_, [&]<class T>() {
      const std::size_t n = layout_ == layout::opaque ? bytes() / sizeof(T) : static_cast<std::size_t>(numel());
      for (std::size_t i = 0; i < n; ++i) detail::store_from_double<T>(raw(), i, v);
    });
  }

  // Physical position of the element with logical row-major index i.
  std::size_t physical_index(std::size_t i) const {
    if (layout_ != layout::nhwc) return i;
    const auto C = static_cast<std::size_t>(shape_[1]), HW = static_cast<std::size_t>(shape_[2] * shape_[3]);
    const std::size_t n = i / (C * HW), rem = i % (C * HW), c = rem / HW, hw = rem % HW;
    return (n * HW + hw) * C + c;
  }

  // All values in logical row-major order, converted to T.
  template <class T = double>
  std::vector<T> values() const {
    if (!on_host()) return to_device(cpu_device).values<T>();
    if (layout_ == layout::opaque) return to_layout(layout::plain).values<T>();
    std::vector<T> out(static_cast<std::size_t>(numel()));
    detail::visit_dtype(dtype_, [&]<class S>() {
      for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = static_cast<T>(detail::load_as_double<S>(raw(), physical_index(i)));
    });
    return out;
  }
  template <class T>
  void assign(std::span<const T> v) {
    GRCNN_CHECK(static_cast<std::int64_t>(v.size()) == numel(), shape_error, "tensor::assign: ", v.size(),
                " values for ", describe());
    GRCNN_CHECK(layout_ != layout::opaque, error, "tensor::assign: opaque target ", describe());
    if (!on_host()) {
      tensor h = empty(shape_, dtype_, layout_);
      h.assign(v);
      runtime_for(device_).copy(raw(), device_, h.raw(), cpu_device, bytes());
      return;
    }
    detail::visit_dtype(dtype_, [&]<class S>() {
      for (std::size_t i = 0; i < v.size(); ++i)
        detail::store_from_double<S>(raw(), physical_index(i), static_cast<double>(v[i]));
    });
  }
  template <class T>
  void assign(const std::vector<T>& v) {
    assign(std::span<const T>(v));
  }
  double item() const {
    GRCNN_CHECK(numel() == 1, shape_error, "tensor::item: tensor has ", numel(), " elements: ", describe());
    return values<double>()[0];
  }

  tensor clone() const {
    tensor r = empty_like(*this);
    if (on_host())
      std::memcpy(r.raw(), raw(), bytes());
    else
      runtime_for(device_).copy(r.raw(), device_, raw(), device_, bytes());
    return r;
  }

  // The same values on another device (a copy; this tensor itself when already there).
  tensor to_device(device d) const {
    if (d == device_ || !defined()) return *this;
    GRCNN_CHECK(layout_ != layout::opaque, error, "tensor::to_device: opaque tensors stay on the host: ", describe());
    tensor r = empty(shape_, dtype_, layout_, d);
    runtime_for(d.kind == device_kind::cpu ? device_ : d).copy(r.raw(), d, raw(), device_, bytes());
    return r;
  }

  // Converts the physical layout (same dtype). Converting into an opaque layout needs the target format.
  tensor to_layout(layout l) const {
    GRCNN_CHECK(l != layout::opaque, error, "tensor::to_layout: use to_format for opaque targets");
    if (l == layout_) return *this;
    if (!on_host()) {
      GRCNN_CHECK(rank() == 4, shape_error, "tensor::to_layout: ", describe(), " is not rank 4");
      tensor r = empty(shape_, dtype_, l, device_);
      runtime_for(device_).permute_4d(size_of(dtype_), raw(), r.raw(), shape_[0], shape_[1], shape_[2], shape_[3],
                                      l == layout::nhwc);
      return r;
    }
    tensor plain;
    if (layout_ == layout::opaque) {
      plain = empty(shape_, dtype_, layout::plain);
      format_->to_plain(raw(), plain.raw());
    } else if (layout_ == layout::nhwc) {
      plain = empty(shape_, dtype_, layout::plain);
      copy_permuted(*this, plain);
    } else {
      plain = *this;
    }
    if (l == layout::plain) return plain;
    tensor r = empty(shape_, dtype_, l);
    copy_permuted(plain, r);
    return r;
  }
  tensor to_format(std::shared_ptr<const opaque_format> fmt) const {
    if (layout_ == layout::opaque && format_->same_as(*fmt)) return *this;
    GRCNN_CHECK(on_host(), error, "tensor::to_format: opaque formats are host formats; ", describe(), " is on ",
                device_.str());
    tensor plain = to_layout(layout::plain);
    tensor r = empty_opaque(shape_, dtype_, std::move(fmt));
    r.format_->from_plain(plain.raw(), r.raw());
    return r;
  }
  tensor to_dtype(dtype t) const {
    if (t == dtype_) return *this;
    if (!on_host()) return to_device(cpu_device).to_dtype(t).to_device(device_);
    tensor src = layout_ == layout::opaque ? to_layout(layout::plain) : *this;
    tensor r = empty(shape_, t, src.layout_);
    detail::visit_dtype(dtype_, [&]<class S>() {
      detail::visit_dtype(t, [&]<class D>() {
        const std::size_t n = static_cast<std::size_t>(numel());
        for (std::size_t i = 0; i < n; ++i) detail::store_from_double<D>(r.raw(), i, detail::load_as_double<S>(src.raw(), i));
      });
    });
    return r;
  }
  // A view with another shape over the same storage; only where the element order does not change.
  tensor reshape(const shape& s) const {
    GRCNN_CHECK(s.numel() == numel(), shape_error, "tensor::reshape: ", describe(), " to ", s, " changes the size");
    const bool trivial_nhwc = layout_ == layout::nhwc && shape_[2] * shape_[3] == 1;  // [N,C,1,1] is both orders
    GRCNN_CHECK(layout_ == layout::plain || trivial_nhwc, error, "tensor::reshape: needs a plain tensor, got ",
                describe());
    tensor r = *this;
    r.shape_ = s;
    r.layout_ = (s.rank() == 4 && layout_ == layout::nhwc && s[2] * s[3] == 1) ? layout::nhwc : layout::plain;
    return r;
  }

 private:
  // Copies between plain and nhwc (same dtype) by element position.
  static void copy_permuted(const tensor& src, tensor& dst) {
    const std::size_t n = static_cast<std::size_t>(src.numel()), es = size_of(src.dtype_);
    const auto* s = static_cast<const unsigned char*>(src.raw());
    auto* d = static_cast<unsigned char*>(dst.raw());
    for (std::size_t i = 0; i < n; ++i) std::memcpy(d + dst.physical_index(i) * es, s + src.physical_index(i) * es, es);
  }

  std::shared_ptr<storage> storage_;
  grcnn::shape shape_;
  grcnn::dtype dtype_ = dtype::f32;
  grcnn::layout layout_ = layout::plain;
  std::shared_ptr<const opaque_format> format_;
  grcnn::device device_ = cpu_device;
};

}  // namespace grcnn
