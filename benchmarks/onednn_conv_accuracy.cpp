// oneDNN's f32 convolution implementations side by side, for accuracy: one convolution (batch 2, ReLU'd
// normal inputs, He-scaled normal weights) through every implementation oneDNN offers for the chosen
// activation layout (primitive_desc::next_impl), each output's relative L2 error against the same
// convolution in double, and its time. Shows why PyTorch's NCHW f32 (oneDNN's blocked nChw16c kernels)
// sits about 2x closer to float64 than any channels-last kernel (docs/models.md, "f32 accuracy").
//   onednn_conv_accuracy C_IN C_OUT KERNEL SIDE nhwc|nchw|blk      e.g. 512 128 1 32 nhwc
#include <dnnl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>
using namespace dnnl;
using tag = memory::format_tag;
int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: onednn_conv_accuracy C_IN C_OUT KERNEL SIDE nhwc|nchw|blk\n");
    return 2;
  }
  auto arg = [&](int i, const char* what, int most) {
    char* end = nullptr;
    const long v = std::strtol(argv[i], &end, 10);
    if (*argv[i] == '\0' || *end != '\0' || v < 1 || v > most) {
      std::fprintf(stderr, "onednn_conv_accuracy: %s must be an integer in [1, %d], got '%s'\n", what, most, argv[i]);
      std::exit(2);
    }
    return static_cast<int>(v);
  };
  const int N = 2, C = arg(1, "C_IN", 2048), O = arg(2, "C_OUT", 2048), K = arg(3, "KERNEL", 7), H = arg(4, "SIDE", 112);
  const std::string layout_name = argv[5];
  if (layout_name != "nhwc" && layout_name != "nchw" && layout_name != "blk") {
    std::fprintf(stderr, "onednn_conv_accuracy: layout must be nhwc, nchw or blk, got '%s'\n", argv[5]);
    return 2;
  }
  if (K % 2 == 0 || K > H) {
    std::fprintf(stderr, "onednn_conv_accuracy: KERNEL must be odd and at most SIDE (got %d, %d)\n", K, H);
    return 2;
  }
  const tag t = layout_name == "nchw" ? tag::nchw : (layout_name == "blk" ? tag::any : tag::nhwc);
  engine eng(engine::kind::cpu, 0); stream s(eng);
  std::mt19937 g(1); std::normal_distribution<float> nd;
  std::vector<float> x(N * C * H * H), w(O * C * K * K);
  for (auto& v : x) v = std::max(0.f, nd(g));
  for (auto& v : w) v = nd(g) * std::sqrt(2.f / (C * K * K));
  // x stored NCHW logically; compute the double reference
  std::vector<double> ref(N * O * H * H, 0.0);
  int P = K / 2;
  for (int n = 0; n < N; ++n) for (int o = 0; o < O; ++o) for (int i = 0; i < H; ++i) for (int j = 0; j < H; ++j) {
    double a = 0; for (int c = 0; c < C; ++c) for (int u = 0; u < K; ++u) for (int v = 0; v < K; ++v) {
      int ii = i + u - P, jj = j + v - P; if (ii < 0 || jj < 0 || ii >= H || jj >= H) continue;
      a += double(x[((n * C + c) * H + ii) * H + jj]) * w[((o * C + c) * K + u) * K + v]; }
    ref[((n * O + o) * H + i) * H + j] = a; }
  memory::desc xs({N, C, H, H}, memory::data_type::f32, t), ws({O, C, K, K}, memory::data_type::f32, tag::any),
      ys({N, O, H, H}, memory::data_type::f32, t);
  convolution_forward::desc d(prop_kind::forward_inference, algorithm::convolution_direct, xs, ws, ys, {1, 1}, {P, P}, {P, P});
  convolution_forward::primitive_desc pd(d, eng);
  do {
    memory xu({{N, C, H, H}, memory::data_type::f32, tag::nchw}, eng, x.data()), wu({{O, C, K, K}, memory::data_type::f32, tag::oihw}, eng, w.data());
    memory xm(pd.src_desc(), eng), wm(pd.weights_desc(), eng), ym(pd.dst_desc(), eng);
    reorder(xu, xm).execute(s, xu, xm); reorder(wu, wm).execute(s, wu, wm);
    convolution_forward c(pd);
    c.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}}); s.wait();
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < 20; ++r) c.execute(s, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, ym}});
    s.wait();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / 20;
    std::vector<float> y(N * O * H * H); memory yu({{N, O, H, H}, memory::data_type::f32, tag::nchw}, eng, y.data());
    reorder(ym, yu).execute(s, ym, yu); s.wait();
    double e = 0, m = 0; for (size_t i = 0; i < y.size(); ++i) { e += (y[i] - ref[i]) * (y[i] - ref[i]); m += ref[i] * ref[i]; }
    std::printf("%-28s err %.3e  %.3f ms\n", pd.impl_info_str(), std::sqrt(e / m), ms);
  } while (pd.next_impl());
}
