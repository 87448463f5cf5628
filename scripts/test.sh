#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds (CUDA backend compiled when nvcc exists),
# runs every test with ctest (CUDA parity tests report "skipped" without a GPU), then rebuilds the
# CPU backend with AddressSanitizer + UBSan and runs the CPU suite again under them.
# SAMX_SKIP_ASAN=1 leaves the sanitizer pass out; SAMX_SKIP_FRESH_CLONE=1 the fresh-clone main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/setup-venv.sh   # PyPI references: Hugging Face transformers' SamModel
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C build
(cd build && ctest --output-on-failure -j2 --timeout 1200)
# The README's first command on a fresh clone of the committed HEAD (what a new user runs), at a reduced
# size: builds the CPU-only samx there and runs every stage of the main job on 64 samples with a few
# steps each (about two minutes on 2 cores). The clone borrows this checkout's venv instead of
# downloading it again. SAMX_SKIP_FRESH_CLONE=1 leaves it out.
if [ "${SAMX_SKIP_FRESH_CLONE:-0}" != "1" ]; then
  bash scripts/fresh-clone-main.sh
fi
if [ "${SAMX_SKIP_ASAN:-0}" != "1" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMX_SANITIZE=ON
  ninja -C build-asan
  # OpenMP's and OpenBLAS's thread pools live until exit: leak reports from them are not ours.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  (cd build-asan && ctest --output-on-failure -j2 --timeout 1200 -E '_cuda$')
fi
