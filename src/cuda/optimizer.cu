// The optimizers' multi-tensor updates on the device (train's kernels: grcnn/train/device_updates.hpp
// declares the interface, grcnn/train/cuda_updates.hpp registers this implementation), semantics as
// train/sgd.hpp and train/adamw.hpp: a few launches for a whole parameter group instead of one per tensor.
#include <cmath>
#include <cstdint>
#include <span>

#include "common.cuh"
#include "grcnn/train/cuda_updates.hpp"

namespace grcnn::cuda {

using namespace detail;
using train::adamw_hyper;
using train::adamw_slot;
using train::sgd_hyper;
using train::sgd_slot;

namespace {

// Multi-tensor optimizer updates: a launch covers up to kSlots tensors laid end to end in one index
// space (ends[s]: one past slot s's last element); a thread finds its slot by binary search over the
// ends, which sit in the kernel's parameter space. The per-element arithmetic is the single-tensor
// form's (train/sgd.hpp, train/adamw.hpp).
constexpr int kSlots = 48;  // a table stays under the 4 KB of kernel parameters
struct sgd_table {
  int count;
  std::int64_t ends[kSlots];
  float* w[kSlots];
  const float* g[kSlots];
  float* buf[kSlots];
  bool first[kSlots];
};
// 1 - beta arrives computed in double (as the host optimizer and torch do): 1.f - 0.999f is 4.7e-5 off.
struct adamw_table {
  int count;
  std::int64_t ends[kSlots];
  float* w[kSlots];
  const float* g[kSlots];
  float* m[kSlots];
  float* v[kSlots];
  float step_size[kSlots], c2[kSlots];  // lr / (1 - b1^t), sqrt(1 - b2^t) of each tensor's step t
  float decay, b1, b2, one_b1, one_b2, eps;
};
// Element i of the index space: its slot s and its offset k within that tensor.
struct slot_element {
  int s;
  std::int64_t k;
};
__device__ __forceinline__ slot_element slot_of(const std::int64_t* ends, int count, std::int64_t i) {
  int lo = 0, hi = count - 1;  // the first slot whose end exceeds i
  while (lo < hi) {
    const int mid = (lo + hi) / 2;
    if (ends[mid] > i) hi = mid;
    else lo = mid + 1;
  }
  return {lo, i - (lo > 0 ? ends[lo - 1] : 0)};
}
__global__ void k_sgd(const __grid_constant__ sgd_table t, float lr, float wd, float mom, float damp, bool nesterov) {
  const std::int64_t n = t.ends[t.count - 1];
  GRCNN_GRID_STRIDE(i, n) {
    const auto [s, k] = slot_of(t.ends, t.count, i);
    float* w = t.w[s];
    const float d = t.g[s][k] + wd * w[k];
    if (mom == 0.f) {
      w[k] -= lr * d;
    } else {
      const float b = t.first[s] ? d : mom * t.buf[s][k] + damp * d;
      t.buf[s][k] = b;
      w[k] -= lr * (nesterov ? d + mom * b : b);
    }
  }
}
__global__ void k_adamw(const __grid_constant__ adamw_table t) {
  const std::int64_t n = t.ends[t.count - 1];
  GRCNN_GRID_STRIDE(i, n) {
    const auto [s, k] = slot_of(t.ends, t.count, i);
    float *w = t.w[s], *m = t.m[s], *v = t.v[s];
    const float g = t.g[s][k];
    float wi = w[k] * t.decay;
    const float mi = m[k] * t.b1 + t.one_b1 * g;
    const float vi = v[k] * t.b2 + t.one_b2 * g * g;
    m[k] = mi;
    v[k] = vi;
    w[k] = wi - t.step_size[s] * (mi / (sqrtf(vi) / t.c2[s] + t.eps));
  }
}

// Fills tables of up to kSlots non-empty tensors and launches each: fill(table, slot index, position).
template <class Table, class Slot, class Fill, class Launch>
void for_tables(std::span<const Slot> slots, Table base, Fill&& fill, Launch&& launch) {
  Table t = base;
  t.count = 0;
  std::int64_t end = 0;
  for (const Slot& s : slots) {
    if (s.n == 0) continue;
    end += static_cast<std::int64_t>(s.n);
    t.ends[t.count] = end;
    fill(t, s, t.count);
    if (++t.count == kSlots) {
      launch(t, end);
      t.count = 0;
      end = 0;
    }
  }
  if (t.count > 0) launch(t, end);
}

void sgd_update_kernels(std::span<const sgd_slot> slots, const sgd_hyper& h) {
  GRCNN_PROFILE("sgd update");
  for_tables(slots, sgd_table{}, [](sgd_table& t, const sgd_slot& s, int k) {
    t.w[k] = s.w, t.g[k] = s.g, t.buf[k] = s.buf, t.first[k] = s.first;
  }, [&](const sgd_table& t, std::int64_t n) {
    k_sgd<<<blocks_for(n), 256, 0, stream()>>>(t, h.lr, h.weight_decay, h.momentum, h.damp, h.nesterov);
    check_last_launch("sgd update");
  });
}
void adamw_update_kernels(std::span<const adamw_slot> slots, const adamw_hyper& h) {
  GRCNN_PROFILE("adamw update");
  adamw_table base{};
  base.decay = static_cast<float>(1.0 - h.lr * h.weight_decay);
  base.b1 = static_cast<float>(h.beta1), base.b2 = static_cast<float>(h.beta2);
  base.one_b1 = static_cast<float>(1.0 - h.beta1), base.one_b2 = static_cast<float>(1.0 - h.beta2);
  base.eps = static_cast<float>(h.eps);
  for_tables(slots, base, [&](adamw_table& t, const adamw_slot& s, int k) {
    const double step = static_cast<double>(s.step);
    const double bc1 = 1.0 - std::pow(h.beta1, step), bc2 = std::sqrt(1.0 - std::pow(h.beta2, step));
    t.w[k] = s.w, t.g[k] = s.g, t.m[k] = s.m, t.v[k] = s.v;
    t.step_size[k] = static_cast<float>(h.lr / bc1);
    t.c2[k] = static_cast<float>(bc2);
  }, [&](const adamw_table& t, std::int64_t n) {
    k_adamw<<<blocks_for(n), 256, 0, stream()>>>(t);
    check_last_launch("adamw update");
  });
}

struct cuda_optimizer_kernels final : train::device_optimizer_kernels {
  void sgd_update(std::span<const sgd_slot> slots, const sgd_hyper& h) override { sgd_update_kernels(slots, h); }
  void adamw_update(std::span<const adamw_slot> slots, const adamw_hyper& h) override { adamw_update_kernels(slots, h); }
};
}  // namespace

bool install_optimizer_kernels() {
  static cuda_optimizer_kernels k;
  train::register_device_optimizer_kernels(device_kind::cuda, &k);
  return true;
}

}  // namespace grcnn::cuda
