#pragma once
// The Auto choice: the best backend this build has. CPU builds resolve to oneDNN.
#include "grcnn/backends/onednn/onednn.hpp"
#include "grcnn/backends/reference/reference.hpp"

namespace grcnn::backends {
using cpu = onednn;
using default_backend = cpu;
}  // namespace grcnn::backends
