// grcnn-graph: the unrolled graph of a variant at an input size, from the compile-time model facts
// (nn/graph.hpp), without building the network:
//   grcnn-graph --arch grcnn55 --size 224 --degrees 8 --format text|dot|json [--layer layer2] [--detail prims]
// Every node with its name, inputs, output shape, parameters, multiply-adds (FLOPs = 2 x MACs) and
// receptive field in pixels and degrees of visual angle (degrees: the field of view the input spans);
// json adds every tap (PyTorch module names) at every time step. dot renders with graphviz
// (dot -Tsvg); --layer keeps one top-level layer, --detail prims draws the primitives inside the nodes.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include <grcnn/backends/default.hpp>
#include <grcnn/models/registry.hpp>

#include "tool_main.hpp"

using namespace grcnn;

namespace {

struct settings {
  std::string arch = "grcnn55", format = "text", layer, detail = "nodes", out;
  std::int64_t height = 224, width = 224;
  double degrees = 8;
  int classes = 0;  // 0: the variant's usual count (1000 ImageNet, 10 CIFAR-style)
};

const char* reach_name(nn::spatial_reach r) {
  return r == nn::spatial_reach::local ? "local" : r == nn::spatial_reach::local_and_global ? "local+global" : "global";
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// Receptive field facts as JSON: pixels per axis, the centre of unit 0, degrees at the given scale.
nlohmann::json rf_json(const nn::value_facts& v, double pixels_per_degree) {
  return {{"size", {v.rf_h.size(), v.rf_w.size()}},
          {"jump", {v.rf_h.jump, v.rf_w.jump}},
          {"start", {v.rf_h.start(), v.rf_w.start()}},
          {"bounds_unit0", {{v.rf_h.lo, v.rf_h.hi}, {v.rf_w.lo, v.rf_w.hi}}},
          {"degrees", {static_cast<double>(v.rf_h.size()) / pixels_per_degree, static_cast<double>(v.rf_w.size()) / pixels_per_degree}},
          {"reach", reach_name(v.reach)}};
}
nlohmann::json shape_json(const nn::value_facts& v) { return {v.channels, v.h, v.w}; }

template <class Topology>
int describe(const settings& s, std::ostream& os) {
  using F = nn::model_facts<Topology>;
  const int classes = s.classes;
  if (!F::accepts(s.height, s.width)) {
    // Per axis: the side itself where it is fine, else the nearest accepted sides below and above it.
    auto nearest = [](std::int64_t side) {
      constexpr std::int64_t max_side = 1 << 16;
      const auto accepted = [](std::int64_t v) { return v >= 1 && v <= max_side && nn::detail::graph_accepts_side<F>(v); };
      if (accepted(side)) return std::to_string(side) + " is accepted";
      std::int64_t below = std::min(side, max_side), above = std::max<std::int64_t>(side, 1);
      while (below >= 1 && !accepted(below)) --below;
      while (above <= max_side && !accepted(above)) ++above;
      if (below < 1 && above > max_side) return std::string("none up to 65536");
      if (below < 1) return std::to_string(above);
      if (above > max_side) return std::to_string(below);
      return std::to_string(below) + " or " + std::to_string(above);
    };
    throw shape_error("input " + std::to_string(s.height) + "x" + std::to_string(s.width) + " gives no valid final feature map in " +
                      s.arch + " (nearest accepted sides: height " + nearest(s.height) + ", width " + nearest(s.width) + ")");
  }
  const double ppd = static_cast<double>(s.width) / s.degrees;  // pixels per degree (square pixels)
  const auto nodes = F::nodes(s.height, s.width, classes);
  const auto params = F::parameters(classes);
  const std::int64_t macs = F::macs(s.height, s.width, classes);
  const std::int64_t act = F::activation_elements(s.height, s.width, classes);
  const auto in_layer = [&](const nn::node_facts& n) { return s.layer.empty() || n.layer.view() == s.layer; };
  bool any = false;
  for (const auto& n : nodes) any = any || in_layer(n);
  GRCNN_CHECK(any, error, "--layer '", s.layer, "': ", s.arch, " has no such top-level layer");
  const auto input_name = [&](int e) { return e == -1 ? std::string("image") : nodes[static_cast<std::size_t>(e)].name.str(); };

  if (s.format == "json") {
    nlohmann::json j;
    j["arch"] = s.arch;
    j["input"] = {{"height", s.height}, {"width", s.width}, {"degrees", s.degrees}, {"pixels_per_degree", ppd}};
    j["classes"] = classes;
    j["parameters"] = {{"trainable", params.trainable}, {"fixed", params.fixed}, {"total", params.total()}};
    j["macs"] = macs;
    j["flops"] = 2 * macs;
    j["activation_elements"] = act;
    j["activation_bytes_f32"] = act * 4;
    j["activation_bytes_bf16"] = act * 2;
    for (const auto& n : nodes) {
      if (!in_layer(n)) continue;
      nlohmann::json inputs = nlohmann::json::array();
      for (int e : n.inputs)
        if (e != -2) inputs.push_back(input_name(e));
      j["nodes"].push_back({{"name", n.name.str()},       {"layer", n.layer.str()},
                            {"step", n.step},             {"inputs", inputs},
                            {"output", shape_json(n.output)},
                            {"parameters", {{"trainable", n.parameters.trainable}, {"fixed", n.parameters.fixed}}},
                            {"macs", n.macs},             {"flops", 2 * n.macs},
                            {"activation_elements", n.activation_elements},
                            {"rf", rf_json(n.output, ppd)}});
    }
    for (const auto& t : F::taps(s.height, s.width, classes)) {
      if (!in_layer(nodes[static_cast<std::size_t>(t.node)])) continue;
      j["taps"].push_back({{"name", t.name.str()}, {"step", t.step}, {"node", nodes[static_cast<std::size_t>(t.node)].name.str()},
                           {"output", shape_json(t.value)}, {"rf", rf_json(t.value, ppd)}});
    }
    os << j.dump(1) << "\n";
    return 0;
  }

  if (s.format == "dot") {
    os << "digraph \"" << s.arch << "\" {\n  rankdir=TB;\n  node [shape=box, fontname=\"Helvetica\", fontsize=10];\n";
    os << "  label=\"" << s.arch << (s.layer.empty() ? "" : " " + s.layer) << " at " << s.height << "x" << s.width << " px, " << s.degrees
       << " deg\";\n";
    const auto id = [](const std::string& name) {
      std::string r = "n_";
      for (char c : name) r += (std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
      return r;
    };
    std::string layer;
    bool open = false;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& n = nodes[i];
      if (!in_layer(n)) continue;
      if (n.layer.str() != layer) {
        if (open) os << "  }\n";
        layer = n.layer.str();
        os << "  subgraph \"cluster_" << layer << "\" {\n    label=\"" << layer << "\"; style=rounded; color=gray50;\n";
        open = true;
      }
      const std::string label = n.name.str() + (n.step ? "\\nt = " + std::to_string(n.step) : "") + "\\n" +
                                std::to_string(n.output.channels) + " x " + std::to_string(n.output.h) + " x " +
                                std::to_string(n.output.w) + "\\n" + fmt("%.3g", static_cast<double>(n.parameters.total())) +
                                " params, " + fmt("%.3g", static_cast<double>(n.macs)) + " MACs\\nRF " +
                                std::to_string(n.output.rf_h.size()) + " px = " +
                                fmt("%.2f", static_cast<double>(n.output.rf_h.size()) / ppd) + " deg" +
                                (n.output.reach != nn::spatial_reach::local ? " (+global)" : "");
      if (s.detail == "prims") {
        // The node's primitives as a cluster of their own, one box per tapped primitive.
        os << "    subgraph \"cluster_" << id(n.name.str()) << "\" {\n      label=\"" << label << "\"; style=filled; fillcolor=gray95;\n";
        const nn::node_program& p = *F::programs[i];
        for (int k = 0; k < p.size(); ++k) {
          const nn::prim& q = p[k];
          if (q.op == nn::prim_op::input || q.op == nn::prim_op::weights_only) continue;
          static constexpr const char* ops[] = {"input", "conv", "BN", "ReLU", "max pool", "avg pool", "global pool", "linear",
                                                "+", "x + sigmoid(a + b) * y", "SK select", "V1 response", "=", "weights"};
          std::string text = ops[static_cast<int>(q.op)];
          if (q.op == nn::prim_op::conv)
            text += " " + std::to_string(q.kernel) + "x" + std::to_string(q.kernel) + (q.stride > 1 ? " /" + std::to_string(q.stride) : "") +
                    (q.groups > 1 ? " g" + std::to_string(q.groups) : "") + (q.slot == nn::weight_slot::shared ? " (shared)" : "");
          if (!q.tap.empty()) text += "\\n" + q.tap.str();
          os << "      " << id(n.name.str()) << "_" << k << " [label=\"" << text << "\", shape="
             << (q.op == nn::prim_op::conv ? "box" : "ellipse") << "];\n";
        }
        for (int k = 0; k < p.size(); ++k) {
          const nn::prim& q = p[k];
          for (int o : q.operands) {
            if (o < 0) continue;
            const nn::prim& src = p[o];
            if (src.op == nn::prim_op::input) {
              const int e = n.inputs[static_cast<std::size_t>(o)];
              const std::string from = e == -1 ? "image" : id(nodes[static_cast<std::size_t>(e)].name.str()) + "_out";
              os << "      " << from << " -> " << id(n.name.str()) << "_" << k << ";\n";
            } else {
              os << "      " << id(n.name.str()) << "_" << o << " -> " << id(n.name.str()) << "_" << k << ";\n";
            }
          }
        }
        os << "      " << id(n.name.str()) << "_out [label=\"" << n.name.str() << "\", shape=point];\n      " << id(n.name.str()) << "_"
           << p.output() << " -> " << id(n.name.str()) << "_out;\n    }\n";
      } else {
        os << "    " << id(n.name.str()) << " [label=\"" << label << "\"];\n";
      }
    }
    if (open) os << "  }\n";
    if (s.detail != "prims") {
      for (const auto& n : nodes) {
        if (!in_layer(n)) continue;
        for (int e : n.inputs) {
          if (e == -2) continue;
          os << "  " << (e == -1 ? std::string("image") : id(nodes[static_cast<std::size_t>(e)].name.str())) << " -> "
             << id(n.name.str()) << ";\n";
        }
      }
    }
    os << "}\n";
    return 0;
  }

  // text
  os << s.arch << " at " << s.height << "x" << s.width << " px (" << s.degrees << " deg, " << fmt("%.2f", ppd) << " px/deg), "
     << classes << " classes\n";
  os << "parameters " << params.total() << " (" << params.trainable << " trainable, " << params.fixed << " fixed); "
     << fmt("%.4g", static_cast<double>(macs) / 1e9) << " GMACs = " << fmt("%.4g", 2.0 * static_cast<double>(macs) / 1e9)
     << " GFLOPs per image; activations " << fmt("%.4g", static_cast<double>(act) * 4 / (1 << 20)) << " MiB per image in f32 ("
     << fmt("%.4g", static_cast<double>(act) * 2 / (1 << 20)) << " in bf16)\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-22s %-4s %-34s %-18s %12s %14s %9s %6s %8s %8s\n", "node", "t", "inputs", "output", "params", "MACs",
                "RF px", "jump", "RF deg", "start");
  os << line;
  for (const auto& n : nodes) {
    if (!in_layer(n)) continue;
    std::string inputs;
    for (int e : n.inputs)
      if (e != -2) inputs += (inputs.empty() ? "" : ",") + input_name(e);
    const std::string shape = std::to_string(n.output.channels) + "x" + std::to_string(n.output.h) + "x" + std::to_string(n.output.w);
    const std::string rf = std::to_string(n.output.rf_h.size()) + (n.output.reach != nn::spatial_reach::local ? "+g" : "");
    std::snprintf(line, sizeof line, "%-22s %-4s %-34s %-18s %12lld %14lld %9s %6lld %8.2f %8.1f\n", n.name.str().c_str(),
                  n.step ? std::to_string(n.step).c_str() : "-", inputs.c_str(), shape.c_str(),
                  static_cast<long long>(n.parameters.total()), static_cast<long long>(n.macs), rf.c_str(),
                  static_cast<long long>(n.output.rf_h.jump), static_cast<double>(n.output.rf_h.size()) / ppd, n.output.rf_h.start());
    os << line;
  }
  os << "\n(RF: the theoretical receptive field of one output unit along the height, padding included, in evaluation mode; "
        "+g: the unit also depends on the whole image through a global pooling, such as an SK attention)\n";
  return 0;
}

int run_tool(int argc, char** argv) {
  CLI::App app{"grcnn-graph: a variant's unrolled graph with shapes, parameters, FLOPs and receptive fields"};
  settings s;
  std::int64_t size = 0;
  app.add_option("--arch", s.arch, "variant")->check(CLI::IsMember(models::variant_names()))->capture_default_str();
  // Up to 65536 pixels a side (the networks' own limit; larger sizes would overflow the 64-bit counts).
  const auto side_range = CLI::Range(std::int64_t{1}, std::int64_t{1} << 16);
  app.add_option("--size", size, "input height and width in pixels (default 224; 32 for CIFAR-style variants)")->check(side_range);
  app.add_option("--height", s.height, "input height (overrides --size)")->check(side_range);
  app.add_option("--width", s.width, "input width (overrides --size)")->check(side_range);
  app.add_option("--degrees", s.degrees, "visual angle the input's width spans, for fields in degrees")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--classes", s.classes, "classifier width (default: 1000 ImageNet-style, 10 CIFAR-style)")->check(CLI::PositiveNumber);
  app.add_option("--format", s.format, "text | dot | json")->check(CLI::IsMember({"text", "dot", "json"}))->capture_default_str();
  app.add_option("--layer", s.layer, "only this top-level layer (stem, layer1, ..., head)");
  app.add_option("--detail", s.detail, "dot: nodes | prims (the primitives inside each node)")
      ->check(CLI::IsMember({"nodes", "prims"}))->capture_default_str();
  app.add_option("--out", s.out, "write here instead of standard output");
  CLI11_PARSE(app, argc, argv);
  const bool cifar_style = s.arch.starts_with("grcnn56") || s.arch.starts_with("grcnn110") || s.arch == "grcnn_small";
  const std::int64_t side = size > 0 ? size : cifar_style ? 32 : 224;
  if (app.count("--height") == 0) s.height = side;
  if (app.count("--width") == 0) s.width = side;
  if (s.classes == 0) s.classes = cifar_style ? 10 : 1000;
  std::ostringstream os;
  const int rc = models::with_variant(s.arch, [&]<class Topology>() { return describe<Topology>(s, os); });
  if (s.out.empty()) {
    std::cout << os.str();
  } else {
    tools::activity doing("writing '" + s.out + "'");
    std::ofstream f(s.out, std::ios::binary);
    GRCNN_CHECK(f && (f << os.str()) && f.flush(), io_error, "cannot write '", s.out, "'");
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  return tools::guarded_main("grcnn-graph", [&] { return run_tool(argc, argv); });
}
