// The linear layer through cuBLAS. fp32 forbids tensor cores (cuBLAS default math); tf32 allows them;
// bf16 data run on them with f32 accumulation.
#include <type_traits>

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

}  // namespace grcnn::cuda
