// grcnn-train: trains (or evaluates) a ready-made GRCNN on ImageFolder, Fashion-MNIST, MNIST or
// CIFAR data with the paper's recipes: SGD/AdamW with parameter groups, step/multistep/cosine/one-cycle
// schedules with warm-up, GRCNN's or PyTorch's label smoothing, mixup; the paper's methods (CutMix,
// AugMix with the Jensen-Shannon loss, the superclass term, texture/noise blending, staged fine-tuning of
// one layer with the others frozen); checkpoints, resume, metrics; settings also from a recipe file.
//   grcnn-train --arch grcnn_small --dataset fashion-mnist --epochs 5 --out runs/fmnist
//   grcnn-train --arch grcnn55 --dataset imagefolder --data /imagenet/train --eval-data /imagenet/val ...
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <type_traits>
#include <omp.h>

#ifdef GRCNN_HAS_MPI
#include <grcnn/dist/mpi.hpp>
#endif
#ifdef GRCNN_HAS_NCCL
#include <grcnn/dist/nccl.hpp>
#endif
#include <grcnn/backends/select.hpp>
#include <grcnn/data/augmix.hpp>
#include <grcnn/data/cifar.hpp>
#include <grcnn/data/texture_blend.hpp>
#include <grcnn/data/image_folder.hpp>
#include <grcnn/data/mnist.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/models/vone_noise.hpp>
#include <grcnn/train/adamw.hpp>
#include <grcnn/train/sgd.hpp>
#include <grcnn/train/trainer.hpp>
#ifdef GRCNN_HAVE_CUDA
#include <grcnn/train/cuda_updates.hpp>  // the optimizers' device updates
#endif

#include "tool_main.hpp"
#include "train_settings.hpp"

using namespace grcnn;
using autograd::variable;

namespace {

using tools::settings;

// The process group when a launcher started this run with more than one rank (mpirun, srun); null
// otherwise. Owned by main(), so that a failure can end every rank (abort) instead of waiting in
// MPI_Finalize for ranks that wait in a collective.
dist::communicator* world = nullptr;  // the ranks' engine: MPI, or NCCL over MPI with --backend cuda
#ifdef GRCNN_HAS_MPI
dist::mpi_communicator* mpi_world = nullptr;
#endif
#ifdef GRCNN_HAS_NCCL
std::unique_ptr<dist::nccl_communicator> gpu_world;  // released in main before MPI is
#endif
bool distributed() { return world && world->world_size() > 1; }

// grcnn-train's data folder (superclass maps, textures), where the build put it.
std::filesystem::path data_dir() {
#ifdef GRCNN_DATA_DIR
  return GRCNN_DATA_DIR;
#else
  return "data";
#endif
}

// The first `limit` samples of another dataset (quick runs, CI).
class subset final : public data::dataset {
 public:
  subset(std::unique_ptr<data::dataset> d, std::size_t limit) : d_(std::move(d)), n_(std::min(limit, d_->size())) {}
  std::size_t size() const override { return n_; }
  data::sample get(std::size_t i) const override {
    check_index(i);
    return d_->get(i);
  }
  std::int64_t num_classes() const override { return d_->num_classes(); }
  std::string describe() const override { return d_->describe() + " (first " + std::to_string(n_) + ")"; }

 private:
  std::unique_ptr<data::dataset> d_;
  std::size_t n_;
};

struct data_setup {
  std::unique_ptr<data::dataset> train, eval;  // train is left empty for --eval-only
  data::pipeline train_pipe, eval_pipe;
};

// The extra training views: two AugMix views (the original's JSD batch) and/or texture and noise blends.
void add_views(const settings& s, data::pipeline& p, int image_size) {
  if (s.augmix) {
    data::augmix::options o;
    o.severity = s.augmix_severity ? s.augmix_severity : (s.dataset == "imagefolder" ? 1 : 3);
    o.width = s.augmix_width;
    o.depth = s.augmix_depth;
    o.alpha = s.augmix_alpha;
    o.all_ops = s.augmix_all_ops;
    o.image_size = image_size;
    p.views.push_back(data::augmix::view(o));
    p.views.push_back(data::augmix::view(o));
  }
  if (s.blend.empty()) return;
  const std::filesystem::path tex_dir = s.textures.empty() ? data_dir() / "textures" : std::filesystem::path(s.textures);
  auto textures = std::make_shared<const data::texture_set>(data::texture_set::from_folder(tex_dir));
  std::printf("textures: %zu from %s\n", textures->size(), tex_dir.string().c_str());
  for (const auto& b : s.blend) {
    if (b == "texture") {
      p.views.push_back(data::blend_view(textures, data::texture_alpha));
    } else {  // noise
      std::shared_ptr<const data::texture_set> noise;
      if (s.noise.empty()) {
        noise = std::make_shared<const data::texture_set>(
            data::texture_set::phase_noise(*textures, data::phase::parse_mode(s.noise_mode), data::mix_seed(s.seed, 0x6e6f69)));
        std::printf("noise: %zu phase-randomised (%s) textures\n", noise->size(), s.noise_mode.c_str());
      } else {
        noise = std::make_shared<const data::texture_set>(data::texture_set::from_folder(s.noise));
        std::printf("noise: %zu from %s\n", noise->size(), s.noise.c_str());
      }
      p.views.push_back(data::blend_view(noise, data::noise_alpha));
    }
  }
}

data_setup open_data(const settings& s) {
  data_setup d;
  const std::string& ds = s.dataset;
  if (ds == "fashion-mnist" || ds == "mnist") {
    const std::string dir = !s.data.empty() ? s.data : (ds == "mnist" ? "/usr/share/datasets/mnist" : "/usr/share/datasets/fashion-mnist");
    if (!s.eval_only) d.train = data::open_mnist_style(dir, true, ds);
    d.eval = data::open_mnist_style(s.eval_data.empty() ? dir : s.eval_data, false, ds);
    const float mean = ds == "mnist" ? 0.1307f : 0.2860f, sd = ds == "mnist" ? 0.3081f : 0.3530f;
    const int size = s.image_size ? s.image_size : 32;
    // 28-pixel images: zero-padded to an even larger size (32 by default: halves cleanly three times),
    // otherwise rescaled, the same way for training and evaluation.
    const data::transform_step fit = size >= 28 && (size - 28) % 2 == 0 ? data::zero_pad((size - 28) / 2)
                                                                         : data::resize_then_center_crop(size, size);
    if (size != 28) {
      d.train_pipe.steps.push_back(fit);
      d.eval_pipe.steps.push_back(fit);
    }
    d.train_pipe.steps.push_back(data::random_crop(size, std::max(1, size / 14)));
    if (ds == "fashion-mnist") d.train_pipe.steps.push_back(data::random_horizontal_flip());
    d.train_pipe.mean = d.eval_pipe.mean = {mean, mean, mean};
    d.train_pipe.stddev = d.eval_pipe.stddev = {sd, sd, sd};
  } else if (ds == "cifar10" || ds == "cifar100") {
    GRCNN_CHECK(!s.data.empty(), error, "--dataset ", ds, " needs --data DIR (the binary version's folder)");
    GRCNN_CHECK(s.image_size == 0 || s.image_size == 32, error, "--image-size ", s.image_size, ": CIFAR images are 32x32");
    const bool c100 = ds == "cifar100";
    if (!s.eval_only) d.train = std::make_unique<data::cifar_dataset>(s.data, c100, true);
    d.eval = std::make_unique<data::cifar_dataset>(s.eval_data.empty() ? s.data : s.eval_data, c100, false);
    d.train_pipe.steps = {data::random_crop(32, 4), data::random_horizontal_flip()};
    d.train_pipe.mean = d.eval_pipe.mean = c100 ? std::array<float, 3>{0.5071f, 0.4867f, 0.4408f} : std::array<float, 3>{0.4914f, 0.4822f, 0.4465f};
    d.train_pipe.stddev = d.eval_pipe.stddev = c100 ? std::array<float, 3>{0.2675f, 0.2565f, 0.2761f} : std::array<float, 3>{0.2023f, 0.1994f, 0.2010f};
  } else {  // imagefolder
    const int size = s.image_size ? s.image_size : 224;
    if (!s.eval_only) {
      GRCNN_CHECK(!s.data.empty(), error, "--dataset imagefolder needs --data DIR (root/<class>/<image>)");
      d.train = std::make_unique<data::image_folder>(s.data);
    }
    const std::string eval_root = !s.eval_data.empty() ? s.eval_data : (s.eval_only ? s.data : "");
    GRCNN_CHECK(!s.eval_only || !eval_root.empty(), error, "--eval-only with imagefolder needs --eval-data DIR (or --data DIR)");
    if (!eval_root.empty()) {
      auto eval = std::make_unique<data::image_folder>(eval_root);
      if (d.train) {
        const auto& train_classes = static_cast<const data::image_folder&>(*d.train).classes();
        GRCNN_CHECK(eval->classes() == train_classes, error, "--eval-data '", eval_root, "' has ", eval->classes().size(),
                    " class folders that differ from the ", train_classes.size(), " of --data '", s.data,
                    "': class indices would not match");
      }
      d.eval = std::move(eval);
    }
    d.train_pipe.steps = {data::random_resized_crop(size), data::random_horizontal_flip()};
    d.eval_pipe.steps = {data::resize_then_center_crop(size * 256 / 224, size)};
  }
  if (d.train) add_views(s, d.train_pipe, s.image_size ? s.image_size : (ds == "imagefolder" ? 224 : 32));
  if (s.limit_train > 0 && d.train) d.train = std::make_unique<subset>(std::move(d.train), static_cast<std::size_t>(s.limit_train));
  if (s.limit_eval > 0 && d.eval) d.eval = std::make_unique<subset>(std::move(d.eval), static_cast<std::size_t>(s.limit_eval));
  return d;
}

// Parameter groups: everything decayed (the original recipe), or BN and biases (rank-1 tensors) in a
// second group without weight decay. --train-only freezes every parameter none of whose names (a
// shared weight has several) lies under the given prefixes.
template <class Net>
std::vector<train::param_group> make_groups(Net& net, const settings& s) {
  train::param_group decay{.name = "decay", .lr = s.lr, .weight_decay = s.wd, .momentum = s.momentum, .nesterov = s.nesterov};
  train::param_group no_decay = decay;
  no_decay.name = "no_decay";
  no_decay.weight_decay = 0;
  auto under = [&](const std::string& name) {
    return std::any_of(s.train_only.begin(), s.train_only.end(),
                       [&](const std::string& p) { return name == p || name.rfind(p + ".", 0) == 0; });
  };
  std::map<const void*, bool> trainable;  // per parameter cell: any of its names selected
  std::vector<variable*> order;
  for (const auto& e : net.state()) {
    if (!e.is_trainable()) continue;  // buffers and fixed parameters (VOneBlock's Gabor banks)
    auto [it, first] = trainable.emplace(e.parameter->cell().get(), false);
    if (first) order.push_back(e.parameter);
    it->second = it->second || s.train_only.empty() || under(e.name);
  }
  std::size_t frozen = 0;
  for (auto* p : order) {
    if (!trainable[p->cell().get()]) {
      train::freeze({p});
      ++frozen;
      continue;
    }
    (s.no_decay_bn_bias && p->value().rank() == 1 ? no_decay : decay).params.push_back(p);
  }
  GRCNN_CHECK(!decay.params.empty() || !no_decay.params.empty(), error, "--train-only matches no parameter of ", s.arch);
  if (frozen) std::printf("frozen: %zu parameter tensors outside %zu --train-only prefix(es)\n", frozen, s.train_only.size());
  std::vector<train::param_group> groups;
  if (!decay.params.empty()) groups.push_back(std::move(decay));
  if (!no_decay.params.empty()) groups.push_back(std::move(no_decay));
  return groups;
}

std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

template <class Net>
void load_weights(Net& net, const std::string& file, bool reset_classifier) {
  tools::activity reading("reading weights '" + file + "'");
  io::tensor_dict w = io::load_safetensors(file);
  w.origin_ = file;
  io::load_options lo;
  if (reset_classifier) lo.skip_prefixes = {"classifier"};
  io::load_state_dict(net.state(), train::model_state_from(w), lo);
  std::printf("weights from %s%s\n", file.c_str(), reset_classifier ? " (classifier left freshly initialised)" : "");
}

// The classifier width: --classes, or the dataset's class count (never fewer).
int class_count(const settings& s, const data::dataset& labelled) {
  const int classes = s.classes ? s.classes : static_cast<int>(labelled.num_classes());
  GRCNN_CHECK(classes >= labelled.num_classes(), error, "--classes ", classes, " is smaller than the ", labelled.num_classes(),
              " classes of ", labelled.describe());
  return classes;
}

// Initial weights, device, VOneBlock noise and precision (the weights load before the network moves).
template <class Topology, class B>
void prepare_network(nn::network<Topology, B>& net, const settings& s) {
  if (!s.init_weights.empty()) load_weights(net, s.init_weights, s.reset_classifier);
  net.to_device(backends::backend_traits<B>::where);
  models::apply_vone_noise(net, models::parse_vone_noise(s.vone_noise));
  net.set_precision(nn::parse_precision(s.precision));
}

template <class Net>
void print_run_header(const settings& s, Net& net, int classes, const data_setup& d) {
  std::printf("%s: %zu parameters (%zu trainable), %d classes; %s%s\n", s.arch.c_str(), net.parameter_count(),
              net.trainable_parameter_count(), classes,
              d.train ? ("train " + d.train->describe() + " (" + std::to_string(d.train->size()) + " images)").c_str() : "",
              d.eval ? (", eval " + d.eval->describe() + " (" + std::to_string(d.eval->size()) + " images)").c_str() : "");
}

// The training loader's options; evaluation derives its own from them (eval_loader).
template <class B>
data::loader_options train_loader_options(const settings& s) {
  data::loader_options lo{.batch_size = static_cast<std::size_t>(s.batch), .shuffle = true, .drop_last = true,
                          .workers = s.workers, .prefetch = 2 * s.workers, .seed = s.seed, .skip_corrupt = s.skip_corrupt,
                          .pinned_for = backends::backend_traits<B>::where};
  if (distributed()) {  // each rank reads its shard (torch's DistributedSampler order); --batch is per rank
    lo.world = static_cast<std::size_t>(world->world_size());
    lo.rank = static_cast<std::size_t>(world->rank());
  }
  return lo;
}

// In order, every sample once; null without evaluation data.
std::unique_ptr<data::loader> eval_loader(const settings& s, const data_setup& d, const data::loader_options& lo) {
  if (!d.eval) return nullptr;
  data::loader_options eo = lo;
  eo.batch_size = static_cast<std::size_t>(s.eval_batch ? s.eval_batch : 2 * s.batch);
  eo.shuffle = false;
  eo.drop_last = false;
  eo.exact_shard = true;  // with several ranks: every sample once, the counts summed over ranks
  return std::make_unique<data::loader>(*d.eval, d.eval_pipe, eo);
}

// --eval-only: one evaluation of the given weights, printed and logged (rank 0).
template <class Topology, class B>
int evaluate_only(nn::network<Topology, B>& net, const settings& s, const data::dataset& eval_data, data::loader& loader) {
  GRCNN_CHECK(!s.init_weights.empty() || s.resume_given, error,
              "--eval-only needs weights: --init-weights FILE or --resume [CHECKPOINT]");
  if (s.resume_given) {
    const std::string ckpt = s.resume.empty() ? train::checkpoint_folder(s.out, 1).latest().string() : s.resume;
    load_weights(net, ckpt, false);
  }
  const train::eval_result e = *train::evaluate_network(
      net, loader,
      [](const variable& logits, const std::vector<std::int64_t>& y) {
        return ops::cross_entropy<B>(logits, tensor::from_values(shape{static_cast<std::int64_t>(y.size())}, y));
      },
      false, world);
  std::printf("eval %s: loss %.4f top1 %.2f%% top5 %.2f%% (%zu images, %.1f s, %.0f images/s)\n", eval_data.describe().c_str(),
              e.loss, 100 * e.top1, 100 * e.top5, e.images, e.seconds, e.images_per_s);
  if (!distributed() || world->rank() == 0)
    train::metrics_log(std::filesystem::path(s.out) / "metrics.jsonl")
        .write({{"type", "eval_only"}, {"loss", e.loss}, {"top1", e.top1}, {"top5", e.top5}, {"images", e.images}});
  return 0;
}

// Top-level layers none of whose parameters --train-only selects keep their BN statistics (evaluation
// mode), so a frozen layer computes exactly what it did before fine-tuning.
template <class Net>
void keep_frozen_layers_in_eval(Net& net, const settings& s) {
  std::set<std::string> frozen;
  const auto layers = net.layer_states();
  for (const auto& [layer, names] : layers) {
    const bool touched = std::any_of(names.begin(), names.end(), [&](const std::string& n) {
      return std::any_of(s.train_only.begin(), s.train_only.end(),
                         [&](const std::string& p) { return n == p || n.rfind(p + ".", 0) == 0; });
    });
    if (!touched) frozen.insert(layer);
  }
  net.set_eval_layers(frozen);
  std::printf("frozen layers in evaluation mode (BN statistics kept): %zu of %zu\n", frozen.size(), layers.size());
}

// The parameter groups (freezing what --train-only leaves out) under --optimizer.
template <class Net>
std::unique_ptr<train::optimizer> make_optimizer(Net& net, const settings& s) {
  auto groups = make_groups(net, s);
  if (!s.train_only.empty() && s.frozen_bn == "eval") keep_frozen_layers_in_eval(net, s);
  if (s.optimizer == "adamw") return std::make_unique<train::adamw>(std::move(groups));
  return std::make_unique<train::sgd>(std::move(groups));
}

train::lr_schedule make_schedule(const settings& s, long per_epoch) {
  train::schedule_options so;
  so.kind = train::parse_schedule_kind(s.schedule);
  so.gamma = s.gamma;
  so.step_size = s.step_size;
  so.milestones = s.milestones;
  so.per_iteration = s.per_iteration;
  so.warmup_iterations = static_cast<long>(std::llround(s.warmup * static_cast<double>(per_epoch)));
  return train::lr_schedule(so, s.epochs, per_epoch);
}

// --superclass-weight: the class -> superclass map (the dataset's default, or --superclasses) and, for the
// human target, the human confusion matrix.
std::shared_ptr<train::superclass_regulariser> superclass_term(const settings& s, const data::dataset& labelled) {
  const std::filesystem::path map_file = !s.superclasses.empty() ? std::filesystem::path(s.superclasses)
                                         : s.dataset == "fashion-mnist" ? data_dir() / "fashion-mnist" / "superclasses.csv"
                                         : s.dataset == "imagefolder"   ? data_dir() / "imagenet" / "superclasses.csv"
                                                                        : std::filesystem::path();
  GRCNN_CHECK(!map_file.empty(), error, "--superclass-weight on ", s.dataset, " needs --superclasses FILE (class -> superclass CSV)");
  train::superclass_map m = train::read_superclass_csv(map_file);
  GRCNN_CHECK(m.classes() == labelled.num_classes(), error, "--superclasses '", map_file.string(), "' maps ", m.classes(),
              " classes, ", labelled.describe(), " has ", labelled.num_classes());
  std::vector<double> confusion;
  const bool human = s.superclass_target == "human";
  if (human) {
    const std::filesystem::path cf = !s.superclass_confusion.empty() ? std::filesystem::path(s.superclass_confusion)
                                                                     : data_dir() / "imagenet" / "human_superclass_confusion.csv";
    confusion = train::read_confusion_csv(cf, m);
  }
  auto term = std::make_shared<train::superclass_regulariser>(
      std::move(m), human ? train::superclass_target::human : train::superclass_target::label, s.superclass_weight,
      std::move(confusion));
  std::printf("superclass term: weight %g, %ld superclasses from %s, target %s\n", s.superclass_weight,
              static_cast<long>(term->map().count()), map_file.string().c_str(), s.superclass_target.c_str());
  return term;
}

template <class T>
std::string comma_list(const std::vector<T>& items) {
  std::string out;
  for (const auto& item : items) {
    if constexpr (std::is_arithmetic_v<T>)
      out += (out.empty() ? "" : ",") + std::to_string(item);
    else
      out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

// Everything that shapes the trajectory, stored in every checkpoint: a resume with other values is refused.
std::map<std::string, std::string> run_info(const settings& s, std::size_t train_images, int classes) {
  return {{"arch", s.arch}, {"dataset", s.dataset}, {"train_images", std::to_string(train_images)},
          {"classes", std::to_string(classes)}, {"batch", std::to_string(s.batch)}, {"seed", std::to_string(s.seed)},
          {"epochs", std::to_string(s.epochs)}, {"optimizer", s.optimizer}, {"lr", exact(s.lr)},
          {"momentum", exact(s.momentum)}, {"nesterov", s.nesterov ? "1" : "0"}, {"wd", exact(s.wd)},
          {"no_decay_bn_bias", s.no_decay_bn_bias ? "1" : "0"}, {"train_only", comma_list(s.train_only)}, {"schedule", s.schedule},
          {"milestones", comma_list(s.milestones)}, {"step_size", std::to_string(s.step_size)}, {"gamma", exact(s.gamma)},
          {"cosine_per_iteration", s.per_iteration ? "1" : "0"}, {"warmup", exact(s.warmup)},
          {"label_smoothing", exact(s.label_smoothing)}, {"smoothing_style", s.smoothing_style}, {"mixup", exact(s.mixup)},
          {"cutmix_beta", exact(s.cutmix_beta)}, {"cutmix_prob", exact(s.cutmix_prob)},
          {"image_size", std::to_string(s.image_size)}, {"frozen_bn", s.frozen_bn}, {"vone_noise", s.vone_noise},
          {"augmix", s.augmix ? "1" : "0"}, {"augmix_severity", std::to_string(s.augmix_severity)},
          {"augmix_width", std::to_string(s.augmix_width)}, {"augmix_depth", std::to_string(s.augmix_depth)},
          {"augmix_alpha", exact(s.augmix_alpha)}, {"augmix_all_ops", s.augmix_all_ops ? "1" : "0"},
          {"jsd_weight", exact(s.jsd_weight)}, {"ce_all_views", s.ce_all_views ? "1" : "0"},
          {"superclass_weight", exact(s.superclass_weight)}, {"superclass_target", s.superclass_target},
          {"blend", comma_list(s.blend)}, {"noise_mode", s.noise_mode}, {"sync_bn", s.sync_bn ? "1" : "0"}};
}

train::trainer_options trainer_options_for(const settings& s, const data_setup& d, int classes) {
  train::trainer_options to;
  to.epochs = s.epochs;
  to.out = s.out;
  to.keep_checkpoints = s.keep;
  to.checkpoint_every = s.checkpoint_every;
  to.log_every = s.log_every;
  to.label_smoothing = s.label_smoothing;
  to.smoothing = s.smoothing_style == "pytorch" ? train::smoothing_style::pytorch : train::smoothing_style::grcnn;
  to.mixup_alpha = s.mixup;
  to.cutmix_beta = s.cutmix_beta;
  to.cutmix_prob = s.cutmix_prob;
  to.jsd_weight = s.jsd_weight;
  to.ce_on_all_views = s.ce_all_views;
  if (s.superclass_weight > 0) to.superclass = superclass_term(s, *d.train);
  to.skip_nonfinite = s.skip_nonfinite;
  to.stop_after = s.stop_after;
  to.seed = s.seed;
  if (distributed()) to.comm = world;
  to.sync_batch_norm = s.sync_bn;
  to.run_info = run_info(s, d.train->size(), classes);
  return to;
}

// summary.json: the run's outcome, speed, data-parallel statistics and last evaluation.
template <class Net, class Trainer>
nlohmann::json run_summary(const settings& s, Net& net, Trainer& tr, const train::fit_result& r) {
  nlohmann::json summary{{"arch", s.arch}, {"dataset", s.dataset}, {"parameters", net.parameter_count()},
                         {"threads", omp_get_max_threads()}, {"ranks", distributed() ? world->world_size() : 1},
                         {"engine", distributed() ? std::string(world->engine()) : std::string("single")},
                         {"sync_bn", s.sync_bn && distributed() && world->world_size() > 1}};
  if (const auto* ddp = tr.data_parallel()) {
    summary["ddp_buckets"] = ddp->stats().buckets;
    summary["ddp_last_step_communication_s"] = ddp->stats().communication;
    summary["ddp_last_step_overlapped_s"] = ddp->stats().overlapped;
  }
  summary["outcome"] = r.outcome == train::fit_outcome::finished ? "finished" : r.outcome == train::fit_outcome::stopped ? "stopped" : "interrupted";
  summary["precision"] = std::string(nn::name_of(net.current_precision()));
  summary["steps"] = r.steps;
  summary["skipped_steps"] = r.skipped_steps;
  summary["train_seconds"] = r.train_seconds;
  summary["train_images_per_s"] = r.train_images_per_s;
  summary["checkpoint"] = r.last_checkpoint.string();
  if (r.last_eval) {
    summary["eval_top1"] = r.last_eval->top1;
    summary["eval_top5"] = r.last_eval->top5;
    summary["eval_loss"] = r.last_eval->loss;
    summary["eval_seconds"] = r.last_eval->seconds;
  }
  return summary;
}

void write_and_print_summary(const settings& s, const nlohmann::json& summary, const train::fit_result& r) {
  io::write_file(std::filesystem::path(s.out) / "summary.json",
                 summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "summary");
  std::printf("\nsummary: %s after %ld steps; training %.1f s (%.0f images/s)", summary["outcome"].get<std::string>().c_str(),
              r.steps, r.train_seconds, r.train_images_per_s);
  if (r.last_eval) std::printf("; final eval top1 %.2f%% top5 %.2f%%", 100 * r.last_eval->top1, 100 * r.last_eval->top5);
  std::printf("\n  checkpoint %s\n  metrics %s/metrics.jsonl\n", r.last_checkpoint.string().c_str(), s.out.c_str());
  const auto fb = backends::fallback_log::instance().total();
  if (fb) std::printf("warning: %zu op calls fell back from oneDNN to the reference backend\n", fb);
}

// The exit code of a run: 0, or the shell's 128 + signal (130 for SIGINT, 143 for SIGTERM) when interrupted.
int exit_code(const train::fit_result& r) { return r.outcome == train::fit_outcome::interrupted ? 128 + r.signal : 0; }

template <class Topology, class B>
int run(const settings& s) {
  data_setup d = open_data(s);
  const data::dataset& labelled = d.train ? *d.train : *d.eval;
  const int classes = class_count(s, labelled);
  nn::network<Topology, B> net(classes, s.seed);
  prepare_network(net, s);
  print_run_header(s, net, classes, d);
  const data::loader_options lo = train_loader_options<B>(s);
  std::unique_ptr<data::loader> evaluation = eval_loader(s, d, lo);
  if (s.eval_only) return evaluate_only(net, s, *d.eval, *evaluation);

  data::loader train_loader(*d.train, d.train_pipe, lo);
  const auto opt = make_optimizer(net, s);
  const train::lr_schedule schedule = make_schedule(s, static_cast<long>(train_loader.batches_per_epoch()));
  train::trainer<nn::network<Topology, B>> tr(net, *opt, schedule, train_loader, evaluation.get(),
                                              trainer_options_for(s, d, classes));
  if (s.resume_given) tr.resume(s.resume.empty() ? tr.checkpoints().latest() : std::filesystem::path(s.resume));

  const train::fit_result r = tr.fit();
  if (distributed() && world->rank() != 0) return exit_code(r);  // rank 0 writes the summary
  write_and_print_summary(s, run_summary(s, net, tr, r), r);
  return exit_code(r);
}

// --resume names a checkpoint file: returns 2 (after saying why) for a folder, or -1 to go on.
int refuse_resume_folder(const settings& s) {
  if (s.resume_given && !s.resume.empty() && std::filesystem::is_directory(s.resume)) {
    std::cerr << "grcnn-train: --resume '" << s.resume << "' is a directory; give a checkpoint file, or --resume alone "
              << "for the newest checkpoint in --out\n";
    return 2;
  }
  return -1;
}

// --backend: auto resolved to the GPU when this build has the CUDA component and the machine a usable
// device; cuda refused where either is missing. Returns 2 (after saying why) or -1 to go on.
int choose_backend(settings& s) {
  if (s.backend == "cpu") return -1;
  if (s.backend != "auto")
    if (const std::string why = backends::unusable_reason(s.backend); !why.empty()) {
      std::cerr << "grcnn-train: --backend " << s.backend << ": " << why << "\n";
      return 2;
    }
  // cuda, usable, resolves as auto does: the GPU, named in the log.
  const backends::auto_choice choice = backends::resolve_auto();
  s.backend = choice.name;
  if (!choice.note.empty()) std::printf("backend: %s (%s)\n", s.backend.c_str(), choice.note.c_str());
  return -1;
}

// Methods that do not combine: returns 2 (after saying why) or -1 to go on.
int refuse_combinations(const settings& s) {
  if (s.mixup > 0 && s.cutmix_beta > 0) {
    std::cerr << "grcnn-train: use --mixup or --cutmix-beta, not both\n";
    return 2;
  }
  if (s.mixup > 0 && (s.augmix || !s.blend.empty())) {
    std::cerr << "grcnn-train: --mixup does not combine with multi-view batches (--augmix, --blend); use --cutmix-beta\n";
    return 2;
  }
  if (std::set<std::string>(s.blend.begin(), s.blend.end()).size() != s.blend.size()) {
    std::cerr << "grcnn-train: --blend lists a view twice\n";
    return 2;
  }
  if (s.schedule == "onecycle" && s.warmup > 0) {
    std::cerr << "grcnn-train: --schedule onecycle has its own warm-up; drop --warmup\n";
    return 2;
  }
  return -1;
}

// Data-parallel: every rank on one backend (`auto` resolved per rank could split a job whose nodes
// differ), and GPU ranks over NCCL. Returns 2 (after saying why) or -1 to go on.
int join_ranks_on_one_backend(settings& s) {
  if (!distributed()) return -1;
  std::int64_t gpu = s.backend == "cuda" ? 1 : 0;
  world->all_reduce(&gpu, 1, dtype::i64, dist::reduce_op::min);
  if (!gpu && s.backend == "cuda") {
    std::printf("backend: cpu (not every rank has a GPU)\n");
    s.backend = "cpu";
  }
  if (s.backend != "cuda") return -1;
  if (s.sync_bn) {
    std::cerr << "grcnn-train: --sync-bn with --backend cuda and " << world->world_size()
              << " ranks: batch norm synchronised across GPUs has no CUDA kernels yet; drop --sync-bn or train on the CPU\n";
    return 2;
  }
#ifdef GRCNN_HAS_NCCL
  // One GPU per rank (its rank on the node), gradients over NCCL, host values (agreements, metrics) over MPI.
  gpu_world = std::make_unique<dist::nccl_communicator>(*mpi_world);
  world = gpu_world.get();
  std::printf("data-parallel: %d ranks over NCCL %s (rank 0 on GPU %d)\n", world->world_size(),
              gpu_world->nccl_version().c_str(), gpu_world->gpu());
  return -1;
#else
  std::cerr << "grcnn-train: --backend cuda with " << world->world_size()
            << " ranks: data-parallel GPU training needs the NCCL engine, which this build does not have (configure "
               "with the CUDA component and nccl.h: NCCL_ROOT); run the ranks with --backend cpu\n";
  return 2;
#endif
}

void set_threads(const settings& s) {
  if (s.threads > 0) {
    omp_set_num_threads(tools::capped_threads("grcnn-train", s.threads));
  } else if (distributed()) {
    // The ranks on one node share its cores: each takes its part instead of all of them.
    const int per_rank = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world->local_size());
    omp_set_num_threads(per_rank);
  }
}

int run_tool(int argc, char** argv) {
  CLI::App app{"grcnn-train: train or evaluate a GRCNN with checkpoints, resume and metrics"};
  tools::settings s;
  tools::add_train_options(app, s);
  if (const int rc = tools::parse_train_command_line(app, s, argc, argv); rc >= 0) return rc;
  s.resume_given = app.count("--resume") > 0;
  data::set_default_image_limits(s.limits);
  if (const int rc = refuse_resume_folder(s); rc >= 0) return rc;
  if (const int rc = choose_backend(s); rc >= 0) return rc;
  if (const int rc = refuse_combinations(s); rc >= 0) return rc;
  if (const int rc = join_ranks_on_one_backend(s); rc >= 0) return rc;
  set_threads(s);
  std::filesystem::create_directories(s.out);
  return backends::with_backend(s.backend, [&]<class B>() {
    return models::with_variant(s.arch, [&]<class Topology>() { return run<Topology, B>(s); });
  });
}

#ifdef GRCNN_HAS_MPI
// Under mpirun or srun: joins the ranks' world (data-parallel; a world of one trains alone), and only
// rank 0 prints. Returns an exit code when the process must stop, or -1 to go on.
int join_mpi_world(std::unique_ptr<dist::mpi_communicator>& mpi) {
  if (!dist::launched_by_mpi()) return -1;
  const int rc = tools::guarded_main("grcnn-train", [&] {
    mpi = std::make_unique<dist::mpi_communicator>(dist::mpi_options::from_environment());
    return 0;
  });
  if (rc != 0) return rc;
  world = mpi_world = mpi.get();
  // Started as one of several tasks, but MPI sees a world of one (an MPI library without the launcher's
  // process-management support): N independent runs would race on one output folder.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"})
    if (const char* n = std::getenv(v); n && std::atol(n) > 1 && world->world_size() == 1) {
      std::fprintf(stderr, "grcnn-train: started as one of %s tasks (%s) but MPI sees a world of 1: this MPI library does "
                   "not work with the launcher (under Slurm try srun --mpi=pmix, or mpirun); refusing to start %s "
                   "independent runs\n", n, v, n);
      return 2;
    }
  if (distributed()) {
    tools::set_rank_label(world->rank(), world->world_size());
    if (world->rank() != 0 && !std::freopen("/dev/null", "w", stdout)) std::perror("grcnn-train: /dev/null");
  }
  return -1;
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef GRCNN_HAS_MPI
  std::unique_ptr<dist::mpi_communicator> mpi;  // outlives the run: MPI_Finalize after everything else
  if (const int rc = join_mpi_world(mpi); rc >= 0) return rc;
#endif
  const int rc = tools::guarded_main("grcnn-train", [&] { return run_tool(argc, argv); });
  // A rank that failed ends the job: the others may wait in a collective for it.
  if (rc != 0 && rc != 130 && rc != 143 && distributed())
    world->abort(grcnn::detail::concat("grcnn-train: rank ", world->rank(), " of ", world->world_size(),
                                       " failed (exit ", rc, "); ending every rank"),
                 rc);
#ifdef GRCNN_HAS_NCCL
  if (gpu_world) world = mpi_world;
  gpu_world.reset();
#endif
  return rc;
}
