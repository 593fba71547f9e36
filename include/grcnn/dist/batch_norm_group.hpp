#pragma once
// The synchronised batch norm's group (ops/batch_norm_group.hpp) over a communicator: every rank of the
// communicator normalises with the statistics of all of them (grcnn-train --sync-bn). Its collectives
// go over the communicator's side channel: every rank issues them in the same order (the same network
// runs everywhere), but gradient buckets may start at other points between them on different ranks (a
// parameter one rank did not use), so the two must not share one matching order.
#include <algorithm>
#include <span>

#include "grcnn/dist/communicator.hpp"
#include "grcnn/ops/batch_norm_group.hpp"

namespace grcnn::dist {

class communicator_batch_norm_group final : public ops::batch_norm_group {
 public:
  explicit communicator_batch_norm_group(communicator& c) : c_(c.side_channel()) {
    GRCNN_CHECK(c.accepts(cpu_device), error, "sync batch norm: the ", c.engine(),
                " communicator cannot reduce host statistics (no host staging for it yet)");
  }
  int rank() const override { return c_.rank(); }
  int world_size() const override { return c_.world_size(); }
  void sum(std::span<double> values) override {
    if (!values.empty()) c_.all_reduce(values.data(), values.size(), dtype::f64, reduce_op::sum);
  }
  // As a sum: each rank fills its own row of zeros (x + 0 is exact, so every row arrives intact).
  void all_gather(std::span<const double> mine, std::span<double> all) override {
    const auto n = mine.size(), me = static_cast<std::size_t>(c_.rank());
    GRCNN_CHECK(all.size() == n * static_cast<std::size_t>(c_.world_size()), error, "all_gather: ", all.size(),
                " slots for ", n, " values from each of ", c_.world_size(), " ranks");
    std::fill(all.begin(), all.end(), 0.0);
    std::copy(mine.begin(), mine.end(), all.begin() + static_cast<std::ptrdiff_t>(me * n));
    sum(all);
  }

 private:
  communicator& c_;
};

}  // namespace grcnn::dist
