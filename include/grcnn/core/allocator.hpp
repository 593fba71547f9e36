#pragma once
// A caching host allocator. Freed blocks go to per-size free lists and are handed out again for
// the same rounded size, so a training step with steady shapes stops calling the system allocator
// after warm-up. The counters make that measurable (tests and benchmarks read them).
#include <cstddef>
#include <cstdlib>
#include <atomic>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace grcnn {

struct allocator_stats {
  std::size_t system_allocations = 0;  // calls that reached the system allocator
  std::size_t cache_hits = 0;          // allocations served from the free lists
  std::size_t bytes_in_use = 0;
  std::size_t bytes_cached = 0;
  std::size_t peak_bytes_in_use = 0;
};

class host_allocator {
 public:
  static constexpr std::size_t alignment = 64;

  static host_allocator& instance() {
    static host_allocator a;
    return a;
  }

  // Rounds to 256 bytes below 1 MiB and to 64 KiB above, so slightly varying sizes share blocks.
  static std::size_t round_size(std::size_t bytes) {
    const std::size_t q = bytes < (1u << 20) ? 256 : (64u << 10);
    return bytes == 0 ? q : (bytes + q - 1) / q * q;
  }

  void* allocate(std::size_t rounded) {
    void* p = nullptr;
    {
      std::lock_guard lock(mu_);
      auto it = free_.find(rounded);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        stats_.cache_hits++;
        stats_.bytes_cached -= rounded;
      }
      if (!p) stats_.system_allocations++;
      stats_.bytes_in_use += rounded;
      if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    }
    if (!p) {
      p = std::aligned_alloc(alignment, rounded);
      if (!p) {
        std::lock_guard lock(mu_);
        stats_.bytes_in_use -= rounded;
        throw std::bad_alloc();
      }
    }
    if (poison_) std::memset(p, 0xff, rounded);  // 0xff.. is a NaN in f32, f64 and bf16
    return p;
  }

  void deallocate(void* p, std::size_t rounded) {
    std::lock_guard lock(mu_);
    free_[rounded].push_back(p);
    stats_.bytes_in_use -= rounded;
    stats_.bytes_cached += rounded;
  }

  void release_cached() {
    std::lock_guard lock(mu_);
    for (auto& [sz, list] : free_)
      for (void* p : list) std::free(p);
    free_.clear();
    stats_.bytes_cached = 0;
  }

  allocator_stats stats() const {
    std::lock_guard lock(mu_);
    return stats_;
  }

  // Starts a new peak measurement from what is in use now (a tool measures one pass's working set).
  void reset_peak() {
    std::lock_guard lock(mu_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }

  // Fill every new block with NaN bytes: tests use it to catch outputs a kernel never wrote.
  void set_poison(bool on) { poison_ = on; }
  bool poison() const { return poison_; }

  ~host_allocator() { release_cached(); }

 private:
  host_allocator() = default;
  mutable std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  allocator_stats stats_;
  std::atomic<bool> poison_{false};
};

// RAII: poison new allocations for the lifetime of the guard.
struct poison_allocations {
  bool previous;
  poison_allocations() : previous(host_allocator::instance().poison()) { host_allocator::instance().set_poison(true); }
  ~poison_allocations() { host_allocator::instance().set_poison(previous); }
};

}  // namespace grcnn
