#pragma once
// One exception hierarchy and one check macro, so every runtime failure names what and where.
#include <sstream>
#include <stdexcept>
#include <string>

namespace grcnn {

struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct shape_error : error {
  using error::error;
};
struct dtype_error : error {
  using error::error;
};
struct backend_error : error {
  using error::error;
};
struct io_error : error {
  using error::error;
};
// A computation produced NaN or infinity where a finite value is required (a diverging loss).
struct numeric_error : error {
  using error::error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace grcnn

// GRCNN_CHECK(cond, ErrorType, message parts...): throws ErrorType with the parts streamed together.
#define GRCNN_CHECK(cond, ErrorType, ...)                                   \
  do {                                                                      \
    if (!(cond)) throw ErrorType(::grcnn::detail::concat(__VA_ARGS__));     \
  } while (0)
