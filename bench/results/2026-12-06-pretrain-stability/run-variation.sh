#!/usr/bin/env bash
# One controlled variation of the stand-in SAM's pretraining (configs/synthetic_pretrain.ini):
#
#   run-variation.sh OUT_DIR THREADS [key=value ...]
#
# trains on the main job's dataset (samx pack synthetic --n 1024 --size 64 --seed 0, made once in
# OUT_DIR/../synthetic.h5) with the given --set overrides and OMP_NUM_THREADS=THREADS, then prompts
# the final checkpoint with annotator 2's tight box on the test split and scores it against that
# annotator (scripts/prompted-dice.py). The shortened runs of the table used
#   train.steps=1000 train.val_every=250 optim.schedule=constant
# (the constant 1e-3 is what the default cosine schedule holds near step 830, where the instability
# showed). summarize.py OUT_DIR... prints one table row per run.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../../.." && pwd)"
out="$1" threads="$2"
shift 2
samx="${SAMX_BIN:-$repo/build/samx}"
data="${DATA:-$(dirname "$out")/synthetic.h5}"  # DATA: another dataset (add-distractor.py's)
[ -f "$data" ] || "$samx" pack synthetic --out "$data" --n 1024 --size 64 --seed 0 > /dev/null
sets=()
for kv in "$@"; do sets+=(--set "$kv"); done
rm -rf "$out"
mkdir -p "$out"
OMP_NUM_THREADS="$threads" "$samx" train "$repo/configs/synthetic_pretrain.ini" --device cpu --set data.path="$data" \
  --set run.dir="$out" --set log.progress=none "${sets[@]}" > "$out/train.txt" 2>&1
OMP_NUM_THREADS="$threads" "$samx" infer --method sam-ft --checkpoint "$out/checkpoints/final.safetensors" \
  --data "$data" --split test --annotator 2 --device cpu --out "$out/pred.h5" -q >> "$out/train.txt" 2>&1
