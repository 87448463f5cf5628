# The few-shot experiment on the synthetic anatomy volumes, as functions: scripts/main.sh runs it for
# its second table, tests/models/test_fewshot_claims.sh for the claims the few-shot paper makes.
# Source it, then set SAMX (the binary), DEVICE, A (the experiment's folder) and call the steps in order.
# The seeded steps (anatomy_fewshot, the atlas and few-shot part of anatomy_eval, anatomy_claims) use
# FS_SEED (run.seed; the config's 0 when unset) and write under FS_DIR (default $A): one folder a seed.
#   SAMX_MAIN_ANATOMY_N    volumes of the test bed and of the SAM's corpus (24)
#   SAMX_MAIN_ANATOMY_SAM  extra --set overrides for configs/synthetic_anatomy_sam.ini
#   SAMX_MAIN_FEWSHOT      extra --set overrides for configs/synthetic_fewshot.ini (all shot counts)
FS_LABELS=organ,vessel,bone

anatomy_set_args() { for kv in $1; do printf -- '--set\n%s\n' "$kv"; done; }

anatomy_data() {
  $SAMX pack synthetic --kind anatomy --seed 0 --n "${SAMX_MAIN_ANATOMY_N:-24}" --out "$A/anatomy.h5"
  $SAMX pack synthetic --kind anatomy --seed 1 --n "${SAMX_MAIN_ANATOMY_N:-24}" --masks per-label --out "$A/corpus.h5"
}

# The stand-in for SAM: trained with box prompts on the corpus' structures, class-agnostic.
anatomy_sam() {
  local extra
  mapfile -t extra < <(anatomy_set_args "${SAMX_MAIN_ANATOMY_SAM:-}")
  $SAMX train configs/synthetic_anatomy_sam.ini --device "$DEVICE" --set log.print_seconds=15 \
    --set data.path="$A/corpus.h5" --set run.dir="$A/sam" "${extra[@]}"
  $SAMX embed --checkpoint "$A/sam/sam.safetensors" --data "$A/anatomy.h5" --out "$A/anatomy_emb.h5" --device "$DEVICE"
}

# anatomy_fewshot N...: 600 steps of N shots each (400 for 50 shots): the paper's 50 / 80 / 100 leave
# this small decoder at IoU 0 on its own shots (README "Few-shot decoders"); every step still attends
# to all the target embeddings, so a 50-shot step costs ~4x a 5-shot one, and 400 steps keep the main
# job's block within 80 s of CPU.
anatomy_fewshot() {
  local extra n
  mapfile -t extra < <(anatomy_set_args "${FS_SEED:+run.seed=$FS_SEED} ${SAMX_MAIN_FEWSHOT:-}")
  for n in "$@"; do
    $SAMX train configs/synthetic_fewshot.ini --device "$DEVICE" --set run.dir="${FS_DIR:-$A}/fewshot_$n" --set fewshot.shots="$n" \
      --set fewshot.iterations=$((n == 50 ? 400 : 600)) --set model.checkpoint="$A/sam/sam.safetensors" \
      --set data.path="$A/anatomy.h5" --set data.embeddings="$A/anatomy_emb.h5" --set fewshot.label="$FS_LABELS" \
      "${extra[@]}"
  done
}

# anatomy_eval_sam: SAM with a point / a box per component (no seed: once, in $A/eval; a second call
# keeps the first's results).
anatomy_eval_sam() {
  local p
  mkdir -p "$A/pred" "$A/eval"
  for p in point box; do
    [ -f "$A/eval/sam-$p.json" ] && continue
    $SAMX infer --method sam --prompt "$p" --per-component --labels "$FS_LABELS" --checkpoint "$A/sam/sam.safetensors" \
      --data "$A/anatomy.h5" --split test --device "$DEVICE" --out "$A/pred/sam-$p.h5" -q
    $SAMX eval --data "$A/anatomy.h5" --pred "$A/pred/sam-$p.h5" --labels "$FS_LABELS" --json "$A/eval/sam-$p.json" --quiet
  done
}

# anatomy_eval N...: anatomy_eval_sam, then the atlas of the first shot count's shots and few-shot with
# each N (in $FS_DIR/eval).
anatomy_eval() {
  local n name d=${FS_DIR:-$A} names=("atlas-$1")
  anatomy_eval_sam
  mkdir -p "$d/pred" "$d/eval"
  $SAMX infer --method atlas --shots "$d/fewshot_$1/rows.txt" --labels "$FS_LABELS" --data "$A/anatomy.h5" --split test \
    --out "$d/pred/atlas-$1.h5" -q
  for n in "$@"; do
    $SAMX infer --method fewshot --checkpoint "$d/fewshot_$n/checkpoints/final.safetensors" --data "$A/anatomy.h5" \
      --embeddings "$A/anatomy_emb.h5" --split test --device "$DEVICE" --out "$d/pred/fewshot-$n.h5" -q
    names+=("fewshot-$n")
  done
  for name in "${names[@]}"; do
    $SAMX eval --data "$A/anatomy.h5" --pred "$d/pred/$name.h5" --labels "$FS_LABELS" --json "$d/eval/$name.json" --quiet
  done
}

# anatomy_claims N: the paper's claims for N shots, on the test split: few-shot's IoU above SAM with a
# point per component and above the atlas of the same shots, for every structure, and the decoder
# fits its own shots (IoU >= 0.9). Prints one line per check; exit status 1 if any fails.
anatomy_claims() {
  /usr/bin/python3 - "$A" "${FS_DIR:-$A}" "$1" <<'EOF'
import json, sys
a, d, n = sys.argv[1], sys.argv[2], sys.argv[3]
ev = {k: json.load(open(f"{a if k == 'sam-point' else d}/eval/{k}.json")) for k in ("sam-point", f"atlas-{n}", f"fewshot-{n}")}
fit = [json.loads(l) for l in open(f"{d}/fewshot_{n}/log.jsonl") if "shot_iou" in l][-1]["shot_iou"]
bad = 0
for i, lab in enumerate(ev["sam-point"]["labels"]):
    iou = {k: ev[k]["labels"][i]["iou"]["mean"] or 0.0 for k in ev}
    for base in ("sam-point", f"atlas-{n}"):
        ok = iou[f"fewshot-{n}"] > iou[base]
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {lab['name']}: {n} shots IoU {iou[f'fewshot-{n}']:.3f} > {base} {iou[base]:.3f}")
    ok = fit[i] >= 0.9
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {lab['name']}: IoU on its {n} shots {fit[i]:.3f} >= 0.9")
sys.exit(1 if bad else 0)
EOF
}
