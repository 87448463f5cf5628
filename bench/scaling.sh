#!/usr/bin/env bash
# Step time of data-parallel `samx train` on 1 and 2 CPU ranks (mpirun), the main job's pretraining
# model (configs/synthetic_pretrain.ini: SAM-FT, encoder trained, 64 px) on synthetic data.
#   bench/scaling.sh [SAMX_BINARY] [STEPS]     -> a markdown table on stdout
# Rows: 1 rank x batch 8 (1 thread); 2 ranks x batch 4 (1 thread each: the same global batch of 8,
# strong scaling); 2 ranks x batch 8 (weak scaling: twice the samples per step); 1 rank x batch 8 with
# 2 threads (the same two cores used by threads instead of ranks). The step time is the mean over the
# steps after the first 5 (log.jsonl's time_s), so start-up and the first allocations are left out;
# the reduction column is log.jsonl's comm_ms (waiting for the other rank included).
set -eu
SAMX=${1:-build/samx}
STEPS=${2:-30}
W=$(mktemp -d /tmp/samx_scaling.XXXXXX)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_WAIT_POLICY=PASSIVE
"$SAMX" pack synthetic --out "$W/data.h5" --n 256 --size 64 >/dev/null
here=$(cd "$(dirname "$0")/.." && pwd)
run() {  # run NAME RANKS THREADS BATCH
  local sets=(--set run.dir="$W/$1" --set data.path="$W/data.h5" --set train.steps="$STEPS" --set train.val_every=0
              --set train.save_every=0 --set optim.batch_size="$4" --set log.progress=none --set data.val_split=)
  if [ "$2" -eq 1 ]; then
    OMP_NUM_THREADS=$3 "$SAMX" train "$here/configs/synthetic_pretrain.ini" "${sets[@]}" >"$W/$1.out" 2>&1
  else
    OMP_NUM_THREADS=$3 mpirun -np "$2" --oversubscribe "$SAMX" train "$here/configs/synthetic_pretrain.ini" "${sets[@]}" \
      >"$W/$1.out" 2>&1
  fi
  /usr/bin/python3 - "$W/$1/log.jsonl" "$2" "$4" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"val"' not in l]
t = {r["step"]: r["time_s"] for r in recs}
last = max(t)
step = (t[last] - t[5]) / (last - 5)
ranks, batch = int(sys.argv[2]), int(sys.argv[3])
comm = [r["comm_ms"] for r in recs if r["step"] > 5 and "comm_ms" in r]
print(f"{step * 1e3:.0f} {ranks * batch / step:.1f} {sum(comm) / len(comm) if comm else 0:.2f}")
EOF
}
echo "| configuration | global batch | step time (ms) | samples/s | of which reduction (ms, rank 0) |"
echo "|---|---:|---:|---:|---:|"
read -r s1 r1 c1 < <(run one 1 1 8)
echo "| 1 rank x batch 8, 1 thread | 8 | $s1 | $r1 | - |"
read -r s2 r2 c2 < <(run two 2 1 4)
echo "| 2 ranks x batch 4, 1 thread each | 8 | $s2 | $r2 | $c2 |"
read -r s3 r3 c3 < <(run weak 2 1 8)
echo "| 2 ranks x batch 8, 1 thread each | 16 | $s3 | $r3 | $c3 |"
read -r s4 r4 c4 < <(run threads 1 2 8)
echo "| 1 rank x batch 8, 2 threads | 8 | $s4 | $r4 | - |"
