#pragma once
// The CUDA component's C++ surface: plain functions over device pointers and shape descriptions,
// compiled by nvcc in src/cuda (grcnn::cuda). The backend policy (cuda.hpp) calls them; nothing here
// includes a CUDA header, so g++-compiled code links against the component without seeing CUDA.
// Every function is ordered on the component's compute stream and returns without synchronising.
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "grcnn/core/device_runtime.hpp"
#include "grcnn/core/dtype.hpp"

namespace grcnn::cuda {

// Element types of activations on the device: f32, and bf16 for mixed precision (nn/precision.hpp).
// Functions templated on S exist for both (explicitly instantiated in src/cuda); they compute in f32.
template <class S>
concept storage = std::same_as<S, float> || std::same_as<S, bf16>;

// Math mode of the matrix units: fp32 (IEEE), tf32 (tensor cores with 10-bit mantissa inputs). bf16
// data always use tensor cores.
enum class math_mode { fp32, tf32 };

// An [N, C, H, W] tensor by element strides: covers NCHW (plain) and NHWC (channels-last) alike.
struct view4 {
  std::int64_t n = 1, c = 1, h = 1, w = 1;
  std::int64_t sn = 0, sc = 0, sh = 0, sw = 0;
  constexpr std::int64_t numel() const { return n * c * h * w; }
};

// ---- runtime ---------------------------------------------------------------------------------
// Throws grcnn::backend_error naming the call when the last launch failed.
void check_last_launch(const char* what);
void synchronize();
// The physical GPU this process's "cuda:0" is (default 0): data-parallel ranks on one node each take the
// GPU of their rank on the node. Must come before the component's first use; choosing another GPU
// afterwards throws. The number of GPUs this process sees (0 without a usable driver or device).
void select_device(int ordinal);
int selected_device();
int visible_device_count();
// Per-function device time (synchronising around each call: for finding where a step's time goes,
// not for throughput figures). The report lists name, calls and milliseconds, largest first.
void set_profiling(bool on);
std::string profile_report();
void reset_profile();

// ---- elementwise -----------------------------------------------------------------------------
template <storage S>
void relu_forward(const S* x, S* y, std::int64_t n);
template <storage S>
void relu_backward(const S* dy, const S* y, S* dx, std::int64_t n);
template <storage S>
void sigmoid_forward(const S* x, S* y, std::int64_t n);
template <storage S>
void sigmoid_backward(const S* dy, const S* y, S* dx, std::int64_t n);
template <storage S>
void add_forward(const S* a, const S* b, S* y, std::int64_t n);
template <storage S>
void mul_forward(const S* a, const S* b, S* y, std::int64_t n);
// out = x + sigmoid(a + b) * y
template <storage S>
void gated_update_forward(const S* x, const S* a, const S* b, const S* y, S* out, std::int64_t n);
// dgate = dout * y * s * (1 - s), dy = dout * s with s = sigmoid(a + b); either output may be null.
template <storage S>
void gated_update_backward(const S* dout, const S* a, const S* b, const S* y, S* dgate, S* dy, std::int64_t n);
void fill(float* p, float value, std::int64_t n);
// Dtype conversions for mixed precision (round to nearest even into bf16).
void cast_f32_to_bf16(const float* x, bf16* y, std::int64_t n);
void cast_bf16_to_f32(const bf16* x, float* y, std::int64_t n);

// ---- batch norm (+ ReLU), our own kernels over any strides ----------------------------------
struct batch_norm_args {
  view4 x;          // y and dx share x's strides
  double eps = 1e-5, momentum = 0.1;
  bool relu = false;
};
// x, y, dy, dx in S; gamma, beta, statistics and their gradients in f32, reductions in double.
// Batch statistics, running-statistic update (unbiased variance), y = gamma * xhat + beta (ReLU).
template <storage S>
void batch_norm_forward_training(const batch_norm_args& a, const S* x, const float* gamma, const float* beta,
                                 float* running_mean, float* running_var, S* y, float* save_mean, float* save_invstd);
// Running statistics: save_mean/save_invstd receive them (as the backward needs).
template <storage S>
void batch_norm_forward_inference(const batch_norm_args& a, const S* x, const float* gamma, const float* beta,
                                  const float* running_mean, const float* running_var, S* y, float* save_mean,
                                  float* save_invstd);
// dgamma/dbeta always written (per channel); dx when non-null, added to what dx holds when add_to_dx
// (the sum rounded once). `training` selects the batch-statistics form of dx. With a.relu, dy passes
// where the forward's stored output was positive: recomputed from x with the forward's arithmetic (hence
// gamma, beta and the saved statistics), not read from y.
template <storage S>
void batch_norm_backward(const batch_norm_args& a, bool training, const S* dy, const S* x, const float* gamma,
                         const float* beta, const float* save_mean, const float* save_invstd, S* dx, bool add_to_dx,
                         float* dgamma, float* dbeta);
// Two batch norms of one x in training (ops::paired_batch_norm: a GRCL iteration's gate and bottleneck
// BNs): the batch statistics computed once (save_mean/save_invstd) and both running statistics updated
// with them; y and y2 written by one pass over x. Each equals its own batch_norm_forward_training bit
// for bit.
struct batch_norm_affine {
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float* running_mean = nullptr;  // forward only
  float* running_var = nullptr;
};
template <storage S>
void batch_norm_pair_forward_training(const batch_norm_args& a, const S* x, const batch_norm_affine& first,
                                      const batch_norm_affine& second, S* y, S* y2, float* save_mean, float* save_invstd);
// Both training gradients (dy and dy2 non-null): each BN's channel sums, then dx = dx_first + dx_second
// in one pass over x, dy and dy2 (summed in f32, then added to what dx holds when add_to_dx, stored
// once). dx may be null.
template <storage S>
void batch_norm_pair_backward(const batch_norm_args& a, const S* dy, const S* dy2, const S* x,
                              const batch_norm_affine& first, const batch_norm_affine& second, const float* save_mean,
                              const float* save_invstd, S* dx, bool add_to_dx, float* dgamma, float* dbeta,
                              float* dgamma2, float* dbeta2);

// ---- pooling ----------------------------------------------------------------------------------
struct pool_args {
  view4 x, y;
  bool max = true;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};
// Max pooling's winners: argmax (one per output, at the output's physical offset) receives the index
// of the winner inside its kh x kw window (row-major from the unclipped window origin); so windows
// hold at most 65,536 elements (kernel<cuda, pool2d_op>::can_implement). Unused for average pooling.
template <storage S>
void pool_forward(const pool_args& a, const S* x, S* y, std::uint16_t* argmax);
// Every dx element is written (the gradients of the outputs whose windows cover it, summed in f32).
template <storage S>
void pool_backward(const pool_args& a, const S* dy, const std::uint16_t* argmax, S* dx);

// ---- rows: softmax and losses over [N, K] ----------------------------------------------------
void softmax_forward(const float* x, float* y, std::int64_t rows, std::int64_t k, bool log);
void softmax_backward(const float* dy, const float* y, float* dx, std::int64_t rows, std::int64_t k, bool log);
// Cross-entropy, mean over rows. Hard labels (i64, device) or a soft target; smoothing as PyTorch.
// Writes the loss scalar, the softmax `prob` and the smoothed target `q` (both [N, K]) for backward.
void cross_entropy_forward(const float* logits, const std::int64_t* labels, const float* soft_target,
                           double smoothing, std::int64_t rows, std::int64_t k, float* loss, float* prob, float* q);
// dlogits = dloss / N * (prob * sum(q) - q); dloss is a device scalar.
void cross_entropy_backward(const float* dloss, const float* prob, const float* q, float* dlogits, std::int64_t rows,
                            std::int64_t k);
// sum t * (log t - x) over t > 0, divided by rows.
void kl_div_forward(const float* x, const float* t, float* loss, std::int64_t rows, std::int64_t k);
void kl_div_backward(const float* dloss, const float* x, const float* t, float* dx, float* dt, std::int64_t rows,
                     std::int64_t k);
// Jensen-Shannon over `views` views stacked in rows (see ops::jensen_shannon_problem), computed in double:
// the loss scalar and d loss / d logits for an upstream gradient of 1 (`grad_unit`, [rows, k]).
void jensen_shannon_forward(const float* logits, std::int64_t rows, std::int64_t k, int views, float* loss,
                            float* grad_unit);
// dst = factor[0] * src (factor a device scalar).
void scale_by_device_scalar(const float* factor, const float* src, float* dst, std::int64_t n);
// y [rows, groups] = log sum over the columns of each group of exp x; group [k] on the device (-1: none).
void group_logsumexp_forward(const float* x, const std::int64_t* group, std::int64_t rows, std::int64_t k,
                             std::int64_t groups, float* y);
void group_logsumexp_backward(const float* dy, const float* x, const float* y, const std::int64_t* group, std::int64_t rows,
                              std::int64_t k, std::int64_t groups, float* dx);

// ---- selective-kernel fusion -----------------------------------------------------------------
// out = sum_m softmax_m(z[:, m*C + c]) * branch_m; branches are M device pointers of one view; the
// logits share the branches' storage type (bf16 under mixed precision), the softmax runs in f32.
template <storage S>
void sk_select_forward(const view4& v, int branches, const S* const* branch_ptrs, const S* logits, S* out);
template <storage S>
void sk_select_backward(const view4& v, int branches, const S* dout, const S* const* branch_ptrs, const S* logits,
                        S* const* dbranch_ptrs, S* dlogits);

// ---- VOneBlock response (grcnn/contract/vone_math.hpp) ---------------------------------------------
// q1 holds channels [simple, C) of q0's map; eps and dy share q0's view, dq1 q1's.
struct vone_args {
  view4 q0, q1;
  int simple = 0;
  double k_exc = 25.0;
  int mode = 0;  // vone_math::noise_mode
  double scale = 0.35, level = 0.07;
};
template <storage S>
void vone_response_forward(const vone_args& a, const S* q0, const S* q1, const S* eps, S* y);
template <storage S>
void vone_response_backward(const vone_args& a, const S* dy, const S* q0, const S* q1, const S* eps, S* dq0, S* dq1);

// ---- linear (cuBLAS) -------------------------------------------------------------------------
// y [N, M] = x [N, K] w[M, K]^T (+ b); bf16 operands multiply on tensor cores with f32 accumulation.
template <storage S>
void linear_forward(const S* x, const S* w, const S* b, S* y, std::int64_t n, std::int64_t k, std::int64_t m,
                    math_mode mm);
template <storage S>
void linear_backward(const S* dy, const S* x, const S* w, S* dx, S* dw, S* db, std::int64_t n, std::int64_t k,
                     std::int64_t m, math_mode mm);

// ---- convolution (cuDNN) ---------------------------------------------------------------------
struct conv_args {
  view4 x, y;
  std::int64_t o = 1, cg = 1, kh = 1, kw = 1;  // weight [O, C/groups, KH, KW]
  bool weight_nhwc = false;                    // weight stored O,KH,KW,C/groups (cuDNN's NHWC filter)
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
  math_mode math = math_mode::fp32;
  bool bf16 = false;  // every tensor bf16 (tensor cores, f32 accumulation); else f32
  std::string key;    // cache key of descriptors and algorithms (the problem's description)
};
// Pointers to f32 or bf16 data as conv_args::bf16 says.
void conv2d_forward(const conv_args& a, const void* x, const void* w, const void* b, void* y);
// Any of dx, dw, db may be null.
void conv2d_backward(const conv_args& a, const void* dy, const void* x, const void* w, void* dx, void* dw, void* db);

// Which cuDNN API runs convolutions. auto_select times the legacy API's best algorithm against the
// graph API's plans per problem and direction and keeps the faster; legacy and graph use one API only
// (tests, comparisons). Initially GRCNN_CUDNN_API (auto, legacy or graph; unset: auto; another value makes
// current_conv_api, hence every convolution, throw naming it until set_conv_api overrides it). Choices
// are cached per problem and API setting. Operands not 16-byte aligned always take the legacy API.
enum class conv_api { auto_select, legacy, graph };
conv_api current_conv_api();
void set_conv_api(conv_api api);
const char* name_of(conv_api api);
// Parses "auto", "legacy" or "graph"; anything else throws naming `where` (the option or variable).
conv_api parse_conv_api(const std::string& s, const char* where);
// With GRCNN_CUDNN_LOG=1, each choice is printed to stderr: problem, direction, both APIs' times, winner.

// Channels-last bf16 convolutions with fewer than 8 input channels can run on inputs zero-padded to 8
// channels (tensor-core engines). auto_select times both forms per problem and direction and keeps the
// faster; always and never force one (tests compare both with the reference).
enum class channel_padding { auto_select, always, never };
channel_padding current_channel_padding();
void set_channel_padding(channel_padding mode);

// Per-key algorithm choices the convolution cache holds (for tests and reports).
struct conv_cache_stats {
  std::size_t plans = 0;     // distinct (problem, API setting) pairs planned
  std::size_t searches = 0;  // algorithm searches run (one per problem, direction and API setting)
  std::size_t graph_choices = 0;   // searches won by a graph-API plan
  std::size_t legacy_choices = 0;  // searches won by a legacy algorithm
  std::size_t adoptions = 0;  // choices rebuilt without a search for another batch size of a searched bucket
  std::size_t workspace_limit = 0;
};
conv_cache_stats conv_stats();

}  // namespace grcnn::cuda
