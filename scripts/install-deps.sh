#!/usr/bin/env bash
# Installs grcnn's Debian 12 dependencies. Idempotent: runs apt only when a package is missing.
set -euo pipefail
# libtcmalloc-minimal4: the benchmarks run PyTorch with tcmalloc preloaded, as a tuned user runs it.
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libdnnl-dev ocl-icd-opencl-dev libeigen3-dev libboost-dev catch2 zlib1g-dev
  nlohmann-json3-dev libcli11-dev libturbojpeg0-dev libpng-dev libnetcdf-dev
  libopenmpi-dev openmpi-bin
  graphviz
  libtcmalloc-minimal4
  dataset-fashion-mnist
  python3 python3-numpy python3-torch python3-torchvision python3-sklearn python3-pil python3-matplotlib
)
# scripts/fuzz.sh only (CI replays the fuzz corpora with GCC): clang with libFuzzer and the sanitizer runtimes,
# libomp for OpenMP under clang, llvm for llvm-symbolizer (symbolized sanitizer reports).
if [ "${GRCNN_INSTALL_FUZZ_DEPS:-0}" = 1 ]; then
  packages+=(clang libfuzzer-14-dev libclang-rt-14-dev libomp-dev llvm)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
