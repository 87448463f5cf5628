#!/usr/bin/env bash
# Installs what samx needs to build and test on a fresh Debian 12 machine.
# Idempotent: packages already present are skipped, apt is only called when something is missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ninja-build
  libopenblas-dev libopenblas-openmp-dev   # CPU GEMM; the OpenMP build shares samx's thread pool
  libomp-dev            # OpenMP runtime for the CPU kernels
  libhdf5-dev           # dataset and prediction files (contracts §3/§4)
  libzip-dev            # torch.save zip archives (checkpoint loading)
  libpng-dev libjpeg-dev libtiff-dev   # image readers (8/16-bit PNG, JPEG, TIFF)
  libnifti2-dev         # NIfTI volumes (QUBIQ, BraTS)
  libcairo2-dev         # figures (overlays, grids, curves)
  libinih-dev           # INI config files for `samx train`
  libboost-context-dev  # fibers of the CUDA host emulator (kernels/cuda/emu)
  libjansson-dev        # strict JSON (safetensors headers: duplicate keys rejected, 64-bit integers)
  openmpi-bin libopenmpi-dev   # several CPU ranks (mpirun), and the NCCL id exchange for GPU ranks
  clang libclang-rt-14-dev   # libFuzzer targets (scripts/fuzz.sh, tests/fuzz)
  patchelf              # scripts/bundle.sh: the bundled libraries find each other ($ORIGIN)
  python3 python3-numpy python3-torch python3-torchvision python3-scipy python3-h5py python3-venv   # references for tests and benchmarks
  python3-nibabel       # writes the NIfTI volumes of the volume-packer tests (affines, int16 CT, float MR)
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
