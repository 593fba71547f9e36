#pragma once
#include <string>

namespace grcnn {

enum class device_kind { cpu, cuda };

struct device {
  device_kind kind = device_kind::cpu;
  int index = 0;
  friend bool operator==(const device&, const device&) = default;
  std::string str() const { return kind == device_kind::cpu ? "cpu" : "cuda:" + std::to_string(index); }
};

inline constexpr device cpu_device{};
inline constexpr device cuda_device{device_kind::cuda, 0};

}  // namespace grcnn
