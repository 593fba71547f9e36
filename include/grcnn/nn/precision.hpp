#pragma once
// Mixed precision as a network policy. A network keeps f32 master weights and f32 batch-norm statistics
// whatever it computes in; with bf16_mixed its activations, convolutions and linear layers run in bf16
// (each weighted layer casts its master per call through ops::cast, whose backward returns the gradient
// to f32), and the logits come back as f32 so losses and their reductions stay in f32. It is a run-time
// setting, so fp32 and bf16 share one instantiation of every layer per backend; TF32 is a different axis,
// a backend's math mode (backends::cuda_tf32).
#include <string>
#include <string_view>

#include "grcnn/core/dtype.hpp"
#include "grcnn/core/error.hpp"

namespace grcnn::nn {

enum class precision { fp32, bf16_mixed };

// The dtype activations have under `p`.
constexpr dtype activation_dtype(precision p) { return p == precision::bf16_mixed ? dtype::bf16 : dtype::f32; }

constexpr std::string_view name_of(precision p) { return p == precision::bf16_mixed ? "bf16" : "fp32"; }

// "fp32" or "bf16" (also "bf16_mixed"), as the command-line tools spell them.
inline precision parse_precision(std::string_view s) {
  if (s == "fp32" || s == "f32") return precision::fp32;
  if (s == "bf16" || s == "bf16_mixed") return precision::bf16_mixed;
  throw error(::grcnn::detail::concat("unknown precision '", s, "' (expected fp32 or bf16)"));
}

// Whether a layer holding a weight of dtype `w` runs mixed for an input of dtype `x`: an f32 master
// with 16-bit activations. Any other mismatch is left to the op's dtype error.
constexpr bool runs_mixed(dtype w, dtype x) { return w == dtype::f32 && (x == dtype::bf16 || x == dtype::f16); }

}  // namespace grcnn::nn
