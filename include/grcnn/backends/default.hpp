#pragma once
// The Auto choice, defined: the best CPU backend this build has, oneDNN (backends::default_backend and
// backends::cpu are declared in backend.hpp so that op and network templates can default to them without
// including a backend). Include this header where ops run on the default backend.
#include "grcnn/backends/onednn/onednn.hpp"
#include "grcnn/backends/reference/reference.hpp"
