#!/usr/bin/env bash
# Clones the committed HEAD of this repository into a temporary folder and runs the README's first
# command, scripts/main.sh, there at a reduced size (SAMX_MAIN_N=64, a few steps per stage), build
# stage included: a main job that only works where build/ already exists cannot land. The clone's
# .venv is a link to this checkout's (made by scripts/setup-venv.sh) when there is one, so the run
# stays offline. Called by scripts/test.sh; the temporary folder is removed unless it fails
# (SAMX_KEEP_CLONE=1 keeps it either way).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/samx-fresh-clone.XXXXXX")"
ok=0
cleanup() {
  if [ "$ok" = 1 ] && [ "${SAMX_KEEP_CLONE:-0}" != 1 ]; then rm -rf "$tmp"; else echo "fresh-clone-main: kept $tmp" >&2; fi
}
trap cleanup EXIT
git clone --quiet --no-hardlinks "$ROOT" "$tmp/samx"
if [ -d "$ROOT/.venv" ]; then ln -s "$ROOT/.venv" "$tmp/samx/.venv"; fi
start=$(date +%s)
(
  cd "$tmp/samx"
  export SAMX_BUILD_ARGS="-DSAMX_CUDA=OFF" SAMX_BUILD_TARGETS=samx SAMX_DEVICE=cpu SAMX_MAIN_N=64
  export SAMX_MAIN_PRETRAIN="train.steps=6 train.val_every=0 train.val_samples=4 optim.batch_size=2"
  export SAMX_MAIN_MCL="train.steps=3 train.val_every=0 train.val_samples=4"
  export SAMX_MAIN_SEQSAM="train.steps=2 train.val_every=0 train.val_samples=4"
  export SAMX_MAIN_P2SAM="train.epochs=1 train.val_every=0 train.val_samples=4" SAMX_MAIN_SEEDS=2
  export SAMX_MAIN_ANATOMY_N=6 SAMX_MAIN_FEWSHOT="fewshot.iterations=2"
  export SAMX_MAIN_ANATOMY_SAM="train.steps=4 train.val_every=0 train.val_samples=4 optim.batch_size=2"
  scripts/main.sh > "$tmp/main.out" 2>&1 || { tail -40 "$tmp/main.out"; exit 1; }
  # What the README promises after the run: the table, and the binary where it says.
  grep -q '^| MCL |' runs/main/table.md
  grep -q '^- commit: ' runs/main/results.md  # the tables with the commit and machine that made them
  test -x build/samx
)
ok=1
echo "fresh-clone-main: scripts/main.sh ran to its table on a fresh clone in $(($(date +%s) - start)) s"
