#pragma once
// Progress of an epoch: a redrawn bar with ETA on a terminal, plain lines every few seconds otherwise
// (logs, CI), so both stay readable.
#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace grcnn::train {

class progress {
 public:
  progress(std::string title, std::size_t total, double line_interval_s = 10.0, std::FILE* out = stdout)
      : title_(std::move(title)), total_(total), interval_(line_interval_s), out_(out),
        terminal_(isatty(fileno(out)) != 0), start_(clock::now()), last_(start_) {}

  // Reports that `done` of `total` units are finished, with a short status text.
  void update(std::size_t done, const std::string& status) {
    const auto now = clock::now();
    const double elapsed = seconds(now - start_);
    const bool finished = done >= total_;
    if (!finished && seconds(now - last_) < (terminal_ ? 0.2 : interval_)) return;
    last_ = now;
    const double eta = done > 0 ? elapsed * static_cast<double>(total_ - std::min(done, total_)) / static_cast<double>(done) : 0.0;
    if (terminal_) {
      constexpr int width = 28;
      const int filled = total_ ? static_cast<int>(width * std::min(done, total_) / total_) : width;
      std::fprintf(out_, "\r%s [%s%s] %zu/%zu %s ETA %s ", title_.c_str(), std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), '.').c_str(), done, total_, status.c_str(),
                   clock_text(eta).c_str());
      if (finished) std::fputc('\n', out_);
    } else {
      std::fprintf(out_, "%s %zu/%zu %s elapsed %s ETA %s\n", title_.c_str(), done, total_, status.c_str(),
                   clock_text(elapsed).c_str(), clock_text(eta).c_str());
    }
    std::fflush(out_);
  }

  static std::string clock_text(double s) {
    const long t = static_cast<long>(s + 0.5);
    char buf[32];
    if (t >= 3600)
      std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
      std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
    return buf;
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }
  std::string title_;
  std::size_t total_;
  double interval_;
  std::FILE* out_;
  bool terminal_;
  clock::time_point start_, last_;
};

}  // namespace grcnn::train
