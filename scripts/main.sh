#!/usr/bin/env bash
# The main job on the built-in default: synthetic multi-annotator data, end to end.
# Installs dependencies, builds, then runs the pipeline into runs/main/ (override with SAMX_RUN_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh > /tmp/samx-build.log 2>&1 || { tail -40 /tmp/samx-build.log; exit 1; }
SAMX=build/samx
RUN="${SAMX_RUN_DIR:-runs/main}"
mkdir -p "$RUN"
echo "== synthetic dataset"
$SAMX pack synthetic --out "$RUN/synthetic.h5" --seed 0
$SAMX data info "$RUN/synthetic.h5"
echo "== kernels on this machine"
$SAMX bench kernels --quick -r 3
