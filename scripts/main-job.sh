#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, train the example network on
# Fashion-MNIST (real data, Debian's dataset-fashion-mnist) on the CPU, and evaluate it on the test set.
# Extra arguments go to the trainer (see: build/examples/train_fashion_mnist --help).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
"${GRCNN_BUILD_DIR:-$root/build}/examples/train_fashion_mnist" --epochs 3 "$@"
