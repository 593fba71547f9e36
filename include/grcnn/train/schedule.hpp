#pragma once
// Learning-rate schedules as closed forms of the position in training, matching
// torch.optim.lr_scheduler: StepLR, MultiStepLR, CosineAnnealingLR (stepped per epoch or per
// iteration), OneCycleLR (cosine annealing, momentum cycling), and a linear warm-up (LinearLR) that
// multiplies the main schedule (as ChainedScheduler([LinearLR, main]) does). Being stateless, a
// schedule resumes from (epoch, iteration) alone.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "grcnn/core/error.hpp"

namespace grcnn::train {

enum class schedule_kind { constant, step, multistep, cosine, onecycle };

struct schedule_options {
  schedule_kind kind = schedule_kind::constant;
  double gamma = 0.1;               // step / multistep factor
  long step_size = 30;              // step: epochs between decays
  std::vector<long> milestones{30, 60, 90};  // multistep: epochs at which lr is multiplied by gamma
  bool per_iteration = false;       // cosine: anneal every iteration instead of once per epoch
  double eta_min = 0.0;             // cosine: lower bound, as a fraction of the base lr
  long warmup_iterations = 0;       // linear warm-up length (0: none)
  double warmup_start_factor = 0.1; // the warm-up's first factor (LinearLR's start_factor)
  // OneCycleLR (max lr = the base lr).
  double pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4;
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
};

inline schedule_kind parse_schedule_kind(const std::string& s) {
  if (s == "constant") return schedule_kind::constant;
  if (s == "step") return schedule_kind::step;
  if (s == "multistep") return schedule_kind::multistep;
  if (s == "cosine") return schedule_kind::cosine;
  if (s == "onecycle") return schedule_kind::onecycle;
  throw error("unknown schedule '" + s + "'; known: constant, step, multistep, cosine, onecycle");
}
inline const char* to_string(schedule_kind k) {
  switch (k) {
    case schedule_kind::constant: return "constant";
    case schedule_kind::step: return "step";
    case schedule_kind::multistep: return "multistep";
    case schedule_kind::cosine: return "cosine";
    case schedule_kind::onecycle: return "onecycle";
  }
  return "?";
}

class lr_schedule {
 public:
  lr_schedule(schedule_options o, long epochs, long iterations_per_epoch)
      : o_(std::move(o)), epochs_(epochs), per_epoch_(iterations_per_epoch) {
    GRCNN_CHECK(epochs > 0 && iterations_per_epoch > 0, error, "lr schedule: needs positive epochs and iterations per epoch, got ",
                epochs, " and ", iterations_per_epoch);
    GRCNN_CHECK(o_.gamma > 0 && o_.step_size > 0, error, "lr schedule: gamma and step size must be positive");
    GRCNN_CHECK(o_.warmup_iterations >= 0 && o_.warmup_start_factor > 0 && o_.warmup_start_factor <= 1, error,
                "lr schedule: warm-up needs a non-negative length and a start factor in (0, 1]");
    GRCNN_CHECK(std::is_sorted(o_.milestones.begin(), o_.milestones.end()), error, "lr schedule: milestones must be sorted");
    GRCNN_CHECK(o_.kind != schedule_kind::onecycle || o_.warmup_iterations == 0, error,
                "lr schedule: one-cycle has its own warm-up phase; do not add a linear warm-up");
    GRCNN_CHECK(o_.pct_start > 0 && o_.pct_start < 1 && o_.div_factor > 0 && o_.final_div_factor > 0, error,
                "lr schedule: one-cycle needs pct_start in (0, 1) and positive div factors");
  }

  long total_iterations() const { return epochs_ * per_epoch_; }
  const schedule_options& options() const { return o_; }

  // The factor applied to each group's initial lr at iteration `iteration` (0-based) of epoch `epoch`.
  double lr_factor(long epoch, long iteration) const {
    const long global = epoch * per_epoch_ + iteration;
    double f = 1.0;
    switch (o_.kind) {
      case schedule_kind::constant: break;
      case schedule_kind::step: f = std::pow(o_.gamma, static_cast<double>(epoch / o_.step_size)); break;
      case schedule_kind::multistep: {
        const auto passed = std::upper_bound(o_.milestones.begin(), o_.milestones.end(), epoch) - o_.milestones.begin();
        f = std::pow(o_.gamma, static_cast<double>(passed));
        break;
      }
      case schedule_kind::cosine: {
        const double t = o_.per_iteration ? static_cast<double>(global) : static_cast<double>(epoch);
        const double T = o_.per_iteration ? static_cast<double>(total_iterations()) : static_cast<double>(epochs_);
        f = o_.eta_min + (1.0 - o_.eta_min) * (1.0 + std::cos(std::numbers::pi * t / T)) / 2.0;
        break;
      }
      case schedule_kind::onecycle: return onecycle(global, 1.0 / o_.div_factor, 1.0, 1.0 / (o_.div_factor * o_.final_div_factor));
    }
    if (global < o_.warmup_iterations)
      f *= o_.warmup_start_factor + (1.0 - o_.warmup_start_factor) * static_cast<double>(global) /
                                        static_cast<double>(o_.warmup_iterations);
    return f;
  }
  // One-cycle's momentum (cycled inversely to the lr); nullopt-like -1 when the schedule keeps momentum.
  double momentum(long epoch, long iteration) const {
    if (o_.kind != schedule_kind::onecycle || !o_.cycle_momentum) return -1.0;
    return onecycle(epoch * per_epoch_ + iteration, o_.max_momentum, o_.base_momentum, o_.max_momentum);
  }

 private:
  // torch's OneCycleLR two-phase cosine: start -> peak over pct_start * total - 1 steps, then -> end.
  double onecycle(long step, double start, double peak, double end) const {
    const double total = static_cast<double>(total_iterations());
    const double up_end = o_.pct_start * total - 1.0, down_end = total - 1.0;
    const double s = static_cast<double>(step);
    if (up_end <= 0) return s <= 0 ? peak : anneal_cos(peak, end, s / down_end);  // a warm-up shorter than one step
    if (s <= up_end) return anneal_cos(start, peak, s / up_end);
    return anneal_cos(peak, end, (s - up_end) / (down_end - up_end));
  }
  static double anneal_cos(double a, double b, double pct) { return b + (a - b) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0); }

  schedule_options o_;
  long epochs_, per_epoch_;
};

}  // namespace grcnn::train
