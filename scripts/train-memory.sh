#!/usr/bin/env bash
# Activation memory of one ViT-B training step (1024 x 1024, batch 1, every part trained, sam-ft with
# box prompts as configs/synthetic_pretrain.ini trains) in fp32 and bf16: the arena's high-water mark
# after the first step, split by dtype, as `samx train` prints it. On the CUDA emulator it runs as a
# dry run (SAMX_CUDA_EMU_DRY_RUN=1: every allocation is real, no kernel computes, so the mark is what a
# GPU would take; the losses are meaningless); on a GPU it computes.
#   scripts/train-memory.sh [SAMX_BINARY] [LOG_DIR]
# SAMX_BINARY: a CUDA build's samx (default build-emu/samx, the emulator's); LOG_DIR keeps the two runs'
# output (default: dropped). Prints one line per precision: "<precision> <peak MiB> <kept MiB> <split>",
# kept being the parameters' bf16 GEMM operands (their arena, "bf16 weights"; 0 in fp32), which bf16
# keeps beside the activations instead of casting the weights into them at every step.
set -euo pipefail
cd "$(dirname "$0")/.."
SAMX="${1:-build-emu/samx}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
LOGS="${2:-$TMP}"
mkdir -p "$LOGS"
"$SAMX" pack synthetic --out "$TMP/data.h5" --n 64 --size 64 --seed 0 > /dev/null
VIT_B=(--set model.img_size=1024 --set model.patch=16 --set model.enc_dim=768 --set model.enc_depth=12
  --set model.enc_heads=12 --set model.enc_mlp=3072 --set model.window=14 --set model.global_blocks=2,5,8,11
  --set model.prompt_dim=256 --set model.dec_mlp=2048 --set model.iou_hidden=256)
for prec in fp32 bf16; do
  SAMX_CUDA_EMU_DRY_RUN=1 "$SAMX" train configs/synthetic_pretrain.ini --device cuda --precision "$prec" \
    --set data.path="$TMP/data.h5" "${VIT_B[@]}" --set train.steps=1 --set optim.batch_size=1 \
    --set train.val_every=0 --set run.act_mem_mb=14000 --set run.dir="$TMP/$prec" > "$LOGS/$prec.log" 2>&1 || {
    tail -n 5 "$LOGS/$prec.log" >&2
    exit 1
  }
  # | activations | cuda:0 | capacity | peak | split |
  kept="$(grep '^| bf16 weights' "$LOGS/$prec.log" | tail -n 1 | awk -F'|' '{gsub(/ /, "", $5); print $5}' || true)"
  grep '^| activations' "$LOGS/$prec.log" | tail -n 1 |
    awk -F'|' -v p="$prec" -v k="${kept:-0}" '{gsub(/ /, "", $5); print p, $5, k, $6}'
done
