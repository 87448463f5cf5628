#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds (CUDA backend compiled when nvcc exists),
# runs every test with ctest (CUDA parity tests report "skipped" without a GPU), then rebuilds the
# CPU backend with AddressSanitizer + UBSan and runs the CPU suite again under them.
# SAMX_SKIP_ASAN=1 leaves the sanitizer pass out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/setup-venv.sh   # PyPI references: Hugging Face transformers' SamModel
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C build
(cd build && ctest --output-on-failure -j2 --timeout 1200)
if [ "${SAMX_SKIP_ASAN:-0}" != "1" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMX_SANITIZE=ON
  ninja -C build-asan
  # OpenMP's and OpenBLAS's thread pools live until exit: leak reports from them are not ours.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  (cd build-asan && ctest --output-on-failure -j2 --timeout 1200 -E '_cuda$')
fi
# libFuzzer targets (tests/fuzz/README.md), each for a bounded time on top of its committed corpus:
# a crash, leak, timeout or out-of-memory fails the run and prints the reproducer's path.
# SAMX_SKIP_FUZZ=1 leaves it out; SAMX_FUZZ_SECONDS sets the seconds per target (default 15).
if [ "${SAMX_SKIP_FUZZ:-0}" != "1" ]; then
  bash scripts/fuzz.sh --seconds-per-target "${SAMX_FUZZ_SECONDS:-15}"
fi
