#pragma once
// Data-parallel gradients with PyTorch DistributedDataParallel's semantics, over any communicator.
//
// - broadcast(): rank 0's parameters and buffers to every rank (at the start and after a resume).
// - Gradients are averaged over the ranks: each one is multiplied by 1/world while it is copied into its
//   bucket (as DDP does), the buckets are summed with an all-reduce and copied back.
// - Buckets: the first backward records the order in which gradients become final on rank 0 (the tape's
//   gradient_ready hook: a weight shared across time steps is final after its first use's backward) and
//   cuts that order into buckets of about 1 MiB first and then 25 MiB (DDP's bucket_cap_mb, and its rebuild
//   from the observed order after the first iteration), per dtype and device. From the second backward a
//   bucket is reduced as soon as its last gradient is final, while backward goes on, strictly in bucket
//   order (so every rank starts the same collectives in the same order).
// - A weight kept in a backend's own format (oneDNN's blocked layouts) is reduced in that format: its
//   whole storage is the bucket slot (padding is zero everywhere and stays zero). All ranks must hold the
//   same formats (the same CPU kind); the bucket layout is compared across ranks when it is built.
// - A parameter whose uses received no gradient on a rank contributes zeros there; it gets the averaged
//   gradient wherever any rank had one, and keeps none where no rank had one (DDP with
//   find_unused_parameters=True), so the ranks' weights never drift apart.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "grcnn/autograd/tape.hpp"
#include "grcnn/autograd/variable.hpp"
#include "grcnn/core/device_runtime.hpp"
#include "grcnn/dist/communicator.hpp"

namespace grcnn::dist {

struct data_parallel_options {
  std::size_t bucket_bytes = std::size_t{25} << 20;       // DDP's bucket_cap_mb = 25
  std::size_t first_bucket_bytes = std::size_t{1} << 20;  // DDP's first bucket: 1 MiB
  bool overlap = true;  // reduce buckets during backward (off: all after it; the same numbers)
};

// Where the time went in the last step (seconds), for benchmarks.
struct data_parallel_stats {
  double backward = 0;      // begin_backward .. the last gradient final
  double communication = 0; // sum over buckets of launch .. completion
  double overlapped = 0;    // the part of that before backward ended
  double tail = 0;          // backward's end .. every bucket reduced (what overlap could not hide)
  std::size_t buckets = 0, bytes = 0;
};

class data_parallel {
 public:
  // params: the trainable parameters in registration order (model.parameters()); frozen ones are left out.
  data_parallel(communicator& comm, std::vector<autograd::variable*> params, data_parallel_options o = {})
      : comm_(comm), o_(o) {
    for (auto* p : params)
      if (p && p->requires_grad()) params_.push_back(p);
    for (std::size_t i = 0; i < params_.size(); ++i) index_[params_[i]->cell().get()] = i;
  }
  data_parallel(const data_parallel&) = delete;
  data_parallel& operator=(const data_parallel&) = delete;
  // A backward that threw may leave buckets in flight: they write into the buffers freed here.
  ~data_parallel() {
    for (auto& b : buckets_)
      if (b.request) try {
          b.request->wait();
        } catch (...) {
        }
  }

  communicator& comm() { return comm_; }
  const data_parallel_stats& stats() const { return stats_; }
  std::size_t bucket_count() const { return buckets_.size(); }

  // Rank 0's values of these tensors (parameters, buffers, optimizer state) to every rank, in their
  // current formats (all ranks must have built the same model).
  void broadcast(const std::vector<tensor*>& tensors) {
    for (tensor* t : tensors)
      if (t && t->defined()) dist::broadcast(comm_, *t, 0);
  }

  // The hook to pass to autograd::backward; valid until finish_backward().
  autograd::gradient_ready_fn ready_hook() {
    return [this](autograd::grad_cell& cell) { on_ready(cell); };
  }

  // One backward of `loss` with its gradients averaged over the ranks: begin_backward, autograd::backward
  // with ready_hook(), finish_backward. The three calls stay public for a caller that drives backward
  // itself.
  void backward(const autograd::variable& loss) {
    begin_backward();
    autograd::backward(loss, {}, ready_hook());
    finish_backward();
  }

  void begin_backward() {
    GRCNN_CHECK(!in_backward_, error, "data_parallel: begin_backward twice without finish_backward");
    in_backward_ = true;
    ready_.assign(params_.size(), false);
    order_.clear();
    next_launch_ = 0;
    for (auto& b : buckets_) b.waiting = b.members.size(), b.request.reset();
    stats_ = {};
    t_begin_ = clock::now();
    t_backward_end_ = {};
  }

  // After autograd::backward returned: reduces what is left, waits, writes the averaged gradients.
  void finish_backward() {
    GRCNN_CHECK(in_backward_, error, "data_parallel: finish_backward without begin_backward");
    in_backward_ = false;
    t_backward_end_ = clock::now();
    // Parameters whose uses got no gradient (or that are not on the tape at all) are final now.
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (!ready_[i]) mark_ready(i);
    if (buckets_.empty()) build_buckets();  // the first step: buckets from the order just observed
    launch_ready_buckets(true);
    // Which parameters had a gradient on some rank (one small all-reduce, after the buckets' in order).
    std::vector<std::int64_t> had(params_.size());
    for (std::size_t i = 0; i < params_.size(); ++i) had[i] = params_[i]->grad().defined() ? 1 : 0;
    comm_.all_reduce(had.data(), had.size(), dtype::i64, reduce_op::max);
    for (auto& b : buckets_) {
      b.request->wait();
      b.done = b.request->completed_at();
    }
    const auto end = clock::now();
    for (auto& b : buckets_) {
      unpack(b, had);
      stats_.communication += seconds(b.done - b.launch);
      stats_.overlapped += std::max(0.0, seconds(std::min(b.done, t_backward_end_) - b.launch));
      stats_.bytes += b.bytes;
    }
    stats_.backward = seconds(t_backward_end_ - t_begin_);
    stats_.tail = seconds(end - t_backward_end_);
    stats_.buckets = buckets_.size();
  }

 private:
  using clock = std::chrono::steady_clock;
  static double seconds(clock::duration d) { return std::chrono::duration<double>(d).count(); }

  struct bucket {
    std::vector<std::size_t> members;  // parameter indices, in ready order
    std::vector<std::size_t> offsets;  // byte offsets of their slots
    tensor buffer;                     // 1-D, the members' storage back to back
    std::size_t bytes = 0, waiting = 0;
    std::unique_ptr<pending> request;
    clock::time_point launch, done;
  };

  void on_ready(autograd::grad_cell& cell) {
    const auto it = index_.find(&cell);
    if (it == index_.end() || ready_[it->second]) return;  // not one of ours (an input), or seen
    mark_ready(it->second);
    if (o_.overlap && !buckets_.empty()) launch_ready_buckets(false);
  }

  void mark_ready(std::size_t i) {
    ready_[i] = true;
    order_.push_back(i);
    if (!buckets_.empty()) {
      bucket& b = buckets_[bucket_of_[i]];
      GRCNN_CHECK(b.waiting > 0, error, "data_parallel: parameter ", params_[i]->name(), " final twice");
      --b.waiting;
    }
  }

  // The gradient of weight w in w's own device, layout and format (what the slot holds).
  static tensor in_weight_format(tensor g, const tensor& w) {
    if (g.where() != w.where()) g = g.to_device(w.where());
    if (!g.same_format(w))
      g = w.memory_layout() == layout::opaque ? g.to_format(w.format()) : g.to_layout(w.memory_layout());
    return g;
  }

  // Cuts the observed order into buckets per (dtype, device): the first closes at first_bucket_bytes,
  // the rest at bucket_bytes (DDP closes a bucket once it reaches its limit). Then checks that every rank
  // cut the same buckets (same formats, same order).
  void build_buckets() {
    // Rank 0's order for everyone (as DDP's rebuild): a parameter that some rank did not use becomes
    // final there only at the end, which must not change the buckets.
    std::int64_t count = static_cast<std::int64_t>(order_.size());
    std::int64_t counts[2] = {count, count};
    comm_.all_reduce(&counts[0], 1, dtype::i64, reduce_op::min);
    comm_.all_reduce(&counts[1], 1, dtype::i64, reduce_op::max);
    GRCNN_CHECK(counts[0] == counts[1], dist_error, "data_parallel: rank ", comm_.rank(), " has ", count,
                " trainable parameters, another rank ", counts[0] == count ? counts[1] : counts[0], " (a different model)");
    std::vector<std::int64_t> order(order_.begin(), order_.end());
    comm_.broadcast(order.data(), order.size(), dtype::i64, 0);
    order_.assign(order.begin(), order.end());
    struct open_bucket {
      dtype type;
      device where;
      bucket b;
      std::size_t limit;
    };
    std::vector<open_bucket> open;
    std::vector<bucket> closed;
    bool first = true;
    for (std::size_t i : order_) {
      const tensor& w = params_[i]->value();
      auto o = std::find_if(open.begin(), open.end(), [&](const open_bucket& x) { return x.type == w.type() && x.where == w.where(); });
      if (o == open.end()) {
        open.push_back({w.type(), w.where(), {}, first ? o_.first_bucket_bytes : o_.bucket_bytes});
        first = false;
        o = open.end() - 1;
      }
      o->b.members.push_back(i);
      o->b.offsets.push_back(o->b.bytes);
      o->b.bytes += w.bytes();
      if (o->b.bytes >= o->limit) {
        closed.push_back(std::move(o->b));
        o->b = {};
        o->limit = o_.bucket_bytes;
      }
    }
    for (auto& o : open)
      if (!o.b.members.empty()) closed.push_back(std::move(o.b));
    buckets_ = std::move(closed);
    bucket_of_.assign(params_.size(), 0);
    // FNV-1a over every bucket's dtype, size and members (index and bytes): equal on every rank or refused.
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&h](std::uint64_t v) {
      for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
    };
    for (std::size_t k = 0; k < buckets_.size(); ++k) {
      bucket& b = buckets_[k];
      const tensor& w0 = params_[b.members.front()]->value();
      b.buffer = tensor::full(shape{static_cast<std::int64_t>(b.bytes / size_of(w0.type()))}, 0.0, w0.type(), layout::plain, w0.where());
      mix(static_cast<std::uint64_t>(w0.type())), mix(b.bytes);
      for (std::size_t m = 0; m < b.members.size(); ++m) {
        bucket_of_[b.members[m]] = k;
        mix(b.members[m]), mix(params_[b.members[m]]->value().bytes());
      }
      b.waiting = 0;  // this step's gradients are all final already
    }
    std::int64_t signature[2] = {static_cast<std::int64_t>(buckets_.size()), static_cast<std::int64_t>(h >> 1)};
    std::int64_t lo[2] = {signature[0], signature[1]}, hi[2] = {signature[0], signature[1]};
    comm_.all_reduce(lo, 2, dtype::i64, reduce_op::min);
    comm_.all_reduce(hi, 2, dtype::i64, reduce_op::max);
    GRCNN_CHECK(lo[0] == hi[0] && lo[1] == hi[1], dist_error, "data_parallel: rank ", comm_.rank(),
                " cut its gradients into buckets unlike another rank (a different model, parameter order or "
                "memory format: all ranks must run the same build on the same kind of CPU)");
  }

  // Launches, in bucket order, every bucket whose gradients are all final (all of them at the end).
  void launch_ready_buckets(bool all) {
    while (next_launch_ < buckets_.size() && (all || buckets_[next_launch_].waiting == 0)) {
      bucket& b = buckets_[next_launch_++];
      pack(b);
      b.launch = clock::now();
      b.request = comm_.all_reduce_async(b.buffer.raw(), b.bytes / size_of(b.buffer.type()), b.buffer.type(), reduce_op::sum);
    }
  }

  // Each member's gradient times 1/world into its slot (zeros where it has none).
  void pack(bucket& b) {
    const double inv = 1.0 / comm_.world_size();
    for (std::size_t m = 0; m < b.members.size(); ++m) {
      autograd::variable& p = *params_[b.members[m]];
      const tensor& w = p.value();
      char* slot = static_cast<char*>(b.buffer.raw()) + b.offsets[m];
      if (!p.grad().defined()) {
        if (w.where().kind == device_kind::cpu) std::memset(slot, 0, w.bytes());
        else runtime_for(w.where()).zero(slot, w.bytes());
        continue;
      }
      GRCNN_CHECK(p.grad().type() == w.type() && p.grad().dims() == w.dims(), dtype_error, "data_parallel: gradient ",
                  p.grad().describe(), " of ", p.name(), " does not match its weight ", w.describe());
      const tensor g = in_weight_format(p.grad(), w);
      GRCNN_CHECK(g.bytes() == w.bytes(), error, "data_parallel: gradient of ", p.name(), " holds ", g.bytes(),
                  " bytes in its weight's format, the weight ", w.bytes());
      comm_.scale_into(slot, g.raw(), w.bytes() / size_of(w.type()), w.type(), inv, w.where());
    }
  }

  // The averaged gradients back: into the parameter's gradient buffer when nothing else holds it, else a
  // fresh tensor in the weight's format. A parameter that had no gradient keeps none.
  void unpack(bucket& b, const std::vector<std::int64_t>& had) {
    for (std::size_t m = 0; m < b.members.size(); ++m) {
      autograd::variable& p = *params_[b.members[m]];
      if (!had[b.members[m]]) continue;
      const tensor& w = p.value();
      const char* slot = static_cast<const char*>(b.buffer.raw()) + b.offsets[m];
      tensor g = p.grad();
      if (!(g.defined() && g.same_format(w) && g.where() == w.where() && g.use_count() == 2)) g = tensor::empty_like(w);
      if (w.where().kind == device_kind::cpu) std::memcpy(g.raw(), slot, w.bytes());
      else runtime_for(w.where()).copy(g.raw(), w.where(), slot, w.where(), w.bytes());
      p.set_grad(std::move(g));
    }
  }

  communicator& comm_;
  data_parallel_options o_;
  std::vector<autograd::variable*> params_;
  std::unordered_map<const autograd::grad_cell*, std::size_t> index_;
  std::vector<bool> ready_;
  std::vector<std::size_t> order_;
  std::vector<bucket> buckets_;
  std::vector<std::size_t> bucket_of_;
  std::size_t next_launch_ = 0;
  bool in_backward_ = false;
  data_parallel_stats stats_;
  clock::time_point t_begin_, t_backward_end_;
};

}  // namespace grcnn::dist
