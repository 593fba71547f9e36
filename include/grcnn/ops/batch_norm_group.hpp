#pragma once
// The replicas whose batches one synchronised batch norm normalises as a single batch (PyTorch's
// SyncBatchNorm process group), and the merge of their per-channel statistics. The group is an interface
// so that ops know no engine: dist/ implements it over a communicator. The merge is PyTorch's
// batch_norm_gather_stats_with_counts: every rank's (mean, biased variance, count) gathered in rank
// order and combined pairwise (Chan et al.'s parallel variance), ranks with no values skipped; the
// running variance takes the unbiased correction with the total count. PyTorch gathers invstd and
// recovers the variance from it; we gather the variance itself (the same merge, without cancelling
// against eps), in double whatever the activation dtype.
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "grcnn/core/error.hpp"

namespace grcnn::ops {

class batch_norm_group {
 public:
  virtual ~batch_norm_group() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // Collectives, called by every rank at the same point of forward and backward (the same network runs
  // everywhere), with identical results on every rank.
  // In place: every element replaced by its sum over the group.
  virtual void sum(std::span<double> values) = 0;
  // all[r * mine.size() + i] = rank r's mine[i], for every rank r (all.size() = world_size * mine.size()).
  virtual void all_gather(std::span<const double> mine, std::span<double> all) = 0;
};

// The whole group's statistics of one batch norm call.
struct merged_batch_statistics {
  std::vector<double> mean, var;  // var: biased (divided by the total count)
  double count = 0;               // values per channel over every rank
};

// This rank's per-channel mean and biased variance over `count` values per channel, merged with every
// other rank's. Collective: every rank calls it with the same channel count.
inline merged_batch_statistics merge_batch_statistics(batch_norm_group& g, std::span<const double> mean,
                                                      std::span<const double> var, std::int64_t count) {
  const auto C = mean.size(), W = static_cast<std::size_t>(g.world_size()), me = static_cast<std::size_t>(g.rank());
  GRCNN_CHECK(var.size() == C && count >= 0 && me < W, error, "sync batch norm: ", C, " means, ", var.size(),
              " variances, count ", count, ", rank ", me, " of ", W);
  const std::size_t row = 2 * C + 1;
  std::vector<double> mine(row), all(W * row);
  for (std::size_t c = 0; c < C; ++c) mine[c] = mean[c], mine[C + c] = var[c];
  mine[2 * C] = static_cast<double>(count);
  g.all_gather(mine, all);
  merged_batch_statistics m;
  m.mean.assign(C, 0.0);
  m.var.assign(C, 0.0);
  std::vector<double> m2(C, 0.0);  // sum of squared deviations so far
  for (std::size_t r = 0; r < W; ++r) {
    const double* v = all.data() + r * row;
    const double n = v[2 * C];
    if (n <= 0) continue;  // an empty batch on that rank
    const double factor = 1.0 / (m.count + n);
    for (std::size_t c = 0; c < C; ++c) {
      const double d = m.mean[c] - v[c];
      m2[c] += v[C + c] * n + d * d * m.count * n * factor;
      m.mean[c] = m.count * factor * m.mean[c] + n * factor * v[c];
    }
    m.count += n;
  }
  GRCNN_CHECK(m.count > 1, shape_error, "sync batch norm: training needs more than one value per channel over all ",
              W, " ranks, got ", m.count);
  for (std::size_t c = 0; c < C; ++c) m.var[c] = m2[c] / m.count;
  return m;
}

}  // namespace grcnn::ops
