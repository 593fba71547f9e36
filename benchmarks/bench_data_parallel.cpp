// Data-parallel training steps on the CPU (issue 22): run under mpirun with 1 and then 2 ranks of one
// thread each, e.g.
//   OMP_NUM_THREADS=1 mpirun -np 1 build/benchmarks/bench_data_parallel --arch grcnn_small
//   OMP_NUM_THREADS=1 mpirun -np 2 --bind-to core build/benchmarks/bench_data_parallel --arch grcnn_small
// Synthetic batches (the loader is measured by bench_loader), SGD with momentum, the DDP reducer with
// its default buckets. Rank 0 prints one JSON line: global images/s, and per step the backward time,
// the time buckets spent in communication, the part of it that overlapped backward and the tail after
// backward (what overlap could not hide). Medians over the timed steps.
//
// On the GPU (--backend cuda, a build with the NCCL engine) each rank takes the GPU of its rank on the
// node and the wrapper reduces over NCCL; --compare-plain also times the same step without the wrapper
// (interleaved blocks of steps, same process) and prints the overhead, e.g. at world size 1:
//   build/benchmarks/bench_data_parallel --backend cuda --arch grcnn55 --side 224 --batch 128
//       --precision bf16 --compare-plain        (alone: a world of one, no MPI needed)
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>
#include <omp.h>

#include <grcnn/backends/default.hpp>
#include <grcnn/dist/data_parallel.hpp>
#include <grcnn/dist/mpi.hpp>
#ifdef GRCNN_HAS_NCCL
#include <grcnn/backends/cuda/cuda.hpp>
#include <grcnn/train/cuda_updates.hpp>
#include <grcnn/dist/nccl.hpp>
#endif
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

struct settings {
  int batch = 16, side = 32, steps = 10, warmup = 2;
  bool overlap = true, compare_plain = false, bf16 = false;
};

template <class Topology, class B>
int run(dist::communicator& comm, const settings& o) {
  nn::network<Topology, B> net(1000, 1);
  const bool gpu = !std::is_same_v<B, backends::cpu>;
  if (gpu) net.to_device(cuda_device);
  if (o.bf16) net.set_precision(nn::precision::bf16_mixed);
  net.train();
  train::sgd opt(net.parameters(), train::param_group{.lr = 0.01, .weight_decay = 1e-4, .momentum = 0.9});
  dist::data_parallel ddp(comm, net.parameters(), {.overlap = o.overlap});
  std::vector<tensor*> state;
  for (auto& e : net.state()) state.push_back(&e.value());
  ddp.broadcast(state);
  const int batch = o.batch, side = o.side;
  std::vector<double> pixels(static_cast<std::size_t>(batch) * 3 * side * side);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<double>((i * 7919 + comm.rank() * 31) % 255) / 127.5 - 1;
  std::vector<std::int64_t> labels(static_cast<std::size_t>(batch));
  for (int i = 0; i < batch; ++i) labels[static_cast<std::size_t>(i)] = (i * 37 + comm.rank()) % 1000;
  tensor x = backends::to_backend<B>(tensor::from_values(shape{batch, 3, side, side}, pixels, dtype::f32));
  tensor y = tensor::from_values(shape{batch}, labels);
  if (gpu) x = x.to_device(cuda_device), y = y.to_device(cuda_device);
  auto sync = [&] {
    if (gpu) runtime_for(cuda_device).synchronize();
  };
  auto wrapped_step = [&] {
    ddp.backward(ops::cross_entropy<B>(net.forward(autograd::variable(x)), y));
    opt.step();
    opt.zero_grad();
  };
  auto plain_step = [&] {
    autograd::backward(ops::cross_entropy<B>(net.forward(autograd::variable(x)), y));
    opt.step();
    opt.zero_grad();
  };
  std::vector<double> step_s, plain_s, backward_s, comm_s, overlapped_s, tail_s;
  auto timed = [&](auto&& step) {
    comm.barrier();
    sync();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    sync();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int s = 0; s < o.warmup; ++s) {
    timed(wrapped_step);
    if (o.compare_plain) timed(plain_step);
  }
  // Blocks of 5 steps each way, alternating, so a clock or thermal drift hits both alike.
  for (int s = 0; s < o.steps; ++s) {
    step_s.push_back(timed(wrapped_step));
    backward_s.push_back(ddp.stats().backward);
    comm_s.push_back(ddp.stats().communication);
    overlapped_s.push_back(ddp.stats().overlapped);
    tail_s.push_back(ddp.stats().tail);
    if (o.compare_plain && (s % 5 == 4 || s + 1 == o.steps))
      for (int k = 0; k < (s % 5) + 1; ++k) plain_s.push_back(timed(plain_step));
  }
  double slowest = median(step_s);  // the job runs at its slowest rank's pace
  comm.all_reduce(&slowest, 1, dtype::f64, dist::reduce_op::max);
  if (comm.rank() == 0) {
    nlohmann::json j{{"ranks", comm.world_size()}, {"engine", std::string(comm.engine())},
                     {"backend", gpu ? "cuda" : "cpu"}, {"precision", o.bf16 ? "bf16" : "fp32"},
                     {"threads_per_rank", omp_get_max_threads()}, {"batch_per_rank", batch}, {"side", side},
                     {"steps", o.steps}, {"overlap", o.overlap}, {"step_s", slowest},
                     {"images_per_s", comm.world_size() * batch / slowest}, {"backward_s", median(backward_s)},
                     {"communication_s", median(comm_s)}, {"overlapped_s", median(overlapped_s)},
                     {"tail_s", median(tail_s)}, {"buckets", ddp.stats().buckets}, {"gradient_bytes", ddp.stats().bytes}};
    if (o.compare_plain) {
      j["plain_step_s"] = median(plain_s);
      j["wrapper_overhead"] = slowest / median(plain_s) - 1;
    }
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_data_parallel: data-parallel steps under mpirun (rank 0 prints JSON)"};
  std::string arch = "grcnn_small", backend = "cpu", precision = "fp32";
  settings o;
  bool no_overlap = false;
  app.add_option("--arch", arch, "grcnn_small or another registered variant");
  app.add_option("--batch", o.batch, "images per rank")->check(CLI::PositiveNumber);
  app.add_option("--side", o.side, "input side")->check(CLI::PositiveNumber);
  app.add_option("--steps", o.steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed steps first")->check(CLI::NonNegativeNumber);
  app.add_option("--backend", backend, "cpu (MPI) or cuda (NCCL, one GPU per rank)")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--precision", precision, "fp32 or bf16 (mixed, GPU)")->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_flag("--no-overlap", no_overlap, "reduce every bucket after backward");
  app.add_flag("--compare-plain", o.compare_plain, "also time the step without the wrapper and print the overhead");
  CLI11_PARSE(app, argc, argv);
  o.overlap = !no_overlap;
  o.bf16 = precision == "bf16";
  // Under mpirun: MPI; alone (a world of one, e.g. a GPU machine without Open MPI): no MPI at all.
  std::unique_ptr<dist::communicator> host;
  if (dist::launched_by_mpi()) host = std::make_unique<dist::mpi_communicator>(dist::mpi_options::from_environment());
  else host = std::make_unique<dist::single_process>();
  dist::communicator& comm = *host;
  try {
    if (backend == "cuda") {
#ifdef GRCNN_HAS_NCCL
      dist::nccl_communicator gpu(comm);
      return models::with_variant(arch, [&]<class Topology>() { return run<Topology, backends::cuda>(gpu, o); });
#else
      comm.abort("bench_data_parallel: --backend cuda needs a build with the NCCL engine", 2);
#endif
    }
    return models::with_variant(arch, [&]<class Topology>() { return run<Topology, backends::cpu>(comm, o); });
  } catch (const std::exception& e) {
    comm.abort(std::string("bench_data_parallel: ") + e.what(), 1);
  }
}
