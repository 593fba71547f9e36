#pragma once
// Output files that never clobber and never lie.
//
// - A regular file (or a path that does not exist yet) is written to a temporary file in the same
//   folder, flushed to disk and renamed into place: readers see the old file or the new one, never a
//   part, and a failure removes the temporary file.
// - A symbolic link is followed (to any depth) and its final target written that way; the link stays.
// - An existing file that is not regular (/dev/null, /dev/stdout, a FIFO, a character device) is written
//   through: renaming over it would replace the device node with a regular file.
// - A directory is refused.
// - Every write, flush, fsync and close is checked; a failure throws io_error with errno's text, so a
//   full disk is reported, not announced as "wrote".
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "grcnn/core/error.hpp"

namespace grcnn::io {

namespace output_detail {
inline std::string errno_text(int e) { return std::strerror(e); }

// The file a write to `path` must change: symbolic links followed (relative ones from their folder).
inline std::filesystem::path resolve_links(const std::filesystem::path& path, const std::string& what) {
  std::filesystem::path p = path;
  for (int depth = 0;; ++depth) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    GRCNN_CHECK(depth < 40, io_error, what, ": '", path.string(), "': too many levels of symbolic links");
    std::error_code ec;
    const auto target = std::filesystem::read_symlink(p, ec);
    GRCNN_CHECK(!ec, io_error, what, ": cannot read the symbolic link '", p.string(), "': ", ec.message());
    p = target.is_absolute() ? target : p.parent_path() / target;
  }
}
}  // namespace output_detail

class output_file {
 public:
  // `what` names the writer in messages ("safetensors", "summary", ...).
  explicit output_file(const std::filesystem::path& path, std::string what = "output")
      : path_(path), what_(std::move(what)) {
    GRCNN_CHECK(!path.empty(), io_error, what_, ": empty output path");
    target_ = output_detail::resolve_links(path, what_);
    struct stat st {};
    const bool exists = ::stat(target_.c_str(), &st) == 0;
    GRCNN_CHECK(!(exists && S_ISDIR(st.st_mode)), io_error, what_, ": output '", path.string(), "' is a directory");
    if (exists && !S_ISREG(st.st_mode)) {  // a device or FIFO: write through
      fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC);
      GRCNN_CHECK(fd_ >= 0, io_error, what_, ": cannot open '", path.string(), "' for writing: ",
                  output_detail::errno_text(errno));
      direct_ = true;
      return;
    }
    // A name of our own beside the target: concurrent writers of one path do not share a temporary.
    static std::atomic<unsigned> counter{0};
    tmp_ = target_;
    tmp_ += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? (st.st_mode & 07777) : 0666);
    GRCNN_CHECK(fd_ >= 0, io_error, what_, ": cannot create '", tmp_.string(), "' (to write '", path.string(),
                "'): ", output_detail::errno_text(errno));
    if (exists) (void)::fchmod(fd_, st.st_mode & 07777);  // keep an existing file's mode (umask applies at create)
  }
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;
  ~output_file() { abandon(); }

  void write(const void* data, std::size_t n) {
    GRCNN_CHECK(fd_ >= 0, io_error, what_, ": write to '", path_.string(), "' after it was closed");
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ::ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int e = w < 0 ? errno : EIO;
        abandon();
        throw io_error(what_ + ": writing '" + path_.string() + "' failed: " + output_detail::errno_text(e));
      }
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }
  void write(std::string_view s) { write(s.data(), s.size()); }

  // Flushes to disk and puts the file in place. Until commit() the target is untouched (for regular
  // files); without it (an exception on the way) the temporary file is removed.
  void commit() {
    GRCNN_CHECK(fd_ >= 0, io_error, what_, ": '", path_.string(), "' committed twice or after a failure");
    // fsync on a device or FIFO may legitimately be unsupported (EINVAL, EROFS): only regular files need it.
    if (::fsync(fd_) != 0 && !(direct_ && (errno == EINVAL || errno == EROFS))) fail("flushing");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
      fd_ = -2;  // closed: abandon() only removes the temporary
      fail("closing");
    }
    if (direct_) return;
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      const int e = errno;
      const std::string tmp = tmp_.string();
      ::unlink(tmp_.c_str());
      tmp_.clear();
      throw io_error(what_ + ": cannot rename '" + tmp + "' to '" + target_.string() + "': " + output_detail::errno_text(e));
    }
    tmp_.clear();
    // The rename itself reaches the disk with the folder's metadata (best effort: some file systems refuse).
    const auto dir = target_.parent_path().empty() ? std::filesystem::path(".") : target_.parent_path();
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      (void)::fsync(dfd);
      ::close(dfd);
    }
  }

  const std::filesystem::path& path() const { return path_; }
  // The file actually written (the symbolic link's final target).
  const std::filesystem::path& target() const { return target_; }

 private:
  [[noreturn]] void fail(const char* doing) {
    const int e = errno;
    abandon();
    throw io_error(what_ + ": " + doing + " '" + path_.string() + "' failed: " + output_detail::errno_text(e));
  }
  void abandon() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -2;
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
    tmp_.clear();
  }

  std::filesystem::path path_, target_, tmp_;
  std::string what_;
  int fd_ = -1;
  bool direct_ = false;
};

// The whole file at once.
inline void write_file(const std::filesystem::path& path, std::string_view contents, std::string what = "output") {
  output_file f(path, std::move(what));
  f.write(contents);
  f.commit();
}

}  // namespace grcnn::io
