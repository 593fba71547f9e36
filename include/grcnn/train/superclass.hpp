#pragma once
// The superclass regulariser of the paper: the softmax over classes is projected onto superclasses by
// summing member probabilities, P_s = sum_{c in s} p_c, and a cross-entropy term ties P to a target:
// the true superclass (target "label") or the human confusion row of the true superclass (target
// "human"; data/imagenet/human_superclass_confusion.csv). log P_s is computed stably as
// group_logsumexp(logits)_s - logsumexp(logits), i.e. cross_entropy(group_logsumexp(logits), target).
// With mixed labels (CutMix, mixup) the target is mixed with the same weights.
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "grcnn/data/class_names.hpp"
#include "grcnn/ops/losses.hpp"
#include "grcnn/train/targets.hpp"

namespace grcnn::train {

// Which class belongs to which superclass.
struct superclass_map {
  std::vector<std::string> names;        // superclass names by index
  std::vector<std::int64_t> of_class;    // class index -> superclass index
  std::int64_t count() const { return static_cast<std::int64_t>(names.size()); }
  std::int64_t classes() const { return static_cast<std::int64_t>(of_class.size()); }
};

namespace superclass_detail {
inline std::size_t column(const std::vector<std::string>& header, const std::string& name, const std::filesystem::path& p) {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  throw io_error("superclasses: '" + p.string() + "' has no column '" + name + "'");
}
inline long parse_index(const std::string& s, const std::filesystem::path& p, int row, const char* what) {
  std::size_t used = 0;
  long v = -1;
  try {
    v = std::stol(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  GRCNN_CHECK(used == s.size() && !s.empty() && v >= 0, io_error, "superclasses: '", p.string(), "' line ", row, ": ",
              what, " '", s, "' is not a non-negative integer");
  return v;
}
}  // namespace superclass_detail

// Reads a class -> superclass CSV with a header naming at least class_index, superclass_index and
// superclass_name (data/imagenet/superclasses.csv, data/fashion-mnist/superclasses.csv). Classes must
// be listed 0, 1, 2, ...; superclass indices must be 0..S-1, each with one name, each used.
inline superclass_map read_superclass_csv(const std::filesystem::path& p) {
  using namespace superclass_detail;
  std::istringstream in = io::open_text_file(p, "superclasses");
  std::string line;
  GRCNN_CHECK(static_cast<bool>(std::getline(in, line)), io_error, "superclasses: '", p.string(), "' is empty");
  const auto header = data::split_csv_line(line);
  const std::size_t ci = column(header, "class_index", p), si = column(header, "superclass_index", p),
                    ni = column(header, "superclass_name", p);
  superclass_map m;
  std::map<long, std::string> names;
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty() || line == "\r") continue;
    const auto f = data::split_csv_line(line);
    GRCNN_CHECK(f.size() == header.size(), io_error, "superclasses: '", p.string(), "' line ", row, " has ", f.size(),
                " fields, the header ", header.size());
    const long c = parse_index(f[ci], p, row, "class_index"), s = parse_index(f[si], p, row, "superclass_index");
    GRCNN_CHECK(c == m.classes(), io_error, "superclasses: '", p.string(), "' line ", row, " lists class ", c, ", expected ",
                m.classes(), " (classes in order from 0)");
    const auto [it, fresh] = names.emplace(s, f[ni]);
    GRCNN_CHECK(fresh || it->second == f[ni], io_error, "superclasses: '", p.string(), "' line ", row, ": superclass ", s,
                " is called '", f[ni], "' here and '", it->second, "' before");
    m.of_class.push_back(s);
  }
  GRCNN_CHECK(!m.of_class.empty(), io_error, "superclasses: '", p.string(), "' lists no class");
  for (long s = 0; s < static_cast<long>(names.size()); ++s) {
    GRCNN_CHECK(names.count(s), io_error, "superclasses: '", p.string(), "' uses superclass indices up to ",
                names.rbegin()->first, " but never ", s);
    m.names.push_back(names.at(s));
  }
  return m;
}

// Reads a square superclass confusion CSV (row = true superclass, columns = superclasses named in the
// header after its first field; counts or probabilities). Names and order must match `m`; each row is
// normalised to sum 1. Returns the S x S matrix row-major.
inline std::vector<double> read_confusion_csv(const std::filesystem::path& p, const superclass_map& m) {
  std::istringstream in = io::open_text_file(p, "superclass confusion");
  std::string line;
  GRCNN_CHECK(static_cast<bool>(std::getline(in, line)), io_error, "superclass confusion: '", p.string(), "' is empty");
  const auto header = data::split_csv_line(line);
  const auto S = static_cast<std::size_t>(m.count());
  GRCNN_CHECK(header.size() == S + 1, io_error, "superclass confusion: '", p.string(), "' has ", header.size() - 1,
              " superclass columns, the superclass map ", S);
  for (std::size_t s = 0; s < S; ++s)
    GRCNN_CHECK(header[s + 1] == m.names[s], io_error, "superclass confusion: '", p.string(), "' column ", s + 1, " is '",
                header[s + 1], "', the superclass map's superclass ", s, " is '", m.names[s], "'");
  std::vector<double> c;
  std::size_t rows = 0;
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty() || line == "\r") continue;
    const auto f = data::split_csv_line(line);
    GRCNN_CHECK(f.size() == S + 1 && rows < S && f[0] == m.names[rows], io_error, "superclass confusion: '", p.string(),
                "' line ", row, " should be the row of '", rows < S ? m.names[rows] : "(none)", "' with ", S, " values");
    double sum = 0;
    std::vector<double> r;
    for (std::size_t s = 0; s < S; ++s) {
      std::size_t used = 0;
      double v = -1;
      try {
        v = std::stod(f[s + 1], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      GRCNN_CHECK(used == f[s + 1].size() && used > 0 && v >= 0 && std::isfinite(v), io_error, "superclass confusion: '",
                  p.string(), "' line ", row, " column ", s + 1, ": '", f[s + 1], "' is not a non-negative number");
      r.push_back(v);
      sum += v;
    }
    GRCNN_CHECK(sum > 0, io_error, "superclass confusion: '", p.string(), "' line ", row, " sums to 0");
    for (double v : r) c.push_back(v / sum);
    ++rows;
  }
  GRCNN_CHECK(rows == S, io_error, "superclass confusion: '", p.string(), "' has ", rows, " rows, expected ", S);
  return c;
}

enum class superclass_target { label, human };

class superclass_regulariser {
 public:
  // `confusion` (S x S, rows summing to 1) is needed for target human only.
  superclass_regulariser(superclass_map m, superclass_target t, double weight, std::vector<double> confusion = {})
      : map_(std::move(m)), target_(t), weight_(weight), confusion_(std::move(confusion)) {
    GRCNN_CHECK(weight_ >= 0 && std::isfinite(weight_), error, "superclass regulariser: weight ", weight_,
                " must be a non-negative number");
    GRCNN_CHECK(target_ == superclass_target::label ||
                    confusion_.size() == static_cast<std::size_t>(map_.count() * map_.count()),
                error, "superclass regulariser: target 'human' needs a ", map_.count(), "x", map_.count(),
                " confusion matrix, got ", confusion_.size(), " values");
    groups_ = ops::make_group_map(map_.of_class, map_.count());
  }

  const superclass_map& map() const { return map_; }
  double weight() const { return weight_; }
  superclass_target target() const { return target_; }

  // The target distribution over superclasses of one class.
  std::vector<double> target_row(std::int64_t label) const {
    GRCNN_CHECK(label >= 0 && label < map_.classes(), shape_error, "superclass regulariser: label ", label,
                " outside the map's ", map_.classes(), " classes");
    const auto s = map_.of_class[static_cast<std::size_t>(label)], S = map_.count();
    std::vector<double> r(static_cast<std::size_t>(S), 0.0);
    if (target_ == superclass_target::label)
      r[static_cast<std::size_t>(s)] = 1.0;
    else
      for (std::int64_t j = 0; j < S; ++j) r[static_cast<std::size_t>(j)] = confusion_[static_cast<std::size_t>(s * S + j)];
    return r;
  }

  // Targets [N, S] for the labels, mixed as lambda * t(y) + (1 - lambda) * t(y[perm]) when `mix` is given.
  tensor targets(const std::vector<std::int64_t>& labels, const mixup_result* mix = nullptr) const {
    const auto N = static_cast<std::int64_t>(labels.size()), S = map_.count();
    std::vector<double> t(static_cast<std::size_t>(N * S), 0.0);
    for (std::int64_t n = 0; n < N; ++n) {
      const double lam = mix ? mix->lambda : 1.0;
      const auto a = target_row(labels[static_cast<std::size_t>(n)]);
      for (std::int64_t s = 0; s < S; ++s) t[static_cast<std::size_t>(n * S + s)] += lam * a[static_cast<std::size_t>(s)];
      if (mix && lam < 1.0) {
        const auto b = target_row(labels[static_cast<std::size_t>(mix->permutation[static_cast<std::size_t>(n)])]);
        for (std::int64_t s = 0; s < S; ++s) t[static_cast<std::size_t>(n * S + s)] += (1.0 - lam) * b[static_cast<std::size_t>(s)];
      }
    }
    return tensor::from_values(grcnn::shape{N, S}, t, dtype::f32);
  }

  // The unweighted term: cross-entropy of the superclass projection of softmax(logits) against the
  // targets. Logits wider than the map (a classifier with spare outputs) leave the extra columns out.
  template <class B>
  autograd::variable loss(const autograd::variable& logits, const std::vector<std::int64_t>& labels,
                          const mixup_result* mix = nullptr) const {
    const std::int64_t K = logits.dims()[1];
    GRCNN_CHECK(K >= map_.classes(), shape_error, "superclass regulariser: ", K, " logits for a map of ", map_.classes(),
                " classes");
    tensor groups = groups_;
    if (K > map_.classes()) {
      std::vector<std::int64_t> g = map_.of_class;
      g.resize(static_cast<std::size_t>(K), -1);
      groups = tensor::from_values(grcnn::shape{K}, g);
    }
    const autograd::variable super = ops::group_logsumexp<B>(logits, groups, map_.count());
    tensor t = targets(labels, mix);
    if (logits.value().type() != dtype::f32) t = t.to_dtype(logits.value().type());
    // log P_s = group_lse_s - lse over classes in the map; a softmax over `super` renormalises over the
    // mapped classes, which equals P_s when every logit column is mapped.
    return ops::cross_entropy<B>(super, t);
  }

 private:
  superclass_map map_;
  superclass_target target_;
  double weight_;
  std::vector<double> confusion_;
  tensor groups_;
};

}  // namespace grcnn::train
