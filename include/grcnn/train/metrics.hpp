#pragma once
// Classification metrics and the metrics log: top-k hits of a batch, running means, and one JSON
// object per line appended to a file (a resumed run keeps appending to the same log).
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "grcnn/core/tensor.hpp"

namespace grcnn::train {

// How many rows of logits [N, K] have their label among the k largest entries (ties broken by class
// index, as a stable sort; non-finite logits never count as hits).
inline std::size_t topk_hits(const tensor& logits, const std::vector<std::int64_t>& labels, int k) {
  GRCNN_CHECK(logits.rank() == 2 && static_cast<std::size_t>(logits.dim(0)) == labels.size(), shape_error,
              "topk_hits: logits ", logits.describe(), " for ", labels.size(), " labels");
  const auto v = logits.values<float>();
  const auto K = static_cast<std::size_t>(logits.dim(1));
  std::size_t hits = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const float* row = v.data() + i * K;
    const float target = row[labels[i]];
    if (!std::isfinite(target)) continue;  // a diverged model scores nothing (NaN compares false)
    std::size_t above = 0;
    for (std::size_t j = 0; j < K; ++j)
      above += !(row[j] < target) && (row[j] != target || j < static_cast<std::size_t>(labels[i]));  // NaN rows count above
    hits += above < static_cast<std::size_t>(k);
  }
  return hits;
}

struct running_mean {
  double sum = 0, weight = 0;
  void add(double value, double w = 1.0) {
    sum += value * w;
    weight += w;
  }
  double mean() const { return weight > 0 ? sum / weight : 0.0; }
  void reset() { *this = {}; }
};

class metrics_log {
 public:
  // Appends (O_APPEND: a resumed run continues the log; links and devices are written through).
  explicit metrics_log(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code ec;
    GRCNN_CHECK(!std::filesystem::is_directory(path_, ec), io_error, "metrics log: '", path_.string(), "' is a directory");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    GRCNN_CHECK(fd_ >= 0, io_error, "metrics log: cannot open '", path_.string(), "' for appending: ", std::strerror(errno));
  }
  metrics_log(const metrics_log&) = delete;
  metrics_log& operator=(const metrics_log&) = delete;
  ~metrics_log() {
    if (fd_ >= 0) ::close(fd_);
  }
  // One record per line, written whole and checked (a full disk is an error with errno's text).
  void write(const nlohmann::json& record) {
    const std::string line = record.dump() + "\n";
    const char* p = line.data();
    std::size_t n = line.size();
    while (n > 0) {
      const ::ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      GRCNN_CHECK(w > 0, io_error, "metrics log: writing '", path_.string(), "' failed: ", std::strerror(w < 0 ? errno : EIO));
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace grcnn::train
