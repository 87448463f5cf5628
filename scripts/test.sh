#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds (CUDA backend compiled when nvcc exists),
# runs every test with ctest (CUDA parity tests report "skipped" without a GPU), then:
#  - builds the CUDA host emulator configuration (build-emu, -DSAMX_CUDA_EMULATOR=ON) and runs every
#    CUDA test there (ctest -L cuda) under the forward and the reverse thread schedule;
#  - rebuilds with AddressSanitizer + UBSan (build-asan, also on the emulator) and runs the CPU suite
#    and the CUDA tests again under them.
#  - runs the main job on a fresh clone of the committed HEAD at a reduced size (scripts/fresh-clone-main.sh).
# SAMX_SKIP_ASAN=1 leaves the sanitizer pass out; SAMX_SKIP_EMU=1 the emulator's schedules;
# SAMX_SKIP_FRESH_CLONE=1 the fresh-clone main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/setup-venv.sh   # PyPI references: Hugging Face transformers' SamModel
start=$SECONDS
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C build
(cd build && ctest --output-on-failure -j2 --timeout 1200) | tee build/ctest.log

summary=()
# "N tests" from ctest's "...% tests passed, F tests failed out of N" line.
ran() { sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$1" | tail -1; }
skipped=$(grep -c '(Skipped)' build/ctest.log || true)
summary+=("$(($(ran build/ctest.log) - skipped)) tests passed in the plain build, $skipped CUDA entries skipped there (without a GPU;
    they run on the emulator below), of them $(grep -cE 'Test +#[0-9]+: test_mpi_.* Passed' build/ctest.log || true) on 2 MPI ranks")
if [ "${SAMX_SKIP_EMU:-0}" != "1" ]; then
  cmake -S . -B build-emu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAMX_CUDA_EMULATOR=ON
  ninja -C build-emu
  for sched in forward reverse; do
    t0=$SECONDS
    (cd build-emu && SAMX_CUDA_EMU_SCHEDULE=$sched ctest -L cuda --output-on-failure -j2 --timeout 1800) |
      tee build-emu/ctest-$sched.log
    summary+=("$(ran build-emu/ctest-$sched.log) CUDA tests passed on the CUDA emulator, schedule $sched ($((SECONDS - t0)) s)")
  done
fi
# The README's first command on a fresh clone of the committed HEAD (what a new user runs), at a reduced
# size: builds the CPU-only samx there and runs every stage of the main job on 64 samples with a few
# steps each (about two minutes on 2 cores). The clone borrows this checkout's venv instead of
# downloading it again. SAMX_SKIP_FRESH_CLONE=1 leaves it out.
if [ "${SAMX_SKIP_FRESH_CLONE:-0}" != "1" ]; then
  t0=$SECONDS
  bash scripts/fresh-clone-main.sh
  summary+=("main job on a fresh clone of HEAD (reduced size) ran to its table ($((SECONDS - t0)) s)")
fi
if [ "${SAMX_SKIP_ASAN:-0}" != "1" ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAMX_SANITIZE=ON -DSAMX_CUDA_EMULATOR=ON
  ninja -C build-asan
  # OpenMP's and OpenBLAS's thread pools live until exit: leak reports from them are not ours.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  t0=$SECONDS
  (cd build-asan && ctest --output-on-failure -j2 --timeout 2400) | tee build-asan/ctest.log
  summary+=("$(ran build-asan/ctest.log) tests passed under ASan + UBSan, of them $(cd build-asan && ctest -N -L cuda |
    grep -c 'Test *#') CUDA tests on the CUDA emulator ($((SECONDS - t0)) s)")
fi
# libFuzzer targets (tests/fuzz/README.md), each for a bounded time on top of its committed corpus:
# a crash, leak, timeout or out-of-memory fails the run and prints the reproducer's path.
# SAMX_SKIP_FUZZ=1 leaves it out; SAMX_FUZZ_SECONDS sets the seconds per target (default 15).
if [ "${SAMX_SKIP_FUZZ:-0}" != "1" ]; then
  t0=$SECONDS
  bash scripts/fuzz.sh --seconds-per-target "${SAMX_FUZZ_SECONDS:-15}"
  summary+=("libFuzzer targets ran ${SAMX_FUZZ_SECONDS:-15} s each on their corpora without a crash ($((SECONDS - t0)) s)")
fi
echo "==== samx test summary ($((SECONDS - start)) s after dependencies) ===="
for line in "${summary[@]}"; do echo "  $line"; done
