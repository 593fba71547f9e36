// Data-parallel training steps on the CPU (issue 22): run under mpirun with 1 and then 2 ranks of one
// thread each, e.g.
//   OMP_NUM_THREADS=1 mpirun -np 1 build/benchmarks/bench_data_parallel --arch grcnn_small
//   OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core build/benchmarks/bench_data_parallel --arch grcnn_small
// Synthetic batches (the loader is measured by bench_loader), SGD with momentum, the DDP reducer with
// its default buckets. Rank 0 prints one JSON line: global images/s, and per step the backward time,
// the time buckets spent in communication, the part of it that overlapped backward and the tail after
// backward (what overlap could not hide). Medians over the timed steps.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>
#include <omp.h>

#include <grcnn/dist/data_parallel.hpp>
#include <grcnn/dist/mpi.hpp>
#include <grcnn/models/registry.hpp>
#include <grcnn/ops/losses.hpp>
#include <grcnn/train/sgd.hpp>

using namespace grcnn;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Topology>
int run(dist::mpi_communicator& comm, int batch, int side, int steps, int warmup, bool overlap) {
  using B = backends::cpu;
  nn::network<Topology, B> net(1000, 1);
  net.train();
  train::sgd opt(net.parameters(), train::param_group{.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});
  dist::data_parallel ddp(comm, net.parameters(), {.overlap = overlap});
  std::vector<tensor*> state;
  for (auto& e : net.state()) state.push_back(&e.value());
  ddp.broadcast(state);
  std::vector<double> pixels(static_cast<std::size_t>(batch) * 3 * side * side);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>((i * 7919 + comm.rank() * 31) % 255) / 127.5 - 1;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = (i * 37 + comm.rank()) % 1000;
  const auto x = backends::to_backend<B>(tensor::from_values(shape{batch, 3, side, side}, pixels, dtype::f32));
  const auto y = tensor::from_values(shape{batch}, labels);
  std::vector<double> step_s, backward_s, comm_s, overlapped_s, tail_s;
  for (int s = 0; s < warmup + steps; ++s) {
    comm.barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const auto loss = ops::cross_entropy<B>(net.forward(autograd::variable(x)), y);
    ddp.begin_backward();
    autograd::backward(loss, {}, ddp.ready_hook());
    ddp.finish_backward();
    opt.step();
    opt.zero_grad();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s < warmup) continue;
    step_s.push_back(dt);
    backward_s.push_back(ddp.stats().backward);
    comm_s.push_back(ddp.stats().communication);
    overlapped_s.push_back(ddp.stats().overlapped);
    tail_s.push_back(ddp.stats().tail);
  }
  double slowest = median(step_s);  // the job runs at its slowest rank's pace
  comm.all_reduce(&slowest, 1, dtype::f64, dist::reduce_op::max);
  if (comm.rank() == 0) {
    const nlohmann::json j{{"ranks", comm.world_size()}, {"threads_per_rank", omp_get_max_threads()},
                           {"batch_per_rank", batch}, {"side", side}, {"steps", steps}, {"overlap", overlap},
                           {"step_s", slowest}, {"images_per_s", comm.world_size() * batch / slowest},
                           {"backward_s", median(backward_s)}, {"communication_s", median(comm_s)},
                           {"overlapped_s", median(overlapped_s)}, {"tail_s", median(tail_s)},
                           {"buckets", ddp.stats().buckets}, {"gradient_bytes", ddp.stats().bytes}};
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_data_parallel: data-parallel steps under mpirun (rank 0 prints JSON)"};
  std::string arch = "grcnn_small";
  int batch = 16, side = 32, steps = 10, warmup = 2;
  bool no_overlap = false;
  app.add_option("--arch", arch, "grcnn_small or another registered variant");
  app.add_option("--batch", batch, "images per rank")->check(CLI::PositiveNumber);
  app.add_option("--side", side, "input side")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_flag("--no-overlap", no_overlap, "reduce every bucket after backward");
  CLI11_PARSE(app, argc, argv);
  dist::mpi_communicator comm;
  try {
    return models::with_variant(arch, [&]<class Topology>() { return run<Topology>(comm, batch, side, steps, warmup, !no_overlap); });
  } catch (const std::exception& e) {
    comm.abort(std::string("bench_data_parallel: ") + e.what(), 1);
  }
}
