// Fuzz target: tools::parse_recipe (examples/train_settings.hpp), grcnn-train's --recipe files: TOML-like
// `key = value` lines read by CLI11's config parser into the options of grcnn-train, with every option's
// validator applied and unknown keys, [sections] and malformed lines refused.
// Clean rejections: CLI::ParseError (ConfigError, ValidationError, ConversionError, ... -- "throws
// CLI::Error for a file it refuses"; grcnn-train prints them) and io_error. Anything else -- CLI11's
// ConstructionError (a bug in the option table), std::invalid_argument/out_of_range from a number
// conversion, a crash, a sanitizer report -- is a finding, as is an accepted recipe whose settings break
// a validator's range (a value that went around its check).
#include <algorithm>
#include <cstdint>

#include "train_settings.hpp"

#include "fuzz_support.hpp"

namespace {
template <class T>
bool in(T v, T lo, T hi) {
  return v >= lo && v <= hi;
}
bool one_of(const std::string& v, std::initializer_list<const char*> set) {
  return std::any_of(set.begin(), set.end(), [&](const char* s) { return v == s; });
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = grcnn_fuzz::write_input("recipe.toml", data, size);
  grcnn::tools::settings s;
  try {
    s = grcnn::tools::parse_recipe(path);
  } catch (const CLI::ParseError& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::io_error& e) {
    grcnn_fuzz::rejected(e);
    return 0;
  } catch (const grcnn::error& e) {
    grcnn_fuzz::undocumented_error(e, "parse_recipe");
    return 0;
  }
  grcnn_fuzz::accepted("parse_recipe");
  const auto arches = grcnn::models::variant_names();
  GRCNN_FUZZ_ASSERT(std::find(arches.begin(), arches.end(), s.arch) != arches.end(), "arch '", s.arch, "'");
  GRCNN_FUZZ_ASSERT(one_of(s.dataset, {"imagefolder", "fashion-mnist", "mnist", "cifar10", "cifar100"}), "dataset '", s.dataset, "'");
  GRCNN_FUZZ_ASSERT(one_of(s.optimizer, {"sgd", "adamw"}), "optimizer '", s.optimizer, "'");
  GRCNN_FUZZ_ASSERT(one_of(s.schedule, {"constant", "step", "multistep", "cosine", "onecycle"}), "schedule '", s.schedule, "'");
  GRCNN_FUZZ_ASSERT(one_of(s.precision, {"fp32", "bf16"}), "precision '", s.precision, "'");
  GRCNN_FUZZ_ASSERT(one_of(s.frozen_bn, {"eval", "train"}), "frozen-bn '", s.frozen_bn, "'");
  for (const auto& b : s.blend) GRCNN_FUZZ_ASSERT(one_of(b, {"texture", "noise"}), "blend '", b, "'");
  GRCNN_FUZZ_ASSERT(s.epochs > 0, "epochs ", s.epochs);
  GRCNN_FUZZ_ASSERT(in(s.batch, 2L, 1L << 20), "batch ", s.batch);
  GRCNN_FUZZ_ASSERT(s.lr > 0, "lr ", s.lr);
  GRCNN_FUZZ_ASSERT(in(s.momentum, 0.0, 0.9999), "momentum ", s.momentum);
  GRCNN_FUZZ_ASSERT(in(s.wd, 0.0, 1.0), "wd ", s.wd);
  GRCNN_FUZZ_ASSERT(in(s.gamma, 1e-9, 1.0), "gamma ", s.gamma);
  GRCNN_FUZZ_ASSERT(in(s.label_smoothing, 0.0, 0.999), "label-smoothing ", s.label_smoothing);
  GRCNN_FUZZ_ASSERT(in(s.cutmix_prob, 0.0, 1.0), "cutmix-prob ", s.cutmix_prob);
  GRCNN_FUZZ_ASSERT(in(s.workers, 1, 256), "workers ", s.workers);
  GRCNN_FUZZ_ASSERT(in(s.keep, 1, 1000), "keep ", s.keep);
  GRCNN_FUZZ_ASSERT(in(s.augmix_width, 1, 16), "augmix-width ", s.augmix_width);
  GRCNN_FUZZ_ASSERT(in(s.augmix_depth, -1, 16), "augmix-depth ", s.augmix_depth);
  GRCNN_FUZZ_ASSERT(s.augmix_severity == 0 || in(s.augmix_severity, 1, 10), "augmix-severity ", s.augmix_severity);
  GRCNN_FUZZ_ASSERT(in(s.jsd_weight, 0.0, 1e6), "augmix-jsd-weight ", s.jsd_weight);
  GRCNN_FUZZ_ASSERT(s.limits.max_pixels > 0 && s.limits.max_side > 0 && s.limits.max_batch_bytes > 0 &&
                        s.limits.max_array_bytes > 0,
                    "a non-positive limit");
  return 0;
}
