#pragma once
// Which samples each rank sees in an epoch: torch.utils.data.DistributedSampler, index for index.
// The permutation is torch.randperm(N, generator=torch.Generator().manual_seed(seed + epoch)) on the CPU:
// torch's CPU generator is MT19937 seeded with the seed's low 32 bits (std::mt19937 gives the same
// stream), and randperm swaps r[i] with r[i + random() % (N - i)] (for N >= 2^32/20, an inside-out
// Fisher-Yates over 64-bit draws, as torch >= 2.0). Without drop_last the order is padded to a multiple
// of the world size by repeating its start; rank r takes every world-th index from r. Checked against
// torch's own sampler (tests/torch/make_sampler_fixtures.py).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "grcnn/core/error.hpp"

namespace grcnn::dist {

struct sampler_options {
  std::size_t world = 1;    // num_replicas
  std::size_t rank = 0;
  std::uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = false;
};

// torch.randperm(n, generator=torch.Generator().manual_seed(seed)) (CPU, int64).
inline std::vector<std::size_t> torch_randperm(std::size_t n, std::uint64_t seed) {
  std::mt19937 engine(static_cast<std::uint32_t>(seed));  // at::mt19937 keeps the low 32 bits
  std::vector<std::size_t> r(n);
  if (n < std::numeric_limits<std::uint32_t>::max() / 20) {
    std::iota(r.begin(), r.end(), std::size_t{0});
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const std::size_t z = static_cast<std::size_t>(engine()) % (n - i);
      std::swap(r[i], r[i + z]);
    }
    return r;
  }
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint64_t hi = engine(), lo = engine();
    const std::size_t z = static_cast<std::size_t>(((hi << 32) | lo) % (i + 1));
    r[i] = r[z];
    r[z] = i;
  }
  return r;
}

// Samples per rank (DistributedSampler.num_samples).
inline std::size_t distributed_samples(std::size_t n, const sampler_options& o) {
  GRCNN_CHECK(o.world >= 1 && o.rank < o.world, error, "distributed sampler: rank ", o.rank, " of a world of ", o.world);
  if (o.drop_last && n % o.world != 0) return n / o.world;  // ceil((n - world) / world)
  return (n + o.world - 1) / o.world;
}

// This rank's indices for `epoch` (DistributedSampler.set_epoch(epoch); list(iter(sampler))).
inline std::vector<std::size_t> distributed_indices(std::size_t n, const sampler_options& o, std::uint64_t epoch) {
  const std::size_t per_rank = distributed_samples(n, o), total = per_rank * o.world;
  std::vector<std::size_t> order;
  if (o.shuffle) {
    order = torch_randperm(n, o.seed + epoch);
  } else {
    order.resize(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
  }
  if (!o.drop_last) {
    // indices += indices[:pad], or the whole list repeated when pad > n (n < world)
    for (std::size_t i = 0; order.size() < total; ++i) order.push_back(order[i % n]);
  } else {
    order.resize(total);
  }
  std::vector<std::size_t> mine;
  mine.reserve(per_rank);
  for (std::size_t i = o.rank; i < total; i += o.world) mine.push_back(order[i]);
  return mine;
}

// An evaluation shard: every world-th sample from the rank, unpadded, so that metrics summed over the
// ranks count each sample once (torch's padded sampler would count the first few twice).
inline std::vector<std::size_t> evaluation_indices(std::size_t n, std::size_t world, std::size_t rank) {
  GRCNN_CHECK(world >= 1 && rank < world, error, "evaluation shard: rank ", rank, " of a world of ", world);
  std::vector<std::size_t> mine;
  for (std::size_t i = rank; i < n; i += world) mine.push_back(i);
  return mine;
}

}  // namespace grcnn::dist
