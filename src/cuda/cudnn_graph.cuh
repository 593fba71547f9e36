// One convolution direction through cuDNN's graph (backend) API: the engines behind it are those
// PyTorch reaches (tensor-core implicit GEMMs on channels-last bf16 among them), many more than the
// legacy cudnnConvolution* API's eight algorithms per direction. This file knows descriptors, engines
// and numerical notes; which plan a convolution runs (graph or legacy, by timing) is conv.cu's choice.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.cuh"

namespace grcnn::cuda::detail {

enum class conv_direction { forward, backward_data, backward_filter };
const char* name_of(conv_direction d);

// A finalized execution plan of one convolution direction. Operands by role: x (dx for backward data),
// w (dw for backward filter), y (dy for the backward directions), as in the forward problem.
class graph_plan {
 public:
  graph_plan(graph_plan&&) noexcept;
  graph_plan& operator=(graph_plan&&) noexcept;
  ~graph_plan();
  std::size_t workspace() const { return workspace_; }
  const std::string& engine() const { return engine_; }  // "engine N" plus its numerical notes (logs)
  std::int64_t engine_index() const { return index_; }   // cuDNN's global engine index
  // Runs on the handle's stream; returns false when cuDNN refuses the launch (an engine that finalized
  // but cannot run these pointers), throws on any other failure.
  bool run(const void* x, const void* w, const void* y, void* ws) const;

 private:
  friend std::vector<graph_plan> graph_plans(const conv_args&, conv_direction, std::size_t, std::size_t, std::string*,
                                             std::int64_t);
  graph_plan() = default;
  struct impl;
  std::unique_ptr<impl> p_;
  std::size_t workspace_ = 0;
  std::int64_t index_ = -1;
  std::string engine_;
};

// The execution plans cuDNN's heuristics (mode A, then the fallback list) offer for the problem in the
// given direction, at most `limit`, in the heuristics' order, keeping only engines whose numerics the
// precision allows (fp32: no tensor cores, no down-converted inputs; tf32 and bf16: f32 accumulation,
// no reduced-precision reductions), that need no runtime compilation and fit `workspace_limit`.
// Empty when none qualifies; then *why (if given) says what each stage answered. With `only_engine`
// set (a global engine index), only that engine's configuration is planned: a choice searched for one
// batch size is rebuilt for another without timing anything.
std::vector<graph_plan> graph_plans(const conv_args& a, conv_direction d, std::size_t workspace_limit,
                                    std::size_t limit, std::string* why, std::int64_t only_engine = -1);

// Pointers every plan promises cuDNN (CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT): the pool's blocks are 256-byte
// aligned, a caller's own pointers may not be (conv.cu then runs the legacy API).
constexpr std::uintptr_t kGraphAlignment = 16;
inline bool graph_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kGraphAlignment == 0; }

}  // namespace grcnn::cuda::detail
