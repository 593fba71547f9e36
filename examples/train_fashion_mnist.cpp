// Trains a small gated-recurrent conv net on Fashion-MNIST (real data from Debian's
// dataset-fashion-mnist) on the CPU, end to end with the op set: a stem, one GRCL-style block
// (x_t = x_{t-1} + sigmoid(g_t) * A_t(x_{t-1}), T = 2) and a linear readout, SGD with momentum.
// Prints loss, test accuracy, images/s and the allocator's steady-state counters.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>

#include <grcnn/data/idx.hpp>
#include <grcnn/ops.hpp>
#include <grcnn/train/sgd.hpp>

using namespace grcnn;
using autograd::variable;

namespace {

class model {
 public:
  model(int channels, int groups, int steps, int classes, unsigned seed) : groups_(groups), steps_(steps) {
    std::mt19937 rng(seed);
    const tensor probe = tensor::zeros({1, 1, 28, 28}, dtype::f32, layout::nhwc);
    stem_ = conv(rng, channels, 1, 3, 1, 1, probe);
    stem_bn_ = bn(channels);
    const tensor block_in = tensor::zeros({1, channels, 14, 14}, dtype::f32, layout::nhwc);
    bn_f_ = bn(channels);
    conv_f_ = conv(rng, channels, channels / groups, 3, 1, groups, block_in);
    bn_gf_ = bn(channels);
    conv_gf_ = conv(rng, channels, channels / groups, 1, 0, groups, block_in);
    bias_gf_ = add_param(tensor::zeros({channels}), 0);
    conv_gr_ = conv(rng, channels, channels / groups, 1, 0, groups, block_in);
    for (int t = 0; t < steps; ++t) {
      bn_gt_.push_back(bn(channels));
      bn_it_.push_back(bn(channels));
      conv_it_.push_back(conv(rng, channels, channels, 3, 1, 1, block_in));
    }
    head_bn_ = bn(channels);
    std::normal_distribution<double> n(0, 1.0 / std::sqrt(channels));
    std::vector<double> w(static_cast<std::size_t>(classes * channels));
    for (auto& e : w) e = n(rng);
    fc_w_ = add_param(tensor::from_values(shape{classes, channels}, w, dtype::f32), 5e-4);
    fc_b_ = add_param(tensor::zeros({classes}), 0);
  }

  variable forward(const variable& x, bool training) {
    auto bnr = [&](const variable& v, bn_state& s) {
      return ops::batch_norm(v, *s.gamma, *s.beta, s.mean, s.var, {.training = training, .fuse_relu = true});
    };
    const auto same3 = [&](int g) { return ops::conv2d_params::square(1, 1, 1, g); };
    const auto one1 = ops::conv2d_params::square(1, 0, 1, groups_);
    variable u = ops::max_pool2d(bnr(ops::conv2d(x, *stem_, same3(1)), stem_bn_), 3, 2, 1);
    variable h = ops::conv2d(bnr(u, bn_f_), *conv_f_, same3(groups_));
    const variable gf = ops::conv2d(bnr(u, bn_gf_), *conv_gf_, *bias_gf_, one1);
    for (int t = 0; t < steps_; ++t) {
      const variable gr = ops::conv2d(bnr(h, bn_gt_[t]), *conv_gr_, one1);  // one conv shared by every step
      const variable a = ops::conv2d(bnr(h, bn_it_[t]), *conv_it_[t], same3(1));
      h = ops::gated_update(h, gr, gf, a);
    }
    const variable pooled = ops::global_avg_pool(bnr(ops::avg_pool2d(h, 2, 2), head_bn_));
    return ops::linear(pooled, *fc_w_, *fc_b_);
  }

  // Weights decay; BN parameters and biases do not (two SGD groups).
  std::vector<variable*> decayed() { return decayed_; }
  std::vector<variable*> not_decayed() { return not_decayed_; }
  std::size_t parameter_count() const {
    std::size_t n = 0;
    for (const auto& p : params_) n += static_cast<std::size_t>(p.value().numel());
    return n;
  }

 private:
  struct bn_state {
    variable* gamma;
    variable* beta;
    tensor mean, var;
  };
  variable* add_param(tensor t, double wd) {
    params_.emplace_back(t, true);
    (wd > 0 ? decayed_ : not_decayed_).push_back(&params_.back());
    return &params_.back();
  }
  // Kaiming-normal conv weight, stored in oneDNN's preferred blocked format for this layer's input.
  variable* conv(std::mt19937& rng, int out, int in_per_group, int k, int pad, int g, const tensor& input_like) {
    std::normal_distribution<double> n(0, std::sqrt(2.0 / (in_per_group * k * k)));
    std::vector<double> w(static_cast<std::size_t>(out * in_per_group * k * k));
    for (auto& e : w) e = n(rng);
    const tensor plain = tensor::from_values(shape{out, in_per_group, k, k}, w, dtype::f32);
    const tensor x = tensor::zeros({1, static_cast<std::int64_t>(in_per_group) * g, input_like.dim(2), input_like.dim(3)},
                                   dtype::f32, layout::nhwc);
    const auto pr = ops::make_conv2d_problem(x, plain, nullptr, ops::conv2d_params::square(1, pad, 1, g));
    return add_param(plain.to_format(backends::onednn::preferred_conv_weight_format(pr)), 5e-4);
  }
  bn_state bn(int c) {
    bn_state s{add_param(tensor::full({c}, 1.0), 0), add_param(tensor::zeros({c}), 0), tensor::zeros({c}),
               tensor::full({c}, 1.0)};
    return s;
  }

  std::deque<variable> params_;  // stable addresses
  std::vector<variable*> decayed_, not_decayed_;
  int groups_, steps_;
  variable *stem_, *conv_f_, *conv_gf_, *bias_gf_, *conv_gr_, *fc_w_, *fc_b_;
  std::vector<variable*> conv_it_;
  bn_state stem_bn_, bn_f_, bn_gf_, head_bn_;
  std::vector<bn_state> bn_gt_, bn_it_;
};

struct dataset {
  std::vector<float> images;  // normalised, N x 28 x 28
  std::vector<std::int64_t> labels;
  std::size_t size() const { return labels.size(); }
};

dataset load(const std::filesystem::path& dir, const std::string& prefix) {
  auto find = [&](const std::string& stem) {
    for (const char* ext : {"-ubyte.gz", "-ubyte"}) {
      const auto p = dir / (prefix + stem + ext);
      if (std::filesystem::exists(p)) return p;
    }
    throw io_error("fashion-mnist: neither " + (dir / (prefix + stem + "-ubyte.gz")).string() + " nor the raw file exists");
  };
  const auto img = data::read_idx(find("-images-idx3"));
  const auto lab = data::read_idx(find("-labels-idx1"));
  GRCNN_CHECK(img.dims.size() == 3 && img.dims[1] == 28 && img.dims[2] == 28 && lab.dims.size() == 1 &&
                  lab.dims[0] == img.dims[0],
              io_error, "fashion-mnist: unexpected shapes in ", dir.string());
  dataset d;
  d.images.resize(img.values.size());
  for (std::size_t i = 0; i < img.values.size(); ++i) d.images[i] = (img.values[i] / 255.0f - 0.2860f) / 0.3530f;
  d.labels.assign(lab.values.begin(), lab.values.end());
  return d;
}

// A batch as an NHWC tensor (C = 1, so NHWC and NCHW coincide in memory), with optional flips.
tensor batch_images(const dataset& d, const std::vector<std::size_t>& order, std::size_t first, std::size_t n,
                    std::mt19937* flip_rng) {
  tensor t = tensor::empty({static_cast<std::int64_t>(n), 1, 28, 28}, dtype::f32, layout::nhwc);
  float* out = t.data<float>();
  std::bernoulli_distribution flip(0.5);
  for (std::size_t i = 0; i < n; ++i) {
    const float* src = d.images.data() + order[first + i] * 784;
    const bool f = flip_rng && flip(*flip_rng);
    for (int r = 0; r < 28; ++r)
      for (int c = 0; c < 28; ++c) out[i * 784 + r * 28 + c] = src[r * 28 + (f ? 27 - c : c)];
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small GRCNN-style network on Fashion-MNIST with the oneDNN backend"};
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int epochs = 1, batch = 64, channels = 32, groups = 8, steps = 2;
  long max_steps = -1, eval_limit = -1;
  double lr = 0.05, momentum = 0.9;
  unsigned seed = 1;
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files (gzip or raw)");
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "peak learning rate (cosine decay per step)")->check(CLI::PositiveNumber);
  app.add_option("--momentum", momentum, "SGD momentum")->check(CLI::Range(0.0, 1.0));
  app.add_option("--channels", channels, "channels of the recurrent block")->check(CLI::PositiveNumber);
  app.add_option("--groups", groups, "groups of the block's gate and feed-forward convs")->check(CLI::PositiveNumber);
  app.add_option("--iterations", steps, "recurrent iterations T of the block")->check(CLI::PositiveNumber);
  app.add_option("--max-steps", max_steps, "stop training after this many steps (a quick run)");
  app.add_option("--eval-limit", eval_limit, "evaluate on at most this many test images");
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);
  if (channels % groups != 0) {
    std::cerr << "--channels " << channels << " must be divisible by --groups " << groups << "\n";
    return 2;
  }

  try {
    const dataset train = load(data_dir, "train"), test = load(data_dir, "t10k");
    model net(channels, groups, steps, 10, seed);
    std::cout << "fashion-mnist: " << train.size() << " train / " << test.size() << " test images; model with "
              << net.parameter_count() << " parameters\n";
    train::sgd decay(net.decayed(), {.lr = lr, .momentum = momentum, .weight_decay = 5e-4});
    train::sgd no_decay(net.not_decayed(), {.lr = lr, .momentum = momentum});
    std::mt19937 rng(seed);
    std::vector<std::size_t> order(train.size());
    std::iota(order.begin(), order.end(), 0);
    const long steps_per_epoch = static_cast<long>(train.size()) / batch;
    const long total_steps = max_steps > 0 ? std::min(max_steps, steps_per_epoch * epochs) : steps_per_epoch * epochs;
    long step = 0;
    std::size_t allocs_after_warmup = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double recent_loss = 0;
    for (int epoch = 0; epoch < epochs && step < total_steps; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      for (long b = 0; b < steps_per_epoch && step < total_steps; ++b, ++step) {
        const variable x(batch_images(train, order, static_cast<std::size_t>(b * batch), static_cast<std::size_t>(batch), &rng));
        std::vector<std::int64_t> y(static_cast<std::size_t>(batch));
        for (int i = 0; i < batch; ++i) y[static_cast<std::size_t>(i)] = train.labels[order[static_cast<std::size_t>(b * batch + i)]];
        const variable loss = ops::cross_entropy(net.forward(x, true), tensor::from_values(shape{batch}, y));
        autograd::backward(loss);
        const double progress = static_cast<double>(step) / static_cast<double>(total_steps);
        for (train::sgd* opt : {&decay, &no_decay}) {
          opt->set_lr(lr * 0.5 * (1 + std::cos(M_PI * progress)));
          opt->step();
          opt->zero_grad();
        }
        recent_loss = 0.98 * recent_loss + 0.02 * loss.value().item();
        if (step == 2) allocs_after_warmup = host_allocator::instance().stats().system_allocations;
        if ((step + 1) % 100 == 0 || step + 1 == total_steps)
          std::printf("epoch %d step %ld/%ld loss %.4f (smoothed %.4f)\n", epoch + 1, step + 1, total_steps,
                      loss.value().item(), recent_loss / (1 - std::pow(0.98, static_cast<double>(step + 1))));
      }
    }
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::size_t steady_allocs = host_allocator::instance().stats().system_allocations - allocs_after_warmup;

    autograd::no_grad_guard no_grad;
    const std::size_t n_eval = eval_limit > 0 ? std::min<std::size_t>(static_cast<std::size_t>(eval_limit), test.size()) : test.size();
    std::vector<std::size_t> test_order(test.size());
    std::iota(test_order.begin(), test_order.end(), 0);
    std::size_t correct = 0;
    const auto e0 = std::chrono::steady_clock::now();
    for (std::size_t first = 0; first < n_eval; first += 250) {
      const std::size_t n = std::min<std::size_t>(250, n_eval - first);
      const auto logits = net.forward(variable(batch_images(test, test_order, first, n, nullptr)), false).value().values<float>();
      for (std::size_t i = 0; i < n; ++i) {
        const float* row = logits.data() + i * 10;
        correct += static_cast<std::size_t>(std::max_element(row, row + 10) - row) == static_cast<std::size_t>(test.labels[first + i]);
      }
    }
    const double eval_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
    std::printf("trained %ld steps (batch %d) in %.1f s: %.0f images/s\n", total_steps, batch, train_s,
                static_cast<double>(total_steps * batch) / train_s);
    std::printf("steady-state system allocations after step 3: %zu (allocator cache hits %zu)\n", steady_allocs,
                host_allocator::instance().stats().cache_hits);
    std::printf("test accuracy: %.2f%% on %zu images (%.1f s)\n", 100.0 * static_cast<double>(correct) / static_cast<double>(n_eval),
                n_eval, eval_s);
    const auto fb = backends::fallback_log::instance().total();
    if (fb) std::printf("warning: %zu op calls fell back from oneDNN to the reference backend\n", fb);
  } catch (const grcnn::error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
