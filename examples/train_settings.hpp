#pragma once
// grcnn-train's settings and its command line, shared by the tool and the recipe-file fuzz target:
// one list of options, so a recipe key is valid exactly when the flag of that name is.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <grcnn/backends/select.hpp>
#include <grcnn/data/limits.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/models/vone_noise.hpp>

#include "tool_main.hpp"

namespace grcnn::tools {

struct settings {
  std::string arch = "grcnn_small", dataset = "fashion-mnist", data, eval_data, out = "runs/grcnn", backend = "auto";
  std::string precision = "fp32";
  std::string vone_noise = "fresh";  // VOneBlock noise: fresh | off | a seed that fixes it
  std::string optimizer = "sgd", schedule = "cosine", smoothing_style = "grcnn", init_weights, resume;
  bool resume_given = false, nesterov = false, eval_only = false, no_decay_bn_bias = false, skip_corrupt = false,
       skip_nonfinite = false, per_iteration = true, reset_classifier = false, sync_bn = false;
  int classes = 0, threads = 0, workers = 2, image_size = 0, keep = 2;
  long log_every = 50;  // a "train" record in metrics.jsonl every this many steps
  long epochs = 1, batch = 64, eval_batch = 0, step_size = 30, stop_after = -1, checkpoint_every = 0, limit_train = 0,
       limit_eval = 0;
  double lr = 0.1, momentum = 0.9, wd = 1e-4, warmup = 0, label_smoothing = 0, mixup = 0, gamma = 0.1, cutmix_beta = 0,
         cutmix_prob = 1.0;
  std::vector<long> milestones{30, 60, 90};
  std::vector<std::string> train_only;
  std::uint64_t seed = 0;
  // The paper's methods.
  std::string frozen_bn = "eval";  // BN of layers outside --train-only: eval (statistics kept) | train
  bool augmix = false, augmix_all_ops = false, ce_all_views = false;
  int augmix_severity = 0, augmix_width = 3, augmix_depth = -1;  // severity 0: 1 for imagefolder, 3 otherwise
  double augmix_alpha = 1.0, jsd_weight = 12.0;
  double superclass_weight = 0;
  std::string superclasses, superclass_target = "label", superclass_confusion;
  std::vector<std::string> blend;  // texture, noise
  std::string textures, noise, noise_mode = "uniform";
  data::image_limits limits = data::default_image_limits();  // --max-image-pixels, ... (data/limits.hpp)
};

// --backend's values: auto, and every backend name grcnn knows (backends/select.hpp; one this build left
// out is accepted here and refused by the tool with the reason).
inline std::vector<std::string> backend_choices() {
  std::vector<std::string> choices{"auto"};
  for (const auto& name : backends::known_backend_names()) choices.push_back(name);
  return choices;
}

// Every option of grcnn-train, bound to `s`. Recipe files (--recipe) are TOML with the long option names
// as keys; a key no option has, a [section] or a line that is not `key = value` is an error that names
// it (CLI11 would otherwise ignore it, and a typo such as `lrr = 5.0` would train with the default lr).
inline void add_train_options(CLI::App& app, settings& s) {
  app.add_option("--arch", s.arch, "architecture")->check(CLI::IsMember(models::variant_names()))->capture_default_str();
  app.add_option("--classes", s.classes, "classifier width (default: the dataset's class count)")->check(CLI::PositiveNumber);
  app.add_option("--dataset", s.dataset, "imagefolder | fashion-mnist | mnist | cifar10 | cifar100")
      ->check(CLI::IsMember({"imagefolder", "fashion-mnist", "mnist", "cifar10", "cifar100"}))
      ->capture_default_str();
  app.add_option("--data", s.data, "dataset folder (default for fashion-mnist/mnist: /usr/share/datasets/<name>)");
  app.add_option("--eval-data", s.eval_data, "evaluation folder (imagefolder: the val root; default: the test split of --data)");
  app.add_option("--image-size", s.image_size, "input size (default 224 for imagefolder; 32 for (fashion-)mnist, whose 28-pixel images are zero-padded)")->check(CLI::PositiveNumber);
  app.add_option("--epochs", s.epochs, "training epochs")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--batch", s.batch, "batch size")->check(CLI::Range(2L, 1L << 20))->capture_default_str();
  app.add_option("--eval-batch", s.eval_batch, "evaluation batch size (default: 2 x --batch)")->check(CLI::PositiveNumber);
  app.add_option("--optimizer", s.optimizer, "sgd | adamw")->check(CLI::IsMember({"sgd", "adamw"}))->capture_default_str();
  app.add_option("--lr", s.lr, "base learning rate (one-cycle: the peak)")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--momentum", s.momentum, "SGD momentum (AdamW: beta1 stays 0.9)")->check(CLI::Range(0.0, 0.9999))->capture_default_str();
  app.add_flag("--nesterov", s.nesterov, "Nesterov momentum");
  app.add_option("--wd", s.wd, "weight decay (SGD: L2 as PyTorch adds it; AdamW: decoupled)")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_flag("--no-decay-bn-bias", s.no_decay_bn_bias, "no weight decay on BN parameters and biases (second parameter group)");
  app.add_option("--train-only", s.train_only, "train only parameters under these module prefixes (e.g. stage_1); freeze the rest");
  app.add_option("--schedule", s.schedule, "constant | step | multistep | cosine | onecycle")
      ->check(CLI::IsMember({"constant", "step", "multistep", "cosine", "onecycle"}))
      ->capture_default_str();
  app.add_option("--milestones", s.milestones, "multistep: epochs at which the lr is multiplied by --gamma")->capture_default_str();
  app.add_option("--step-size", s.step_size, "step: epochs between decays")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--gamma", s.gamma, "step/multistep decay factor")->check(CLI::Range(1e-9, 1.0))->capture_default_str();
  app.add_flag("!--cosine-per-epoch", s.per_iteration, "cosine: set the lr once per epoch (the GRCNN recipe) instead of every step");
  app.add_option("--warmup", s.warmup, "linear warm-up length in epochs (fractions allowed), from 0.1 x lr")->check(CLI::Range(0.0, 1e6));
  app.add_option("--label-smoothing", s.label_smoothing, "label smoothing eps")->check(CLI::Range(0.0, 0.999))->capture_default_str();
  app.add_option("--smoothing-style", s.smoothing_style, "grcnn (eps over the K-1 wrong classes) | pytorch (eps over all K)")
      ->check(CLI::IsMember({"grcnn", "pytorch"}))
      ->capture_default_str();
  app.add_option("--mixup", s.mixup, "mixup alpha (0: off); with --label-smoothing, the SK recipe's smoothing of mixed targets")
      ->check(CLI::Range(0.0, 1e3));
  app.add_option("--cutmix-beta", s.cutmix_beta, "CutMix: lambda ~ Beta(beta, beta) (0: off; the paper's recipe: 1)")
      ->check(CLI::Range(0.0, 1e3));
  app.add_option("--cutmix-prob", s.cutmix_prob, "CutMix: probability of applying it to a batch")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--frozen-bn", s.frozen_bn, "with --train-only: BN of the frozen layers stays in eval mode (statistics kept) or trains")
      ->check(CLI::IsMember({"eval", "train"}))->capture_default_str();
  app.add_flag("--augmix", s.augmix, "AugMix: each batch also holds two AugMix views of every image (one forward of 3 x batch)");
  app.add_option("--augmix-severity", s.augmix_severity, "AugMix severity 1-10 (default: 1 for imagefolder, 3 otherwise)")->check(CLI::Range(1, 10));
  app.add_option("--augmix-width", s.augmix_width, "AugMix chains")->check(CLI::Range(1, 16))->capture_default_str();
  app.add_option("--augmix-depth", s.augmix_depth, "AugMix operations per chain (-1: random 1-3)")->check(CLI::Range(-1, 16))->capture_default_str();
  app.add_option("--augmix-alpha", s.augmix_alpha, "AugMix Dirichlet/Beta parameter")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_flag("--augmix-all-ops", s.augmix_all_ops, "AugMix: also color, contrast, brightness, sharpness");
  app.add_option("--augmix-jsd-weight,--jsd-weight", s.jsd_weight, "weight of the Jensen-Shannon consistency loss over the views (0: off)")
      ->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_flag("--ce-all-views", s.ce_all_views, "multi-view batches: cross-entropy averaged over every view (default: the clean view only)");
  app.add_option("--superclass-weight", s.superclass_weight, "weight of the superclass cross-entropy term (0: off)")->check(CLI::Range(0.0, 1e6))->capture_default_str();
  app.add_option("--superclasses", s.superclasses, "class -> superclass CSV (default: data/imagenet or data/fashion-mnist superclasses.csv)")->check(CLI::ExistingFile);
  app.add_option("--superclass-target", s.superclass_target, "label (the true superclass) | human (its row of the human confusion matrix)")
      ->check(CLI::IsMember({"label", "human"}))->capture_default_str();
  app.add_option("--superclass-confusion", s.superclass_confusion, "human superclass confusion CSV (default: data/imagenet/human_superclass_confusion.csv)")->check(CLI::ExistingFile);
  app.add_option("--blend", s.blend, "extra views blending each image with a texture and/or a noise image: texture,noise (stage V1) or texture (V2)")
      ->delimiter(',')->check(CLI::IsMember({"texture", "noise"}));
  app.add_option("--textures", s.textures, "folder of texture images (default: data/textures)")->check(CLI::ExistingDirectory);
  app.add_option("--noise", s.noise, "folder of noise images (default: the textures, phase-randomised in memory)")->check(CLI::ExistingDirectory);
  app.add_option("--noise-mode", s.noise_mode, "phase randomisation of the in-memory noise: uniform | permute | per-channel (each channel's amplitude, one shared phase)")
      ->check(CLI::IsMember({"uniform", "permute", "per-channel"}))->capture_default_str();
  app.add_option("--backend", s.backend, "auto (the GPU when the build and machine have one) | cpu (oneDNN) | cuda")->check(CLI::IsMember(backend_choices()))->capture_default_str();
  app.add_option("--precision", s.precision, "fp32 | bf16 (mixed: bf16 activations and convolutions on f32 master weights, f32 BN statistics and losses)")
      ->check(CLI::IsMember({"fp32", "bf16"}))->capture_default_str();
  app.add_option("--threads", s.threads, "compute threads (default: all cores)")->check(CLI::PositiveNumber);
  app.add_option("--workers", s.workers, "data loader threads")->check(CLI::Range(1, 256))->capture_default_str();
  app.add_option("--vone-noise", s.vone_noise,
                 "VOneBlock noise (vone_grcnn55): fresh (a new draw per forward, in evaluation too, as VOneNet), off, "
                 "or a seed that fixes it")
      ->check(CLI::Validator(
          [](std::string& v) {
            try {
              models::parse_vone_noise(v);
              return std::string();
            } catch (const std::exception& e) {
              return std::string(e.what());
            }
          },
          "fresh|off|SEED"))
      ->capture_default_str();
  app.add_option("--seed", s.seed, "seed of initialisation, data order, augmentation and mixup")->capture_default_str();
  app.add_option("--out", s.out, "output folder: checkpoints, metrics.jsonl, summary.json")->capture_default_str();
  app.add_option("--resume", s.resume, "continue a run: from this checkpoint, or (no value) the newest in --out")->expected(0, 1);
  app.add_option("--keep", s.keep, "checkpoints to keep (plus best.safetensors)")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--checkpoint-every", s.checkpoint_every, "also checkpoint every N steps (0: at epoch ends only)")->check(CLI::NonNegativeNumber);
  app.add_flag("--sync-bn", s.sync_bn,
               "under mpirun/srun: batch-norm statistics over every rank's batch (PyTorch's SyncBatchNorm); "
               "alone: the plain batch norm");
  app.add_option("--log-every", s.log_every, "a train record (window loss, top-1, lr, images/s) in metrics.jsonl every N steps")
      ->check(CLI::PositiveNumber);
  app.add_option("--stop-after", s.stop_after, "stop with a checkpoint after this many steps in all (resume later)")->check(CLI::PositiveNumber);
  app.add_option("--init-weights", s.init_weights, "start from these weights (safetensors state_dict or checkpoint)")->check(CLI::ExistingFile);
  app.add_flag("--reset-classifier", s.reset_classifier, "with --init-weights: keep a fresh classifier (another class count)");
  app.add_flag("--eval-only", s.eval_only, "only evaluate (weights from --init-weights or --resume); needs no training data");
  app.add_flag("--skip-corrupt", s.skip_corrupt, "skip unreadable images (counted and logged) instead of stopping");
  app.add_flag("--skip-nonfinite", s.skip_nonfinite, "skip steps with a NaN/inf loss instead of stopping");
  app.add_option("--limit-train", s.limit_train, "use only the first N training images (quick runs)")->check(CLI::PositiveNumber);
  app.add_option("--limit-eval", s.limit_eval, "use only the first N evaluation images")->check(CLI::PositiveNumber);
  app.set_config("--recipe", "", "read settings from a TOML recipe file (keys are the long option names; "
                                  "command-line options override it; see recipes/)");
  add_limit_options(app, s.limits, /*arrays=*/true);
  app.allow_config_extras(CLI::config_extras_mode::error);
}

// CLI11's range checks compare, and NaN passes every comparison: each real-valued setting must be finite.
inline void check_finite(const settings& s) {
  const std::pair<const char*, double> values[] = {
      {"lr", s.lr}, {"momentum", s.momentum}, {"wd", s.wd}, {"warmup", s.warmup}, {"label-smoothing", s.label_smoothing},
      {"mixup", s.mixup}, {"gamma", s.gamma}, {"cutmix-beta", s.cutmix_beta}, {"cutmix-prob", s.cutmix_prob},
      {"augmix-alpha", s.augmix_alpha}, {"augmix-jsd-weight", s.jsd_weight}, {"superclass-weight", s.superclass_weight}};
  for (const auto& [name, v] : values)
    if (!std::isfinite(v)) throw CLI::ValidationError(std::string("--") + name, std::to_string(v) + " is not a finite number");
}

// CLI11's words for a recipe it refuses ("INI was not able to parse lrr", "... optimizer.++" for a
// section) in the recipe's terms.
inline std::string recipe_error_text(const std::string& what) {
  const std::string prefix = "INI was not able to parse ";
  if (what.rfind(prefix, 0) != 0) return what;
  std::string item = what.substr(prefix.size());
  if (item.size() > 3 && item.compare(item.size() - 3, 3, ".++") == 0)
    return "section [" + item.substr(0, item.size() - 3) + "]: recipe files have no sections (keys are grcnn-train's long "
           "option names at the top level)";
  return "unknown key '" + item + "' (keys are grcnn-train's long option names, e.g. lr, cutmix-beta; a line that is "
         "not key = value also lands here)";
}

// Parses grcnn-train's command line (recipe included) into the app's settings; returns the exit code of
// a refused command line or recipe (after printing why), or -1 to go on.
inline int parse_train_command_line(CLI::App& app, const settings& s, int argc, char** argv) {
  try {
    app.parse(argc, argv);
    check_finite(s);
  } catch (const CLI::ConfigError& e) {
    std::fprintf(stderr, "grcnn-train: --recipe: %s\n", recipe_error_text(e.what()).c_str());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

// Reads a recipe file alone into settings (the defaults where it is silent); throws CLI::Error
// (ConfigError, ValidationError, ...) for a file it refuses.
inline settings parse_recipe(const std::filesystem::path& recipe) {
  CLI::App app{"recipe"};
  settings s;
  add_train_options(app, s);
  std::vector<std::string> args{recipe.string(), "--recipe"};  // CLI11 parses a reversed argument vector
  app.parse(args);
  check_finite(s);
  return s;
}

}  // namespace grcnn::tools
