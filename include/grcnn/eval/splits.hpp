#pragma once
// Cross-validation splits as Brain-Score draws them, replayed draw for draw from numpy's legacy
// generator (core/numpy_random.hpp), so a random_state gives sklearn's very indices:
// - shuffle_split: sklearn's ShuffleSplit (the ceiling's repetition halves; unstratified benchmarks);
// - stratified_shuffle_split: sklearn's StratifiedShuffleSplit (the 10 90/10 splits over stimuli,
//   stratified by object_name), including _approximate_mode's random tie-breaking;
// - read_split_file / write_split_file: splits by stimulus id in JSON, for splits made elsewhere.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "grcnn/core/error.hpp"
#include "grcnn/core/numpy_random.hpp"
#include "grcnn/io/json.hpp"
#include "grcnn/io/output_file.hpp"

namespace grcnn::eval {

struct split {
  std::vector<std::int64_t> train, test;
};

// The size of a split as sklearn's splitters take it: a training fraction (an implicit conversion, so
// shuffle_split(n, 10, 0.9, 1) reads as sklearn's train_size=0.9) or, via test(), a held-out fraction.
struct split_fraction {
  double train_size = 0.9;
  double test_size = 0;  // > 0: the held-out fraction, train_size unused
  split_fraction(double train = 0.9) : train_size(train) {}  // NOLINT: implicit on purpose
  static split_fraction test(double held_out) {
    split_fraction f(0);
    f.test_size = held_out;
    return f;
  }
};

namespace split_detail {
// sklearn's _validate_shuffle_split with one of the two sizes given (the other None): train_size gives
// n_train = floor(train_size n) and n_test = n - n_train; test_size gives n_test = ceil(test_size n)
// and n_train = n - n_test (Brain-Score's RSA/CKA cross-validation: test_size 0.9).
inline std::pair<std::int64_t, std::int64_t> sizes(std::int64_t n, split_fraction f, const char* what) {
  const bool by_test = f.test_size > 0;
  const double frac = by_test ? f.test_size : f.train_size;
  GRCNN_CHECK(n >= 2 && frac > 0 && frac < 1, error, what, ": needs n >= 2 and 0 < ", by_test ? "test_size" : "train_size",
              " < 1, got ", n, " and ", frac);
  const double x = frac * static_cast<double>(n);
  const auto n_first = static_cast<std::int64_t>(by_test ? std::ceil(x) : std::floor(x));
  const auto n_train = by_test ? n - n_first : n_first, n_test = n - n_train;
  GRCNN_CHECK(n_train >= 1 && n_test >= 1, error, what, ": ", by_test ? "test_size " : "train_size ", frac, " of ", n,
              " samples gives ", n_train, " training and ", n_test, " test samples");
  return {n_train, n_test};
}

// sklearn.utils.extmath._approximate_mode: the most likely per-class counts of n_draws drawn without
// replacement; ties among the largest remainders are broken by rng.choice (a permutation prefix).
inline std::vector<std::int64_t> approximate_mode(const std::vector<std::int64_t>& counts, std::int64_t n_draws,
                                                  numpy_legacy_rng& rng) {
  double total = 0;
  for (auto c : counts) total += static_cast<double>(c);
  std::vector<double> continuous(counts.size()), floored(counts.size()), remainder(counts.size());
  double floored_sum = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    continuous[i] = static_cast<double>(counts[i]) / total * static_cast<double>(n_draws);
    floored[i] = std::floor(continuous[i]);
    remainder[i] = continuous[i] - floored[i];
    floored_sum += floored[i];
  }
  auto need = static_cast<std::int64_t>(static_cast<double>(n_draws) - floored_sum);
  if (need > 0) {
    std::vector<double> values = remainder;
    std::sort(values.begin(), values.end(), std::greater<>());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    for (double value : values) {
      std::vector<std::int64_t> inds;
      for (std::size_t i = 0; i < remainder.size(); ++i)
        if (remainder[i] == value) inds.push_back(static_cast<std::int64_t>(i));
      const auto add = std::min<std::int64_t>(static_cast<std::int64_t>(inds.size()), need);
      const auto pick = rng.permutation(static_cast<std::int64_t>(inds.size()));
      for (std::int64_t k = 0; k < add; ++k) floored[static_cast<std::size_t>(inds[static_cast<std::size_t>(pick[k])])] += 1;
      need -= add;
      if (need == 0) break;
    }
  }
  std::vector<std::int64_t> out(counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i) out[i] = static_cast<std::int64_t>(floored[i]);
  return out;
}

// rng.permutation(list): the list in the order numpy's shuffle leaves it.
inline std::vector<std::int64_t> permuted(const std::vector<std::int64_t>& v, numpy_legacy_rng& rng) {
  const auto p = rng.permutation(static_cast<std::int64_t>(v.size()));
  std::vector<std::int64_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = v[static_cast<std::size_t>(p[i])];
  return out;
}
}  // namespace split_detail

// sklearn.model_selection.ShuffleSplit(n_splits, train_size, test_size=None, random_state).
// f: train_size (a double), or split_fraction::test(held-out fraction).
inline std::vector<split> shuffle_split(std::int64_t n, int n_splits, split_fraction f, std::uint32_t random_state) {
  GRCNN_CHECK(n_splits >= 1, error, "shuffle_split: n_splits must be at least 1, got ", n_splits);
  const auto [n_train, n_test] = split_detail::sizes(n, f, "shuffle_split");
  numpy_legacy_rng rng(random_state);
  std::vector<split> out;
  for (int s = 0; s < n_splits; ++s) {
    const auto p = rng.permutation(n);  // test first, then train
    out.push_back({std::vector<std::int64_t>(p.begin() + n_test, p.begin() + n_test + n_train),
                   std::vector<std::int64_t>(p.begin(), p.begin() + n_test)});
  }
  return out;
}

// sklearn.model_selection.StratifiedShuffleSplit(n_splits, train_size, test_size=None, random_state)
// over class labels (any integer codes; classes are ordered by value as numpy.unique orders them).
inline std::vector<split> stratified_shuffle_split(const std::vector<std::int64_t>& labels, int n_splits,
                                                   split_fraction f, std::uint32_t random_state) {
  using namespace split_detail;
  GRCNN_CHECK(n_splits >= 1, error, "stratified_shuffle_split: n_splits must be at least 1, got ", n_splits);
  const auto n = static_cast<std::int64_t>(labels.size());
  const auto [n_train, n_test] = sizes(n, f, "stratified_shuffle_split");
  // Members of each class in index order (numpy's stable argsort of the class codes).
  std::map<std::int64_t, std::vector<std::int64_t>> members;
  for (std::int64_t i = 0; i < n; ++i) members[labels[static_cast<std::size_t>(i)]].push_back(i);
  std::vector<std::vector<std::int64_t>> classes;
  std::vector<std::int64_t> counts;
  for (auto& [label, idx] : members) {
    GRCNN_CHECK(idx.size() >= 2, error, "stratified_shuffle_split: class ", label, " has only ", idx.size(),
                " member; every class needs at least 2 (use shuffle_split or merge classes)");
    counts.push_back(static_cast<std::int64_t>(idx.size()));
    classes.push_back(idx);
  }
  const auto n_classes = static_cast<std::int64_t>(classes.size());
  GRCNN_CHECK(n_train >= n_classes && n_test >= n_classes, error, "stratified_shuffle_split: ", n_train,
              " training and ", n_test, " test samples cannot hold all ", n_classes, " classes");
  numpy_legacy_rng rng(random_state);
  std::vector<split> out;
  for (int s = 0; s < n_splits; ++s) {
    const auto n_i = approximate_mode(counts, n_train, rng);
    std::vector<std::int64_t> remaining(counts.size());
    for (std::size_t c = 0; c < counts.size(); ++c) remaining[c] = counts[c] - n_i[c];
    const auto t_i = approximate_mode(remaining, n_test, rng);
    std::vector<std::int64_t> train, test;
    for (std::size_t c = 0; c < classes.size(); ++c) {
      const auto perm = rng.permutation(counts[c]);
      for (std::int64_t k = 0; k < n_i[c]; ++k) train.push_back(classes[c][static_cast<std::size_t>(perm[k])]);
      for (std::int64_t k = n_i[c]; k < n_i[c] + t_i[c]; ++k) test.push_back(classes[c][static_cast<std::size_t>(perm[k])]);
    }
    train = permuted(train, rng);
    test = permuted(test, rng);
    out.push_back({std::move(train), std::move(test)});
  }
  return out;
}

// Integer codes for string labels (sorted order, as numpy.unique), e.g. object names.
inline std::vector<std::int64_t> label_codes(const std::vector<std::string>& labels) {
  std::vector<std::string> sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::vector<std::int64_t> codes;
  for (const auto& l : labels)
    codes.push_back(std::lower_bound(sorted.begin(), sorted.end(), l) - sorted.begin());
  return codes;
}

// Splits by stimulus id: {"splits": [{"train": [ids...], "test": [ids...]}, ...]}. Ids are resolved
// against `stimulus_ids` (the rows the indices refer to); an unknown or repeated id is an error.
inline std::vector<split> read_split_file(const std::filesystem::path& path, const std::vector<std::string>& stimulus_ids) {
  const nlohmann::json j = io::read_json_file(path, "split file");
  GRCNN_CHECK(j.is_object() && j.contains("splits") && j["splits"].is_array() && !j["splits"].empty(), io_error,
              path.string(), ": expected {\"splits\": [{\"train\": [...], \"test\": [...]}, ...]}");
  std::map<std::string, std::int64_t> row;
  for (std::size_t i = 0; i < stimulus_ids.size(); ++i) row[stimulus_ids[i]] = static_cast<std::int64_t>(i);
  std::vector<split> out;
  for (std::size_t s = 0; s < j["splits"].size(); ++s) {
    const auto& e = j["splits"][s];
    split sp;
    std::vector<int> used(stimulus_ids.size(), 0);
    for (const char* part : {"train", "test"}) {
      GRCNN_CHECK(e.is_object() && e.contains(part) && e[part].is_array() && !e[part].empty(), io_error, path.string(),
                  ": split ", s, " has no non-empty '", part, "' list");
      for (const auto& id : e[part]) {
        GRCNN_CHECK(id.is_string(), io_error, path.string(), ": split ", s, " '", part, "' holds a non-string id");
        const auto it = row.find(id.get<std::string>());
        GRCNN_CHECK(it != row.end(), io_error, path.string(), ": split ", s, " names stimulus '", id.get<std::string>(),
                    "', which the data do not have");
        GRCNN_CHECK(used[static_cast<std::size_t>(it->second)]++ == 0, io_error, path.string(), ": split ", s,
                    " lists stimulus '", it->first, "' twice");
        (std::string(part) == "train" ? sp.train : sp.test).push_back(it->second);
      }
    }
    out.push_back(std::move(sp));
  }
  return out;
}

inline void write_split_file(const std::filesystem::path& path, const std::vector<split>& splits,
                             const std::vector<std::string>& stimulus_ids) {
  nlohmann::json j;
  j["splits"] = nlohmann::json::array();
  for (const auto& sp : splits) {
    nlohmann::json e;
    for (const auto* part : {&sp.train, &sp.test}) {
      auto& list = e[part == &sp.train ? "train" : "test"] = nlohmann::json::array();
      for (auto i : *part) list.push_back(stimulus_ids.at(static_cast<std::size_t>(i)));
    }
    j["splits"].push_back(std::move(e));
  }
  io::write_file(path, j.dump(1) + "\n", "split file");
}

}  // namespace grcnn::eval
