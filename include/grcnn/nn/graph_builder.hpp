#pragma once
// What a network's nodes are built with: the seeded initialiser (nodes draw from it in graph order, as
// the original code's modules do in registration order), the class count, and the weight slots one node
// owns and later nodes share (a GRCL's conv_g_r, a weight-shared bottleneck). The slots' shapes were
// checked at compile time (nn/graph.hpp); here they are only handed over.
#include <map>
#include <memory>
#include <string>
#include <typeinfo>

#include "grcnn/core/error.hpp"
#include "grcnn/nn/module.hpp"

namespace grcnn::nn {

class graph_builder {
 public:
  graph_builder(initializer& rng, int classes) : rng_(rng), classes_(classes) {}

  initializer& rng() { return rng_; }
  int classes() const { return classes_; }

  // Makes the slot's object (drawing its initial values now) and keeps it for the nodes sharing it.
  template <class T, class Make>
  std::shared_ptr<T> own(const std::string& key, Make&& make) {
    GRCNN_CHECK(!slots_.count(key), error, "graph: weight slot '", key, "' has two owners");
    std::shared_ptr<T> p = make();
    slots_[key] = {p, &typeid(T)};
    return p;
  }
  template <class T>
  std::shared_ptr<T> shared(const std::string& key) const {
    const auto it = slots_.find(key);
    GRCNN_CHECK(it != slots_.end() && *it->second.type == typeid(T), error, "graph: weight slot '", key,
                "' is shared before an owner made it");
    return std::static_pointer_cast<T>(it->second.object);
  }
  // own() where `owner`, shared() otherwise.
  template <class T, class Make>
  std::shared_ptr<T> slot(bool owner, const std::string& key, Make&& make) {
    return owner ? own<T>(key, std::forward<Make>(make)) : shared<T>(key);
  }

 private:
  struct entry {
    std::shared_ptr<void> object;
    const std::type_info* type = nullptr;
  };
  initializer& rng_;
  int classes_;
  std::map<std::string, entry> slots_;
};

}  // namespace grcnn::nn
