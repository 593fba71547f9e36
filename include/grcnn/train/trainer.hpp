#pragma once
// The training loop: epochs of optimizer steps on batches from a loader, an evaluation after each
// epoch, metrics as JSON lines, progress on the console, checkpoints (periodic, on SIGINT/SIGTERM,
// rotated, best kept), resume from a checkpoint, and a guard against non-finite losses. Works with any
// network type that has forward(variable), train(), eval(), state(), save_run_state/load_run_state
// (counters a checkpoint keeps) and set_replica (per-rank streams); nn::network has them all.
#include <atomic>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>

#include "grcnn/data/loader.hpp"
#include "grcnn/dist/batch_norm_group.hpp"
#include "grcnn/dist/communicator.hpp"
#include "grcnn/dist/data_parallel.hpp"
#include "grcnn/ops/losses.hpp"
#include "grcnn/train/checkpoint.hpp"
#include "grcnn/train/cutmix.hpp"
#include "grcnn/train/metrics.hpp"
#include "grcnn/train/progress.hpp"
#include "grcnn/train/schedule.hpp"
#include "grcnn/train/superclass.hpp"
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
  double cutmix_beta = 0.0;       // > 0: CutMix with lambda ~ Beta(beta, beta) ...
  double cutmix_prob = 1.0;       // ... applied to a batch with this probability
  // Multi-view batches (the loader's extra views: AugMix, texture/noise blends): the classification loss
  // on the clean view (or the mean over every view), plus jsd_weight times the Jensen-Shannon consistency
  // of all views (AugMix's 12; 0 turns it off).
  double jsd_weight = 12.0;
  bool ce_on_all_views = false;
  // The superclass term (weight inside), on the clean view's logits; null: off.
  std::shared_ptr<const superclass_regulariser> superclass;
  bool skip_nonfinite = false;    // skip a step whose loss is NaN/inf instead of stopping
  long stop_after = -1;           // stop (with a checkpoint) once this global step is reached
  bool evaluate_each_epoch = true;
  double log_interval_s = 10.0;   // plain progress lines on a non-terminal
  long log_every = 50;            // a "train" metrics record every this many steps
  std::uint64_t seed = 0;
  bool quiet = false;
  std::map<std::string, std::string> run_info;  // stored in every checkpoint (arch, dataset, ...)
  // Data-parallel training (dist/): null or a world of one trains alone. Otherwise every rank runs this
  // trainer with the same settings on its shard (the loaders' world/rank); gradients are averaged with
  // DDP's semantics (dist::data_parallel), the ranks agree on every decision that changes control flow
  // (a signal, stop_after, an unusable batch, a non-finite loss), evaluation is sharded and summed, and
  // only rank 0 prints, logs and writes checkpoints.
  dist::communicator* comm = nullptr;
  dist::data_parallel_options ddp;
  // With more than one rank: batch norm statistics over the global batch (PyTorch's SyncBatchNorm) for
  // the run; alone, the plain batch norm, as PyTorch's SyncBatchNorm without peers.
  bool sync_batch_norm = false;
};

struct eval_result {
  double loss = 0, top1 = 0, top5 = 0, images_per_s = 0, seconds = 0;
  std::size_t images = 0;
  std::size_t skipped = 0;  // unreadable images left out (the loader's skip_corrupt), each named on stderr
};

enum class fit_outcome { finished, interrupted, stopped };

struct fit_result {
  fit_outcome outcome = fit_outcome::finished;
  int signal = 0;  // SIGINT or SIGTERM when interrupted
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
// Notes the signal for the loop and restores the default action, so a second Ctrl-C ends a run that
// does not reach its next step.
extern "C" inline void on_signal(int sig) {
  pending_signal().store(sig);
  std::signal(sig, SIG_DFL);
}

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

// One pass of a loader through a network in eval mode without a tape: top-1/top-5 and the mean of
// loss(logits, labels). Interruptible: gives up (nullopt) when SIGINT/SIGTERM arrives during fit().
template <class Net, class Loss>
std::optional<eval_result> evaluate_network(Net& net, data::loader& l, Loss&& loss, bool interruptible = false,
                                            dist::communicator* comm = nullptr) {
  net.eval();
  struct back_to_train {
    Net& n;
    ~back_to_train() { n.train(); }
  } restore{net};
  autograd::no_grad_guard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  l.start_epoch(0);
  eval_result e;
  running_mean loss_m;
  std::size_t hits1 = 0, hits5 = 0;
  bool interrupted = false;
  // Sharded: a rank may not stop alone (its peers would evaluate on, for longer than a collective's
  // timeout, before the sums below), so the ranks agree on a signal every `agree_every` batches, up to
  // the batch count every rank has, and all stop at the same batch.
  const bool sharded = comm && comm->world_size() > 1;
  constexpr std::size_t agree_every = 8;
  std::int64_t agreed_batches = 0;
  if (sharded && interruptible) {
    agreed_batches = static_cast<std::int64_t>(l.batches_per_epoch());
    comm->all_reduce(&agreed_batches, 1, dtype::i64, dist::reduce_op::min);
  }
  for (std::size_t batch = 0;; ++batch) {
    if (interruptible && !sharded && trainer_detail::pending_signal().load() != 0) {
      interrupted = true;
      break;
    }
    if (interruptible && sharded && batch > 0 && batch % agree_every == 0 &&
        static_cast<std::int64_t>(batch) <= agreed_batches) {
      std::int64_t signalled = trainer_detail::pending_signal().load() != 0 ? 1 : 0;
      comm->all_reduce(&signalled, 1, dtype::i64, dist::reduce_op::max);
      if (signalled) {
        interrupted = true;
        break;
      }
    }
    auto b = l.next();
    if (!b) break;
    for (const auto& s : b->skipped) std::fprintf(stderr, "warning: evaluation skipped %s\n", s.c_str());
    e.skipped += b->skipped.size();
    if (b->size() == 0) continue;
    const variable logits = net.forward(variable(backends::to_backend<typename Net::backend>(b->images)));
    loss_m.add(loss(logits, b->labels).value().item(), static_cast<double>(b->size()));
    hits1 += topk_hits(logits.value(), b->labels, 1);
    hits5 += topk_hits(logits.value(), b->labels, std::min<int>(5, static_cast<int>(logits.dims()[1])));
    e.images += b->size();
  }
  if (sharded && interruptible && trainer_detail::pending_signal().load() != 0) interrupted = true;  // in the sums
  // A sharded evaluation: every rank's counts summed (each sample is in one shard).
  if (comm && comm->world_size() > 1) {
    double sums[7] = {loss_m.sum, loss_m.weight, static_cast<double>(hits1), static_cast<double>(hits5),
                      static_cast<double>(e.images), static_cast<double>(e.skipped), interrupted ? 1.0 : 0.0};
    comm->all_reduce(sums, 7, dtype::f64, dist::reduce_op::sum);
    loss_m.sum = sums[0], loss_m.weight = sums[1];
    hits1 = static_cast<std::size_t>(sums[2]), hits5 = static_cast<std::size_t>(sums[3]);
    e.images = static_cast<std::size_t>(sums[4]), e.skipped = static_cast<std::size_t>(sums[5]);
    interrupted = sums[6] > 0;
  }
  if (interrupted) return std::nullopt;
  // No accuracy exists without images: 0% would look like a result (and could even become the "best").
  GRCNN_CHECK(e.images > 0, error, "evaluation: no readable image among the ", l.data().size(), " sample(s) of ", l.data().describe(),
              e.skipped ? " (" + std::to_string(e.skipped) + " unreadable, named above)" : std::string());
  e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  e.loss = loss_m.mean();
  e.top1 = e.images ? static_cast<double>(hits1) / static_cast<double>(e.images) : 0.0;
  e.top5 = e.images ? static_cast<double>(hits5) / static_cast<double>(e.images) : 0.0;
  e.images_per_s = static_cast<double>(e.images) / std::max(e.seconds, 1e-9);
  return e;
}

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
    GRCNN_CHECK(o_.cutmix_beta >= 0 && o_.cutmix_prob >= 0 && o_.cutmix_prob <= 1, error,
                "trainer: CutMix needs beta >= 0 and a probability in [0, 1]");
    GRCNN_CHECK(o_.mixup_alpha == 0 || o_.cutmix_beta == 0, error, "trainer: use mixup or CutMix, not both");
    GRCNN_CHECK(o_.jsd_weight >= 0 && std::isfinite(o_.jsd_weight), error, "trainer: the JSD weight ", o_.jsd_weight,
                " must be a non-negative number");
    GRCNN_CHECK(o_.log_every > 0, error, "trainer: log_every must be positive");
    GRCNN_CHECK(schedule_.total_iterations() == o_.epochs * per_epoch(), error, "trainer: the schedule covers ",
                schedule_.total_iterations(), " iterations, the run ", o_.epochs * per_epoch());
    if (world() > 1) {
      GRCNN_CHECK(train_.options().world == static_cast<std::size_t>(world()) &&
                      train_.options().rank == static_cast<std::size_t>(o_.comm->rank()),
                  error, "trainer: rank ", o_.comm->rank(), " of ", world(), " got a training loader for rank ",
                  train_.options().rank, " of ", train_.options().world);
      ddp_ = std::make_unique<dist::data_parallel>(*o_.comm, net_.parameters(), o_.ddp);
      if (!writer()) o_.quiet = true;
      // Random streams per replica (the VOneBlock's fresh noise; its counter stays equal everywhere).
      net_.set_replica(o_.comm->rank(), world());
      if (o_.sync_batch_norm) {
        bn_group_ = std::make_unique<dist::communicator_batch_norm_group>(*o_.comm);
        net_.set_batch_norm_group(bn_group_.get());
      }
    }
  }
  ~trainer() {
    if (bn_group_ && net_.batch_norm_group() == bn_group_.get()) net_.set_batch_norm_group(nullptr);  // the network outlives us
  }
  trainer(const trainer&) = delete;
  trainer& operator=(const trainer&) = delete;

  const training_position& position() const { return pos_; }
  const checkpoint_folder& checkpoints() const { return folder_; }

  // Continues from a checkpoint written by this trainer: same model, optimizer groups, data and
  // settings (every run_info entry the checkpoint also holds must agree).
  void resume(const std::filesystem::path& path) {
    checkpoint_contents c = load_checkpoint(path, net_.state(), opt_);
    const std::string where = path.string();
    for (const auto& [key, mine] : o_.run_info) {
      const auto theirs = c.extra.find(key);
      GRCNN_CHECK(theirs == c.extra.end() || theirs->second == mine, error, "resume: '", where, "' was written with ", key,
                  " = ", theirs->second, ", this run has ", mine);
    }
    const long per = per_epoch();
    auto& p = c.position;
    // A checkpoint written by another number of ranks: the same samples seen, another position.
    const auto written_by = c.extra.find("world_size");
    const long ranks_then = written_by == c.extra.end() ? 1 : std::atol(written_by->second.c_str());
    if (ranks_then >= 1 && ranks_then != world()) {
      const auto batch = static_cast<long>(train_.options().batch_size);
      const long samples = p.iteration * batch * ranks_then;
      p.iteration = std::min(samples / (batch * world()), per - 1);
      p.global_step = p.epoch * per + p.iteration;
      // More ranks number the same position with a smaller step: checkpoints of both numberings in one
      // folder would be confused (--resume takes the highest step, rotation keeps later steps).
      const auto existing = folder_.list();
      GRCNN_CHECK(existing.empty() || existing.back().first <= p.global_step, error, "resume: '", where, "' was written by ",
                  ranks_then, " rank(s); with ", world(), " this position is step ", p.global_step, ", below the step ",
                  existing.back().first, " of a checkpoint already in '", o_.out.string(),
                  "': resume into another folder (--out NEW --resume ", where, ")");
      if (writer())
        std::fprintf(stderr, "resume: '%s' was written by %ld rank(s), this run has %d: continuing at epoch %ld, iteration %ld "
                     "(%ld samples of the epoch seen); the data order and the results differ from an uninterrupted run\n",
                     where.c_str(), ranks_then, world(), p.epoch + 1, p.iteration, samples);
    }
    GRCNN_CHECK(p.epoch >= 0 && p.epoch <= o_.epochs && p.iteration >= 0 && p.iteration < per &&
                    (p.epoch < o_.epochs || p.iteration == 0) && p.global_step == p.epoch * per + p.iteration,
                error, "resume: '", where, "' stands at epoch ", p.epoch, ", iteration ", p.iteration, ", step ", p.global_step,
                ", which is not a position of this run (", o_.epochs, " epochs of ", per, " iterations)");
    pos_ = p;
    if (!c.rng_state.empty()) {
      std::istringstream is(c.rng_state);
      is >> rng_;
      GRCNN_CHECK(!is.fail(), io_error, "resume: '", where, "' holds a malformed RNG state");
    }
    if (const auto it = c.extra.find("best_top1"); it != c.extra.end()) {
      try {
        best_top1_ = std::stod(it->second);
      } catch (const std::exception&) {
        throw io_error("resume: '" + where + "' has a malformed 'best_top1': '" + it->second + "'");
      }
    }
    net_.load_run_state(c.extra, where);  // the modules' counters (the VOneBlock's noise draws)
    pending_eval_ = c.extra.count("pending_eval") && c.extra.at("pending_eval") == "1";
    resumed_ = true;
    if (!o_.quiet)
      std::printf("resumed from %s at epoch %ld, iteration %ld (step %ld done)\n", where.c_str(), pos_.epoch + 1,
                  pos_.iteration, pos_.global_step);
  }

  fit_result fit() {
    GRCNN_CHECK(resumed_ || folder_.list().empty(), error, "trainer: '", o_.out.string(),
                "' already holds checkpoints of a run: resume it or choose another output folder");
    trainer_detail::signal_scope signals;
    std::optional<metrics_log> log_file;
    if (writer()) log_file.emplace(o_.out / "metrics.jsonl");
    metrics_log* log = log_file ? &*log_file : nullptr;
    if (ddp_) {  // rank 0's parameters and buffers everywhere (differing inits, or a checkpoint read by all)
      std::vector<tensor*> state;
      for (auto& e : net_.state()) state.push_back(&e.value());
      ddp_->broadcast(state);
    }
    fit_result r;
    r.best_top1 = best_top1_;
    const long per = per_epoch();
    std::size_t images_seen = 0;
    train_seconds_ = 0;
    // Resumed at an epoch end whose checkpoint was written before its evaluation: evaluate first.
    if (pending_eval_ && !run_eval(log, r)) return stop_run(r, images_seen, false);
    while (pos_.epoch < o_.epochs) {
      if (stop_requested()) return stop_run(r, images_seen, !checkpoint_is_current_);
      net_.train();
      const auto epoch_t0 = std::chrono::steady_clock::now();
      const std::size_t skipped_before = train_.skipped_total();
      train_.start_epoch(pos_.epoch, static_cast<std::size_t>(pos_.iteration));
      progress bar("epoch " + std::to_string(pos_.epoch + 1) + "/" + std::to_string(o_.epochs), static_cast<std::size_t>(per),
                   o_.log_interval_s);
      running_mean loss_m, top1_m, window_loss, window_top1;
      auto window_t0 = std::chrono::steady_clock::now();
      std::size_t window_images = 0;
      while (pos_.iteration < per) {
        if (stop_requested()) {
          train_seconds_ += seconds_since(epoch_t0);
          return stop_run(r, images_seen, true);
        }
        std::optional<data::batch> b = train_.next();
        GRCNN_CHECK(b.has_value(), error, "trainer: the loader ended its epoch before iteration ", pos_.iteration + 1);
        for (const auto& s : b->skipped) std::fprintf(stderr, "warning: skipped %s\n", s.c_str());
        // Every rank steps or none does (the smallest batch over the ranks decides).
        const std::size_t smallest = static_cast<std::size_t>(agree(static_cast<double>(b->size()), dist::reduce_op::min));
        if (smallest >= 2) {
          const auto [loss, hits, count] = step(*b, r);
          if (std::isfinite(loss)) {
            const double n = static_cast<double>(count), acc = static_cast<double>(hits) / n;
            loss_m.add(loss, n);
            top1_m.add(acc, n);
            window_loss.add(loss, n);
            window_top1.add(acc, n);
          }
          window_images += count;
          images_seen += count;
        } else {
          std::fprintf(stderr, "warning: batch %ld of epoch %ld has %zu readable image(s)%s; step skipped\n",
                       pos_.iteration + 1, pos_.epoch + 1, smallest, world() > 1 ? " on some rank" : "");
        }
        ++pos_.iteration;
        ++pos_.global_step;
        checkpoint_is_current_ = false;
        r.steps++;
        if (pos_.global_step % o_.log_every == 0 || pos_.iteration == per) {
          const double dt = seconds_since(window_t0);
          log_write(log, {{"type", "train"}, {"epoch", pos_.epoch + 1}, {"iteration", pos_.iteration}, {"global_step", pos_.global_step},
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
        if (o_.checkpoint_every > 0 && pos_.global_step % o_.checkpoint_every == 0 && pos_.iteration < per)
          r.last_checkpoint = write_checkpoint();
      }
      const double epoch_s = seconds_since(epoch_t0);
      train_seconds_ += epoch_s;
      log_write(log, {{"type", "epoch"}, {"epoch", pos_.epoch + 1}, {"global_step", pos_.global_step}, {"loss", loss_m.mean()},
                 {"top1", top1_m.mean()}, {"lr", opt_.groups().front().lr}, {"train_s", epoch_s},
                 {"skipped_images", train_.skipped_total() - skipped_before}});
      if (!o_.quiet) std::printf("epoch %ld/%ld: train loss %.4f top1 %.2f%%\n", pos_.epoch + 1, o_.epochs, loss_m.mean(), 100 * top1_m.mean());
      ++pos_.epoch;
      pos_.iteration = 0;
      // Checkpoint first, then evaluate: an evaluation that fails or is interrupted loses no training.
      pending_eval_ = eval_ && o_.evaluate_each_epoch;
      r.last_checkpoint = write_checkpoint();
      if (pending_eval_ && !run_eval(log, r)) return stop_run(r, images_seen, false);
    }
    finish(r, images_seen);
    return r;
  }

  // Top-1/top-5 accuracy and the mean loss over a loader's epoch 0: the training loss (GRCNN's recipe
  // validates with the smoothed loss), or plain cross-entropy for mixup and CutMix runs (their recipes).
  eval_result evaluate(data::loader& l) { return *evaluate_impl(l, false); }

  // The gradient reducer (null in a world of one), for its timings.
  const dist::data_parallel* data_parallel() const { return ddp_.get(); }

 private:
  long per_epoch() const { return static_cast<long>(train_.batches_per_epoch()); }
  static double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  int world() const { return o_.comm ? o_.comm->world_size() : 1; }
  bool writer() const { return !o_.comm || o_.comm->rank() == 0; }
  // One number agreed by every rank (the value itself in a world of one).
  double agree(double v, dist::reduce_op op) {
    if (world() > 1) o_.comm->all_reduce(&v, 1, dtype::f64, op);
    return v;
  }
  // A signal on any rank, or stop_after, stops every rank at the same step (the signal is adopted so
  // each rank reports it).
  bool stop_requested() {
    const int sig = static_cast<int>(agree(trainer_detail::pending_signal().load(), dist::reduce_op::max));
    if (sig != 0 && trainer_detail::pending_signal().load() == 0) trainer_detail::pending_signal().store(sig);
    return sig != 0 || (o_.stop_after >= 0 && pos_.global_step >= o_.stop_after);
  }
  static void log_write(metrics_log* log, const nlohmann::json& record) {
    if (log) log->write(record);
  }

  // Ends the run early (signal or stop_after), with a checkpoint of the current position.
  fit_result& stop_run(fit_result& r, std::size_t images, bool checkpoint) {
    if (checkpoint) r.last_checkpoint = write_checkpoint();
    if (r.last_checkpoint.empty()) r.last_checkpoint = folder_.path_for(pos_.global_step);
    const int sig = trainer_detail::pending_signal().load();
    r.outcome = sig != 0 ? fit_outcome::interrupted : fit_outcome::stopped;
    r.signal = sig;
    if (!o_.quiet)
      std::printf("\n%s after step %ld: checkpoint %s (continue with --resume)\n",
                  sig == SIGINT ? "interrupted (SIGINT)" : sig == SIGTERM ? "terminated (SIGTERM)" : "stopped", pos_.global_step,
                  r.last_checkpoint.string().c_str());
    finish(r, images);
    return r;
  }

  // The evaluation that closes an epoch: logged, and the epoch's checkpoint kept as best when it is.
  // Returns false when a signal interrupted it (the checkpoint still says it is pending).
  bool run_eval(metrics_log* log, fit_result& r) {
    sync_buffers();  // every rank evaluates its shard with rank 0's running statistics
    const std::optional<eval_result> e = evaluate_impl(*eval_, true);
    if (!e) {
      stop_requested();  // every rank adopts the signal that interrupted some rank's shard
      return false;
    }
    r.last_eval = *e;
    pending_eval_ = false;
    log_write(log, {{"type", "eval"}, {"epoch", pos_.epoch}, {"global_step", pos_.global_step}, {"loss", e->loss},
               {"top1", e->top1}, {"top5", e->top5}, {"images", e->images}, {"skipped_images", e->skipped},
               {"images_per_s", e->images_per_s}});
    if (!o_.quiet)
      std::printf("epoch %ld/%ld: eval loss %.4f top1 %.2f%% top5 %.2f%% (%zu images, %.1f s)\n", pos_.epoch, o_.epochs, e->loss,
                  100 * e->top1, 100 * e->top5, e->images, e->seconds);
    if (e->top1 > best_top1_) {
      best_top1_ = e->top1;
      const auto ckpt = folder_.path_for(pos_.global_step);
      if (writer() && std::filesystem::exists(ckpt)) copy_atomically(ckpt, folder_.best());
    }
    r.best_top1 = best_top1_;
    return true;
  }

  std::optional<eval_result> evaluate_impl(data::loader& l, bool interruptible) {
    return evaluate_network(
        net_, l,
        [&](const variable& logits, const std::vector<std::int64_t>& labels) {
          return o_.mixup_alpha > 0 || o_.cutmix_beta > 0 ? plain_loss(logits, labels) : loss_of(logits, labels, nullptr);
        },
        interruptible, o_.comm);
  }
  // Rank 0's BN running statistics to every rank (DDP's broadcast_buffers; training reads batch
  // statistics, so only evaluation and checkpoints see the difference).
  void sync_buffers() {
    if (!ddp_) return;
    std::vector<tensor*> buffers;
    for (auto& e : net_.state())
      if (!e.is_parameter()) buffers.push_back(&e.value());
    ddp_->broadcast(buffers);
  }

  static variable plain_loss(const variable& logits, const std::vector<std::int64_t>& labels) {
    return ops::cross_entropy<typename Net::backend>(logits, tensor::from_values(shape{static_cast<std::int64_t>(labels.size())}, labels));
  }
  // The loss of logits against labels, or against a soft target when one is given (mixup). Soft targets
  // take the logits' width (the classifier may be wider than the dataset's class count) and dtype.
  variable loss_of(const variable& logits, const std::vector<std::int64_t>& labels, const tensor* soft) const {
    const std::int64_t K = logits.dims()[1];
    if (soft) return ops::cross_entropy<typename Net::backend>(logits, *soft);
    if (o_.label_smoothing > 0 && o_.smoothing == smoothing_style::grcnn)
      return ops::cross_entropy<typename Net::backend>(logits, smoothed_one_hot(labels, K, o_.label_smoothing, logits.value().type()));
    const double eps = o_.smoothing == smoothing_style::pytorch ? o_.label_smoothing : 0.0;
    return ops::cross_entropy<typename Net::backend>(logits, tensor::from_values(shape{static_cast<std::int64_t>(labels.size())}, labels),
                              {.label_smoothing = eps});
  }

  // w * a and a + w * b for scalar losses (the backend's mul and add on [1] views).
  static variable scaled(const variable& a, double w) {
    const grcnn::shape one{1};
    const variable wa(tensor::full(one, w, a.value().type(), layout::plain, a.value().where()));
    return ops::reshape(ops::mul<typename Net::backend>(ops::reshape(a, one), wa), grcnn::shape{});
  }
  static variable weighted_sum(const variable& a, const variable& b, double w) {
    const grcnn::shape one{1};
    return ops::reshape(ops::add<typename Net::backend>(ops::reshape(a, one), ops::reshape(scaled(b, w), one)), grcnn::shape{});
  }

  struct step_result {
    double loss;        // NaN when skipped; over every rank's batch
    std::size_t hits;   // top-1 hits, every rank's
    std::size_t count;  // images, every rank's
  };
  // One optimizer step; returns the loss (NaN when skipped) and the top-1 hits of the batch.
  step_result step(data::batch& b, fit_result& r) {
    const double factor = schedule_.lr_factor(pos_.epoch, pos_.iteration);
    opt_.scale_lr(factor);
    if (const double m = schedule_.momentum(pos_.epoch, pos_.iteration); m >= 0)
      for (auto& g : opt_.groups()) (std::string(opt_.kind()) == "adamw" ? g.beta1 : g.momentum) = m;
    const int views = b.views;
    const auto n = static_cast<std::int64_t>(b.size());
    GRCNN_CHECK(views >= 1 && b.images.dim(0) == views * n, shape_error, "trainer: a batch of ", n, " labels holds ",
                b.images.describe(), ", not ", views, " view(s)");
    GRCNN_CHECK(views == 1 || o_.mixup_alpha == 0, error, "trainer: mixup is not defined for multi-view batches (use CutMix)");
    std::optional<mixup_result> mix;
    if (o_.mixup_alpha > 0) mix = mixup(b.images, o_.mixup_alpha, rng_);
    if (o_.cutmix_beta > 0)
      if (auto c = cutmix(b.images, o_.cutmix_beta, o_.cutmix_prob, rng_, views)) mix = c->mix;
    // With skipping on, BN running statistics are restored if the step turns out non-finite.
    std::vector<std::pair<tensor*, tensor>> bn_before;
    if (o_.skip_nonfinite)
      for (const auto& e : net_.state())
        if (!e.is_parameter()) bn_before.emplace_back(e.buffer, e.buffer->clone());
    // One forward over every view (BN sees them all, as in the original AugMix training).
    const variable all = net_.forward(variable(backends::to_backend<typename Net::backend>(b.images)));
    const variable logits = views > 1 ? ops::rows(all, 0, n) : all;
    std::optional<tensor> soft;
    if (mix) {
      soft = mixed_one_hot(b.labels, logits.dims()[1], *mix);
      if (o_.label_smoothing > 0) smooth_mixed(*soft, o_.label_smoothing);  // the SK recipe's smoothing of mixed targets
      if (logits.value().type() != dtype::f32) soft = soft->to_dtype(logits.value().type());
    }
    variable loss = loss_of(logits, b.labels, soft ? &*soft : nullptr);
    if (views > 1 && o_.ce_on_all_views) {
      for (int v = 1; v < views; ++v) loss = weighted_sum(loss, loss_of(ops::rows(all, v * n, (v + 1) * n), b.labels, soft ? &*soft : nullptr), 1.0);
      loss = scaled(loss, 1.0 / views);  // the mean over views
    }
    if (views > 1 && o_.jsd_weight > 0)
      loss = weighted_sum(loss, ops::jensen_shannon<typename Net::backend>(all, views), o_.jsd_weight);
    if (o_.superclass && o_.superclass->weight() > 0)
      loss = weighted_sum(loss, o_.superclass->template loss<typename Net::backend>(logits, b.labels, mix ? &*mix : nullptr),
                          o_.superclass->weight());
    double value = loss.value().item();
    std::size_t hits = topk_hits(logits.value(), b.labels, 1), count = b.size();
    if (world() > 1) {  // the batch loss over every rank (equal batches: the mean of the means), agreed
      double v[4] = {std::isfinite(value) ? value * static_cast<double>(count) : 0.0, static_cast<double>(count),
                     static_cast<double>(hits), std::isfinite(value) ? 0.0 : 1.0};
      o_.comm->all_reduce(v, 4, dtype::f64, dist::reduce_op::sum);
      value = v[3] > 0 ? std::nan("") : v[0] / v[1];
      count = static_cast<std::size_t>(v[1]), hits = static_cast<std::size_t>(v[2]);
    }
    if (!std::isfinite(value)) {
      GRCNN_CHECK(o_.skip_nonfinite, numeric_error, "training stopped: the loss is ", value, " at epoch ", pos_.epoch + 1,
                  ", iteration ", pos_.iteration + 1, " of ", per_epoch(), " (step ", pos_.global_step + 1,
                  "); lower the learning rate, or pass --skip-nonfinite to skip such steps");
      std::fprintf(stderr, "warning: non-finite loss %g at step %ld; step skipped\n", value, pos_.global_step + 1);
      for (auto& [dst, value_before] : bn_before) *dst = std::move(value_before);
      ++r.skipped_steps;
      opt_.zero_grad();
      return {std::nan(""), 0, count};
    }
    if (ddp_) ddp_->backward(loss);  // gradients averaged over the ranks, buckets reduced while backward runs
    else autograd::backward(loss);
    opt_.step();
    opt_.zero_grad();
    return {value, hits, count};
  }

  std::filesystem::path write_checkpoint() {
    checkpoint_contents c;
    c.position = pos_;
    std::ostringstream os;
    os << rng_;
    c.rng_state = os.str();
    c.extra = o_.run_info;
    if (best_top1_ >= 0) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.17g", best_top1_);  // round-trips exactly
      c.extra["best_top1"] = buf;
    }
    c.extra["pending_eval"] = pending_eval_ ? "1" : "0";
    c.extra["world_size"] = std::to_string(world());
    net_.save_run_state(c.extra);
    const auto path = folder_.path_for(pos_.global_step);
    if (writer()) {
      save_checkpoint(path, net_.state(), opt_, c);
      folder_.rotate(pos_.global_step);
    }
    // No rank goes on (or exits) before the checkpoint is complete; every rank's state equals rank 0's
    // (parameters, optimizer state and the trainer's RNG are the same everywhere; BN buffers are rank 0's).
    if (world() > 1) o_.comm->barrier();
    checkpoint_is_current_ = true;
    return path;
  }
  static void copy_atomically(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::ifstream in(from, std::ios::binary);
    GRCNN_CHECK(in.good(), io_error, "checkpoint: cannot open '", from.string(), "' to copy it to '", to.string(), "'");
    io::output_file out(to, "checkpoint");
    std::vector<char> buf(1 << 20);
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      out.write(buf.data(), static_cast<std::size_t>(in.gcount()));
    }
    GRCNN_CHECK(in.eof(), io_error, "checkpoint: reading '", from.string(), "' failed");
    out.commit();
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
  bool pending_eval_ = false;          // the last epoch's evaluation has not run yet
  bool resumed_ = false;
  bool checkpoint_is_current_ = false; // the newest checkpoint holds the current position
  std::unique_ptr<dist::data_parallel> ddp_;  // with more than one rank
  std::unique_ptr<dist::communicator_batch_norm_group> bn_group_;  // --sync-bn with more than one rank
};

}  // namespace grcnn::train
