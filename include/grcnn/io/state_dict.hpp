#pragma once
// A network's state as a name -> tensor dictionary (PyTorch's state_dict), and loading one back with
// every name, shape and dtype checked, and every floating value finite; all problems are reported in
// one error.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>

#include "grcnn/io/safetensors.hpp"
#include "grcnn/nn/module.hpp"

namespace grcnn::io {

// Plain f32 (and i64 counters) copies of every entry, in the network's order.
inline tensor_dict state_dict(const nn::state_list& state) {
  tensor_dict d;
  for (const auto& e : state) {
    const tensor& v = e.value();
    d.add(e.name, v.to_layout(layout::plain).to_device(cpu_device).clone());
  }
  return d;
}

namespace detail {
// The first NaN or infinity of a host tensor in logical order: its index, its value and how many there are.
struct nonfinite_report {
  std::int64_t first = -1;
  double value = 0;
  std::int64_t count = 0;
};
inline std::optional<nonfinite_report> find_nonfinite(const tensor& t) {
  if (t.type() == dtype::i64 || t.numel() == 0) return std::nullopt;
  const tensor h = t.memory_layout() == layout::plain && t.on_host() ? t : t.to_device(cpu_device).to_layout(layout::plain);
  nonfinite_report r;
  grcnn::detail::visit_dtype(h.type(), [&]<class S>() {
    if constexpr (!std::is_same_v<S, std::int64_t>) {
      const auto n = static_cast<std::size_t>(h.numel());
      for (std::size_t i = 0; i < n; ++i) {
        const double v = grcnn::detail::load_as_double<S>(h.raw(), i);
        if (std::isfinite(v)) continue;
        if (r.count++ == 0) r.first = static_cast<std::int64_t>(i), r.value = v;
      }
    }
  });
  if (r.count == 0) return std::nullopt;
  return r;
}
inline std::string nonfinite_problem(const std::string& name, const tensor& t, const nonfinite_report& r) {
  std::ostringstream os;
  os << "tensor '" << name << "' holds " << (std::isnan(r.value) ? "NaN" : r.value > 0 ? "+Inf" : "-Inf")
     << " at element " << r.first << " (of " << t.numel() << ", shape " << t.dims().str() << "; " << r.count
     << " non-finite value" << (r.count == 1 ? "" : "s") << " in all)";
  return os.str();
}
}  // namespace detail

struct load_options {
  bool strict = true;  // unexpected names in the file are errors (missing ones always are)
  // Module prefixes left as they are: entries of the network under them are not loaded and the file's
  // are ignored (fine-tuning with a new classifier: {"classifier"}).
  std::vector<std::string> skip_prefixes;
  bool print_notes = true;  // what load_report::note() says goes to stderr, one line per load
};

// What a load accepted as PyTorch's load_state_dict does, beyond exact matches: old checkpoints store a
// 0-d entry (num_batches_tracked) as a one-element 1-d tensor, and checkpoints from before BatchNorm had
// num_batches_tracked lack it (PyTorch fills 0).
struct load_report {
  std::vector<std::string> scalars_from_vectors;  // 0-d entries read from one-element 1-d tensors
  std::vector<std::string> counters_filled;       // missing num_batches_tracked entries, set to 0
  bool accommodated() const { return !scalars_from_vectors.empty() || !counters_filled.empty(); }
  // One line naming the first of each kind and how many ("" when nothing was accommodated).
  std::string note(const std::string& origin = "") const {
    if (!accommodated()) return "";
    std::ostringstream os;
    os << "note: load_state_dict" << (origin.empty() ? "" : " from '" + origin + "'") << ": as PyTorch does,";
    const auto list = [&](const std::vector<std::string>& names, const char* what) {
      os << " " << what << " " << names.size() << " entr" << (names.size() == 1 ? "y" : "ies") << " ('" << names.front()
         << "'" << (names.size() > 1 ? ", ..." : "") << ")";
    };
    if (!scalars_from_vectors.empty()) list(scalars_from_vectors, "read one-element 1-d tensors as 0-d for");
    if (!scalars_from_vectors.empty() && !counters_filled.empty()) os << ";";
    if (!counters_filled.empty()) list(counters_filled, "set 0 for the missing num_batches_tracked of");
    return os.str();
  }
};

namespace detail {
inline bool is_batch_counter(const std::string& name) {
  constexpr std::string_view suffix = "num_batches_tracked";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (name.size() == suffix.size() || name[name.size() - suffix.size() - 1] == '.');
}
}  // namespace detail

// Loads `d` into the entries of `state`, all or nothing. Entries that share a tensor (weight-sharing variants list a
// shared conv under every iteration's name) must agree in the file and are tied to one value. A NaN or an
// infinity in a floating tensor (parameter or buffer, BN running statistics included) is refused, naming
// the tensor and its first non-finite element (a network trained into NaN must not be loaded as weights).
// PyTorch's two accommodations (load_report) are taken and reported; nothing else is.
inline load_report load_state_dict(const nn::state_list& state, const tensor_dict& d, const load_options& opt = {}) {
  load_report report;
  std::vector<std::string> problems;
  std::map<std::string, bool> used;
  std::map<const void*, std::pair<std::string, tensor>> tied;  // grad cell or buffer -> first name and data
  std::vector<std::pair<tensor*, tensor>> assignments;  // applied only when every entry checked out
  auto skipped = [&](const std::string& name) {
    for (const auto& p : opt.skip_prefixes)
      if (name == p || name.rfind(p + ".", 0) == 0) return true;
    return false;
  };
  for (const auto& e : state) {
    if (skipped(e.name)) continue;
    tensor& dst = e.value();
    tensor src;
    if (d.contains(e.name)) {
      used[e.name] = true;
      src = d.at(e.name);
      if (dst.dims().rank() == 0 && src.dims().rank() == 1 && src.dims()[0] == 1) {
        src = src.reshape(grcnn::shape{});
        report.scalars_from_vectors.push_back(e.name);
      }
    } else if (dst.type() == dtype::i64 && dst.dims().rank() == 0 && detail::is_batch_counter(e.name)) {
      src = tensor::zeros(grcnn::shape{}, dtype::i64);
      report.counters_filled.push_back(e.name);
    } else {
      problems.push_back("missing '" + e.name + "'");
      continue;
    }
    if (!(src.dims() == dst.dims())) {
      problems.push_back("'" + e.name + "': file has shape " + src.dims().str() + ", the network expects " +
                         dst.dims().str());
      continue;
    }
    const bool counter = dst.type() == dtype::i64;
    if (counter != (src.type() == dtype::i64)) {
      problems.push_back("'" + e.name + "': file has dtype " + std::string(name_of(src.type())) + ", the network expects " +
                         std::string(counter ? "i64" : "a floating type"));
      continue;
    }
    if (!counter)
      if (const auto bad = detail::find_nonfinite(src)) {
        problems.push_back(detail::nonfinite_problem(e.name, src, *bad));
        continue;
      }
    tensor value = src.to_dtype(dst.type());
    if (!counter)
      if (const auto bad = detail::find_nonfinite(value)) {  // a finite f64 beyond the network's dtype
        problems.push_back("tensor '" + e.name + "' overflows " + std::string(name_of(dst.type())) + " at element " +
                           std::to_string(bad->first));
        continue;
      }
    const void* key = e.parameter ? static_cast<const void*>(e.parameter->cell().get()) : static_cast<const void*>(e.buffer);
    auto [it, first] = tied.emplace(key, std::make_pair(e.name, value));
    if (!first) {
      if (relative_error(value, it->second.second) != 0.0)
        problems.push_back("'" + e.name + "' is shared with '" + it->second.first + "' but the file holds different values");
      continue;
    }
    assignments.emplace_back(&dst, dst.memory_layout() == layout::opaque
                                       ? value.to_format(dst.format())
                                       : value.to_layout(dst.memory_layout()).clone().to_device(dst.where()));
  }
  if (opt.strict)
    for (const auto& [name, t] : d.entries())
      if (!used.count(name) && !skipped(name)) problems.push_back("unexpected '" + name + "'");
  if (!problems.empty()) {
    std::ostringstream os;
    os << "load_state_dict" << (d.origin_.empty() ? "" : " from '" + d.origin_ + "'") << ": " << problems.size()
       << " problem(s):";
    for (const auto& p : problems) os << "\n  " << p;
    throw io_error(os.str());
  }
  for (auto& [dst, value] : assignments) *dst = std::move(value);
  if (opt.print_notes && report.accommodated()) std::fprintf(stderr, "%s\n", report.note(d.origin_).c_str());
  return report;
}

inline void save_state_dict(const std::filesystem::path& path, const nn::state_list& state,
                            const std::map<std::string, std::string>& metadata = {}) {
  tensor_dict d = state_dict(state);
  d.metadata = metadata;
  save_safetensors(path, d);
}

}  // namespace grcnn::io
