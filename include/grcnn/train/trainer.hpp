#pragma once
// The training loop: epochs of optimizer steps on batches from a loader, an evaluation after each
// epoch, metrics as JSON lines, progress on the console, checkpoints (periodic, on SIGINT/SIGTERM,
// rotated, best kept), resume from a checkpoint, and a guard against non-finite losses. Works with any
// network type that has forward(variable), train(), eval() and state() (nn::network does).
#include <atomic>
#include <chrono>
#include <csignal>
#include <cmath>
#include <optional>
#include <sstream>

#include "grcnn/data/loader.hpp"
#include "grcnn/ops/losses.hpp"
#include "grcnn/train/checkpoint.hpp"
#include "grcnn/train/metrics.hpp"
#include "grcnn/train/progress.hpp"
#include "grcnn/train/schedule.hpp"
#include "grcnn/train/targets.hpp"

namespace grcnn::train {

enum class smoothing_style { grcnn, pytorch };  // eps over the K-1 wrong classes, or over all K

struct trainer_options {
  long epochs = 1;
  std::filesystem::path out = "run";
  int keep_checkpoints = 2;
  long checkpoint_every = 0;      // also checkpoint every this many steps (0: at epoch ends only)
  double label_smoothing = 0.0;
  smoothing_style smoothing = smoothing_style::grcnn;
  double mixup_alpha = 0.0;       // > 0: mixup with lambda ~ Beta(alpha, alpha), one per batch
  bool skip_nonfinite = false;    // skip a step whose loss is NaN/inf instead of stopping
  long stop_after = -1;           // stop (with a checkpoint) once this global step is reached
  bool evaluate_each_epoch = true;
  double log_interval_s = 10.0;   // plain progress lines on a non-terminal
  long log_every = 50;            // a "train" metrics record every this many steps
  std::uint64_t seed = 0;
  bool quiet = false;
  std::map<std::string, std::string> run_info;  // stored in every checkpoint (arch, dataset, ...)
};

struct eval_result {
  double loss = 0, top1 = 0, top5 = 0, images_per_s = 0, seconds = 0;
  std::size_t images = 0;
};

enum class fit_outcome { finished, interrupted, stopped };

struct fit_result {
  fit_outcome outcome = fit_outcome::finished;
  std::optional<eval_result> last_eval;
  double best_top1 = -1;
  double train_seconds = 0, train_images_per_s = 0;
  long steps = 0, skipped_steps = 0;
  std::filesystem::path last_checkpoint;
};

namespace trainer_detail {
inline std::atomic<int>& pending_signal() {
  static std::atomic<int> s{0};
  return s;
}
extern "C" inline void on_signal(int sig) { pending_signal().store(sig); }

// Installs SIGINT/SIGTERM handlers that only set a flag; restores the previous ones on exit.
class signal_scope {
 public:
  signal_scope() {
    pending_signal().store(0);
    old_int_ = std::signal(SIGINT, on_signal);
    old_term_ = std::signal(SIGTERM, on_signal);
  }
  ~signal_scope() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};
}  // namespace trainer_detail

template <class Net>
class trainer {
 public:
  trainer(Net& net, optimizer& opt, const lr_schedule& schedule, data::loader& train, data::loader* eval, trainer_options o)
      : net_(net), opt_(opt), schedule_(schedule), train_(train), eval_(eval), o_(std::move(o)),
        rng_(data::mix_seed(o_.seed, 0x7261696eull)), folder_(o_.out, o_.keep_checkpoints) {
    GRCNN_CHECK(o_.epochs > 0, error, "trainer: epochs must be positive");
    GRCNN_CHECK(o_.label_smoothing >= 0 && o_.label_smoothing < 1, error, "trainer: label smoothing ", o_.label_smoothing,
                " outside [0, 1)");
    GRCNN_CHECK(o_.mixup_alpha >= 0, error, "trainer: mixup alpha must be non-negative");
    GRCNN_CHECK(schedule_.total_iterations() == o_.epochs * static_cast<long>(train_.batches_per_epoch()), error,
                "trainer: the schedule covers ", schedule_.total_iterations(), " iterations, the run ",
                o_.epochs * static_cast<long>(train_.batches_per_epoch()));
  }

  const training_position& position() const { return pos_; }
  const checkpoint_folder& checkpoints() const { return folder_; }

  // Continues from a checkpoint written by this trainer (same model, optimizer groups and data).
  void resume(const std::filesystem::path& path) {
    checkpoint_contents c = load_checkpoint(path, net_.state(), opt_);
    for (const char* key : {"arch", "dataset", "batch", "seed", "schedule", "epochs"}) {
      const auto mine = o_.run_info.find(key), theirs = c.extra.find(key);
      GRCNN_CHECK(mine == o_.run_info.end() || theirs == c.extra.end() || mine->second == theirs->second, error,
                  "resume: '", path.string(), "' was written with ", key, " = ", theirs->second, ", this run has ", mine->second);
    }
    pos_ = c.position;
    if (!c.rng_state.empty()) {
      std::istringstream is(c.rng_state);
      is >> rng_;
      GRCNN_CHECK(!is.fail(), io_error, "resume: '", path.string(), "' holds a malformed RNG state");
    }
    if (const auto it = c.extra.find("best_top1"); it != c.extra.end()) best_top1_ = std::stod(it->second);
    if (!o_.quiet)
      std::printf("resumed from %s at epoch %ld, iteration %ld (step %ld)\n", path.string().c_str(), pos_.epoch + 1,
                  pos_.iteration, pos_.global_step);
  }

  fit_result fit() {
    trainer_detail::signal_scope signals;
    metrics_log log(o_.out / "metrics.jsonl");
    fit_result r;
    r.best_top1 = best_top1_;
    const long per_epoch = static_cast<long>(train_.batches_per_epoch());
    std::size_t images_seen = 0;
    train_seconds_ = 0;
    while (pos_.epoch < o_.epochs) {
      net_.train();
      const auto epoch_t0 = std::chrono::steady_clock::now();
      train_.start_epoch(pos_.epoch, static_cast<std::size_t>(pos_.iteration));
      progress bar("epoch " + std::to_string(pos_.epoch + 1) + "/" + std::to_string(o_.epochs), static_cast<std::size_t>(per_epoch),
                   o_.log_interval_s);
      running_mean loss_m, top1_m, window_loss, window_top1;
      auto window_t0 = std::chrono::steady_clock::now();
      std::size_t window_images = 0;
      while (auto b = train_.next()) {
        for (const auto& s : b->skipped) std::fprintf(stderr, "warning: skipped %s\n", s.c_str());
        if (b->size() >= 2) {
          const auto [loss, hits] = step(*b, r);
          if (std::isfinite(loss)) {
            loss_m.add(loss, static_cast<double>(b->size()));
            top1_m.add(static_cast<double>(hits) / static_cast<double>(b->size()), static_cast<double>(b->size()));
            window_loss.add(loss, static_cast<double>(b->size()));
            window_top1.add(static_cast<double>(hits) / static_cast<double>(b->size()), static_cast<double>(b->size()));
          }
          window_images += b->size();
          images_seen += b->size();
        }
        ++pos_.iteration;
        ++pos_.global_step;
        r.steps++;
        if (pos_.global_step % o_.log_every == 0 || pos_.iteration == per_epoch) {
          const double dt = seconds_since(window_t0);
          log.write({{"type", "train"}, {"epoch", pos_.epoch + 1}, {"iteration", pos_.iteration}, {"global_step", pos_.global_step},
                     {"loss", window_loss.mean()}, {"top1", window_top1.mean()}, {"lr", opt_.groups().front().lr},
                     {"images_per_s", static_cast<double>(window_images) / std::max(dt, 1e-9)}});
          window_loss.reset();
          window_top1.reset();
          window_images = 0;
          window_t0 = std::chrono::steady_clock::now();
        }
        if (!o_.quiet) {
          char status[160];
          std::snprintf(status, sizeof status, "loss %.4f top1 %.2f%% lr %.4g", loss_m.mean(), 100 * top1_m.mean(),
                        opt_.groups().front().lr);
          bar.update(static_cast<std::size_t>(pos_.iteration), status);
        }
        if (pos_.iteration == per_epoch) break;
        const int sig = trainer_detail::pending_signal().load();
        if (sig != 0 || (o_.stop_after >= 0 && pos_.global_step >= o_.stop_after)) {
          r.last_checkpoint = write_checkpoint();
          r.outcome = sig != 0 ? fit_outcome::interrupted : fit_outcome::stopped;
          if (!o_.quiet)
            std::printf("\n%s at step %ld: checkpoint %s (continue with --resume)\n",
                        sig != 0 ? (sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)") : "stopped",
                        pos_.global_step, r.last_checkpoint.string().c_str());
          train_seconds_ += seconds_since(epoch_t0);
          finish(r, images_seen);
          return r;
        }
        if (o_.checkpoint_every > 0 && pos_.global_step % o_.checkpoint_every == 0) r.last_checkpoint = write_checkpoint();
      }
      const double epoch_s = seconds_since(epoch_t0);
      train_seconds_ += epoch_s;
      log.write({{"type", "epoch"}, {"epoch", pos_.epoch + 1}, {"global_step", pos_.global_step}, {"loss", loss_m.mean()},
                 {"top1", top1_m.mean()}, {"lr", opt_.groups().front().lr}, {"train_s", epoch_s},
                 {"skipped_images", train_.skipped_total()}});
      if (eval_ && o_.evaluate_each_epoch) {
        const eval_result e = evaluate(*eval_);
        r.last_eval = e;
        log.write({{"type", "eval"}, {"epoch", pos_.epoch + 1}, {"global_step", pos_.global_step}, {"loss", e.loss},
                   {"top1", e.top1}, {"top5", e.top5}, {"images", e.images}, {"images_per_s", e.images_per_s}});
        if (!o_.quiet)
          std::printf("epoch %ld/%ld: train loss %.4f top1 %.2f%% | eval loss %.4f top1 %.2f%% top5 %.2f%% (%zu images, %.1f s)\n",
                      pos_.epoch + 1, o_.epochs, loss_m.mean(), 100 * top1_m.mean(), e.loss, 100 * e.top1, 100 * e.top5, e.images,
                      e.seconds);
        if (e.top1 > best_top1_) best_top1_ = e.top1;
      }
      ++pos_.epoch;
      pos_.iteration = 0;
      r.last_checkpoint = write_checkpoint();
      if (r.last_eval && r.last_eval->top1 >= best_top1_) copy_atomically(r.last_checkpoint, folder_.best());
      if (trainer_detail::pending_signal().load() != 0 || (o_.stop_after >= 0 && pos_.global_step >= o_.stop_after)) {
        r.outcome = trainer_detail::pending_signal().load() != 0 ? fit_outcome::interrupted : fit_outcome::stopped;
        break;
      }
    }
    finish(r, images_seen);
    return r;
  }

  // Top-1/top-5 accuracy and the mean loss over a loader's epoch 0: the training loss (GRCNN's recipe
  // validates with the smoothed loss), or plain cross-entropy for mixup runs (the SK recipe).
  eval_result evaluate(data::loader& l) {
    net_.eval();
    autograd::no_grad_guard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    l.start_epoch(0);
    eval_result e;
    running_mean loss_m;
    std::size_t hits1 = 0, hits5 = 0;
    while (auto b = l.next()) {
      if (b->size() == 0) continue;
      const variable logits = net_.forward(variable(b->images));
      const variable loss = o_.mixup_alpha > 0 ? plain_loss(logits, b->labels) : loss_of(logits, b->labels, nullptr);
      loss_m.add(loss.value().item(), static_cast<double>(b->size()));
      hits1 += topk_hits(logits.value(), b->labels, 1);
      hits5 += topk_hits(logits.value(), b->labels, std::min<int>(5, static_cast<int>(logits.dims()[1])));
      e.images += b->size();
    }
    e.seconds = seconds_since(t0);
    e.loss = loss_m.mean();
    e.top1 = e.images ? static_cast<double>(hits1) / static_cast<double>(e.images) : 0.0;
    e.top5 = e.images ? static_cast<double>(hits5) / static_cast<double>(e.images) : 0.0;
    e.images_per_s = static_cast<double>(e.images) / std::max(e.seconds, 1e-9);
    net_.train();
    return e;
  }

 private:
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }

  static variable plain_loss(const variable& logits, const std::vector<std::int64_t>& labels) {
    return ops::cross_entropy(logits, tensor::from_values(shape{static_cast<std::int64_t>(labels.size())}, labels));
  }
  // The loss of logits against labels, or against a soft target when one is given (mixup).
  variable loss_of(const variable& logits, const std::vector<std::int64_t>& labels, const tensor* soft) const {
    const std::int64_t K = logits.dims()[1];
    if (soft) return ops::cross_entropy(logits, *soft);
    if (o_.label_smoothing > 0 && o_.smoothing == smoothing_style::grcnn)
      return ops::cross_entropy(logits, smoothed_one_hot(labels, K, o_.label_smoothing));
    const double eps = o_.smoothing == smoothing_style::pytorch ? o_.label_smoothing : 0.0;
    return ops::cross_entropy(logits, tensor::from_values(shape{static_cast<std::int64_t>(labels.size())}, labels),
                              {.label_smoothing = eps});
  }

  // One optimizer step; returns the loss (NaN when skipped) and the top-1 hits of the batch.
  std::pair<double, std::size_t> step(data::batch& b, fit_result& r) {
    const double factor = schedule_.lr_factor(pos_.epoch, pos_.iteration);
    opt_.scale_lr(factor);
    if (const double m = schedule_.momentum(pos_.epoch, pos_.iteration); m >= 0)
      for (auto& g : opt_.groups()) (std::string(opt_.kind()) == "adamw" ? g.beta1 : g.momentum) = m;
    std::optional<tensor> soft;
    if (o_.mixup_alpha > 0) {
      const mixup_result m = mixup(b.images, o_.mixup_alpha, rng_);
      soft = mixed_one_hot(b.labels, train_.data().num_classes(), m);
      if (o_.label_smoothing > 0) smooth_mixed(*soft, o_.label_smoothing);
    }
    const variable logits = net_.forward(variable(b.images));
    const variable loss = loss_of(logits, b.labels, soft ? &*soft : nullptr);
    const double value = loss.value().item();
    if (!std::isfinite(value)) {
      GRCNN_CHECK(o_.skip_nonfinite, numeric_error, "training stopped: the loss is ", value, " at epoch ", pos_.epoch + 1,
                  ", iteration ", pos_.iteration, " (global step ", pos_.global_step,
                  "); lower the learning rate, or pass --skip-nonfinite to skip such steps");
      std::fprintf(stderr, "warning: non-finite loss %g at global step %ld; step skipped\n", value, pos_.global_step);
      ++r.skipped_steps;
      opt_.zero_grad();
      return {std::nan(""), 0};
    }
    autograd::backward(loss);
    opt_.step();
    opt_.zero_grad();
    return {value, topk_hits(logits.value(), b.labels, 1)};
  }

  std::filesystem::path write_checkpoint() {
    checkpoint_contents c;
    c.position = pos_;
    std::ostringstream os;
    os << rng_;
    c.rng_state = os.str();
    c.extra = o_.run_info;
    if (best_top1_ >= 0) c.extra["best_top1"] = std::to_string(best_top1_);
    const auto path = folder_.path_for(pos_.global_step);
    save_checkpoint(path, net_.state(), opt_, c);
    folder_.rotate();
    return path;
  }
  static void copy_atomically(const std::filesystem::path& from, const std::filesystem::path& to) {
    const auto tmp = to.string() + ".tmp";
    std::filesystem::copy_file(from, tmp, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(tmp, to);
  }
  void finish(fit_result& r, std::size_t images) {
    r.train_seconds = train_seconds_;
    r.train_images_per_s = static_cast<double>(images) / std::max(r.train_seconds, 1e-9);
    r.best_top1 = best_top1_;
  }

  Net& net_;
  optimizer& opt_;
  const lr_schedule& schedule_;
  data::loader& train_;
  data::loader* eval_;
  trainer_options o_;
  std::mt19937_64 rng_;
  checkpoint_folder folder_;
  training_position pos_;
  double best_top1_ = -1;
  double train_seconds_ = 0;  // optimizer steps and data, evaluation excluded
};

}  // namespace grcnn::train
