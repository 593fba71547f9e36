#pragma once
// Umbrella header for the op set.
#include "grcnn/ops/batch_norm.hpp"
#include "grcnn/ops/cast.hpp"
#include "grcnn/ops/conv2d.hpp"
#include "grcnn/ops/elementwise.hpp"
#include "grcnn/ops/linear.hpp"
#include "grcnn/ops/losses.hpp"
#include "grcnn/ops/pooling.hpp"
#include "grcnn/ops/softmax.hpp"
#include "grcnn/ops/sk_select.hpp"
#include "grcnn/ops/vone.hpp"
