#pragma once
// The top of every grcnn tool: whatever escapes the tool's body (grcnn::error, a library's own exception
// such as dnnl::error, std::bad_alloc, a filesystem error, anything else) is caught, printed with the
// tool's name and what it was doing (which file), and turned into exit code 1. No tool aborts.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grcnn/core/error.hpp>
#include <grcnn/data/limits.hpp>

namespace grcnn::tools {

// What the tool is doing now ("reading weights 'W.safetensors'"), for messages of exceptions that do not
// name their input themselves (std::bad_alloc, dnnl::error).
inline std::string& current_activity() {
  static std::string what;
  return what;
}

// Sets the activity for a scope. Left in place when the scope ends by an exception: the handler at the
// top runs after unwinding, and must still see what failed.
class activity {
 public:
  explicit activity(std::string what)
      : previous_(std::exchange(current_activity(), std::move(what))), exceptions_(std::uncaught_exceptions()) {}
  activity(const activity&) = delete;
  activity& operator=(const activity&) = delete;
  ~activity() {
    if (std::uncaught_exceptions() == exceptions_) current_activity() = std::move(previous_);
  }

 private:
  std::string previous_;
  int exceptions_;
};

// "rank 1 of 4: " in every failure message of a data-parallel run (set_rank_label), empty otherwise.
inline std::string& rank_label() {
  static std::string label;
  return label;
}
inline void set_rank_label(int rank, int world) { rank_label() = "rank " + std::to_string(rank) + " of " + std::to_string(world) + ": "; }

inline void report_failure(const char* tool, const std::string& message) {
  const std::string& doing = current_activity();
  std::fprintf(stderr, "%s: %s%s%s%s\n", tool, rank_label().c_str(), doing.empty() ? "" : doing.c_str(), doing.empty() ? "" : ": ",
               message.c_str());
}

// Runs body() (which returns the exit code) and maps every exception to exit code 1 with a message.
template <class Body>
int guarded_main(const char* tool, Body&& body) noexcept {
  try {
    return body();
  } catch (const grcnn::error& e) {
    report_failure(tool, e.what());
  } catch (const std::bad_alloc&) {
    report_failure(tool, "out of memory (an allocation failed; smaller inputs, batches or limits help)");
  } catch (const std::exception& e) {  // dnnl::error, std::filesystem::filesystem_error, std::out_of_range, ...
    report_failure(tool, e.what());
  } catch (...) {
    report_failure(tool, "unknown exception");
  }
  return 1;
}

// --threads: more compute threads than cores only slows oneDNN and OpenMP down (128 threads made one step
// 60x slower on 2 cores, and SIGTERM took 73 s), so a request above the core count is capped with a warning.
inline int capped_threads(const char* tool, int requested) {
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0 || requested <= static_cast<int>(cores)) return requested;
  std::fprintf(stderr, "%s: warning: --threads %d is above this machine's %u cores; using %u\n", tool, requested, cores, cores);
  return static_cast<int>(cores);
}

// A comma-separated flag value (--taps, --region, --layers) as its items; empty items are dropped, so
// "a,,b," and "a,b" are the same list.
inline std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// The data layer's size limits (data/limits.hpp) as flags; the tool passes the parsed values to
// data::set_default_image_limits before it reads any data. `arrays`: the tool reads datasets in batches
// (grcnn-train), so the batch and array-file limits apply too.
inline void add_limit_options(CLI::App& app, data::image_limits& lim, bool arrays) {
  app.add_option("--max-image-pixels", lim.max_pixels, "refuse images (decoded or made by a transform) with more pixels")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-image-side", lim.max_side, "refuse images with a longer side")->check(CLI::PositiveNumber)->capture_default_str();
  if (!arrays) return;
  app.add_option("--max-batch-bytes", lim.max_batch_bytes, "refuse loader batches (all views, f32) larger than this")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-array-bytes", lim.max_array_bytes, "refuse IDX/CIFAR files that would hold more bytes in memory")
      ->check(CLI::PositiveNumber)->capture_default_str();
}

}  // namespace grcnn::tools
