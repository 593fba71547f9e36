// A stand-in for libFuzzer's main, so the corpora replay with any compiler (CI builds with GCC):
//   fuzz_replay_<target> [-timeout=SECONDS] [other -flags ignored] FILE_OR_DIR...
// runs LLVMFuzzerTestOneInput once on every file given and on every regular file directly inside every
// folder given (sorted by name), each in a child process, so that one crashing input does not hide the
// others: every input that crashes, aborts (a finding), exits or runs past the timeout (default 120 s)
// is listed at the end, and the exit status is 1 if there was any. Like libFuzzer with
// -malloc_limit_mb=2048, a single allocation above 2048 MiB is a finding: through operator new in a
// plain build; under AddressSanitizer through max_allocation_size_mb (set below unless ASAN_OPTIONS says
// otherwise), which also covers malloc in the C libraries.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

#if defined(__SANITIZE_ADDRESS__)
#define GRCNN_REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRCNN_REPLAY_ASAN 1
#endif
#endif

namespace {
constexpr std::size_t malloc_limit_mb = 2048;
}

#ifdef GRCNN_REPLAY_ASAN
// Weak: a target may define its own (fuzz_assembly.cpp does); ASAN_OPTIONS overrides either, key by key.
extern "C" __attribute__((weak)) const char* __asan_default_options() {
  return "max_allocation_size_mb=2048:allocator_may_return_null=0:detect_leaks=1";
}
#else
// The malloc limit for C++ allocations in an uninstrumented build.
namespace {
void* limited_new(std::size_t n) {
  if (n > malloc_limit_mb << 20) {
    std::fprintf(stderr, "==grcnn-fuzz== FINDING: out-of-memory (malloc(%zu)): an allocation above the %zu MiB limit\n", n,
                 malloc_limit_mb);
    std::fflush(stderr);
    std::abort();
  }
  if (n == 0) n = 1;
  for (;;) {
    if (void* p = std::malloc(n)) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}
void* limited_new_aligned(std::size_t n, std::size_t align) {
  if (n > malloc_limit_mb << 20) return limited_new(n);
  if (n == 0) n = 1;
  for (;;) {
    void* p = nullptr;
    if (::posix_memalign(&p, std::max(align, sizeof(void*)), n) == 0) return p;
    std::new_handler h = std::get_new_handler();
    if (!h) throw std::bad_alloc();
    h();
  }
}
}  // namespace
void* operator new(std::size_t n) { return limited_new(n); }
void* operator new[](std::size_t n) { return limited_new(n); }
void* operator new(std::size_t n, std::align_val_t a) { return limited_new_aligned(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return limited_new_aligned(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return limited_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return limited_new(n);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
#endif

namespace {
// Runs one input in a child process; returns "" when it passed, else what happened.
std::string run_one(const std::filesystem::path& p, unsigned timeout_s) {
  std::fflush(stderr);
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("replay: fork");
    std::exit(2);
  }
  if (child == 0) {
    ::alarm(timeout_s);
    std::ifstream in(p, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // A copy of exactly the input's size, as libFuzzer passes it (reads past the end are caught).
    auto* copy = new std::uint8_t[bytes.size()];
    std::copy(bytes.begin(), bytes.end(), copy);
    LLVMFuzzerTestOneInput(copy, bytes.size());
    delete[] copy;
    std::exit(0);  // static destructors and the leak check run
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
  }
  grcnn_fuzz::scratch::sweep();  // the child's scratch folder, when it crashed
  if (WIFEXITED(status)) return WEXITSTATUS(status) == 0 ? "" : "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    if (WTERMSIG(status) == SIGALRM) return "timeout (" + std::to_string(timeout_s) + " s)";
    return std::string("signal ") + ::strsignal(WTERMSIG(status));
  }
  return "unknown status";
}
}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  unsigned timeout_s = 120;
  std::vector<std::filesystem::path> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.starts_with("-timeout=")) timeout_s = static_cast<unsigned>(std::stoul(arg.substr(9)));
    if (arg.starts_with("-")) continue;  // libFuzzer flags: ignored
    const std::filesystem::path p(arg);
    if (std::filesystem::is_directory(p)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      inputs.insert(inputs.end(), files.begin(), files.end());
    } else if (std::filesystem::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "replay: no such file or folder: %s\n", arg.c_str());
      return 2;
    }
  }
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: %s [-timeout=SECONDS] FILE_OR_DIR...  (no inputs found)\n", argv[0]);
    return 2;
  }
  std::vector<std::string> failed;
  for (const auto& p : inputs) {
    std::fprintf(stderr, "replay: %s\n", p.c_str());
    if (const auto what = run_one(p, timeout_s); !what.empty()) {
      std::fprintf(stderr, "replay: FAILED (%s): %s\n", what.c_str(), p.c_str());
      failed.push_back(p.string() + " (" + what + ")");
    }
  }
  std::fprintf(stderr, "replay: %zu inputs ran, %zu failed\n", inputs.size(), failed.size());
  for (const auto& f : failed) std::fprintf(stderr, "replay:   failed: %s\n", f.c_str());
  return failed.empty() ? 0 : 1;
}
