#pragma once
// Opens and walks a netCDF file in a child process before this process trusts libnetcdf with it.
// libnetcdf and libhdf5 (Debian 12: 4.9.0, 1.10.8) crash on some malformed files (fuzz_assembly found
// segfaults and overlapping memcpys in libhdf5's metadata parsing of netCDF-4 files; the classic-format
// ones are also refused earlier by netcdf_classic_header.hpp). A crash cannot be caught, so the child does
// what netcdf_file will do -- open, every variable's dimensions and attributes, every variable's values as
// the readers convert them -- and a child that dies by a signal, fails a sanitizer check or runs past the
// timeout turns into an io_error naming the file. libnetcdf's own errors are left to the parent, which
// reports them with the variable named. The cost is reading the file twice (the second time from the
// page cache). The child runs only libnetcdf and leaves with _exit (no atexit handlers, no stdio
// flushes of the parent's buffers); glibc's malloc stays usable in a forked child of a threaded
// process, and grcnn calls libnetcdf from one thread, so no lock of its is held at the fork.
#include <fcntl.h>
#include <netcdf.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grcnn/core/error.hpp"

namespace grcnn::io {

struct netcdf_open_options {
  bool isolate = true;  // walk the file in a child process first (see above)
  int timeout_s = 300;  // the child's limit; a hostile file may make libhdf5 loop
};

namespace netcdf_probe_detail {

// Reads everything the parent may read; returns nc_open's code whatever libnetcdf answers later. `cap`:
// the most values a variable or attribute may declare (netcdf_file::variable's limit), beyond which it
// is skipped.
inline int walk(const char* path, std::uint64_t cap) {
  int id = -1;
  if (const int rc = nc_open(path, NC_NOWRITE, &id); rc != NC_NOERR) return rc;
  auto attributes = [&](int v, int natts) {
    for (int a = 0; a < natts; ++a) {
      char name[NC_MAX_NAME + 1];
      nc_type type;
      std::size_t len = 0;
      if (nc_inq_attname(id, v, a, name) != NC_NOERR || nc_inq_att(id, v, name, &type, &len) != NC_NOERR) continue;
      if (len == 0 || len > cap) continue;
      if (type == NC_STRING) {
        std::vector<char*> s(len, nullptr);
        if (nc_get_att_string(id, v, name, s.data()) == NC_NOERR) nc_free_string(len, s.data());
      } else if (type == NC_CHAR) {
        std::vector<char> s(len);
        nc_get_att_text(id, v, name, s.data());
      } else if (type >= NC_BYTE && type <= NC_UINT64) {
        std::vector<double> d(len);
        nc_get_att_double(id, v, name, d.data());
      }
    }
  };
  int nvars = 0, ngatts = 0;
  nc_inq_nvars(id, &nvars);
  if (nc_inq_natts(id, &ngatts) == NC_NOERR) attributes(NC_GLOBAL, ngatts);
  for (int v = 0; v < nvars; ++v) {
    char name[NC_MAX_NAME + 1];
    nc_type type;
    int ndims = 0, natts = 0;
    if (nc_inq_var(id, v, name, &type, &ndims, nullptr, &natts) != NC_NOERR || ndims < 0 || ndims > NC_MAX_VAR_DIMS)
      continue;
    std::vector<int> dimids(static_cast<std::size_t>(std::max(ndims, 1)));
    if (nc_inq_vardimid(id, v, dimids.data()) != NC_NOERR) continue;
    std::uint64_t count = 1;
    bool fits = true;
    for (int d = 0; d < ndims; ++d) {
      std::size_t len = 0;
      char dn[NC_MAX_NAME + 1];
      if (nc_inq_dim(id, dimids[static_cast<std::size_t>(d)], dn, &len) != NC_NOERR ||
          __builtin_mul_overflow(count, static_cast<std::uint64_t>(len), &count))
        fits = false;
    }
    attributes(v, natts);
    if (!fits || count == 0 || count > cap) continue;
    const auto n = static_cast<std::size_t>(count);
    if (type == NC_STRING) {
      std::vector<char*> s(n, nullptr);
      if (nc_get_var_string(id, v, s.data()) == NC_NOERR) nc_free_string(n, s.data());
    } else if (type == NC_CHAR) {
      std::vector<char> s(n);
      nc_get_var_text(id, v, s.data());
    } else if (type >= NC_BYTE && type <= NC_UINT64) {
      {
        std::vector<double> d(n);
        nc_get_var_double(id, v, d.data());
      }
      if (type != NC_FLOAT && type != NC_DOUBLE) {  // one copy at a time
        std::vector<long long> i(n);
        nc_get_var_longlong(id, v, i.data());
      }
    }
  }
  nc_close(id);
  return NC_NOERR;
}

}  // namespace netcdf_probe_detail

// Throws io_error when walking `path` in a child process crashes or times out; otherwise returns the
// child's nc_open code. A file libnetcdf cannot open is never opened by the parent: libhdf5 can fail
// such a file after freeing a pointer it never allocated, silently (glibc does not always notice), and
// the corrupt heap brought a test process down at exit, far from the cause. std::nullopt where nothing
// was probed: isolation off, or the process cannot fork (a seccomp sandbox, no processes left); the file
// is then opened unchecked.
inline std::optional<int> probe_netcdf_in_child(const std::string& path, std::uint64_t cap, const netcdf_open_options& options) {
  if (!options.isolate) return std::nullopt;
  int channel[2];
  if (::pipe2(channel, O_CLOEXEC) != 0) return std::nullopt;  // no other fork inherits it
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(channel[0]), ::close(channel[1]);
    return std::nullopt;
  }
  if (child == 0) {
    ::close(channel[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the parent
    // A crash must end the child by its signal. The host's handlers (a test framework's fatal-condition
    // reporter, a crash logger) would otherwise run here on a heap libhdf5 may have corrupted: Catch's
    // printed a failure report from the child and its allocations could abort in glibc.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS}) ::signal(sig, SIG_DFL);
    // Running out of memory is no sign of a malformed file: the parent reads with its own limits.
    int open_rc = NC_NOERR;
    try {
      open_rc = netcdf_probe_detail::walk(path.c_str(), cap);
    } catch (...) {
    }
    const bool sent = ::write(channel[1], &open_rc, sizeof open_rc) == static_cast<ssize_t>(sizeof open_rc);
    ::_exit(sent ? 0 : 1);
  }
  ::close(channel[1]);
  struct reader_end {
    int fd;
    ~reader_end() { ::close(fd); }
    bool read_code(int& rc) const {  // the child's nc_open code, if it sent one
      ssize_t n;
      while ((n = ::read(fd, &rc, sizeof rc)) < 0 && errno == EINTR) {
      }
      return n == static_cast<ssize_t>(sizeof rc);
    }
  } reader{channel[0]};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(std::max(options.timeout_s, 1));
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) break;
    if (r < 0 && errno != EINTR) {  // reaped elsewhere (a SIGCHLD handler): only the pipe can tell
      int open_rc = NC_NOERR;
      if (reader.read_code(open_rc)) return open_rc;
      return std::nullopt;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(child, SIGKILL);
      while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
      }
      throw io_error(::grcnn::detail::concat("netcdf: ", path, ": reading it took libnetcdf more than ", options.timeout_s,
                                    " s in a test process (a malformed file can make libhdf5 loop); refused"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFSIGNALED(status))
    throw io_error(::grcnn::detail::concat("netcdf: ", path, ": libnetcdf/libhdf5 crashed reading it in a test process (signal ",
                                  WTERMSIG(status), ", ", ::strsignal(WTERMSIG(status)),
                                  "): the file is malformed; refused"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw io_error(::grcnn::detail::concat("netcdf: ", path, ": libnetcdf/libhdf5 failed reading it in a test process (exit ",
                                  WIFEXITED(status) ? WEXITSTATUS(status) : -1, "): the file is malformed; refused"));
  int open_rc = NC_NOERR;
  if (!reader.read_code(open_rc))
    throw io_error(::grcnn::detail::concat("netcdf: ", path, ": the test process reading it sent no result; refused"));
  return open_rc;
}

}  // namespace grcnn::io
