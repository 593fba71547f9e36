#pragma once
// Shared by the fuzz targets: the readers under test take paths, so each input is written to a file in a
// per-process scratch folder (tmpfs: /dev/shm when writable, else $TMPDIR), removed at exit; and the
// one way a target reports a finding that is not a crash (a broken invariant, a wrong exception type):
// print it and abort, which libFuzzer and the replay main both record as a crash.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>
#include <typeinfo>

#include <cerrno>
#include <csignal>

#include <fcntl.h>
#include <unistd.h>

namespace grcnn_fuzz {

// The scratch folder of this process, created on first use.
class scratch {
 public:
  static scratch& get() {
    static scratch s;
    return s;
  }
  const std::filesystem::path& dir() const { return dir_; }

  // Writes data[0, size) to dir()/name (replacing it) and returns the path.
  std::filesystem::path write(const std::string& name, const std::uint8_t* data, std::size_t size) const {
    const auto path = dir_ / name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) fail_io("open", path);
    std::size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0) fail_io("write", path);
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return path;
  }
  // A symbolic link dir()/name -> dir()/target (for readers that open fixed file names in a folder).
  void link(const std::string& name, const std::string& target) const {
    std::error_code ec;
    std::filesystem::remove(dir_ / name, ec);
    std::filesystem::create_symlink(target, dir_ / name, ec);
    if (ec) fail_io("symlink", dir_ / name);
  }

  ~scratch() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

 private:
  scratch() {
    const std::string base = base_dir();
    sweep();
    std::string templ = base + "/grcnn-fuzz-" + std::to_string(::getpid()) + "-XXXXXX";
    if (!::mkdtemp(templ.data())) fail_io("mkdtemp", templ);
    dir_ = templ;
  }

 public:
  static std::string base_dir() {
    if (const char* env = std::getenv("GRCNN_FUZZ_TMPDIR"); env && *env) return env;
    if (::access("/dev/shm", W_OK) == 0) return "/dev/shm";
    return std::filesystem::temp_directory_path().string();
  }
  // Removes the scratch folders of processes that are gone (a crash skips the destructor).
  static void sweep() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(base_dir(), ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("grcnn-fuzz-", 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + 11, nullptr, 10);
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove_all(e.path(), ec);
    }
  }

 private:
  [[noreturn]] static void fail_io(const char* what, const std::filesystem::path& p) {
    // The harness itself failed (a full tmpfs, ...): not a finding in the code under test, so exit
    // without a crash report.
    std::fprintf(stderr, "grcnn-fuzz: %s %s failed\n", what, p.c_str());
    std::_Exit(2);
  }
  std::filesystem::path dir_;
};

inline std::filesystem::path write_input(const std::string& name, const std::uint8_t* data, std::size_t size) {
  return scratch::get().write(name, data, size);
}

// A finding that is no crash by itself: print it and abort (libFuzzer saves the input as crash-*).
[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "\n==grcnn-fuzz== FINDING: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// GRCNN_FUZZ_VERBOSE=1: print every clean rejection's message (to see what a corpus exercises).
inline void rejected(const std::exception& e) {
  static const bool verbose = [] {
    const char* v = std::getenv("GRCNN_FUZZ_VERBOSE");
    return v && *v && std::string(v) != "0";
  }();
  if (verbose) std::fprintf(stderr, "  rejected (%s): %s\n", typeid(e).name(), e.what());
}
inline void accepted(const char* what) {
  if (const char* v = std::getenv("GRCNN_FUZZ_VERBOSE"); v && *v && std::string(v) != "0")
    std::fprintf(stderr, "  accepted: %s\n", what);
}

// GRCNN_FUZZ_LENIENT=1: every grcnn::error counts as a clean rejection, not only the types a reader
// documents, so that fuzzing goes on past a known wrong-exception-type finding to deeper ones.
inline bool lenient() {
  static const bool on = [] {
    const char* v = std::getenv("GRCNN_FUZZ_LENIENT");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

// A grcnn::error of a type that the reader does not document for malformed input (e.g. shape_error
// where "every malformed input raises io_error"): a finding unless lenient().
inline void undocumented_error(const std::exception& e, const char* stage) {
  rejected(e);
  if (lenient()) return;
  finding(std::string(stage) + ": undocumented exception type " + typeid(e).name() + ": " + e.what());
}

#define GRCNN_FUZZ_ASSERT(cond, ...)                                                      \
  do {                                                                                    \
    if (!(cond)) ::grcnn_fuzz::finding(std::string("invariant failed: " #cond " -- ") +    \
                                       ::grcnn::detail::concat(__VA_ARGS__));             \
  } while (0)

}  // namespace grcnn_fuzz
