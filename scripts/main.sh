#!/usr/bin/env bash
# The main job on the built-in synthetic data, end to end (README "Main job"):
#   install dependencies and build (timed apart), generate the dataset, pretrain a small SAM with box
#   prompts (it stands in for the official weights), cache its embeddings, train MCL and SeqSAM
#   (M = 3 and M = 10) on the cache, infer on the test split, evaluate, print a table in the form of
#   SeqSAM's Table 1 with Wilcoxon p-values, draw a hypothesis grid, and print the time of each stage.
#   The downstream methods train once per seed (--seeds N, default 3, run.seed = 1..N), the second
#   table's few-shot decoders and atlas too (the seed draws the shots); the tables show each metric's
#   mean over seeds with its spread (sample std over seeds), and the paired tests
#   pool the seeds: each test sample's metric is averaged over the seeds first (eval/pooled/*.json),
#   then the methods are compared per sample (two-sided Wilcoxon signed-rank, samx compare).
#   results.md holds the tables with the commit, the machine, its BLAS and threads, and the date:
#   scripts/update-readme-results.sh records it in bench/results/ and embeds it in README.md.
# Every output goes to the run directory: runs/main, or SAMX_RUN_DIR. A run directory that already
# holds a main job is refused unless --force (which replaces the stages' outputs, nothing else).
# The stages run side by side, as many at once as the machine has cores (SAMX_MAIN_JOBS), each
# single-threaded (SAMX_MAIN_THREADS): the first table (lesions) and the second (anatomy) do not depend
# on each other, nor do the seeds, and one thread per stage keeps every number independent of the
# machine's core count and of the order the stages happen to run in. Each stage writes logs/STAGE.log,
# printed whole when the stage ends (as make's --output-sync).
#
#   scripts/main.sh [--force] [--no-build] [--seeds N]
#
# Environment (for controlled variations; the defaults are the README's run):
#   SAMX_RUN_DIR          run directory (runs/main)
#   SAMX_BIN              the samx binary (build/samx, what the build stage makes)
#   SAMX_DEVICE           auto (default: a GPU when there is one), cpu, cuda, cuda:N
#   SAMX_MAIN_N           synthetic samples (1024)
#   SAMX_MAIN_SIZE        synthetic image side (64)
#   SAMX_MAIN_PRETRAIN    extra --set overrides for configs/synthetic_pretrain.ini, space-separated
#   SAMX_MAIN_MCL         extra --set overrides for configs/synthetic_mcl.ini
#   SAMX_MAIN_SEQSAM      extra --set overrides for configs/synthetic_seqsam.ini (both M)
#   SAMX_MAIN_BOX         annotator whose tight box prompts the test split (2: the middle style)
#   SAMX_BUILD_ARGS       extra cmake arguments for the build stage (e.g. -DSAMX_CUDA=OFF)
#   SAMX_BUILD_TARGETS    build only these ninja targets (e.g. samx; default: everything)
#   SAMX_MAIN_VENV        1 (default): the build stage also runs scripts/setup-venv.sh, the Python
#                         venv `samx bench --compare-torch` uses; 0 leaves it out
#   SAMX_MAIN_ANATOMY_N   synthetic anatomy volumes of the second table, and of its SAM's corpus (24)
#   SAMX_MAIN_ANATOMY_SAM extra --set overrides for configs/synthetic_anatomy_sam.ini (second table)
#   SAMX_MAIN_FEWSHOT     extra --set overrides for configs/synthetic_fewshot.ini (second table, all shots)
#   SAMX_MAIN_SEEDS       seeds of the downstream methods (3; --seeds overrides)
#   SAMX_MAIN_P2SAM       extra --set overrides for configs/synthetic_p2sam_stage{1,2}.ini (both stages)
#   SAMX_MAIN_JOBS        stages run at once (default: the machine's cores, nproc --all)
#   SAMX_MAIN_THREADS     OpenMP and OpenBLAS threads of each stage (1; other values change the last
#                         bits of the results, README "What varies between machines")
set -euo pipefail
cd "$(dirname "$0")/.."

force=0
build=1
SEEDS="${SAMX_MAIN_SEEDS:-3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --no-build) build=0 ;;
    --seeds)
      [ $# -ge 2 ] || { echo "main.sh: --seeds needs a number" >&2; exit 2; }
      SEEDS="$2"
      shift
      ;;
    --seeds=*) SEEDS="${1#--seeds=}" ;;
    -h | --help) sed -n '2,45p' "$0"; exit 0 ;;
    *) echo "main.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
case "$SEEDS" in
  '' | *[!0-9]* | 0*) echo "main.sh: --seeds needs a whole number >= 1, got '$SEEDS'" >&2; exit 2 ;;
esac

RUN="${SAMX_RUN_DIR:-runs/main}"
DEVICE="${SAMX_DEVICE:-auto}"
N="${SAMX_MAIN_N:-1024}"
SIZE="${SAMX_MAIN_SIZE:-64}"
BOX="${SAMX_MAIN_BOX:-2}"
# Resolved after the build stage: on a fresh clone build/samx does not exist yet.
SAMX_REL="${SAMX_BIN:-build/samx}"
PY=/usr/bin/python3  # Debian's, installed by scripts/install-deps.sh (table formatting only)
JOBS="${SAMX_MAIN_JOBS:-$(nproc --all)}"
THREADS="${SAMX_MAIN_THREADS:-1}"
for v in JOBS:"$JOBS" THREADS:"$THREADS"; do
  case "${v#*:}" in
    '' | *[!0-9]* | 0*) echo "main.sh: SAMX_MAIN_${v%%:*} needs a whole number >= 1, got '${v#*:}'" >&2; exit 2 ;;
  esac
done

if [ -e "$RUN/timings.tsv" ] && [ "$force" = 0 ]; then
  echo "main.sh: $RUN already holds a main job; --force replaces it (or set SAMX_RUN_DIR)" >&2
  exit 1
fi
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
# Only what this script writes is removed, so a mistyped SAMX_RUN_DIR cannot cost other files.
rm -rf "$RUN/data" "$RUN/pretrain" "$RUN"/seed[0-9]* "$RUN/pred" "$RUN/eval" "$RUN/grid.png" "$RUN/table.md" \
  "$RUN/compare.md" "$RUN/results.md" "$RUN/methods.tsv" "$RUN/timings.tsv" "$RUN/main.log" "$RUN/logs" \
  "$RUN/anatomy" "$RUN/table2.md"
mkdir -p "$RUN/data" "$RUN/pred" "$RUN/eval" "$RUN/logs"
exec > >(tee "$RUN/main.log") 2>&1
# The machine, recorded before the run (results.md): the load says how far timings can be trusted.
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
date_start="$(date -u '+%Y-%m-%d %H:%M UTC')"

# cpu_of FILE: user + sys seconds in the output of `times` (the shell's own, then its finished
# children's), for a subshell whose counters started at 0.
cpu_of() {
  awk 'NR <= 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); n += t[1] * 60 + t[2] } } END { printf "%.1f", n }' "$1"
}
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# timings.tsv: each stage's wall seconds, CPU seconds (user + sys of the processes it ran) and when it
# started (seconds after the pipeline's start; stages overlap), in the order they started.
printf 'stage\tseconds\tcpu_seconds\tstarted_at\n' > "$RUN/timings.tsv.part"
# serial LABEL CMD...: a stage outside the pipeline (the build), run here and timed alike.
serial() {
  local label="$1" t0
  shift
  echo
  echo "== $label"
  t0=$(date +%s.%N)
  (
    "$@"
    times > "$RUN/logs/.serial.times"
  )
  local s c
  s=$(seconds_since "$t0")
  c=$(cpu_of "$RUN/logs/.serial.times")
  printf '%s\t%s\t%s\t\n' "$label" "$s" "$c" >> "$RUN/timings.tsv.part"
  echo "-- $label: ${s} s (CPU ${c} s)"
}

build_samx() {
  # shellcheck disable=SC2086  # SAMX_BUILD_ARGS: extra cmake arguments, space-separated
  bash scripts/build.sh ${SAMX_BUILD_ARGS:-} > "$RUN/build.log" 2>&1 || { tail -40 "$RUN/build.log"; exit 1; }
}
setup_venv() {
  bash scripts/setup-venv.sh > "$RUN/venv.log" 2>&1 || {
    tail -20 "$RUN/venv.log"
    echo "main.sh: scripts/setup-venv.sh failed (see $RUN/venv.log); the pipeline runs without it," \
      "only samx bench --compare-torch needs it"
  }
}
if [ "$build" = 1 ]; then
  serial "build (install-deps + cmake + ninja; not part of the pipeline time)" build_samx
  if [ "${SAMX_MAIN_VENV:-1}" = 1 ]; then
    serial "venv for samx bench --compare-torch (scripts/setup-venv.sh; not part of the pipeline time)" setup_venv
  fi
fi
if [ ! -x "$SAMX_REL" ]; then
  echo "main.sh: $SAMX_REL does not exist; run without --no-build (or scripts/build.sh) first" >&2
  exit 1
fi
SAMX="$(realpath "$SAMX_REL")"
# After the build: nproc, and so the build's parallelism, reads OMP_NUM_THREADS.
export OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
$SAMX info > "$RUN/info.txt"
cat "$RUN/info.txt"

D="$RUN/data/synthetic.h5"
E="$RUN/data/synthetic_emb.h5"
COMMON=(--device "$DEVICE" --set data.path="$D" --set log.print_seconds=15)
# shellcheck disable=SC2086  # the override lists are meant to split on spaces
set_args() { for kv in $1; do printf -- '--set\n%s\n' "$kv"; done; }

# ---- the stages of the first table: one function each ----
make_data() {
  $SAMX pack synthetic --out "$D" --n "$N" --size "$SIZE" --seed 0
  $SAMX data info "$D" > "$RUN/data/info.txt"
  sed -n '1,10p' "$RUN/data/info.txt"
}

pretrain() {
  local extra
  mapfile -t extra < <(set_args "${SAMX_MAIN_PRETRAIN:-}")
  $SAMX train configs/synthetic_pretrain.ini "${COMMON[@]}" --set run.dir="$RUN/pretrain" \
    --set model.img_size="$SIZE" "${extra[@]}"
}

embed() { $SAMX embed --checkpoint "$RUN/pretrain/sam.safetensors" --data "$D" --out "$E" --device "$DEVICE"; }

FROM=(--set model.checkpoint="$RUN/pretrain/sam.safetensors" --set data.embeddings="$E")
# train_from CONFIG SEED DIR OVERRIDES: a downstream run from the pretrained SAM's cached embeddings.
train_from() {
  local extra
  mapfile -t extra < <(set_args "$4")
  $SAMX train "$1" "${COMMON[@]}" "${FROM[@]}" --set run.dir="$3" --set run.seed="$2" "${extra[@]}"
}

# The downstream methods, one block each: train_<id> SEED DIR trains one seed's run into DIR, and
# METHODS lists "id|samx infer --method|table label" in table order (MCL first: the paired tests'
# baseline, as in SeqSAM's Table 1). A new method adds its function and its METHODS entry, an
# infer_<id> SEED DIR OUT.h5 function where `samx infer --method M` on DIR's best checkpoint is not
# how it predicts the test split, a TRAIN_AFTER entry where its training needs less than the cached
# embeddings, and its CPU seconds in TRAIN_COST (the scheduler starts the longest stages first).
declare -A TRAIN_AFTER=() TRAIN_COST=()
train_mcl() { train_from configs/synthetic_mcl.ini "$1" "$2" "${SAMX_MAIN_MCL:-}"; }
train_seqsam_m3() { train_from configs/synthetic_seqsam.ini "$1" "$2" "method.masks=3 ${SAMX_MAIN_SEQSAM:-}"; }
train_seqsam_m10() { train_from configs/synthetic_seqsam.ini "$1" "$2" "method.masks=10 ${SAMX_MAIN_SEQSAM:-}"; }
METHODS=("mcl|mcl|MCL" "seqsam_m3|seqsam|SeqSAM, M = 3" "seqsam_m10|seqsam|SeqSAM, M = 10")
TRAIN_COST+=([mcl]=4 [seqsam_m3]=20 [seqsam_m10]=65)

# P2SAM: stage 1 (LoRA in the encoder, 8 assembled masks; it trains through the encoder, so no cache)
# from the pretrained small SAM, then stage 2 (prior network + Fcomb, on the first 500 training
# images) with snapshots; 4 snapshots x 4 samples = 16 hypotheses per test image, no prompt. Both see
# the SIZE/2 crop centred on the annotators' lesion (as the authors' LIDC crops), resized to SIZE, and
# infer pastes the masks back into the whole image. SAMX_MAIN_P2SAM: extra --set overrides of both stages.
train_p2sam() {
  local extra
  mapfile -t extra < <(set_args "${SAMX_MAIN_P2SAM:-}")
  local sizes=(--set p2sam.crop="$((SIZE / 2))")
  $SAMX train configs/synthetic_p2sam_stage1.ini "${COMMON[@]}" --set run.dir="$2/stage1" --set run.seed="$1" \
    --set model.checkpoint="$RUN/pretrain/sam.safetensors" --set p2sam.img_size="$SIZE" "${sizes[@]}" "${extra[@]}"
  $SAMX train configs/synthetic_p2sam_stage2.ini "${COMMON[@]}" --set run.dir="$2/stage2" --set run.seed="$1" \
    --set p2sam.from="$2/stage1" "${sizes[@]}" "${extra[@]}"
}
infer_p2sam() {  # the crop is the checkpoint's; snapshots 5/25/35/50 of 50 steps: the authors' epochs 10/50/70/100
  $SAMX infer --method p2sam --checkpoint "$2/stage2/checkpoints/final.safetensors" \
    --snapshots step_5,step_25,step_35,step_50 --samples 4 --seed "$1" --data "$D" --split test --device "$DEVICE" \
    --batch 8 --out "$3" -q
}
METHODS+=("p2sam|p2sam|P²SAM, 4 snapshots × 4 samples")
TRAIN_AFTER+=([p2sam]=pretrain)
TRAIN_COST+=([p2sam]=22)

printf '%s\n' "sam-ft|sam-ft|SAM-FT (the pretrained model, 1 mask)" "${METHODS[@]}" > "$RUN/methods.tsv"

# infer_one METHOD CHECKPOINT OUT (8 images per encoder call: SeqSAM M = 10 1.85 -> 1.46 CPU s)
infer_one() {
  $SAMX infer --method "$1" --checkpoint "$2" --data "$D" --split test --annotator "$BOX" --device "$DEVICE" \
    --batch 8 --out "$3" -q
}
infer_seed() {  # infer_seed SEED: every method's run of that seed on the test split
  local s=$1 entry id method
  mkdir -p "$RUN/pred/seed$s"
  for entry in "${METHODS[@]}"; do
    IFS='|' read -r id method _ <<< "$entry"
    if declare -F "infer_$id" > /dev/null; then
      "infer_$id" "$s" "$RUN/seed$s/$id" "$RUN/pred/seed$s/$id.h5"
    else
      infer_one "$method" "$RUN/seed$s/$id/checkpoints/best.safetensors" "$RUN/pred/seed$s/$id.h5"
    fi
  done
}

evaluate() {
  local s entry id
  $SAMX eval --data "$D" --pred "$RUN/pred/sam-ft.h5" --split test --json "$RUN/eval/sam-ft.json" --quiet
  for s in $(seq 1 "$SEEDS"); do
    mkdir -p "$RUN/eval/seed$s"
    for entry in "${METHODS[@]}"; do
      IFS='|' read -r id _ _ <<< "$entry"
      $SAMX eval --data "$D" --pred "$RUN/pred/seed$s/$id.h5" --split test --json "$RUN/eval/seed$s/$id.json" --quiet
    done
  done
}

tables() {
  $PY scripts/main-tables.py "$RUN" "$SEEDS" > "$RUN/table.md"
  cat "$RUN/table.md"
  echo
  # Paired Wilcoxon tests against MCL, the baseline SeqSAM's Table 1 compares with, on the per-sample
  # means over seeds.
  local pooled
  mapfile -t pooled < <(for entry in "${METHODS[@]}"; do echo "${entry%%|*}.json"; done)
  (cd "$RUN/eval/pooled" && $SAMX compare "${pooled[@]}" --metrics dice_avg,ged,dmax,hm_iou) | tee "$RUN/compare.md"
  $PY scripts/prompted-dice.py "$D" "$RUN/pred/sam-ft.h5" "$BOX" > "$RUN/eval/prompted-dice.tsv"
  echo "SAM-FT box-prompted Dice against annotator $BOX (mean, std, samples): $(cat "$RUN/eval/prompted-dice.tsv")"
}

figures() {
  # Rows: the first 4 test samples (the first prediction file's first rows).
  # Seed 1's predictions of every method.
  local grid=() runs=() entry d
  for entry in "${METHODS[@]}"; do grid+=(--pred "$RUN/pred/seed1/${entry%%|*}.h5"); done
  $SAMX figure grid --data "$D" "${grid[@]}" --max-hyp 10 --cell 96 --out "$RUN/grid.png"
  # Every run's curves from one process (each samx start costs ~0.2 CPU s, 16 runs).
  for d in "$RUN/pretrain" "$RUN"/seed*/*/ "$RUN"/seed*/*/*/; do
    if [ -f "$d/log.jsonl" ]; then runs+=("$d"); fi
  done
  $SAMX figure curves "${runs[@]}" > /dev/null
}

# ---- the second table: few-shot decoders on the synthetic anatomy volumes (README "Few-shot decoders") ----
# Self-contained: its own data, SAM stand-in, runs and outputs under $RUN/anatomy and $RUN/table2.md.
A="$RUN/anatomy"
source scripts/anatomy-fewshot.sh
mkdir -p "$A/pred" "$A/eval"
fewshot_seed() { FS_SEED=$1 FS_DIR="$A/seed$1" anatomy_fewshot 5 20 50; }
anatomy_eval_seed() {
  FS_SEED=$1 FS_DIR="$A/seed$1"
  anatomy_eval 5 20 50
  anatomy_claims 5 || echo "main.sh: the few-shot paper's claims for 5 shots do not all hold in seed $1 (above)"
}
table2() {
  $PY scripts/fewshot-table.py "$A" "$SEEDS" > "$RUN/table2.md"
  cat "$RUN/table2.md"
}

# ---- the scheduler ----
# stage ID "AFTER" COST LABEL CMD...: stage ID runs CMD once every stage in AFTER (IDs declared before
# it, space-separated) has ended. COST is its CPU seconds at the default sizes, roughly. Of the stages
# that may start, the one heading the longest chain of COST still to run after it starts first (ties
# in the order of declaration): the long chains start early and short stages fill the gaps, so that
# the last stages to end are short ones.
declare -A AFTER=() COST=() RANK=() LABEL=() CMD=() STATE=() STARTED=() STAGE_OF=()
STAGES=()
stage() {
  local id=$1
  STAGES+=("$id")
  AFTER[$id]=$2 COST[$id]=$3 LABEL[$id]=$4 STATE[$id]=waiting
  shift 4
  CMD[$id]=$(printf '%q ' "$@")
}

stage data "" 4 "data: samx pack synthetic (N $N, ${SIZE}x${SIZE}, K 4)" make_data
stage pretrain data 65 "pretrain: small SAM, sam-ft with box prompts, encoder trained" pretrain
stage embed pretrain 2 "embed: cache the pretrained encoder's embeddings" embed
stage infer_samft pretrain 5 "infer: SAM-FT on the test split, box of annotator $BOX" \
  infer_one sam-ft "$RUN/pretrain/checkpoints/best.safetensors" "$RUN/pred/sam-ft.h5"
all_infers=infer_samft all_trains=""
for s in $(seq 1 "$SEEDS"); do
  trains=""
  for entry in "${METHODS[@]}"; do
    IFS='|' read -r id _ label <<< "$entry"
    stage "train_${id}_$s" "${TRAIN_AFTER[$id]:-embed}" "${TRAIN_COST[$id]:-30}" "train: $label, seed $s of $SEEDS" \
      "train_$id" "$s" "$RUN/seed$s/$id"
    trains+=" train_${id}_$s"
  done
  stage "infer_$s" "$trains" 16 "infer: seed $s of $SEEDS on the test split, box of annotator $BOX (P²SAM: none)" \
    infer_seed "$s"
  all_infers+=" infer_$s" all_trains+="$trains"
done
stage eval "$all_infers" 5 "eval: samx eval --json" evaluate
stage table eval 1 "table and samx compare (seeds pooled per sample)" tables
stage figure "infer_1 $all_trains" 2 "figure: hypothesis grid of test samples, every run's curves" figures

stage anatomy_data "" 5 "anatomy data: samx pack synthetic --kind anatomy (24 test-bed volumes; a corpus of 24 others)" \
  anatomy_data
stage anatomy_sam anatomy_data 70 "anatomy SAM: box prompts on the corpus' structures, class-agnostic (the stand-in for SAM)" \
  anatomy_sam
stage anatomy_eval_sam anatomy_sam 4 "anatomy infer and eval: SAM point / box per component" anatomy_eval_sam
all_fewshot=""
for s in $(seq 1 "$SEEDS"); do
  stage "fewshot_$s" anatomy_sam 75 "few-shot: 5, 20 and 50 shots (decoder only, on the cached embeddings), seed $s of $SEEDS" \
    fewshot_seed "$s"
  stage "anatomy_eval_$s" "fewshot_$s anatomy_eval_sam" 5 \
    "anatomy infer and eval: atlas of the 5 shots, few-shot, seed $s of $SEEDS" anatomy_eval_seed "$s"
  all_fewshot+=" anatomy_eval_$s"
done
stage table2 "$all_fewshot" 1 "table 2: few-shot IoU over seeds" table2

# RANK[ID]: COST[ID] plus the highest RANK of the stages that wait for ID (declared after it).
for ((i = ${#STAGES[@]} - 1; i >= 0; i--)); do
  id=${STAGES[i]} tail=0
  for later in "${STAGES[@]:i+1}"; do
    case " ${AFTER[$later]} " in *" $id "*) [ "${RANK[$later]}" -gt "$tail" ] && tail=${RANK[$later]} ;; esac
  done
  RANK[$id]=$((COST[$id] + tail))
done

# ready ID: every stage that ID waits for has ended.
ready() {
  local a
  for a in ${AFTER[$1]}; do [ "${STATE[$a]}" = ended ] || return 1; done
}
# launch ID: runs the stage in the background, its output in logs/ID.log; the subshell's `times` at
# its end (counters from 0) is the stage's CPU time.
launch() {
  local id=$1
  STATE[$id]=running
  STARTED[$id]=$(date +%s.%N)
  echo "-> ${LABEL[$id]} (started at $(seconds_since "$pipeline_start") s; log: logs/$id.log)"
  (
    eval "${CMD[$id]}" > "$RUN/logs/$id.log" 2>&1
    times > "$RUN/logs/$id.times"
  ) &
  STAGE_OF[$!]=$id
}
# stop_all: ends the running stages and what they run (background jobs ignore SIGINT in a script).
stop_all() {
  local pid
  for pid in "${!STAGE_OF[@]}"; do
    pkill -TERM -P "$pid" 2> /dev/null || true
    kill -TERM "$pid" 2> /dev/null || true
  done
  # Not a bare `wait`: that would wait for tee, which ends only with this script.
  for pid in "${!STAGE_OF[@]}"; do wait "$pid" 2> /dev/null || true; done
}
trap 'echo "main.sh: interrupted; stopping the running stages"; stop_all; exit 130' INT TERM

pipeline_start=$(date +%s.%N)
times > "$RUN/logs/.before.times"
running=0 ended=0
while :; do
  while [ "$running" -lt "$JOBS" ]; do
    best=""
    for id in "${STAGES[@]}"; do
      if [ "${STATE[$id]}" != waiting ] || ! ready "$id"; then continue; fi
      if [ -z "$best" ] || [ "${RANK[$id]}" -gt "${RANK[$best]}" ]; then best=$id; fi
    done
    [ -n "$best" ] || break
    launch "$best"
    running=$((running + 1))
  done
  [ "$running" -gt 0 ] || break
  rc=0
  wait -n -p pid || rc=$?
  id=${STAGE_OF[$pid]}
  unset "STAGE_OF[$pid]"
  running=$((running - 1))
  secs=$(seconds_since "${STARTED[$id]}")
  if [ "$rc" != 0 ]; then
    tail -40 "$RUN/logs/$id.log"
    echo "main.sh: stage '${LABEL[$id]}' failed (exit status $rc after $secs s; its log: $RUN/logs/$id.log)"
    stop_all
    exit 1
  fi
  STATE[$id]=ended ended=$((ended + 1))
  cpu=$(cpu_of "$RUN/logs/$id.times")
  at=$(awk -v a="$pipeline_start" -v b="${STARTED[$id]}" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "${LABEL[$id]}" "$secs" "$cpu" "$at" >> "$RUN/timings.stages"
  echo
  echo "== ${LABEL[$id]}"
  cat "$RUN/logs/$id.log"
  echo "-- ${LABEL[$id]}: ${secs} s (CPU ${cpu} s; stage $ended of ${#STAGES[@]}, $(seconds_since "$pipeline_start") s in)"
done
for id in "${STAGES[@]}"; do
  [ "${STATE[$id]}" = ended ] || { echo "main.sh: stage $id never started (waits for: ${AFTER[$id]})" >&2; exit 1; }
done
total=$(seconds_since "$pipeline_start")
times > "$RUN/logs/.after.times"
total_cpu=$(awk -v a="$(cpu_of "$RUN/logs/.before.times")" -v b="$(cpu_of "$RUN/logs/.after.times")" \
  'BEGIN { printf "%.1f", b - a }')
sort -s -t $'\t' -k4,4g "$RUN/timings.stages" >> "$RUN/timings.tsv.part"
rm -f "$RUN/timings.stages" "$RUN"/logs/*.times "$RUN"/logs/.*.times
printf 'pipeline total\t%s\t%s\t0.0\n' "$total" "$total_cpu" >> "$RUN/timings.tsv.part"
mv "$RUN/timings.tsv.part" "$RUN/timings.tsv"
echo
echo "== time per stage (wall and CPU s, and when it started; the pipeline total excludes the build)"
column -t -s $'\t' "$RUN/timings.tsv"
SAMX_MAIN_JOBS="$JOBS" bash scripts/main-results.sh "$RUN" "$SAMX" "$SEEDS" "$BOX" "$(cat "$RUN/eval/prompted-dice.tsv")" "$date_start" \
  "$load_start" > "$RUN/results.md.part"
mv "$RUN/results.md.part" "$RUN/results.md"
echo
echo "outputs in $RUN: results.md (table.md, compare.md, timings, machine), grid.png, eval/, pred/,"
echo "  pretrain/ and seed*/*/ (log.jsonl, curves.png), timings.tsv, main.log, logs/ (one per stage);"
echo "  table2.md (few-shot, anatomy/)"
