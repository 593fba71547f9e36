// cuDNN's graph API for single convolutions: tensor, convolution and operation descriptors, one
// operation graph per direction, the heuristics' engine configurations filtered by their numerical and
// behaviour notes, finalized execution plans and variant packs.
#include <algorithm>
#include <utility>

#include "cudnn_graph.cuh"

// The operation graph's and the plan's handle attributes are marked deprecated in cuDNN 9.x headers but
// are still read (older 9.x releases require them); setting them is right on every 9.x.
#if defined(__NVCC__)
#pragma nv_diag_suppress 1215
#pragma nv_diag_suppress 1444
#endif
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace grcnn::cuda::detail {

const char* name_of(conv_direction d) {
  switch (d) {
    case conv_direction::forward: return "forward";
    case conv_direction::backward_data: return "backward-data";
    case conv_direction::backward_filter: return "backward-filter";
  }
  return "?";
}

namespace {

// A step of building a graph that cuDNN refused: names the step; graph_plans turns it into a reason.
struct graph_refusal {
  std::string what;
};
void check(cudnnStatus_t s, const char* step) {
  if (s != CUDNN_STATUS_SUCCESS) throw graph_refusal{grcnn::detail::concat(step, ": ", cudnnGetErrorString(s))};
}

// An owned backend descriptor.
class bdesc {
 public:
  explicit bdesc(cudnnBackendDescriptorType_t t) { check(cudnnBackendCreateDescriptor(t, &d_), "create descriptor"); }
  bdesc(bdesc&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  bdesc& operator=(bdesc&& o) noexcept {
    std::swap(d_, o.d_);
    return *this;
  }
  bdesc(const bdesc&) = delete;
  bdesc& operator=(const bdesc&) = delete;
  ~bdesc() {
    if (d_) cudnnBackendDestroyDescriptor(d_);
  }
  cudnnBackendDescriptor_t get() const { return d_; }
  cudnnBackendDescriptor_t* addr() { return &d_; }
  template <class T>
  bdesc& set(cudnnBackendAttributeName_t n, cudnnBackendAttributeType_t t, const T* v, std::int64_t count = 1) {
    check(cudnnBackendSetAttribute(d_, n, t, count, v), "set attribute");
    return *this;
  }
  bdesc& set_desc(cudnnBackendAttributeName_t n, const bdesc& v) {
    const cudnnBackendDescriptor_t d = v.get();
    return set(n, CUDNN_TYPE_BACKEND_DESCRIPTOR, &d);
  }
  bdesc& finalize(const char* what) {
    check(cudnnBackendFinalize(d_), what);
    return *this;
  }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

constexpr std::int64_t kUidX = 1, kUidW = 2, kUidY = 3;

bdesc tensor_desc(std::int64_t uid, cudnnDataType_t type, const std::int64_t (&dims)[4],
                  const std::int64_t (&strides)[4]) {
  bdesc t(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const std::int64_t align = static_cast<std::int64_t>(kGraphAlignment);
  t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type)
      .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims, 4)
      .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides, 4)
      .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &uid)
      .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &align)
      .finalize("tensor descriptor");
  return t;
}
bdesc view_desc(std::int64_t uid, cudnnDataType_t type, const view4& v) {
  return tensor_desc(uid, type, {v.n, v.c, v.h, v.w}, {v.sn, v.sc, v.sh, v.sw});
}
// The filter [O, C/groups, KH, KW] in either order (KRSC for channels-last); cuDNN reads the group
// count from C / (C/groups).
bdesc filter_desc(cudnnDataType_t type, const conv_args& a) {
  const std::int64_t o = a.o, c = a.cg, h = a.kh, w = a.kw;
  if (a.weight_nhwc) return tensor_desc(kUidW, type, {o, c, h, w}, {h * w * c, 1, w * c, c});
  return tensor_desc(kUidW, type, {o, c, h, w}, {c * h * w, h * w, w, 1});
}

bdesc conv_desc(const conv_args& a) {
  bdesc d(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnDataType_t comp = CUDNN_DATA_FLOAT;  // f32 accumulation for every precision
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const std::int64_t dims = 2, dil[2] = {a.dil_h, a.dil_w}, stride[2] = {a.stride_h, a.stride_w},
                     pad[2] = {a.pad_h, a.pad_w};
  d.set(CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &comp)
      .set(CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, &mode)
      .set(CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, &dims)
      .set(CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dil, 2)
      .set(CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, stride, 2)
      .set(CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, pad, 2)
      .set(CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, pad, 2)
      .finalize("convolution descriptor");
  return d;
}

// The operation of one direction: out = conv(...) with alpha 1, beta 0 (our gradients are fresh tensors;
// accumulation happens outside, as in the legacy path).
bdesc operation(const conv_args& a, conv_direction d) {
  const cudnnDataType_t type = a.bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
  const bdesc x = view_desc(kUidX, type, a.x), w = filter_desc(type, a), y = view_desc(kUidY, type, a.y);
  const bdesc conv = conv_desc(a);
  const float alpha = 1.f, beta = 0.f;
  switch (d) {
    case conv_direction::forward: {
      bdesc op(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
      op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, x)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, w)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, y)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, conv)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, &beta)
          .finalize("forward operation");
      return op;
    }
    case conv_direction::backward_data: {
      bdesc op(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR);
      op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX, x)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W, w)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY, y)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC, conv)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA, CUDNN_TYPE_FLOAT, &beta)
          .finalize("backward-data operation");
      return op;
    }
    case conv_direction::backward_filter: {
      bdesc op(CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR);
      op.set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X, x)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW, w)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY, y)
          .set_desc(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC, conv)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA, CUDNN_TYPE_FLOAT, &alpha)
          .set(CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA, CUDNN_TYPE_FLOAT, &beta)
          .finalize("backward-filter operation");
      return op;
    }
  }
  throw graph_refusal{"unknown direction"};
}

// The heuristics' engine configurations in their order (empty when the mode has none).
std::vector<bdesc> heuristic_configs(const bdesc& graph, cudnnBackendHeurMode_t mode) {
  bdesc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode)
      .finalize("engine heuristics");
  std::int64_t count = 0;
  check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count,
                                 nullptr),
        "heuristics result count");
  std::vector<bdesc> cfgs;
  cfgs.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) cfgs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  if (count == 0) return cfgs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (auto& c : cfgs) raw.push_back(c.get());
  std::int64_t got = 0;
  check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                 raw.data()),
        "heuristics results");
  cfgs.erase(cfgs.begin() + std::clamp<std::int64_t>(got, 0, count), cfgs.end());
  return cfgs;
}

struct engine_info {
  std::int64_t index = -1;
  std::vector<cudnnBackendNumericalNote_t> numerics;
  std::vector<cudnnBackendBehaviorNote_t> behaviour;
  bool has(cudnnBackendNumericalNote_t n) const { return std::find(numerics.begin(), numerics.end(), n) != numerics.end(); }
  bool has(cudnnBackendBehaviorNote_t n) const { return std::find(behaviour.begin(), behaviour.end(), n) != behaviour.end(); }
};
engine_info describe(const bdesc& cfg) {
  bdesc engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
  std::int64_t n = 0;
  check(cudnnBackendGetAttribute(cfg.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                 engine.addr()),
        "engine of a configuration");
  engine_info e;
  check(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &e.index),
        "engine index");
  e.numerics.resize(CUDNN_NUMERICAL_NOTE_TYPE_COUNT);
  check(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE,
                                 CUDNN_NUMERICAL_NOTE_TYPE_COUNT, &n, e.numerics.data()),
        "engine numerical notes");
  e.numerics.resize(static_cast<std::size_t>(std::clamp<std::int64_t>(n, 0, CUDNN_NUMERICAL_NOTE_TYPE_COUNT)));
  e.behaviour.resize(CUDNN_BEHAVIOR_NOTE_TYPE_COUNT);
  check(cudnnBackendGetAttribute(engine.get(), CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE,
                                 CUDNN_BEHAVIOR_NOTE_TYPE_COUNT, &n, e.behaviour.data()),
        "engine behaviour notes");
  e.behaviour.resize(static_cast<std::size_t>(std::clamp<std::int64_t>(n, 0, CUDNN_BEHAVIOR_NOTE_TYPE_COUNT)));
  return e;
}

// Why an engine's numerics do not fit the precision, or nullptr when they do. Strict fp32 is IEEE FMA
// arithmetic: tensor-core engines on f32 data compute in TF32. bf16 and tf32 accumulate in f32.
const char* numerics_refusal(const engine_info& e, const conv_args& a) {
  if (e.has(CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS)) return "down-converts its inputs";
  if (e.has(CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION)) return "reduces in reduced precision";
  if (!a.bf16 && a.math == math_mode::fp32 && e.has(CUDNN_NUMERICAL_NOTE_TENSOR_CORE)) return "TF32 tensor cores";
  if (e.has(CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION)) return "needs runtime compilation";
  return nullptr;
}

std::string notes_of(const engine_info& e) {
  static const char* names[] = {"tensor cores", "down-converts", "reduced-precision reduction", "FFT",
                                "nondeterministic", "Winograd", "Winograd 4x4", "Winograd 6x6", "Winograd 13x13",
                                "strict NaN"};
  std::string s = grcnn::detail::concat("engine ", e.index);
  for (std::size_t i = 0; i < e.numerics.size(); ++i) {
    const int n = static_cast<int>(e.numerics[i]);
    s += i ? ", " : " (";
    s += n >= 0 && n < static_cast<int>(std::size(names)) ? names[n] : "note";
    if (i + 1 == e.numerics.size()) s += ")";
  }
  return s;
}

}  // namespace

struct graph_plan::impl {
  bdesc config;  // kept with the plan, as cudnn-frontend does
  bdesc plan{CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR};
  explicit impl(bdesc&& cfg) : config(std::move(cfg)) {}
};
graph_plan::graph_plan(graph_plan&&) noexcept = default;
graph_plan& graph_plan::operator=(graph_plan&&) noexcept = default;
graph_plan::~graph_plan() = default;

bool graph_plan::run(const void* x, const void* w, const void* y, void* ws) const {
  void* ptrs[3] = {const_cast<void*>(x), const_cast<void*>(w), const_cast<void*>(y)};
  const std::int64_t uids[3] = {kUidX, kUidW, kUidY};
  try {
    bdesc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs, 3)
        .set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids, 3)
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &ws)
        .finalize("variant pack");
    const cudnnStatus_t s = cudnnBackendExecute(ctx().dnn, p_->plan.get(), pack.get());
    if (s == CUDNN_STATUS_SUCCESS) return true;
    // cuDNN 9 refines both classes (shared memory insufficient, misaligned pointer, ...).
    const int category = CUDNN_STATUS_CATEGORY(s);
    if (category == CUDNN_STATUS_NOT_SUPPORTED || category == CUDNN_STATUS_BAD_PARAM) {
      (void)cudaGetLastError();  // a refused launch must not be blamed on the next kernel
      return false;
    }
    throw backend_error(grcnn::detail::concat("cudnn: executing the graph plan of ", engine_, " failed: ",
                                              cudnnGetErrorString(s)));
  } catch (const graph_refusal& r) {
    throw backend_error(grcnn::detail::concat("cudnn: graph plan of ", engine_, ": ", r.what));
  }
}

std::vector<graph_plan> graph_plans(const conv_args& a, conv_direction d, std::size_t workspace_limit,
                                    std::size_t limit, std::string* why, std::int64_t only_engine) {
  std::vector<graph_plan> plans;
  std::string log;
  try {
    const bdesc op = operation(a, d);
    bdesc graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    cudnnHandle_t handle = ctx().dnn;
    graph.set_desc(CUDNN_ATTR_OPERATIONGRAPH_OPS, op)
        .set(CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, &handle)
        .finalize("operation graph");
    std::vector<std::int64_t> seen;
    for (const auto mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      std::vector<bdesc> cfgs;
      try {
        cfgs = heuristic_configs(graph, mode);
      } catch (const graph_refusal& r) {
        log += grcnn::detail::concat(mode == CUDNN_HEUR_MODE_A ? "heuristics A: " : "fallback list: ", r.what, "; ");
        continue;
      }
      for (bdesc& cfg : cfgs) {
        if (plans.size() >= limit) break;
        try {
          const engine_info e = describe(cfg);
          // The fallback list repeats A's engines: an engine with a plan already is not planned twice.
          if (std::find(seen.begin(), seen.end(), e.index) != seen.end()) continue;
          if (only_engine >= 0 && e.index != only_engine) continue;
          if (const char* no = numerics_refusal(e, a)) {
            log += grcnn::detail::concat("engine ", e.index, ": ", no, "; ");
            continue;
          }
          graph_plan p;
          p.p_ = std::make_unique<graph_plan::impl>(std::move(cfg));
          p.p_->plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, &handle)
              .set_desc(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, p.p_->config)
              .finalize("execution plan");
          std::int64_t ws = 0, n = 0;
          check(cudnnBackendGetAttribute(p.p_->plan.get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1,
                                         &n, &ws),
                "plan workspace size");
          if (ws < 0 || static_cast<std::size_t>(ws) > workspace_limit) {
            log += grcnn::detail::concat("engine ", e.index, ": workspace ", ws, " bytes; ");
            continue;
          }
          p.workspace_ = static_cast<std::size_t>(ws);
          p.index_ = e.index;
          p.engine_ = notes_of(e);
          plans.push_back(std::move(p));
          seen.push_back(e.index);
        } catch (const graph_refusal& r) {
          log += grcnn::detail::concat(r.what, "; ");
        }
      }
    }
  } catch (const graph_refusal& r) {
    log += r.what;
  }
  if (plans.empty() && why) *why = log.empty() ? "the heuristics returned no engine" : log;
  return plans;
}

}  // namespace grcnn::cuda::detail
