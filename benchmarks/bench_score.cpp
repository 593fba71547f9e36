// Scoring one grcnn55-sized layer as Brain-Score's MajajHong2015 benchmark does: 2,560 stimuli of 64
// objects (StratifiedShuffleSplit: 2,304 training / 256 test per split), a 200,704-feature layer
// (256 x 28 x 28, grcnn55's layer1), 168 neuroids, 10 splits of PLS-25. Synthetic activations (a
// rectified low-rank signal plus noise) stand in for a real layer: only the sizes matter here.
// Reports the time of each stage and the peak resident memory.
//   bench_score [--stimuli 2560] [--features 200704] [--neuroids 168] [--splits 10] [--components 25]
#include <CLI/CLI.hpp>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <random>

#include <grcnn/eval/predictivity.hpp>

using namespace grcnn;
using clock_type = std::chrono::steady_clock;

namespace {
double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }
double peak_gib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);  // ru_maxrss is in KiB on Linux
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_score: Brain-Score-sized PLS scoring of one wide layer"};
  std::int64_t stimuli = 2560, features = 200704, neuroids = 168;
  int splits = 10, components = 25, objects = 64;
  app.add_option("--stimuli", stimuli)->capture_default_str();
  app.add_option("--features", features)->capture_default_str();
  app.add_option("--neuroids", neuroids)->capture_default_str();
  app.add_option("--splits", splits)->capture_default_str();
  app.add_option("--components", components)->capture_default_str();
  app.add_option("--objects", objects)->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const auto t0 = clock_type::now();
  std::mt19937_64 g(1);
  std::normal_distribution<float> z;
  const Eigen::Index rank = 20;
  Eigen::MatrixXf latent(stimuli, rank);
  for (Eigen::Index i = 0; i < latent.size(); ++i) latent(i) = z(g);
  // Features, row-major stimuli x features, built in column blocks: relu(latent A + noise).
  std::vector<float> x(static_cast<std::size_t>(stimuli * features));
  {
    using rows = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<rows> X(x.data(), stimuli, features);
    std::uint64_t s = 0x9e3779b97f4a7c15ull;
    for (std::int64_t j = 0; j < features; j += 4096) {
      const auto b = std::min<std::int64_t>(4096, features - j);
      Eigen::MatrixXf A(rank, b);
      for (Eigen::Index k = 0; k < A.size(); ++k) A(k) = z(g);
      Eigen::MatrixXf block = latent * A;
      for (Eigen::Index k = 0; k < block.size(); ++k) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;  // xorshift noise: fast, plenty for a benchmark
        block(k) = std::max(0.0f, block(k) + 2.0f * (static_cast<float>(s >> 40) / 16777216.0f - 0.5f));
      }
      X.middleCols(j, b) = block;
    }
  }
  Eigen::MatrixXd Y(stimuli, neuroids), W(rank, neuroids);
  for (Eigen::Index i = 0; i < W.size(); ++i) W(i) = z(g);
  Y = latent.cast<double>() * W;
  for (Eigen::Index i = 0; i < Y.size(); ++i) Y(i) += 2.0 * z(g);
  std::vector<std::int64_t> labels(static_cast<std::size_t>(stimuli));
  for (std::int64_t i = 0; i < stimuli; ++i) labels[static_cast<std::size_t>(i)] = i % objects;
  const auto split_list = eval::stratified_shuffle_split(labels, splits, 0.9, 1);
  const double t_data = seconds_since(t0);

  const auto t1 = clock_type::now();
  const auto gram = eval::feature_gram(x.data(), stimuli, features);
  const double t_gram = seconds_since(t1);

  const auto t2 = clock_type::now();
  const auto r = eval::score_from_gram(gram, Y, split_list, {.pls = {.components = components}});
  const double t_pls = seconds_since(t2);

  std::printf("bench_score: %lld stimuli (%zu train / %zu test per split), %lld features (f32, %.2f GiB), %lld neuroids\n",
              static_cast<long long>(stimuli), split_list[0].train.size(), split_list[0].test.size(),
              static_cast<long long>(features), static_cast<double>(x.size()) * 4 / (1 << 30), static_cast<long long>(neuroids));
  std::printf("  synthetic data         %8.1f s\n", t_data);
  std::printf("  Gram matrix (double)   %8.1f s\n", t_gram);
  std::printf("  %d splits of PLS-%d    %8.1f s (%.2f s per split)\n", splits, components, t_pls, t_pls / splits);
  std::printf("  score                  %8.4f +- %.4f (median r over neuroids, mean over splits)\n", r.score, r.error);
  std::printf("  peak resident memory   %8.2f GiB\n", peak_gib());
  return 0;
}
