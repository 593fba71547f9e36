// Normal draws (core/random.hpp) into the VOneBlock's noise map: by default grcnn55's q0 at 224x224 and
// batch 16, [16, 512, 56, 56], in f32 and bf16, plain and channels-last. Prints one JSON object per
// variant with the median time over --reps calls after a warm-up call.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include <nlohmann/json.hpp>

#include <grcnn/core/random.hpp>

using namespace grcnn;

int main(int argc, char** argv) {
  CLI::App app{"grcnn normal-draw benchmark"};
  std::vector<std::int64_t> dims{16, 512, 56, 56};
  int reps = 7;
  app.add_option("--shape", dims, "N C H W")->expected(4);
  app.add_option("--reps", reps, "timed calls per variant")->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  const shape s{dims[0], dims[1], dims[2], dims[3]};
  for (dtype t : {dtype::f32, dtype::bf16})
    for (layout l : {layout::plain, layout::nhwc}) {
      std::uint64_t call = 0;
      (void)standard_normal(s, {.seed = 1, .stream = ++call}, t, l);
      std::vector<double> ms;
      for (int r = 0; r < reps; ++r) {
        const auto a = std::chrono::steady_clock::now();
        const tensor x = standard_normal(s, {.seed = 1, .stream = ++call}, t, l);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
      }
      std::sort(ms.begin(), ms.end());
      std::cout << nlohmann::json{{"dtype", std::string(name_of(t))}, {"layout", std::string(name_of(l))},
                                  {"values", s.numel()}, {"median_ms", ms[ms.size() / 2]},
                                  {"isa", std::string(name_of(active_cpu_isa()))}}
                       .dump()
                << std::endl;
    }
  return 0;
}
