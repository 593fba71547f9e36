// Convolution through cuDNN (algorithms searched once per problem and cached, within a workspace
// limit) and the linear layer through cuBLAS. fp32 forbids tensor cores (CUDNN_FMA_MATH, cuBLAS default
// math); tf32 allows them; bf16 data run on them with f32 accumulation (cuDNN's pseudo-bf16
// configuration: bf16 tensors, f32 compute type).
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include "common.cuh"

namespace grcnn::cuda {

using namespace detail;

// ---- linear ----
namespace {
template <class T>
__global__ void k_column_sums(const T* dy, T* db, std::int64_t rows, std::int64_t cols) {
  const std::int64_t m = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (m >= cols) return;
  float s = 0.f;
  for (std::int64_t r = 0; r < rows; ++r) s += ld(dy[r * cols + m]);
  st(db[m], s);
}
template <class T>
__global__ void k_add_bias_rows(T* y, const T* b, std::int64_t rows, std::int64_t cols) {
  const std::int64_t total = rows * cols;
  GRCNN_GRID_STRIDE(i, total) st(y[i], ld(y[i]) + ld(b[i % cols]));
}
// Per-channel bias of a bf16 convolution over any strides: y += b, and db = sum of dy per channel (one
// block per channel, f32 sums).
__global__ void k_conv_bias_bf16(view4 v, __nv_bfloat16* y, const __nv_bfloat16* b) {
  const std::int64_t total = v.numel();
  GRCNN_GRID_STRIDE(i, total) {
    const std::int64_t w = i % v.w, h = (i / v.w) % v.h, c = (i / (v.w * v.h)) % v.c, n = i / (v.w * v.h * v.c);
    __nv_bfloat16& e = y[n * v.sn + c * v.sc + h * v.sh + w * v.sw];
    e = __float2bfloat16_rn(__bfloat162float(e) + __bfloat162float(b[c]));
  }
}
__global__ void k_conv_bias_grad_bf16(view4 v, const __nv_bfloat16* dy, __nv_bfloat16* db) {
  const std::int64_t c = blockIdx.x, rows = v.n * v.h * v.w;
  float s = 0.f;
  for (std::int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const std::int64_t w = r % v.w, h = (r / v.w) % v.h, n = r / (v.w * v.h);
    s += __bfloat162float(dy[n * v.sn + c * v.sc + h * v.sh + w * v.sw]);
  }
  s = block_sum(s);
  if (threadIdx.x == 0) db[c] = __float2bfloat16_rn(s);
}
// cuBLAS and cuDNN take int sizes: refuse what does not fit rather than wrap around.
int as_int(std::int64_t v, const char* what) {
  if (v < 0 || v > 2147483647) throw backend_error(grcnn::detail::concat("cuda: ", what, " ", v, " exceeds the int range of cuBLAS/cuDNN"));
  return static_cast<int>(v);
}
// Split-K partial sums stay in the f32 compute type even when the output is bf16 (cuBLAS may otherwise
// add them in the output type); it costs nothing measurable on the one small linear layer.
void set_blas_math(math_mode mm) {
  const auto base = mm == math_mode::tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
  GRCNN_CUBLAS_CHECK(cublasSetMathMode(
      ctx().blas, static_cast<cublasMath_t>(base | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
}
}  // namespace

// C = op(A) op(B) on column-major buffers: cublasSgemm for f32, cublasGemmEx (bf16 in and out, f32
// compute) for bf16.
template <class S>
void gemm(cublasOperation_t ta, cublasOperation_t tb, std::int64_t m, std::int64_t n, std::int64_t k, const S* a,
          std::int64_t lda, const S* b, std::int64_t ldb, S* c, std::int64_t ldc) {
  const float one = 1.f, zero = 0.f;
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if constexpr (std::is_same_v<S, float>) {
    GRCNN_CUBLAS_CHECK(cublasSgemm(ctx().blas, ta, tb, M, N, K, &one, a, static_cast<int>(lda), b, static_cast<int>(ldb),
                                   &zero, c, static_cast<int>(ldc)));
  } else {
    GRCNN_CUBLAS_CHECK(cublasGemmEx(ctx().blas, ta, tb, M, N, K, &one, a, CUDA_R_16BF, static_cast<int>(lda), b,
                                    CUDA_R_16BF, static_cast<int>(ldb), &zero, c, CUDA_R_16BF, static_cast<int>(ldc),
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  }
}

template <storage S>
void linear_forward(const S* x, const S* w, const S* b, S* y, std::int64_t n, std::int64_t k, std::int64_t m,
                    math_mode mm) {
  GRCNN_PROFILE("linear forward");
  as_int(n * k, "linear input size"), as_int(m * k, "linear weight size"), as_int(n * m, "linear output size");
  if (n == 0 || m == 0) return;
  set_blas_math(mm);
  // Row-major y[N,M] = x[N,K] w[M,K]^T is column-major y^T[M,N] = w^T... : gemm(T, N) on the raw buffers.
  gemm(CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, w, k, x, k, y, m);
  if (b) {
    k_add_bias_rows<<<blocks_for(n * m), 256, 0, stream()>>>(dev(y), dev(b), n, m);
    check_last_launch("linear bias");
  }
}

template <storage S>
void linear_backward(const S* dy, const S* x, const S* w, S* dx, S* dw, S* db, std::int64_t n, std::int64_t k,
                     std::int64_t m, math_mode mm) {
  GRCNN_PROFILE("linear backward");
  as_int(n * k, "linear input size"), as_int(m * k, "linear weight size"), as_int(n * m, "linear output size");
  if (m == 0) {  // no outputs: the input gradient is zero
    if (dx) GRCNN_CUDA_CHECK(cudaMemsetAsync(dx, 0, static_cast<std::size_t>(n * k) * sizeof(S), stream()));
    return;
  }
  // An empty batch (or no input features) still owes zero weight and bias gradients: sums over no rows.
  if (n == 0) {
    if (dw) GRCNN_CUDA_CHECK(cudaMemsetAsync(dw, 0, static_cast<std::size_t>(m * k) * sizeof(S), stream()));
    if (db) GRCNN_CUDA_CHECK(cudaMemsetAsync(db, 0, static_cast<std::size_t>(m) * sizeof(S), stream()));
    return;
  }
  set_blas_math(mm);
  if (k > 0 && dx) gemm(CUBLAS_OP_N, CUBLAS_OP_N, k, n, m, w, k, dy, m, dx, k);  // dx[N,K] = dy[N,M] w[M,K]
  if (k > 0 && dw) gemm(CUBLAS_OP_N, CUBLAS_OP_T, k, m, n, x, k, dy, m, dw, k);  // dw[M,K] = dy^T[M,N] x[N,K]
  if (db) {
    k_column_sums<<<static_cast<unsigned>((m + 255) / 256), 256, 0, stream()>>>(dev(dy), dev(db), n, m);
    check_last_launch("linear bias gradient");
  }
}
template void linear_forward<float>(const float*, const float*, const float*, float*, std::int64_t, std::int64_t,
                                    std::int64_t, math_mode);
template void linear_forward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, std::int64_t, std::int64_t,
                                   std::int64_t, math_mode);
template void linear_backward<float>(const float*, const float*, const float*, float*, float*, float*, std::int64_t,
                                     std::int64_t, std::int64_t, math_mode);
template void linear_backward<bf16>(const bf16*, const bf16*, const bf16*, bf16*, bf16*, bf16*, std::int64_t,
                                    std::int64_t, std::int64_t, math_mode);

// ---- convolution ----
namespace {

constexpr std::size_t kWorkspaceLimit = std::size_t(1) << 30;  // per call; the pool reuses it across calls

struct conv_plan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t fwd = nullptr, bwd_data = nullptr, bwd_filter = nullptr;
  bool have_fwd = false, have_data = false, have_filter = false;
  cudnnConvolutionFwdAlgo_t fwd_algo{};
  cudnnConvolutionBwdDataAlgo_t data_algo{};
  cudnnConvolutionBwdFilterAlgo_t filter_algo{};
  std::size_t fwd_ws = 0, data_ws = 0, filter_ws = 0;
};

struct conv_cache {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<conv_plan>> plans;
  conv_cache_stats stats{0, 0, kWorkspaceLimit};
};
conv_cache& cache() {
  static conv_cache* c = new conv_cache;
  return *c;
}

cudnnDataType_t data_type(const conv_args& a) { return a.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT; }

void set_view(cudnnTensorDescriptor_t d, const view4& v, cudnnDataType_t t) {
  as_int(v.numel(), "convolution tensor size");
  GRCNN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d, t, static_cast<int>(v.n), static_cast<int>(v.c),
                                                 static_cast<int>(v.h), static_cast<int>(v.w), static_cast<int>(v.sn),
                                                 static_cast<int>(v.sc), static_cast<int>(v.sh), static_cast<int>(v.sw)));
}
cudnnConvolutionDescriptor_t make_conv_desc(const conv_args& a) {
  cudnnConvolutionDescriptor_t d;
  GRCNN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
  GRCNN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, a.pad_h, a.pad_w, a.stride_h, a.stride_w, a.dil_h, a.dil_w,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  GRCNN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, a.groups));
  // The compute type stays f32 for bf16 data (accumulation in f32 on the tensor cores).
  GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(d, a.bf16                        ? CUDNN_TENSOR_OP_MATH
                                                   : a.math == math_mode::tf32 ? CUDNN_DEFAULT_MATH
                                                                               : CUDNN_FMA_MATH));
  return d;
}

conv_plan& plan_for(const conv_args& a) {
  auto& c = cache();
  std::lock_guard lock(c.mu);
  auto& slot = c.plans[a.key];
  if (slot) return *slot;
  auto p = std::make_unique<conv_plan>();
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x));
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y));
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias));
  GRCNN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w));
  set_view(p->x, a.x, data_type(a));
  set_view(p->y, a.y, data_type(a));
  GRCNN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias, CUDNN_TENSOR_NCHW, data_type(a), 1, static_cast<int>(a.o), 1, 1));
  GRCNN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w, data_type(a), a.weight_nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                               static_cast<int>(a.o), static_cast<int>(a.cg), static_cast<int>(a.kh),
                                               static_cast<int>(a.kw)));
  p->fwd = make_conv_desc(a);
  p->bwd_data = make_conv_desc(a);
  p->bwd_filter = make_conv_desc(a);
  c.stats.plans++;
  slot = std::move(p);
  return *slot;
}

// Picks the fastest algorithm that succeeded within the workspace limit (cudnnFind* runs each one,
// fastest first). In fp32 only IEEE (FMA) algorithms qualify: cuDNN's default math may use TF32 tensor
// cores on Ampere and later. tf32 and bf16 take any.
template <class Perf>
const Perf& best_of(const Perf* perf, int count, const char* what, const conv_args& a) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit &&
        (a.bf16 || a.math == math_mode::tf32 || perf[i].mathType == CUDNN_FMA_MATH))
      return perf[i];
  // Say what each algorithm answered: the one failure then tells which engine a problem lacks.
  std::string tried;
  for (int i = 0; i < count; ++i)
    tried += grcnn::detail::concat(i ? "; " : "", "algo ", static_cast<int>(perf[i].algo), ": ",
                                   cudnnGetErrorString(perf[i].status), ", math ", static_cast<int>(perf[i].mathType),
                                   ", ", perf[i].memory, " bytes");
  throw backend_error(grcnn::detail::concat("cudnn: no ", what, " algorithm ran for the convolution ", a.key, " (",
                                            a.bf16 ? "bf16" : a.math == math_mode::tf32 ? "tf32" : "fp32, FMA only",
                                            ", workspace limit ", kWorkspaceLimit, " bytes; ",
                                            tried.empty() ? "no algorithm returned" : tried, ")"));
}

}  // namespace

conv_cache_stats conv_stats() {
  std::lock_guard lock(cache().mu);
  return cache().stats;
}

void conv2d_forward(const conv_args& a, const void* x, const void* w, const void* b, void* y) {
  GRCNN_PROFILE("conv forward");
  conv_plan& p = plan_for(a);
  auto& c = ctx();
  const float one = 1.f, zero = 0.f;
  if (!p.have_fwd) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int count = 0;
    scratch ws(kWorkspaceLimit);
    GRCNN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(c.dnn, p.x, x, p.w, w, p.fwd, p.y, y,
                                                             CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, perf, ws.p,
                                                             kWorkspaceLimit));
    const auto& best = best_of(perf, count, "forward", a);
    p.fwd_algo = best.algo;
    p.fwd_ws = best.memory;
    GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.fwd, best.mathType));
    p.have_fwd = true;
    std::lock_guard lock(cache().mu);
    cache().stats.searches++;
  }
  scratch ws(p.fwd_ws);
  GRCNN_CUDNN_CHECK(cudnnConvolutionForward(c.dnn, &one, p.x, x, p.w, w, p.fwd, p.fwd_algo, ws.p, p.fwd_ws, &zero, p.y, y));
  if (b && a.bf16) {
    k_conv_bias_bf16<<<blocks_for(a.y.numel()), 256, 0, stream()>>>(a.y, static_cast<__nv_bfloat16*>(y),
                                                                     static_cast<const __nv_bfloat16*>(b));
    check_last_launch("conv bias (bf16)");
  } else if (b) {
    GRCNN_CUDNN_CHECK(cudnnAddTensor(c.dnn, &one, p.bias, b, &one, p.y, y));
  }
}

void conv2d_backward(const conv_args& a, const void* dy, const void* x, const void* w, void* dx, void* dw, void* db) {
  GRCNN_PROFILE("conv backward");
  conv_plan& p = plan_for(a);
  auto& c = ctx();
  const float one = 1.f, zero = 0.f;
  if (dx) {
    if (!p.have_data) {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      int count = 0;
      scratch ws(kWorkspaceLimit);
      GRCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(c.dnn, p.w, w, p.y, dy, p.bwd_data, p.x, dx,
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf,
                                                                    ws.p, kWorkspaceLimit));
      const auto& best = best_of(perf, count, "backward-data", a);
      p.data_algo = best.algo;
      p.data_ws = best.memory;
      GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_data, best.mathType));
      p.have_data = true;
      std::lock_guard lock(cache().mu);
      cache().stats.searches++;
    }
    scratch ws(p.data_ws);
    GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.dnn, &one, p.w, w, p.y, dy, p.bwd_data, p.data_algo, ws.p,
                                                   p.data_ws, &zero, p.x, dx));
  }
  if (dw) {
    if (!p.have_filter) {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      int count = 0;
      scratch ws(kWorkspaceLimit);
      GRCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(c.dnn, p.x, x, p.y, dy, p.bwd_filter, p.w, dw,
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count,
                                                                      perf, ws.p, kWorkspaceLimit));
      const auto& best = best_of(perf, count, "backward-filter", a);
      p.filter_algo = best.algo;
      p.filter_ws = best.memory;
      GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.bwd_filter, best.mathType));
      p.have_filter = true;
      std::lock_guard lock(cache().mu);
      cache().stats.searches++;
    }
    scratch ws(p.filter_ws);
    GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.dnn, &one, p.x, x, p.y, dy, p.bwd_filter, p.filter_algo, ws.p,
                                                     p.filter_ws, &zero, p.w, dw));
  }
  if (db && a.bf16) {
    k_conv_bias_grad_bf16<<<static_cast<unsigned>(a.o), 256, 0, stream()>>>(a.y, static_cast<const __nv_bfloat16*>(dy),
                                                                           static_cast<__nv_bfloat16*>(db));
    check_last_launch("conv bias gradient (bf16)");
  } else if (db) {
    GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardBias(c.dnn, &one, p.y, dy, &zero, p.bias, db));
  }
}

}  // namespace grcnn::cuda
