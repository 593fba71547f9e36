#pragma once
// A batch loader: N worker threads decode and augment batches ahead of training into a bounded
// prefetch window, and batches come out in order. Reproducible by construction: the epoch's order is
// drawn from (seed, epoch), and the generator that augments batch b is seeded from (seed, epoch, b),
// so the images do not depend on the number of workers or on thread timing, and a run resumed in the
// middle of an epoch sees exactly the batches it would have seen.
// Memory: once the first sample of a batch is through the transforms, the batch's size (all views, f32,
// plus the decoded images) is checked against image_limits::max_batch_bytes before the rest is decoded.
#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <thread>

#include "grcnn/data/augment.hpp"
#include "grcnn/data/dataset.hpp"
#include "grcnn/dist/sampler.hpp"

namespace grcnn::data {

struct loader_options {
  std::size_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = true;      // drop a final partial batch (training); keep it for evaluation
  int workers = 2;
  int prefetch = 4;           // batches decoded ahead of the consumer, all workers together
  std::uint64_t seed = 0;
  bool skip_corrupt = false;  // skip unreadable samples (counted) instead of stopping with the error
  // The device the batches go to: a GPU gets them in page-locked memory (tensor::empty_pinned), so
  // their upload is a DMA that does not hold up the training thread.
  device pinned_for = cpu_device;
  // Data-parallel shards (dist/sampler.hpp): with world > 1 this loader reads rank's share. Training
  // (exact_shard false): torch's DistributedSampler order -- a permutation from (seed, epoch), padded to
  // a multiple of world, every world-th index from rank -- so every rank has as many batches. Evaluation
  // (exact_shard true): every world-th sample, unpadded, so metrics summed over ranks count each once.
  // Batch b's augmentation is seeded with the global batch b * world + rank.
  std::size_t world = 1, rank = 0;
  bool exact_shard = false;
};

struct batch {
  std::size_t index = 0;              // position in the epoch
  tensor images;                      // [views * n, 3, H, W] f32, channels-last, view-major (clean view first)
  int views = 1;                      // 1 + the pipeline's extra views
  std::vector<std::int64_t> labels;
  std::vector<std::string> skipped;   // what could not be read (with skip_corrupt)
  std::size_t size() const { return labels.size(); }
};

// SplitMix64 of a combination: well-spread seeds from small structured inputs.
inline std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0) {
  std::uint64_t z = a * 0x9E3779B97F4A7C15ull ^ (b + 0xBF58476D1CE4E5B9ull) * 0x94D049BB133111EBull ^ (c + 0x2545F4914F6CDD1Dull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class loader {
 public:
  loader(const dataset& d, pipeline p, loader_options o) : data_(d), pipe_(std::move(p)), o_(o) {
    GRCNN_CHECK(o_.batch_size > 0 && o_.workers > 0 && o_.prefetch > 0, error,
                "loader: batch size, workers and prefetch must be positive");
    GRCNN_CHECK(d.size() > 0, error, "loader: ", d.describe(), " is empty");
    GRCNN_CHECK(o_.world >= 1 && o_.rank < o_.world, error, "loader: rank ", o_.rank, " of a world of ", o_.world);
    GRCNN_CHECK(!o_.drop_last || epoch_samples() >= o_.batch_size, error, "loader: ", d.describe(), " has ", d.size(),
                " samples", o_.world > 1 ? ::grcnn::detail::concat(" (", epoch_samples(), " for each of ", o_.world, " ranks)") : std::string(),
                ", fewer than one batch of ", o_.batch_size);
  }
  ~loader() { stop(); }
  loader(const loader&) = delete;
  loader& operator=(const loader&) = delete;

  // This rank's samples in an epoch (the whole dataset in a world of one).
  std::size_t epoch_samples() const {
    if (o_.world == 1) return data_.size();
    if (o_.exact_shard) return data_.size() / o_.world + (o_.rank < data_.size() % o_.world);
    return dist::distributed_samples(data_.size(), {.world = o_.world, .rank = o_.rank});
  }
  std::size_t batches_per_epoch() const {
    const std::size_t n = epoch_samples();
    return o_.drop_last ? n / o_.batch_size : (n + o_.batch_size - 1) / o_.batch_size;
  }
  const dataset& data() const { return data_; }
  const loader_options& options() const { return o_; }
  std::size_t skipped_total() const { return skipped_total_; }

  // The sample order of an epoch: a shuffle seeded from (seed, epoch), or 0..N-1.
  std::vector<std::size_t> order(long epoch) const {
    if (o_.world > 1 && o_.exact_shard) return dist::evaluation_indices(data_.size(), o_.world, o_.rank);
    if (o_.world > 1)
      return dist::distributed_indices(data_.size(), {.world = o_.world, .rank = o_.rank, .seed = o_.seed, .shuffle = o_.shuffle},
                                       static_cast<std::uint64_t>(epoch));
    std::vector<std::size_t> idx(data_.size());
    std::iota(idx.begin(), idx.end(), 0);
    if (o_.shuffle) {
      augment_rng rng(mix_seed(o_.seed, static_cast<std::uint64_t>(epoch), 0x5eed));
      std::shuffle(idx.begin(), idx.end(), rng);
    }
    return idx;
  }

  // Starts (or restarts) the workers for `epoch`, beginning at batch `first` (a resumed run).
  void start_epoch(long epoch, std::size_t first = 0) {
    stop();
    order_ = order(epoch);
    epoch_ = epoch;
    cursor_ = first;
    stopping_ = false;
    ready_.clear();
    started_ = true;
    for (int w = 0; w < o_.workers; ++w) threads_.emplace_back([this, w, first] { work(first + static_cast<std::size_t>(w)); });
  }

  // The next batch of the epoch in order, or nothing at its end. A worker's error is rethrown here.
  std::optional<batch> next() {
    GRCNN_CHECK(started_, error, "loader: next() before start_epoch()");
    std::unique_lock lock(mu_);
    if (cursor_ >= batches_per_epoch()) return std::nullopt;
    produced_.wait(lock, [&] { return ready_.count(cursor_) != 0; });
    auto node = ready_.extract(cursor_);
    ++cursor_;
    consumed_.notify_all();
    lock.unlock();
    if (node.mapped().error) std::rethrow_exception(node.mapped().error);
    skipped_total_ += node.mapped().value.skipped.size();
    return std::move(node.mapped().value);
  }

  // Builds batch b of the current epoch on the calling thread (the workers' job; also a benchmark hook).
  batch make_batch(std::size_t b) const {
    batch out;
    out.index = b;
    const std::size_t begin = b * o_.batch_size, end = std::min(begin + o_.batch_size, order_.size());
    GRCNN_CHECK(started_ && b < batches_per_epoch(), error, "loader: batch ", b, " requested ",
                started_ ? "beyond the epoch" : "before start_epoch()");
    augment_rng rng(mix_seed(mix_seed(o_.seed, 0xa4c3e7), static_cast<std::uint64_t>(epoch_), b * o_.world + o_.rank));
    std::vector<rgb_image> images;
    std::vector<std::vector<std::vector<float>>> extra;  // [sample][view] normalised HWC pixels
    images.reserve(end - begin);
    out.views = 1 + static_cast<int>(pipe_.views.size());
    for (std::size_t k = begin; k < end; ++k) {
      try {
        sample s = data_.get(order_[k]);
        rgb_image img;
        try {
          img = pipe_.apply(std::move(s.image), rng);
        } catch (const image_limit_error& e) {  // a transform's refusal does not know the sample: name it
          throw image_limit_error(detail::concat(data_.describe(), " sample ", order_[k], ": ", e.what()));
        }
        std::vector<std::vector<float>> v;
        for (const view_fn& f : pipe_.views) v.push_back(f(img, rng, pipe_.mean, pipe_.stddev));
        images.push_back(std::move(img));
        extra.push_back(std::move(v));
        out.labels.push_back(s.label);
      } catch (const io_error& e) {
        if (!o_.skip_corrupt) throw;
        out.skipped.push_back(e.what());
      }
      if (images.size() == 1) check_batch_bytes(images[0], end - begin, out.views);
    }
    if (images.empty()) return out;
    const int w = images[0].width, h = images[0].height;
    const auto n = static_cast<std::int64_t>(images.size());
    out.images = tensor::empty_pinned({out.views * n, 3, h, w}, dtype::f32, layout::nhwc, o_.pinned_for);
    const std::size_t pixels = static_cast<std::size_t>(w) * h * 3;
    float* dst = out.images.data<float>();
    for (std::size_t i = 0; i < images.size(); ++i) {
      GRCNN_CHECK(images[i].width == w && images[i].height == h, shape_error, "loader: ", data_.describe(), " sample ",
                  order_[begin + i], " came out of the transforms as ", images[i].width, "x", images[i].height,
                  ", the batch's first as ", w, "x", h, " (add a crop or resize to the pipeline)");
      write_normalized(images[i], out.images, static_cast<std::int64_t>(i), pipe_.mean, pipe_.stddev);
      for (std::size_t v = 0; v < extra[i].size(); ++v) {
        GRCNN_CHECK(extra[i][v].size() == pixels, shape_error, "loader: extra view ", v + 1, " of sample ", order_[begin + i],
                    " has ", extra[i][v].size(), " values, expected ", pixels);
        std::copy(extra[i][v].begin(), extra[i][v].end(), dst + ((v + 1) * images.size() + i) * pixels);
      }
    }
    return out;
  }

 private:
  struct slot {
    batch value;
    std::exception_ptr error;
  };

  // A batch of n samples of img's size: n * views f32 images and n decoded ones.
  void check_batch_bytes(const rgb_image& img, std::size_t n, int views) const {
    const image_limits lim = default_image_limits();
    const double pixels = static_cast<double>(img.width) * img.height * 3;
    const double bytes = static_cast<double>(n) * pixels * (4.0 * views + 1.0);
    GRCNN_CHECK(bytes <= static_cast<double>(lim.max_batch_bytes), image_limit_error, "loader: ", data_.describe(),
                ": a batch of ", n, " x ", views, " view(s) of ", img.width, " x ", img.height, " images needs ",
                limits_detail::gib(bytes), ", above the limit of ", limits_detail::gib(static_cast<double>(lim.max_batch_bytes)),
                " (add a resize or crop to the pipeline, lower the batch size, or raise it with --max-batch-bytes)");
  }

  void work(std::size_t b) {
    const std::size_t stride = static_cast<std::size_t>(o_.workers), total = batches_per_epoch();
    for (; b < total; b += stride) {
      {
        std::unique_lock lock(mu_);
        consumed_.wait(lock, [&] { return stopping_ || b < cursor_ + static_cast<std::size_t>(o_.prefetch); });
        if (stopping_) return;
      }
      slot s;
      try {
        s.value = make_batch(b);
      } catch (...) {
        s.error = std::current_exception();
      }
      std::lock_guard lock(mu_);
      ready_.emplace(b, std::move(s));
      produced_.notify_all();
    }
  }
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      consumed_.notify_all();
    }
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

  const dataset& data_;
  pipeline pipe_;
  loader_options o_;
  std::vector<std::size_t> order_;
  long epoch_ = 0;
  std::mutex mu_;
  std::condition_variable produced_, consumed_;
  std::map<std::size_t, slot> ready_;
  std::size_t cursor_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::vector<std::thread> threads_;
  std::size_t skipped_total_ = 0;
};

}  // namespace grcnn::data
