// Data-parallel pieces over real MPI ranks (run under mpirun -np N; see tests/CMakeLists.txt): the
// collectives of every dtype and size against sums every rank can compute itself.
// Every rank runs every test; the exit code is the worst over ranks, so ctest sees any rank's failure.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <bit>
#include <memory>
#include <vector>

#include <grcnn/backends/default.hpp>
#include <grcnn/dist/batch_norm_group.hpp>
#include <grcnn/dist/data_parallel.hpp>
#include <grcnn/dist/mpi.hpp>
#include <grcnn/models/grcnn.hpp>
#include <grcnn/ops/elementwise.hpp>
#include <grcnn/ops/losses.hpp>
#include <grcnn/train/sgd.hpp>

using namespace grcnn;

namespace {

dist::mpi_communicator* world = nullptr;

// Rank r's value at index i: small integers, so every sum is exact in every dtype (bf16 holds integers
// up to 256 exactly; the sums below stay within that).
double value(int r, std::size_t i) { return static_cast<double>((static_cast<std::size_t>(r) * 7 + i * 3) % 11) - 5.0; }

template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}
template <class T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bf16> || std::is_same_v<T, f16>) return static_cast<double>(static_cast<float>(v));
  else return static_cast<double>(v);
}

template <class T>
void check_all_reduce(dtype t, std::size_t n, dist::reduce_op op) {
  const int w = world->world_size(), me = world->rank();
  std::vector<T> data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = from_double<T>(value(me, i));
  world->all_reduce(data.data(), n, t, op);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double expect = value(0, i);
    for (int r = 1; r < w; ++r) {
      const double v = value(r, i);
      expect = op == dist::reduce_op::sum ? expect + v : op == dist::reduce_op::min ? std::min(expect, v) : std::max(expect, v);
    }
    wrong += to_double(data[i]) != expect;
  }
  INFO("rank " << me << " of " << w << ", " << name_of(t) << ", " << n << " elements, " << dist::op_name(op));
  CHECK(wrong == 0);
}

template <class T>
void check_broadcast(dtype t, std::size_t n, int root) {
  const int me = world->rank();
  std::vector<T> data(n);
  for (std::size_t i = 0; i < n; ++i) data[i] = from_double<T>(value(me, i));
  world->broadcast(data.data(), n, t, root);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < n; ++i) wrong += to_double(data[i]) != value(root, i);
  INFO("rank " << me << ", " << name_of(t) << ", " << n << " elements from rank " << root);
  CHECK(wrong == 0);
}

}  // namespace

TEST_CASE("all-reduce of every dtype and size equals the sum, min and max every rank computes", "[dist][comm]") {
  REQUIRE(world->world_size() >= 2);
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{1023}, std::size_t{3 * 65536 + 5}})
    for (auto op : {dist::reduce_op::sum, dist::reduce_op::min, dist::reduce_op::max}) {
      check_all_reduce<float>(dtype::f32, n, op);
      check_all_reduce<double>(dtype::f64, n, op);
      check_all_reduce<std::int64_t>(dtype::i64, n, op);
      check_all_reduce<bf16>(dtype::bf16, n, op);
      check_all_reduce<f16>(dtype::f16, n, op);
    }
}

TEST_CASE("bf16 is accumulated in f32 and rounded once", "[dist][comm]") {
  // Rank 0 gives 256, the others 1 each. bf16 steps by 2 at 256, so summing in bf16 hop by hop rounds
  // every 256 + 1 back to 256 (ties to even); in f32 the sum is exact until the one final rounding.
  const int w = world->world_size();
  std::vector<bf16> x(3, bf16(world->rank() == 0 ? 256.0f : 1.0f));
  world->all_reduce(x.data(), x.size(), dtype::bf16, dist::reduce_op::sum);
  const float once = static_cast<float>(bf16(256.0f + static_cast<float>(w - 1)));
  for (auto v : x) CHECK(static_cast<float>(v) == once);
  if (w >= 3) CHECK(once != 256.0f);
}

TEST_CASE("broadcast of every dtype from every root", "[dist][comm]") {
  for (int root = 0; root < world->world_size(); ++root)
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1023}, std::size_t{70001}}) {
      check_broadcast<float>(dtype::f32, n, root);
      check_broadcast<double>(dtype::f64, n, root);
      check_broadcast<std::int64_t>(dtype::i64, n, root);
      check_broadcast<bf16>(dtype::bf16, n, root);
    }
  std::vector<float> x(4);
  CHECK_THROWS_WITH(world->broadcast(x.data(), x.size(), dtype::f32, world->world_size()),
                    Catch::Contains("root") && Catch::Contains("world of"));
}

TEST_CASE("asynchronous all-reduces complete in order, several in flight, with identical bits on every rank", "[dist][comm]") {
  const int me = world->rank(), w = world->world_size();
  // Random floats: the sum's rounding depends on the reduction order, which must be the same everywhere.
  std::vector<std::vector<float>> buckets;
  std::uint64_t state = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(me + 1);
  for (std::size_t b = 0; b < 6; ++b) {
    buckets.emplace_back(1000 + 977 * b);
    for (auto& x : buckets.back()) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x = static_cast<float>(static_cast<std::int64_t>(state >> 11) % 2000001 - 1000000) * 1e-6f;
    }
  }
  auto reference = buckets;
  std::vector<std::unique_ptr<dist::pending>> inflight;
  for (auto& b : buckets) inflight.push_back(world->all_reduce_async(b.data(), b.size(), dtype::f32, dist::reduce_op::sum));
  for (std::size_t i = inflight.size(); i-- > 0;) inflight[i]->wait();  // waited out of order
  for (auto& p : inflight) CHECK(p->done());
  // Reference: rank-ordered sums in f64, from every rank's data (regenerated), within f32 rounding.
  double worst = 0;
  for (std::size_t b = 0; b < buckets.size(); ++b)
    for (std::size_t i = 0; i < buckets[b].size(); ++i) worst = std::max(worst, std::abs(double(buckets[b][i])));
  CHECK(worst > 0);
  // Identical bits on every rank: min and max of a hash agree.
  std::int64_t hash = 1469598103934665603ll;
  for (auto& b : buckets)
    for (float x : b) {
      std::uint32_t u;
      std::memcpy(&u, &x, 4);
      hash = static_cast<std::int64_t>((static_cast<std::uint64_t>(hash) ^ u) * 1099511628211ull);
    }
  std::int64_t lo = hash, hi = hash;
  world->all_reduce(&lo, 1, dtype::i64, dist::reduce_op::min);
  world->all_reduce(&hi, 1, dtype::i64, dist::reduce_op::max);
  CHECK(lo == hi);
  // And close to the exact sum: regenerate every rank's numbers.
  for (std::size_t b = 0; b < buckets.size(); ++b) {
    std::vector<double> exact(buckets[b].size(), 0.0);
    for (int r = 0; r < w; ++r) {
      std::uint64_t s = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(r + 1);
      for (std::size_t bb = 0; bb <= b; ++bb)
        for (std::size_t i = 0; i < 1000 + 977 * bb; ++i) {
          s = s * 6364136223846793005ull + 1442695040888963407ull;
          if (bb == b) exact[i] += double(static_cast<float>(static_cast<std::int64_t>(s >> 11) % 2000001 - 1000000) * 1e-6f);
        }
    }
    double err = 0;
    for (std::size_t i = 0; i < exact.size(); ++i) err = std::max(err, std::abs(exact[i] - double(buckets[b][i])));
    CHECK(err <= 4e-7 * w);
  }
  (void)reference;
}

TEST_CASE("the side channel's collectives complete while a main-channel one waits for a late rank", "[dist][comm]") {
  // Rank 0 starts a main-channel all-reduce before a side-channel one; the other ranks start the
  // side-channel one first and the main one only after it completed (a gradient bucket that starts late
  // on some rank, around a synchronised batch norm's collective). One matching order would deadlock.
  const int w = world->world_size(), me = world->rank();
  double main_value = me + 1.0, side_value = 10.0 * (me + 1);
  dist::communicator& side = world->side_channel();
  REQUIRE(&side != static_cast<dist::communicator*>(world));
  std::unique_ptr<dist::pending> main_op;
  if (me == 0) main_op = world->all_reduce_async(&main_value, 1, dtype::f64, dist::reduce_op::sum);
  side.all_reduce(&side_value, 1, dtype::f64, dist::reduce_op::sum);
  if (me != 0) main_op = world->all_reduce_async(&main_value, 1, dtype::f64, dist::reduce_op::sum);
  main_op->wait();
  CHECK(side_value == 10.0 * w * (w + 1) / 2);
  CHECK(main_value == w * (w + 1) / 2.0);
  double b = me == 0 ? 42.0 : 0.0;
  side.broadcast(&b, 1, dtype::f64, 0);
  side.barrier();
  CHECK(b == 42.0);
}

TEST_CASE("whole-tensor collectives: a blocked weight's whole storage", "[dist][comm]") {
  auto t = tensor::full(shape{3, 5}, static_cast<double>(world->rank() + 1), dtype::f32, layout::plain, cpu_device);
  dist::all_reduce(*world, t);
  const double expect = world->world_size() * (world->world_size() + 1) / 2.0;
  for (float v : t.values<float>()) CHECK(v == expect);
  auto b = tensor::full(shape{2}, static_cast<double>(world->rank()), dtype::f64, layout::plain, cpu_device);
  dist::broadcast(*world, b, world->world_size() - 1);
  for (double v : b.values<double>()) CHECK(v == world->world_size() - 1);
  world->barrier();
}

namespace {

const std::int64_t side = 16;
// Step s's global batch: `rows` images of 3x16x16 in [-1, 1] and labels in [0, 4), the same on every rank.
struct global_batch {
  std::vector<double> pixels;
  std::vector<std::int64_t> labels;
};
global_batch batch_of(int s, std::int64_t rows) {
  global_batch b;
  std::uint64_t x = 0x2545f4914f6cdd1dull + static_cast<std::uint64_t>(s) * 0x9e3779b97f4a7c15ull;
  b.pixels.resize(static_cast<std::size_t>(rows * 3 * side * side));
  for (auto& v : b.pixels) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<double>(x >> 11) / 9007199254740992.0 * 2 - 1;
  }
  for (std::int64_t i = 0; i < rows; ++i) b.labels.push_back((i * 3 + s) % 4);
  return b;
}
// Rows [begin, end) of the batch as a backend tensor of type t.
template <class B>
autograd::variable images(const global_batch& b, std::int64_t begin, std::int64_t end, dtype t) {
  const std::size_t per = 3 * side * side;
  std::vector<double> v(b.pixels.begin() + begin * per, b.pixels.begin() + end * per);
  return autograd::variable(backends::to_backend<B>(tensor::from_values(shape{end - begin, 3, side, side}, v, t)));
}
tensor labels(const global_batch& b, std::int64_t begin, std::int64_t end) {
  return tensor::from_values(shape{end - begin}, std::vector<std::int64_t>(b.labels.begin() + begin, b.labels.begin() + end));
}

// The plain state (parameters and buffers) by name.
template <class Net>
std::vector<std::pair<std::string, tensor>> snapshot(Net& net) {
  std::vector<std::pair<std::string, tensor>> out;
  for (auto& e : net.state()) out.emplace_back(e.name, e.value().to_layout(layout::plain).clone());
  return out;
}

// The worst error over the plain state (parameters and BN buffers) of two networks, each tensor's
// largest difference relative to its own magnitude, or to `floor` where that is larger; the counters
// must be equal.
double worst_state_error(const std::vector<std::pair<std::string, tensor>>& a,
                         const std::vector<std::pair<std::string, tensor>>& e, double floor = 1e-30) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].second.type() == dtype::i64) {
      CHECK(a[i].second.template values<std::int64_t>() == e[i].second.template values<std::int64_t>());
      continue;
    }
    const double err = relative_error(a[i].second, e[i].second, floor);
    if (err > 0) UNSCOPED_INFO(a[i].first << ": relative error " << err);
    worst = std::max(worst, err);
  }
  return worst;
}
// The largest magnitude in the state.
double state_scale(const std::vector<std::pair<std::string, tensor>>& a) {
  double m = 0;
  for (const auto& [name, t] : a)
    if (t.type() != dtype::i64)
      for (double v : t.template values<double>()) m = std::max(m, std::abs(v));
  return m;
}

// Every rank holds the same bits of the state: min and max over the ranks of a hash agree.
bool same_bits_on_every_rank(const std::vector<std::pair<std::string, tensor>>& state) {
  std::uint64_t hash = 0;
  for (const auto& [name, v] : state)
    for (double x : v.template values<double>()) hash = hash * 1000003u + std::bit_cast<std::uint64_t>(x);
  std::int64_t lo = static_cast<std::int64_t>(hash >> 1), hi = lo;
  world->all_reduce(&lo, 1, dtype::i64, dist::reduce_op::min);
  world->all_reduce(&hi, 1, dtype::i64, dist::reduce_op::max);
  return lo == hi;
}
// The reducer of the equivalence tests (small buckets, so grcnn_small gets several), with rank 0's
// state broadcast (each rank starts from its own initialisation: the broadcast must fix them).
template <class Net>
std::unique_ptr<dist::data_parallel> reducer_for(Net& net, bool overlap) {
  auto ddp = std::make_unique<dist::data_parallel>(
      *world, net.parameters(), dist::data_parallel_options{.bucket_bytes = 64 << 10, .first_bucket_bytes = 16 << 10, .overlap = overlap});
  std::vector<tensor*> state;
  for (auto& e : net.state()) state.push_back(&e.value());
  ddp->broadcast(state);
  return ddp;
}

// 10 SGD steps (momentum, weight decay) of grcnn_small, per-rank batch 4: DDP over the ranks against one
// process that computes each rank's half itself and averages the losses, with BN running statistics
// following rank 0's half (DDP's broadcast_buffers lineage). Returns the worst relative error.
template <class B>
double ddp_against_one_process(dtype t, bool overlap) {
  using net_t = models::grcnn_small<B>;
  const int w = world->world_size(), me = world->rank();
  const std::int64_t per = 4;
  net_t net(4, 5 + static_cast<std::uint64_t>(me));  // differing starts: the broadcast must fix them
  net_t ref(4, 5);
  if (t == dtype::f64) net.to_dtype(t), ref.to_dtype(t);
  net.train();
  ref.train();
  const train::param_group hyper{.lr = 0.05, .weight_decay = 5e-4, .momentum = 0.9};
  train::sgd opt(net.parameters(), hyper), ref_opt(ref.parameters(), hyper);
  const auto reducer = reducer_for(net, overlap);
  dist::data_parallel& ddp = *reducer;
  std::vector<std::vector<std::vector<double>>> grads_by_rank(static_cast<std::size_t>(w));
  const int steps = 10;
  for (int s = 0; s < steps; ++s) {
    const auto b = batch_of(s, per * w);
    {  // DDP: this rank's rows
      ddp.backward(ops::cross_entropy<B>(net.forward(images<B>(b, me * per, (me + 1) * per, t)), labels(b, me * per, (me + 1) * per)));
      opt.step();
      opt.zero_grad();
    }
    {  // One process: each rank's rows through forward and backward in turn (BN buffers kept from rank
       // 0's rows only); the gradients averaged as DDP does: g_r * (1/world), summed in rank order.
      const auto refs = ref.parameters();
      for (int r = w - 1; r >= 0; --r) {
        std::vector<tensor> keep;
        if (r != 0)
          for (auto& e : ref.state())
            if (!e.is_parameter()) keep.push_back(e.value().clone());
        const auto logits = ref.forward(images<B>(b, r * per, (r + 1) * per, t));
        autograd::backward(ops::cross_entropy<B>(logits, labels(b, r * per, (r + 1) * per)));
        if (r != 0) {
          std::size_t k = 0;
          for (auto& e : ref.state())
            if (!e.is_parameter()) e.value() = keep[k++];
        }
        auto& mine = grads_by_rank[static_cast<std::size_t>(r)];
        mine.assign(refs.size(), {});
        for (std::size_t i = 0; i < refs.size(); ++i) {
          if (refs[i]->grad().defined()) mine[i] = refs[i]->grad().to_layout(layout::plain).template values<double>();
          refs[i]->zero_grad();
        }
      }
      for (std::size_t i = 0; i < refs.size(); ++i) {
        if (grads_by_rank[0][i].empty()) continue;  // no gradient: DDP keeps none either
        std::vector<double> sum(grads_by_rank[0][i].size());
        for (std::size_t j = 0; j < sum.size(); ++j) {
          if (t == dtype::f32) {
            const float inv = static_cast<float>(1.0 / w);
            float acc = static_cast<float>(grads_by_rank[0][i][j]) * inv;
            for (int r = 1; r < w; ++r) acc += static_cast<float>(grads_by_rank[static_cast<std::size_t>(r)][i][j]) * inv;
            sum[j] = acc;
          } else {
            double acc = grads_by_rank[0][i][j] * (1.0 / w);
            for (int r = 1; r < w; ++r) acc += grads_by_rank[static_cast<std::size_t>(r)][i][j] * (1.0 / w);
            sum[j] = acc;
          }
        }
        refs[i]->set_grad(tensor::from_values(refs[i]->dims(), sum, t));
      }
      ref_opt.step();
      ref_opt.zero_grad();
    }
  }
  // Rank 0's BN buffers everywhere (DDP's broadcast_buffers; training reads batch statistics, so once at
  // the end equals torch's broadcast before every forward).
  std::vector<tensor*> buffers;
  for (auto& e : net.state())
    if (!e.is_parameter()) buffers.push_back(&e.value());
  ddp.broadcast(buffers);
  const auto a = snapshot(net);
  const double worst = worst_state_error(a, snapshot(ref));
  CHECK(same_bits_on_every_rank(a));  // every rank holds the same bits
  CHECK(ddp.bucket_count() >= 2);
  return worst;
}

// A group of two in one process whose other rank has an empty batch: the synchronised batch norm's own
// arithmetic over this process's batch alone (a rank with no values is left out of the merge).
struct empty_peer_group final : ops::batch_norm_group {
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  void sum(std::span<double>) override {}  // the peer adds zeros
  void all_gather(std::span<const double> mine, std::span<double> all) override {
    std::fill(all.begin(), all.end(), 0.0);
    std::copy(mine.begin(), mine.end(), all.begin());
  }
};

// --sync-bn: 10 SGD steps (momentum, weight decay) of grcnn_small with per-rank batch 8 and every batch
// norm synchronised, against one process that trains on the whole global batch (BN over all of it).
// Parameters and BN buffers compared after every step; the worst relative error returned.
//
// f64 (reference<double>): the one process runs the plain batch norm, free-running for 10 steps: an
// independent check of the merge, the running statistics and the backward, to 1e-12.
// f32 (oneDNN): a free-running f32 comparison measures chaos, not the ranks: this network's training
// trajectory in f32 amplifies any rounding difference through max-pool and ReLU near-ties (one process
// against itself with the input scaled by 1 + 1e-7 ends 2.7e-2 apart after 10 steps at this rate), so
// each step starts both from the one process's state, and the one process runs the synchronised kernels
// over its whole batch (empty_peer_group): what remains is the ranks' split of the batch. Errors are
// relative to the state's scale (its largest magnitude): the BN and conv biases hold one step's update,
// the average of the ranks' gradient sums, which cancel; PyTorch's DDP averages them in f32 the same way.
template <class B>
double sync_bn_against_one_process(dtype t, bool overlap, bool nhwc) {
  using net_t = models::grcnn_small<B>;
  const int w = world->world_size(), me = world->rank();
  const bool realign = t != dtype::f64;
  const std::int64_t per = 8;
  net_t net(4, 11 + static_cast<std::uint64_t>(me));
  net_t ref(4, 11);
  if (t == dtype::f64) net.to_dtype(t), ref.to_dtype(t);
  net.train();
  ref.train();
  dist::communicator_batch_norm_group group(*world);
  net.set_batch_norm_group(&group);
  empty_peer_group alone;
  if (realign) ref.set_batch_norm_group(&alone);
  const train::param_group hyper{.lr = 0.05, .weight_decay = 5e-4, .momentum = 0.9};
  train::sgd opt(net.parameters(), hyper), ref_opt(ref.parameters(), hyper);
  const auto reducer = reducer_for(net, overlap);
  dist::data_parallel& ddp = *reducer;
  auto input = [&](const global_batch& b, std::int64_t lo, std::int64_t hi) {
    auto x = images<B>(b, lo, hi, t);
    return nhwc ? autograd::variable(x.value().to_layout(layout::nhwc)) : x;
  };
  double worst = 0;
  for (int s = 0; s < 10; ++s) {
    const auto b = batch_of(100 + s, per * w);
    ddp.backward(ops::cross_entropy<B>(net.forward(input(b, me * per, (me + 1) * per)), labels(b, me * per, (me + 1) * per)));
    opt.step();
    opt.zero_grad();
    autograd::backward(ops::cross_entropy<B>(ref.forward(input(b, 0, per * w)), labels(b, 0, per * w)));
    ref_opt.step();
    ref_opt.zero_grad();
    if (realign || s == 9) {
      const auto e = snapshot(ref);
      worst = std::max(worst, worst_state_error(snapshot(net), e, realign ? state_scale(e) : 1e-30));
    }
    if (realign) {
      auto mine = net.state();
      const auto theirs = ref.state();
      for (std::size_t i = 0; i < mine.size(); ++i) mine[i].value() = theirs[i].value().clone();
    }
  }
  // Every rank holds the same bits, the BN buffers too without a broadcast: each merged the same statistics.
  CHECK(same_bits_on_every_rank(snapshot(net)));
  net.set_batch_norm_group(nullptr);
  return worst;
}

}  // namespace

TEST_CASE("sync BN: 2 ranks x batch 8 equal 1 process x batch 16 at each of 10 SGD steps (f32, oneDNN, channels-last)", "[dist][ddp][syncbn]") {
  const double err = sync_bn_against_one_process<backends::default_backend>(dtype::f32, true, true);
  INFO("worst relative error " << err);
  CHECK(err <= 1e-6);
  WARN("sync BN f32 worst relative error at " << world->world_size() << " ranks: " << err);
}
TEST_CASE("sync BN: the same with the input in NCHW (f32, oneDNN)", "[dist][ddp][syncbn]") {
  const double err = sync_bn_against_one_process<backends::default_backend>(dtype::f32, true, false);
  CHECK(err <= 1e-6);
}
TEST_CASE("sync BN: N ranks x batch 8 equal 1 process x batch 8N with plain BN after 10 free-running SGD steps (reference<double>)", "[dist][ddp][syncbn]") {
  const double err = sync_bn_against_one_process<backends::reference<double>>(dtype::f64, true, false);
  INFO("worst relative error " << err);
  CHECK(err <= 1e-12);
  WARN("sync BN f64 worst relative error at " << world->world_size() << " ranks: " << err);
}
TEST_CASE("sync BN: too few values over all ranks is refused on every rank, by name", "[dist][ddp][syncbn]") {
  using B = backends::reference<double>;
  dist::communicator_batch_norm_group group(*world);
  autograd::variable gamma(tensor::full(shape{2}, 1.0, dtype::f64), true), beta(tensor::zeros(shape{2}, dtype::f64), true);
  tensor rm = tensor::zeros(shape{2}, dtype::f64), rv = tensor::full(shape{2}, 1.0, dtype::f64);
  // One value per channel on rank 0 only, none elsewhere: one value per channel in all.
  const std::int64_t n = world->rank() == 0 ? 1 : 0;
  autograd::variable x(tensor::full(shape{n, 2}, 0.5, dtype::f64), true);
  CHECK_THROWS_WITH((ops::batch_norm<B>(x, gamma, beta, rm, rv, {.group = &group})),
                    Catch::Contains("more than one value per channel over all"));
  // Two ranks with one value each: normalised together (a plain batch norm would refuse each alone).
  autograd::variable x1(tensor::full(shape{1, 2}, 0.25 * (world->rank() + 1), dtype::f64), true);
  const auto y = ops::batch_norm<B>(x1, gamma, beta, rm, rv, {.group = &group});
  const double mean = 0.25 * (world->world_size() + 1) / 2;
  double var = 0;
  for (int r = 0; r < world->world_size(); ++r) var += (0.25 * (r + 1) - mean) * (0.25 * (r + 1) - mean);
  var /= world->world_size();
  CHECK(y.value().values<double>()[0] == Approx((0.25 * (world->rank() + 1) - mean) / std::sqrt(var + 1e-5)).epsilon(1e-12));
}

// With two ranks the sum of two halves is one addition (the same in any order), so DDP equals the
// one-process reference bit for bit; with more ranks MPI's summation order may differ from rank order.
TEST_CASE("DDP without sync BN equals one process averaging each rank's gradient (f32, oneDNN)", "[dist][ddp]") {
  const double err = ddp_against_one_process<backends::default_backend>(dtype::f32, true);
  CHECK(err <= (world->world_size() == 2 ? 0.0 : 1e-6));
}
TEST_CASE("DDP without sync BN equals one process averaging each rank's gradient (reference<double>, no overlap)", "[dist][ddp]") {
  const double err = ddp_against_one_process<backends::reference<double>>(dtype::f64, false);
  CHECK(err <= (world->world_size() == 2 ? 0.0 : 1e-12));
}

TEST_CASE("a parameter only some ranks use gets the averaged gradient on every rank", "[dist][ddp]") {
  using B = backends::reference<double>;
  const int w = world->world_size(), me = world->rank();
  const std::int64_t k = 5;
  // Rank r's logits: x_r * w1 (+ x_r * w2 on rank 0 only); the loss: cross-entropy against class 0.
  auto logits_of = [&](int r, autograd::variable& w1, autograd::variable& w2) {
    std::vector<double> xv;
    for (std::int64_t i = 0; i < k; ++i) xv.push_back(0.25 * static_cast<double>(r + 1) + 0.1 * static_cast<double>(i));
    const autograd::variable x(tensor::from_values(shape{k}, xv, dtype::f64));
    autograd::variable z = ops::mul<B>(x, w1);
    if (r == 0) z = ops::add<B>(z, ops::mul<B>(x, w2));
    return ops::cross_entropy<B>(ops::reshape(z, shape{1, k}), tensor::from_values(shape{1}, std::vector<std::int64_t>{0}));
  };
  auto param = [&](double v, const char* name) {
    return autograd::variable(tensor::full(shape{k}, v, dtype::f64), true, name);
  };
  autograd::variable w1 = param(0.5, "w1"), w2 = param(-0.3, "w2");
  dist::data_parallel ddp(*world, {&w1, &w2});
  for (int step = 0; step < 2; ++step) {  // the first step builds the buckets, the second overlaps
    ddp.backward(logits_of(me, w1, w2));
    // Expected: the mean over ranks of each rank's gradient, rank 1.. contributing zeros to w2.
    std::vector<double> e1(k, 0.0), e2(k, 0.0);
    for (int r = 0; r < w; ++r) {
      autograd::variable a = param(0.5, "a"), b = param(-0.3, "b");
      autograd::backward(logits_of(r, a, b));
      const auto g1 = a.grad().values<double>();
      for (std::int64_t i = 0; i < k; ++i) e1[i] += g1[i] * (1.0 / w);
      if (b.grad().defined()) {
        const auto g2 = b.grad().values<double>();
        for (std::int64_t i = 0; i < k; ++i) e2[i] += g2[i] * (1.0 / w);
      }
    }
    REQUIRE(w2.grad().defined());  // also on the ranks that did not use it
    const auto g1 = w1.grad().values<double>(), g2 = w2.grad().values<double>();
    for (std::int64_t i = 0; i < k; ++i) {
      CHECK(g1[i] == Approx(e1[i]).epsilon(1e-14));
      CHECK(g2[i] == Approx(e2[i]).epsilon(1e-14));
    }
    w1.zero_grad(), w2.zero_grad();
  }
}

int main(int argc, char** argv) {
  std::unique_ptr<dist::mpi_communicator> comm;
  try {
    comm = std::make_unique<dist::mpi_communicator>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "test_dist: %s\n", e.what());
    return 2;
  }
  world = comm.get();
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv)) return rc;
  std::int64_t failed = session.run();
  comm->all_reduce(&failed, 1, dtype::i64, dist::reduce_op::max);
  comm.reset();
  return static_cast<int>(std::min<std::int64_t>(failed, 255));
}
