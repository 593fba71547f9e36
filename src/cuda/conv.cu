// Convolutions through cuDNN. Each problem (shapes, strides, layout, dtype, precision) and direction is
// searched once and cached (problems that differ only in the batch size share a search per power-of-two
// bucket, see "batch sizes"): the legacy API's fastest algorithm (cudnnFind*Ex) and the graph API's plans
// (cudnn_graph.cu) run on the call's own buffers, and the faster is kept, within a workspace limit.
// fp32 forbids tensor cores (IEEE FMA only); tf32 allows them; bf16 data run on them with f32
// accumulation (cuDNN's pseudo-bf16 configuration: bf16 tensors, f32 compute type). Channels-last bf16
// convolutions with fewer than 8 input channels may also run on inputs zero-padded to 8 channels
// (whichever form is faster, see "narrow inputs" below).
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common.cuh"
#include "cudnn_graph.cuh"
#include "elementwise.cuh"

namespace grcnn::cuda {

using namespace detail;

namespace {

constexpr std::size_t kWorkspaceLimit = std::size_t(1) << 30;  // per call; the pool reuses it across calls
constexpr std::size_t kGraphCandidates = 10;                    // plans timed per search (PyTorch's default)

// A dense channels-last view (rows of C contiguous channels, rows contiguous).
bool channels_last(const view4& v) {
  return v.sc == 1 && v.sw == v.c && v.sh == v.w * v.c && v.sn == v.h * v.w * v.c;
}

// Per-channel bias of a bf16 convolution: y += b (rounded once to bf16). The gradient db = sum of dy per
// channel goes through batch norm's channel reductions (channel_totals). A channels-last output is walked
// in memory order, 8 channels per 16-byte pack where it can be: the logical order (w fastest) would make
// each warp touch 32 rows C * 2 bytes apart, which cost the grcnn55 bf16 step milliseconds.
template <class I>
__global__ void k_conv_bias_packed(__nv_bfloat16* y, const __nv_bfloat16* b, I packs, I packs_per_row) {
  constexpr int K = pack_width<__nv_bfloat16>;
  GRCNN_GRID_STRIDE(i, packs) {
    const I p = static_cast<I>(i), c0 = (p % packs_per_row) * K;
    pack<__nv_bfloat16> q = load_raw(y + p * K);
#pragma unroll
    for (int k = 0; k < K; ++k) q.v[k] = __float2bfloat16_rn(__bfloat162float(q.v[k]) + __bfloat162float(b[c0 + k]));
    *reinterpret_cast<pack<__nv_bfloat16>*>(y + p * K) = q;
  }
}
template <class I>
__global__ void k_conv_bias_bf16(view4 v, bool channels_last, __nv_bfloat16* y, const __nv_bfloat16* b) {
  const I total = static_cast<I>(v.numel()), C = static_cast<I>(v.c), H = static_cast<I>(v.h), W = static_cast<I>(v.w);
  GRCNN_GRID_STRIDE(j, total) {
    const I i = static_cast<I>(j);
    I o, c;
    if (channels_last) {  // dense: physical index i, channel i % C
      o = i, c = i % C;
    } else {
      const I w = i % W, h = (i / W) % H, n = i / (W * H * C);
      c = (i / (W * H)) % C;
      o = n * static_cast<I>(v.sn) + c * static_cast<I>(v.sc) + h * static_cast<I>(v.sh) + w * static_cast<I>(v.sw);
    }
    y[o] = __float2bfloat16_rn(__bfloat162float(y[o]) + __bfloat162float(b[c]));
  }
}
void add_conv_bias_bf16(const view4& v, __nv_bfloat16* y, const __nv_bfloat16* b) {
  const bool dense_cl = channels_last(v);
  const bool small = v.numel() < (std::int64_t(1) << 31);
  constexpr int K = pack_width<__nv_bfloat16>;
  if (dense_cl && v.c % K == 0 && pack_aligned(y)) {
    const std::int64_t packs = v.numel() / K, per_row = v.c / K;
    if (small)
      k_conv_bias_packed<std::uint32_t><<<blocks_for(packs), 256, 0, stream()>>>(
          y, b, static_cast<std::uint32_t>(packs), static_cast<std::uint32_t>(per_row));
    else
      k_conv_bias_packed<std::int64_t><<<blocks_for(packs), 256, 0, stream()>>>(y, b, packs, per_row);
  } else if (small) {
    k_conv_bias_bf16<std::uint32_t><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, dense_cl, y, b);
  } else {
    k_conv_bias_bf16<std::int64_t><<<blocks_for(v.numel()), 256, 0, stream()>>>(v, dense_cl, y, b);
  }
  check_last_launch("conv bias (bf16)");
}
__global__ void k_store_bias_grad(const double* sums, std::int64_t channels, __nv_bfloat16* db) {
  const std::int64_t c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (c < channels) db[c] = __float2bfloat16_rn(static_cast<float>(sums[c * 2]));
}

// ---- which API ----
struct api_setting {
  std::mutex mu;
  conv_api api = conv_api::auto_select;
  std::string env_error;  // a bad GRCNN_CUDNN_API, reported by current_conv_api until set_conv_api overrides it
  bool log = false;
  channel_padding padding = channel_padding::auto_select;
  api_setting() {
    if (const char* e = std::getenv("GRCNN_CUDNN_API"); e && *e) {
      try {
        api = parse_conv_api(e, "GRCNN_CUDNN_API");
      } catch (const backend_error& err) {
        env_error = err.what();
      }
    }
    const char* l = std::getenv("GRCNN_CUDNN_LOG");
    log = l && *l && std::string(l) != "0";
  }
};
api_setting& setting() {
  static api_setting* s = new api_setting;
  return *s;
}

// ---- the legacy API ----
struct legacy_descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv[3] = {nullptr, nullptr, nullptr};  // per direction: each keeps its math type
};

cudnnDataType_t data_type(const conv_args& a) { return a.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT; }

void set_view(cudnnTensorDescriptor_t d, const view4& v, cudnnDataType_t t) {
  as_int(v.numel(), "convolution tensor size");
  GRCNN_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(d, t, static_cast<int>(v.n), static_cast<int>(v.c),
                                                 static_cast<int>(v.h), static_cast<int>(v.w), static_cast<int>(v.sn),
                                                 static_cast<int>(v.sc), static_cast<int>(v.sh), static_cast<int>(v.sw)));
}
// The math type a descriptor starts with (and a search starts from): the compute type stays f32 for bf16
// data (accumulation in f32 on the tensor cores); strict fp32 forbids TF32.
cudnnMathType_t default_math(const conv_args& a) {
  return a.bf16 ? CUDNN_TENSOR_OP_MATH : a.math == math_mode::tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}
cudnnConvolutionDescriptor_t make_conv_desc(const conv_args& a) {
  cudnnConvolutionDescriptor_t d;
  GRCNN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
  GRCNN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, a.pad_h, a.pad_w, a.stride_h, a.stride_w, a.dil_h, a.dil_w,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
  GRCNN_CUDNN_CHECK(cudnnSetConvolutionGroupCount(d, a.groups));
  GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(d, default_math(a)));
  return d;
}
legacy_descriptors make_legacy(const conv_args& a) {
  legacy_descriptors p;
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.x));
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.y));
  GRCNN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&p.bias));
  GRCNN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&p.w));
  set_view(p.x, a.x, data_type(a));
  set_view(p.y, a.y, data_type(a));
  GRCNN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(p.bias, CUDNN_TENSOR_NCHW, data_type(a), 1, static_cast<int>(a.o), 1, 1));
  GRCNN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(p.w, data_type(a), a.weight_nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                               static_cast<int>(a.o), static_cast<int>(a.cg), static_cast<int>(a.kh),
                                               static_cast<int>(a.kw)));
  for (auto& c : p.conv) c = make_conv_desc(a);
  return p;
}

// Picks the fastest algorithm that succeeded within the workspace limit (cudnnFind* runs each one,
// fastest first). In fp32 only IEEE (FMA) algorithms qualify: cuDNN's default math may use TF32 tensor
// cores on Ampere and later. tf32 and bf16 take any. Throws, listing every algorithm's answer, if none.
template <class Perf>
const Perf& best_of(const Perf* perf, int count, const char* what, const conv_args& a) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= kWorkspaceLimit &&
        (a.bf16 || a.math == math_mode::tf32 || perf[i].mathType == CUDNN_FMA_MATH))
      return perf[i];
  std::string tried;
  for (int i = 0; i < count; ++i)
    tried += grcnn::detail::concat(i ? "; " : "", "algo ", static_cast<int>(perf[i].algo), ": ",
                                   cudnnGetErrorString(perf[i].status), ", math ", static_cast<int>(perf[i].mathType),
                                   ", ", perf[i].memory, " bytes");
  throw backend_error(grcnn::detail::concat("no ", what, " algorithm ran (",
                                            a.bf16 ? "bf16" : a.math == math_mode::tf32 ? "tf32" : "fp32, FMA only",
                                            ", workspace limit ", kWorkspaceLimit, " bytes; ",
                                            tried.empty() ? "no algorithm returned" : tried, ")"));
}

// ---- one direction's choice ----
struct direction_choice {
  bool ready = false;
  std::optional<graph_plan> graph;  // set: the graph API won
  int algo = 0;                     // else: the legacy algorithm
  bool have_legacy = false;         // a legacy algorithm is known (also kept when the graph won: unaligned pointers)
  cudnnMathType_t legacy_math = CUDNN_DEFAULT_MATH;  // the legacy algorithm's math type
  bool adopted = false;             // rebuilt from another batch size's search (see "batch sizes")
  std::size_t workspace = 0, legacy_workspace = 0;
};

struct conv_plan {
  legacy_descriptors legacy;
  direction_choice dir[3];
};

// What a search chose, in a form that can be rebuilt for another batch size: the legacy algorithm and its
// math type, or the graph engine.
struct family_choice {
  bool graph = false;
  std::int64_t engine = -1;
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

struct conv_cache {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<conv_plan>> plans;
  std::map<std::string, bool> padded_wins;  // narrow inputs: per problem family, direction and API, padding won
  std::map<std::string, family_choice> families;  // per batch-size bucket: the first search's winner
  conv_cache_stats stats{0, 0, 0, 0, 0, kWorkspaceLimit};
};
conv_cache& cache() {
  static conv_cache* c = new conv_cache;
  return *c;
}

conv_plan& plan_for(const conv_args& a, conv_api api) {
  auto& c = cache();
  std::lock_guard lock(c.mu);
  auto& slot = c.plans[a.key + " api=" + name_of(api)];
  if (!slot) {
    auto p = std::make_unique<conv_plan>();
    p->legacy = make_legacy(a);  // may throw: the slot then stays empty
    slot = std::move(p);
    c.stats.plans++;
  }
  return *slot;
}

// The three operands of a direction by forward role: x (dx), w (dw), y (dy).
struct operands {
  const void* x;
  const void* w;
  const void* y;
};

void legacy_run(const legacy_descriptors& p, conv_direction d, int algo, const operands& o, void* ws, std::size_t bytes) {
  auto& c = ctx();
  const float one = 1.f, zero = 0.f;
  const int i = static_cast<int>(d);
  switch (d) {
    case conv_direction::forward:
      GRCNN_CUDNN_CHECK(cudnnConvolutionForward(c.dnn, &one, p.x, o.x, p.w, o.w, p.conv[i],
                                                static_cast<cudnnConvolutionFwdAlgo_t>(algo), ws, bytes, &zero, p.y,
                                                const_cast<void*>(o.y)));
      break;
    case conv_direction::backward_data:
      GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardData(c.dnn, &one, p.w, o.w, p.y, o.y, p.conv[i],
                                                     static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), ws, bytes, &zero,
                                                     p.x, const_cast<void*>(o.x)));
      break;
    case conv_direction::backward_filter:
      GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(c.dnn, &one, p.x, o.x, p.y, o.y, p.conv[i],
                                                       static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), ws, bytes,
                                                       &zero, p.w, const_cast<void*>(o.w)));
      break;
  }
}

// The legacy API's fastest qualifying algorithm for the direction (cudnnFind*Ex on the call's buffers);
// sets the descriptor's math type to the algorithm's. Throws when none qualifies.
void legacy_search(legacy_descriptors& p, conv_direction d, const conv_args& a, const operands& o, direction_choice& ch) {
  auto& c = ctx();
  const int i = static_cast<int>(d);
  // cudnnFind* honours the descriptor's math type: start from the default, whatever an adoption that
  // failed for this problem left there.
  GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[i], default_math(a)));
  scratch ws(kWorkspaceLimit);
  int count = 0;
  auto take = [&](const auto& best) {
    ch.algo = static_cast<int>(best.algo);
    ch.legacy_workspace = best.memory;
    ch.legacy_math = best.mathType;
    GRCNN_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv[i], best.mathType));
  };
  switch (d) {
    case conv_direction::forward: {
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      GRCNN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(c.dnn, p.x, o.x, p.w, o.w, p.conv[i], p.y,
                                                               const_cast<void*>(o.y), CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                                               &count, perf, ws.p, kWorkspaceLimit));
      take(best_of(perf, count, "forward", a));
      break;
    }
    case conv_direction::backward_data: {
      cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      GRCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(c.dnn, p.w, o.w, p.y, o.y, p.conv[i], p.x,
                                                                    const_cast<void*>(o.x),
                                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, perf,
                                                                    ws.p, kWorkspaceLimit));
      take(best_of(perf, count, "backward-data", a));
      break;
    }
    case conv_direction::backward_filter: {
      cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      GRCNN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(c.dnn, p.x, o.x, p.y, o.y, p.conv[i], p.w,
                                                                      const_cast<void*>(o.w),
                                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count,
                                                                      perf, ws.p, kWorkspaceLimit));
      take(best_of(perf, count, "backward-filter", a));
      break;
    }
  }
  ch.have_legacy = true;
}

// Device time of `run` in milliseconds: one untimed launch, then the best of three (each between events
// on the compute stream). Returns a negative time when a launch was refused.
struct event {
  cudaEvent_t e = nullptr;
  event() { GRCNN_CUDA_CHECK(cudaEventCreate(&e)); }
  ~event() { cudaEventDestroy(e); }
  event(const event&) = delete;
  event& operator=(const event&) = delete;
};
template <class F>
float time_ms(F&& run) {
  if (!run()) return -1.f;
  event start, stop;
  float best = -1.f;
  for (int r = 0; r < 3; ++r) {
    GRCNN_CUDA_CHECK(cudaEventRecord(start.e, stream()));
    const bool ok = run();
    GRCNN_CUDA_CHECK(cudaEventRecord(stop.e, stream()));
    GRCNN_CUDA_CHECK(cudaEventSynchronize(stop.e));
    float ms = 0.f;
    GRCNN_CUDA_CHECK(cudaEventElapsedTime(&ms, start.e, stop.e));
    if (!ok) return -1.f;
    if (best < 0.f || ms < best) best = ms;
  }
  return best;
}

// After a failed attempt that was caught (an allocation refused, a launch refused): the error must not
// surface at the next kernel's check. A sticky error (the context is lost) is not swallowed.
void forget_failed_attempt() {
  (void)cudaGetLastError();
  const cudaError_t e = cudaStreamQuery(stream());
  if (e != cudaSuccess && e != cudaErrorNotReady)
    throw backend_error(grcnn::detail::concat("cuda: the device failed during a convolution search: ",
                                              cudaGetErrorString(e)));
}

bool aligned(const operands& o) { return graph_aligned(o.x) && graph_aligned(o.w) && graph_aligned(o.y); }

// ---- batch sizes ----
// A search times every candidate on the call's buffers (103 problems and directions in a grcnn55 bf16
// training step), so a batch of another size (an epoch's last, partial batch) does not search again:
// problems that differ only in the batch size share the choice within a power-of-two bucket (N in
// (2^(k-1), 2^k]). The bucket's first problem searches; the others rebuild its winner for their shape,
// the same legacy algorithm or a plan of the same graph engine, without timing anything. A batch in
// another bucket searches: the fastest engine changes with the batch size (a batch of 256 and one of 8
// are different problems for the GPU).
int batch_bucket(std::int64_t n) {
  int k = 0;
  while ((std::int64_t(1) << k) < n) ++k;
  return k;
}
// Every field of the problem but the batch size (a dense view's strides do not depend on it).
std::string family_key(const conv_args& a, conv_direction d, conv_api api) {
  auto view = [](const view4& v) { return grcnn::detail::concat(v.c, "x", v.h, "x", v.w, "/", v.sn, ",", v.sc, ",", v.sh, ",", v.sw); };
  return grcnn::detail::concat(name_of(d), " api=", name_of(api), " bucket=", batch_bucket(a.x.n), " x=", view(a.x),
                               " y=", view(a.y), " w=", a.o, "x", a.cg, "x", a.kh, "x", a.kw, a.weight_nhwc ? "/krsc" : "",
                               " s=", a.stride_h, ",", a.stride_w, " p=", a.pad_h, ",", a.pad_w, " d=", a.dil_h, ",",
                               a.dil_w, " g=", a.groups, a.bf16 ? " bf16" : a.math == math_mode::tf32 ? " tf32" : " fp32");
}

// The legacy algorithm `algo` with math type `math` for direction d of the descriptors' problem: its
// workspace, or nothing when cuDNN does not support it there or it needs more than the limit.
std::optional<std::size_t> legacy_workspace(legacy_descriptors& p, conv_direction d, int algo, cudnnMathType_t math) {
  auto& c = ctx();
  const int i = static_cast<int>(d);
  if (cudnnSetConvolutionMathType(p.conv[i], math) != CUDNN_STATUS_SUCCESS) return std::nullopt;
  std::size_t bytes = 0;
  cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
  switch (d) {
    case conv_direction::forward:
      st = cudnnGetConvolutionForwardWorkspaceSize(c.dnn, p.x, p.w, p.conv[i], p.y,
                                                   static_cast<cudnnConvolutionFwdAlgo_t>(algo), &bytes);
      break;
    case conv_direction::backward_data:
      st = cudnnGetConvolutionBackwardDataWorkspaceSize(c.dnn, p.w, p.y, p.conv[i], p.x,
                                                        static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &bytes);
      break;
    case conv_direction::backward_filter:
      st = cudnnGetConvolutionBackwardFilterWorkspaceSize(c.dnn, p.x, p.y, p.conv[i], p.w,
                                                          static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo), &bytes);
      break;
  }
  if (st != CUDNN_STATUS_SUCCESS || bytes > kWorkspaceLimit) return std::nullopt;
  return bytes;
}

// Sets direction d's choice from the winner of its bucket's search, when there is one and it can be
// rebuilt for this shape (and these pointers); false sends the caller to search.
bool adopt(conv_plan& p, conv_direction d, const conv_args& a, const operands& o, conv_api api) {
  std::optional<family_choice> f;
  {
    std::lock_guard lock(cache().mu);
    if (auto it = cache().families.find(family_key(a, d, api)); it != cache().families.end()) f = it->second;
  }
  if (!f) return false;
  direction_choice& ch = p.dir[static_cast<int>(d)];
  if (f->graph) {
    if (!aligned(o)) return false;
    std::vector<graph_plan> plans = graph_plans(a, d, kWorkspaceLimit, 1, nullptr, f->engine);
    if (plans.empty()) return false;
    ch.workspace = plans.front().workspace();
    ch.graph.emplace(std::move(plans.front()));
  } else {
    const std::optional<std::size_t> ws = legacy_workspace(p.legacy, d, f->algo, f->math);
    if (!ws) return false;
    ch.algo = f->algo;
    ch.legacy_math = f->math;
    ch.have_legacy = true;
    ch.legacy_workspace = ch.workspace = *ws;
  }
  ch.ready = ch.adopted = true;
  {
    std::lock_guard lock(cache().mu);
    cache().stats.adoptions++;
  }
  if (setting().log)
    std::fprintf(stderr, "grcnn cudnn: %s %s [%s]: %s, the choice of its batch-size bucket (no search)\n", a.key.c_str(),
                 name_of(d), name_of(api),
                 f->graph ? ch.graph->engine().c_str() : grcnn::detail::concat("legacy algo ", f->algo).c_str());
  return true;
}

// Decides a direction's plan under `api`: the legacy algorithm, the fastest graph plan, or in auto mode
// whichever ran faster on these buffers. Operands that are not 16-byte aligned are searched (and, the
// choice being cached, run) with the legacy API whatever the setting. Throws, with both APIs' answers,
// when neither has a plan.
void search(conv_plan& p, conv_direction d, const conv_args& a, const operands& o, conv_api api) {
  direction_choice& ch = p.dir[static_cast<int>(d)];
  const bool try_graph = api != conv_api::legacy && aligned(o);
  const bool try_legacy = api != conv_api::graph || !aligned(o);
  std::string legacy_why = "not asked", graph_why = api == conv_api::legacy ? "not asked" : "operands not 16-byte aligned";
  if (try_legacy) {
    try {
      legacy_search(p.legacy, d, a, o, ch);
    } catch (const backend_error& e) {
      legacy_why = e.what();
      forget_failed_attempt();
    }
  }
  std::vector<graph_plan> plans;
  if (try_graph) plans = graph_plans(a, d, kWorkspaceLimit, kGraphCandidates, &graph_why);
  // Time the candidates on the call's buffers (the legacy algorithm too when it competes).
  float legacy_ms = -1.f, best_ms = -1.f;
  std::optional<std::size_t> best;
  std::string timings;
  if (!plans.empty()) {
    std::size_t biggest = ch.have_legacy ? ch.legacy_workspace : 0;
    for (const auto& g : plans) biggest = std::max(biggest, g.workspace());
    scratch ws(biggest);
    if (ch.have_legacy)
      legacy_ms = time_ms([&] {
        legacy_run(p.legacy, d, ch.algo, o, ws.p, ch.legacy_workspace);
        return true;
      });
    for (std::size_t i = 0; i < plans.size(); ++i) {
      float ms = -1.f;
      std::string failure = "refused at launch";
      try {
        ms = time_ms([&] { return plans[i].run(o.x, o.w, o.y, ws.p); });
      } catch (const backend_error& e) {  // one engine failing is no reason to fail the convolution
        failure = e.what();
        forget_failed_attempt();
      }
      timings += grcnn::detail::concat(i ? "; " : "", plans[i].engine(), ": ",
                                       ms < 0 ? failure : grcnn::detail::concat(ms, " ms"));
      if (ms >= 0 && (!best || ms < best_ms)) best = i, best_ms = ms;
    }
    if (!best) graph_why = "no plan ran: " + timings;
  }
  const bool graph_wins = best && (!ch.have_legacy || legacy_ms < 0 || best_ms < legacy_ms);
  if (!graph_wins && !ch.have_legacy)
    throw backend_error(grcnn::detail::concat("cudnn: no ", name_of(d), " convolution for ", a.key, " under the ",
                                              name_of(api), " API setting (legacy API: ", legacy_why,
                                              "; graph API: ", graph_why, ")"));
  if (graph_wins) {
    ch.workspace = plans[*best].workspace();
    ch.graph.emplace(std::move(plans[*best]));
  } else {
    ch.workspace = ch.legacy_workspace;
  }
  ch.ready = true;
  {
    std::lock_guard lock(cache().mu);
    auto& s = cache().stats;
    s.searches++;
    (graph_wins ? s.graph_choices : s.legacy_choices)++;
    // The bucket's first full search speaks for it (emplace keeps an earlier winner); a search that
    // unaligned operands kept from the graph API does not.
    if (try_graph || api == conv_api::legacy)
      cache().families.emplace(family_key(a, d, api),
                             family_choice{graph_wins, graph_wins ? ch.graph->engine_index() : -1, ch.algo, ch.legacy_math});
  }
  if (setting().log) {
    const std::string chosen = graph_wins ? ch.graph->engine() : grcnn::detail::concat("legacy algo ", ch.algo);
    const std::string legacy = !ch.have_legacy ? legacy_why
                               : legacy_ms < 0 ? grcnn::detail::concat("algo ", ch.algo, " (not timed against a plan)")
                                               : grcnn::detail::concat("algo ", ch.algo, " ", legacy_ms, " ms");
    std::fprintf(stderr, "grcnn cudnn: %s %s [%s]: %s; legacy %s; graph %s\n", a.key.c_str(), name_of(d), name_of(api),
                 chosen.c_str(), legacy.c_str(), plans.empty() ? graph_why.c_str() : timings.c_str());
  }
}

// Runs a direction with its chosen plan; a graph plan meeting unaligned pointers hands over to the legacy
// API (searched then, once).
void run_direction(conv_plan& p, conv_direction d, const conv_args& a, const operands& o, conv_api api) {
  direction_choice& ch = p.dir[static_cast<int>(d)];
  if (!ch.ready && !adopt(p, d, a, o, api)) search(p, d, a, o, api);
  if (ch.graph && aligned(o)) {
    {
      scratch ws(ch.workspace);
      if (ch.graph->run(o.x, o.w, o.y, ws.p)) return;
    }
    if (ch.adopted) {  // the engine rebuilt for this batch size refused its launch: search this problem
      forget_failed_attempt();
      ch = direction_choice{};
      search(p, d, a, o, api);
      run_direction(p, d, a, o, api);  // once: a searched choice is not adopted
      return;
    }
    throw backend_error(grcnn::detail::concat("cudnn: the chosen graph plan (", ch.graph->engine(), ") for the ",
                                              name_of(d), " convolution ", a.key, " refused its launch"));
  }
  if (!ch.have_legacy) {
    try {
      legacy_search(p.legacy, d, a, o, ch);
    } catch (const backend_error& e) {
      throw backend_error(grcnn::detail::concat("cudnn: ", name_of(d), " convolution ", a.key,
                                                " with operands not 16-byte aligned (the graph plan cannot take them): ",
                                                e.what()));
    }
  }
  scratch ws(ch.legacy_workspace);
  if (!ch.adopted) {
    legacy_run(p.legacy, d, ch.algo, o, ws.p, ch.legacy_workspace);
    return;
  }
  try {
    legacy_run(p.legacy, d, ch.algo, o, ws.p, ch.legacy_workspace);
  } catch (const backend_error&) {  // the algorithm rebuilt for this batch size failed: search this problem
    forget_failed_attempt();
    ch = direction_choice{};
    search(p, d, a, o, api);
    run_direction(p, d, a, o, api);  // once: a searched choice is not adopted
  }
}

// ---- narrow inputs ----
// cuDNN has no tensor-core engine for a channels-last bf16 convolution with fewer than 8 input channels
// (an RGB stem): on the H100 every engine, legacy or graph, ran 3 -> 64 channels 7x7 stride 2 at batch
// 128 in 0.93 ms, about five times its memory traffic's time. Zeros appended to the input's and the
// filter's channels (to 8) leave every sum unchanged and admit tensor-core engines. Per problem family
// (batch-size bucket, as the searches) and direction the first call times both forms on its buffers
// (padding included) and keeps the faster;
// set_channel_padding forces one (tests).
constexpr std::int64_t kPaddedChannels = 8;

bool may_pad(const conv_args& a) {
  return a.bf16 && a.groups == 1 && a.cg < kPaddedChannels && a.weight_nhwc && channels_last(a.x);
}
conv_args padded_args(const conv_args& a) {
  conv_args p = a;
  const std::int64_t C = kPaddedChannels;
  p.x = {a.x.n, C, a.x.h, a.x.w, a.x.h * a.x.w * C, 1, a.x.w * C, C};
  p.cg = C;
  p.key = a.key + " (channels padded to 8)";
  return p;
}
// rows x c bf16 values -> rows x 8 (zeros after c), one 16-byte row per thread; and back.
__global__ void k_pad_channels(const __nv_bfloat16* src, __nv_bfloat16* dst, std::int64_t rows, int c) {
  GRCNN_GRID_STRIDE(r, rows) {
    pack<__nv_bfloat16> q;
#pragma unroll
    for (int k = 0; k < kPaddedChannels; ++k) q.v[k] = k < c ? src[r * c + k] : __float2bfloat16_rn(0.f);
    *reinterpret_cast<pack<__nv_bfloat16>*>(dst + r * kPaddedChannels) = q;
  }
}
__global__ void k_unpad_channels(const __nv_bfloat16* src, __nv_bfloat16* dst, std::int64_t rows, int c) {
  const std::int64_t n = rows * c;
  GRCNN_GRID_STRIDE(i, n) {
    const std::int64_t r = i / c;
    dst[i] = src[r * kPaddedChannels + (i - r * c)];
  }
}
// The padded copy of x [rows, c] or of the filter [O * KH * KW, c] (both channels-last).
struct padded_copy {
  scratch buf;
  padded_copy(const void* src, std::int64_t rows, std::int64_t c)
      : buf(static_cast<std::size_t>(rows * kPaddedChannels) * sizeof(__nv_bfloat16)) {
    if (src) {
      k_pad_channels<<<blocks_for(rows), 256, 0, stream()>>>(static_cast<const __nv_bfloat16*>(src), buf.as<__nv_bfloat16>(),
                                                              rows, static_cast<int>(c));
      check_last_launch("conv input channel padding");
    }
  }
  void unpad_into(void* dst, std::int64_t rows, std::int64_t c) const {
    k_unpad_channels<<<blocks_for(rows * c), 256, 0, stream()>>>(buf.as<__nv_bfloat16>(), static_cast<__nv_bfloat16*>(dst),
                                                                 rows, static_cast<int>(c));
    check_last_launch("conv gradient channel slice");
  }
};

// Runs direction d of a (operands by forward role, as run_direction) in the faster of the plain and
// the padded form.
void run_narrow(const conv_args& a, conv_direction d, const operands& o, conv_api api) {
  const conv_args pa = padded_args(a);
  const std::int64_t xrows = a.x.n * a.x.h * a.x.w, wrows = a.o * a.kh * a.kw;
  auto plain = [&] {
    run_direction(plan_for(a, api), d, a, o, api);
    return true;
  };
  auto padded = [&] {
    conv_plan& p = plan_for(pa, api);
    if (d == conv_direction::forward) {
      const padded_copy x(o.x, xrows, a.cg), w(o.w, wrows, a.cg);
      run_direction(p, d, pa, {x.buf.p, w.buf.p, o.y}, api);
    } else if (d == conv_direction::backward_data) {
      const padded_copy dx(nullptr, xrows, a.cg), w(o.w, wrows, a.cg);
      run_direction(p, d, pa, {dx.buf.p, w.buf.p, o.y}, api);
      dx.unpad_into(const_cast<void*>(o.x), xrows, a.cg);
    } else {
      const padded_copy x(o.x, xrows, a.cg), dw(nullptr, wrows, a.cg);
      run_direction(p, d, pa, {x.buf.p, dw.buf.p, o.y}, api);
      dw.unpad_into(const_cast<void*>(o.w), wrows, a.cg);
    }
    return true;
  };
  const channel_padding mode = current_channel_padding();
  bool pad = mode == channel_padding::always;
  if (mode == channel_padding::auto_select) {
    const std::string key = family_key(a, d, api);  // one timing per batch-size bucket, as the searches
    std::optional<bool> known;
    {
      std::lock_guard lock(cache().mu);
      if (auto it = cache().padded_wins.find(key); it != cache().padded_wins.end()) known = it->second;
    }
    if (!known) {
      // Each form searches its own problem on first use; then both are timed (outputs are overwritten, so
      // the call below leaves the chosen form's result).
      const float plain_ms = time_ms(plain);
      float padded_ms = -1.f;
      try {  // the padded form may find no plan or no memory: the plain one then serves
        padded_ms = time_ms(padded);
      } catch (const backend_error& e) {
        forget_failed_attempt();
        if (setting().log)
          std::fprintf(stderr, "grcnn cudnn: %s %s: the padded form failed: %s\n", a.key.c_str(), name_of(d), e.what());
      }
      known = padded_ms >= 0.f && padded_ms < plain_ms;
      {
        std::lock_guard lock(cache().mu);
        cache().padded_wins[key] = *known;
      }
      if (setting().log)
        std::fprintf(stderr, "grcnn cudnn: %s %s: %s (plain %g ms, input channels padded to 8 %g ms)\n", a.key.c_str(),
                     name_of(d), *known ? "padded" : "plain", plain_ms, padded_ms);
    }
    pad = *known;
  }
  if (pad)
    padded();
  else
    plain();
}
void run(const conv_args& a, conv_direction d, const operands& o, conv_api api) {
  if (may_pad(a))
    run_narrow(a, d, o, api);
  else
    run_direction(plan_for(a, api), d, a, o, api);
}

}  // namespace

channel_padding current_channel_padding() {
  std::lock_guard lock(setting().mu);
  return setting().padding;
}
void set_channel_padding(channel_padding mode) {
  std::lock_guard lock(setting().mu);
  setting().padding = mode;
}

conv_api current_conv_api() {
  auto& s = setting();
  std::lock_guard lock(s.mu);
  if (!s.env_error.empty()) throw backend_error(s.env_error);
  return s.api;
}
void set_conv_api(conv_api api) {
  auto& s = setting();
  std::lock_guard lock(s.mu);
  s.api = api;
  s.env_error.clear();
}
const char* name_of(conv_api api) {
  switch (api) {
    case conv_api::auto_select: return "auto";
    case conv_api::legacy: return "legacy";
    case conv_api::graph: return "graph";
  }
  return "?";
}
conv_api parse_conv_api(const std::string& s, const char* where) {
  if (s == "auto") return conv_api::auto_select;
  if (s == "legacy") return conv_api::legacy;
  if (s == "graph") return conv_api::graph;
  throw backend_error(grcnn::detail::concat(where, ": unknown cuDNN API '", s, "' (auto, legacy or graph)"));
}

conv_cache_stats conv_stats() {
  std::lock_guard lock(cache().mu);
  return cache().stats;
}

void conv2d_forward(const conv_args& a, const void* x, const void* w, const void* b, void* y) {
  GRCNN_PROFILE("conv forward");
  const conv_api api = current_conv_api();
  run(a, conv_direction::forward, {x, w, y}, api);
  if (b && a.bf16) {
    add_conv_bias_bf16(a.y, static_cast<__nv_bfloat16*>(y), static_cast<const __nv_bfloat16*>(b));
  } else if (b) {
    const float one = 1.f;
    const conv_plan& p = plan_for(a, api);
    GRCNN_CUDNN_CHECK(cudnnAddTensor(ctx().dnn, &one, p.legacy.bias, b, &one, p.legacy.y, y));
  }
}

void conv2d_backward(const conv_args& a, const void* dy, const void* x, const void* w, void* dx, void* dw, void* db) {
  GRCNN_PROFILE("conv backward");
  const conv_api api = current_conv_api();
  if (dx) run(a, conv_direction::backward_data, {dx, w, dy}, api);
  if (dw) run(a, conv_direction::backward_filter, {x, dw, dy}, api);
  if (db && a.bf16) {
    scratch sums(static_cast<std::size_t>(a.o) * 2 * sizeof(double));
    channel_totals(a.y, static_cast<const __nv_bfloat16*>(dy), sums.as<double>());
    k_store_bias_grad<<<static_cast<unsigned>((a.o + 255) / 256), 256, 0, stream()>>>(sums.as<double>(), a.o,
                                                                                       static_cast<__nv_bfloat16*>(db));
    check_last_launch("conv bias gradient (bf16)");
  } else if (db) {
    const float one = 1.f, zero = 0.f;
    const conv_plan& p = plan_for(a, api);
    GRCNN_CUDNN_CHECK(cudnnConvolutionBackwardBias(ctx().dnn, &one, p.legacy.y, dy, &zero, p.legacy.bias, db));
  }
}

}  // namespace grcnn::cuda
