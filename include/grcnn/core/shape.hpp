#pragma once
// Run-time shapes of rank 0..6. Logical dimension order is PyTorch's (N, C, H, W for images);
// the physical order is the tensor's layout.
#include <array>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "grcnn/core/error.hpp"

namespace grcnn {

class shape {
 public:
  static constexpr int max_rank = 6;

  shape() = default;
  shape(std::initializer_list<std::int64_t> dims) {
    GRCNN_CHECK(dims.size() <= max_rank, shape_error, "shape: rank ", dims.size(), " exceeds ", max_rank);
    for (auto d : dims) push_back(d);
  }
  template <class It>
  static shape from_range(It first, It last) {
    shape s;
    for (; first != last; ++first) s.push_back(static_cast<std::int64_t>(*first));
    return s;
  }

  void push_back(std::int64_t d) {
    GRCNN_CHECK(rank_ < max_rank, shape_error, "shape: rank exceeds ", max_rank);
    GRCNN_CHECK(d >= 0, shape_error, "shape: negative extent ", d);
    dims_[rank_++] = d;
  }
  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return dims_[static_cast<std::size_t>(i)]; }
  // The element count; a shape whose count overflows 63 bits (a corrupt file's header) is rejected.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i)
      GRCNN_CHECK(!__builtin_mul_overflow(n, dims_[static_cast<std::size_t>(i)], &n), shape_error,
                  "shape: the element count of ", str(), " overflows");
    return n;
  }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }

  friend bool operator==(const shape& a, const shape& b) {
    if (a.rank_ != b.rank_) return false;
    for (int i = 0; i < a.rank_; ++i)
      if (a[i] != b[i]) return false;
    return true;
  }
  std::string str() const {
    std::ostringstream os;
    os << '[';
    for (int i = 0; i < rank_; ++i) os << (i ? ", " : "") << dims_[static_cast<std::size_t>(i)];
    os << ']';
    return os.str();
  }
  friend std::ostream& operator<<(std::ostream& os, const shape& s) { return os << s.str(); }

 private:
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

}  // namespace grcnn
