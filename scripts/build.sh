#!/usr/bin/env bash
# Configures and builds samx into build/ (CUDA backend included whenever nvcc is found).
# Extra arguments go to cmake, e.g. scripts/build.sh -DCMAKE_CUDA_ARCHITECTURES=90
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
# SAMX_BUILD_TARGETS: only these targets (e.g. "samx"), default everything.
# shellcheck disable=SC2086
ninja -C build ${SAMX_BUILD_TARGETS:-}
