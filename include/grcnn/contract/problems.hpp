#pragma once
// Problem descriptions: everything a kernel needs to decide whether and how to run an op, without the
// data. Built and validated by the ops (grcnn/ops/*.hpp); consumed by backends. str() is used in
// error messages and as the primitive-cache key.
#include <cstdint>
#include <sstream>
#include <string>

#include "grcnn/core/tensor.hpp"
#include "grcnn/contract/vone_math.hpp"

namespace grcnn::ops {

struct tensor_desc {
  grcnn::shape dims;
  grcnn::dtype type = dtype::f32;
  grcnn::layout memory_layout = layout::plain;
  static tensor_desc of(const tensor& t) { return {t.dims(), t.type(), t.memory_layout()}; }
  std::string str() const {
    return std::string(name_of(type)) + dims.str() + (memory_layout == layout::plain ? "" : std::string(":") + std::string(name_of(memory_layout)));
  }
};

struct conv2d_params {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dilation_h = 1, dilation_w = 1;
  int groups = 1;
  static conv2d_params square(int stride, int pad, int dilation = 1, int groups = 1) {
    return {stride, stride, pad, pad, dilation, dilation, groups};
  }
};

struct conv2d_problem {
  tensor_desc x, w, y;
  bool bias = false;
  conv2d_params p;
  std::string str() const {
    std::ostringstream os;
    os << "conv2d x=" << x.str() << " w=" << w.str() << " bias=" << bias << " s=" << p.stride_h << ',' << p.stride_w
       << " p=" << p.pad_h << ',' << p.pad_w << " d=" << p.dilation_h << ',' << p.dilation_w << " g=" << p.groups;
    return os.str();
  }
};

struct batch_norm_problem {
  tensor_desc x;
  grcnn::dtype param_type = dtype::f32;  // gamma, beta and running statistics
  double eps = 1e-5;
  double momentum = 0.1;
  bool training = true;
  bool fuse_relu = false;
  std::string str() const {
    std::ostringstream os;
    os << "batch_norm x=" << x.str() << " params=" << name_of(param_type) << " eps=" << eps << " train=" << training
       << " relu=" << fuse_relu;
    return os.str();
  }
};

enum class eltwise_kind { relu, sigmoid };
struct eltwise_problem {
  tensor_desc x;
  eltwise_kind kind = eltwise_kind::relu;
  std::string str() const { return std::string(kind == eltwise_kind::relu ? "relu" : "sigmoid") + " x=" + x.str(); }
};

enum class binary_kind { add, mul };
struct binary_problem {
  tensor_desc a;  // both operands have a's shape, dtype and layout
  binary_kind kind = binary_kind::add;
  std::string str() const { return std::string(kind == binary_kind::add ? "add" : "mul") + " x=" + a.str(); }
};

// out = x + sigmoid(a + b) * y, all four of one shape.
struct gated_update_problem {
  tensor_desc x;
  std::string str() const { return "gated_update x=" + x.str(); }
};

// A dtype conversion (mixed precision: f32 master weights cast to bf16, bf16 logits back to f32). The
// output keeps x's shape and layout; the gradient is cast back to x's dtype.
struct cast_problem {
  tensor_desc x;
  grcnn::dtype to = dtype::f32;
  std::string str() const { return "cast x=" + x.str() + " to=" + std::string(name_of(to)); }
};

enum class pool_kind { max, avg };
struct pool2d_problem {
  tensor_desc x, y;
  pool_kind kind = pool_kind::max;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  std::string str() const {
    std::ostringstream os;
    os << (kind == pool_kind::max ? "max_pool" : "avg_pool") << " x=" << x.str() << " k=" << kernel_h << ','
       << kernel_w << " s=" << stride_h << ',' << stride_w << " p=" << pad_h << ',' << pad_w;
    return os.str();
  }
};

struct linear_problem {
  tensor_desc x, w;  // x [N, K], w [M, K]
  bool bias = true;
  std::string str() const { return "linear x=" + x.str() + " w=" + w.str() + (bias ? " bias" : ""); }
};

struct softmax_problem {
  tensor_desc x;  // [N, K], over dim 1
  bool log = false;
  std::string str() const { return std::string(log ? "log_softmax" : "softmax") + " x=" + x.str(); }
};

enum class target_kind { hard, soft };
struct cross_entropy_problem {
  tensor_desc logits;  // [N, K]
  target_kind target = target_kind::hard;
  double label_smoothing = 0.0;  // PyTorch's: eps spread uniformly over all K classes
  std::string str() const {
    std::ostringstream os;
    os << "cross_entropy logits=" << logits.str() << (target == target_kind::hard ? " hard" : " soft")
       << " smoothing=" << label_smoothing;
    return os.str();
  }
};

// KL(target || exp(input)) summed over classes and averaged over the batch (PyTorch's kl_div with
// reduction='batchmean'); input holds log-probabilities, target probabilities.
struct kl_div_problem {
  tensor_desc input;
  std::string str() const { return "kl_div input=" + input.str(); }
};

// AugMix's Jensen-Shannon consistency loss over V views stacked along the batch: logits [V*N, K], view v
// in rows [v*N, (v+1)*N). With p_v = softmax(logits of view v) and M = clamp(mean_v p_v, 1e-7, 1) the loss
// is (1/V) sum_v KL(p_v || M), each KL summed over classes and averaged over the N rows, i.e. the
// original's sum_v F.kl_div(log M, p_v, reduction='batchmean') / V (clamp's gradient included).
struct jensen_shannon_problem {
  tensor_desc logits;
  int views = 3;
  std::string str() const { return "jensen_shannon logits=" + logits.str() + " views=" + std::to_string(views); }
};

// Log-sum-exp over groups of columns: out[n, s] = log sum_{k : group[k] = s} exp x[n, k] for x [N, K] and
// S groups (group[k] = -1 leaves column k out; every group has a member). A softmax over `out` is the
// class probabilities summed per group, so cross_entropy(out, target) is the superclass loss.
struct group_logsumexp_problem {
  tensor_desc x;  // [N, K]
  std::int64_t groups = 1;
  std::string str() const { return "group_logsumexp x=" + x.str() + " groups=" + std::to_string(groups); }
};

// Selective-kernel fusion (SKNet): out = sum_m softmax_m(z[:, m*C + c]) * branch_m, with M branches
// [N, C, H, W] and attention logits z [N, M*C] (softmax over the branch axis per sample and channel).
struct sk_select_problem {
  tensor_desc branch;  // every branch has this shape, dtype and layout
  int branches = 2;
  std::string str() const { return "sk_select branch=" + branch.str() + " M=" + std::to_string(branches); }
};

// The VOneBlock's response (vone_math.hpp): q0 [N, C, H, W] holds the Gabor responses of every channel,
// q1 [N, C - S, H, W] the quadrature responses of the complex ones; eps (q0's shape) is the standard
// normal noise of the noisy modes.
struct vone_response_problem {
  tensor_desc q0;
  int simple = 0;  // S: channels [0, S) are simple cells, [S, C) complex cells
  vone_math::coefficients k;
  std::int64_t complex() const { return q0.dims[1] - simple; }
  std::string str() const {
    return "vone_response q0=" + q0.str() + " simple=" + std::to_string(simple) + " k_exc=" + std::to_string(k.k_exc) +
           " noise=" + std::to_string(k.mode) + " scale=" + std::to_string(k.scale) + " level=" + std::to_string(k.level);
  }
};

}  // namespace grcnn::ops
