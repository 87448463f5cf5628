#!/bin/bash
# The README's CPU comparison: every row of its table from one commit, each side by side with PyTorch
# (samx bench ... --device cpu --compare-torch), into one folder of raw outputs.
#
#   bash scripts/bench-cpu.sh [OUT]      (default OUT: runs/bench-cpu-<date>)
#
# Needs build/samx (scripts/build.sh) and the venv of scripts/setup-venv.sh. The P2SAM rows time the
# authors' modules, which bench/torch_train_p2sam.py imports at run time: set P2SAM_ORACLE,
# P2SAM_MIRROR and SAM_MIRROR as its docstring says, or their PyTorch column stays empty (the run
# goes on and says so in the .err file). OUT gets per bench NAME.md (the table) and NAME.err (stderr,
# wall seconds, exit status), and load.txt: the load average before and after each bench, since the
# ratios move with it. Run it on an otherwise idle machine; it takes about 6 minutes on 2 cores.
set -u
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT=$(realpath -m "${1:-$ROOT/runs/bench-cpu-$(date -u +%Y-%m-%d)}")
cd "$ROOT" || exit 2
SAMX=build/samx
[ -x "$SAMX" ] || { echo "bench-cpu.sh: $SAMX not built (bash scripts/build.sh)" >&2; exit 2; }
[ -x .venv/bin/python ] || { echo "bench-cpu.sh: no .venv (bash scripts/setup-venv.sh)" >&2; exit 2; }
[ -n "${P2SAM_ORACLE:-}" ] || echo "bench-cpu.sh: P2SAM_ORACLE unset: the P2SAM rows get no PyTorch column" >&2
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p "$OUT"
: > "$OUT/load.txt"

load() { echo "$(date -u +%H:%M:%S) $1 $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/load.txt"; }

# run NAME ARGS...: samx bench ARGS on the CPU against PyTorch, into OUT/NAME.md and OUT/NAME.err.
run() {
  local name=$1 rc t0 wall
  shift
  load "before $name"
  t0=$EPOCHREALTIME
  "$SAMX" bench "$@" --device cpu --compare-torch > "$OUT/$name.md" 2> "$OUT/$name.err"
  rc=$?
  wall=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  printf '%s s wall\nrc %d\n' "$wall" "$rc" >> "$OUT/$name.err"
  load "after $name"
  echo "$name: $wall s wall, rc $rc"
}

run kernels kernels -r 5
run encoder_vit_b encoder --model vit_b -r 3
run decoder_vit_b decoder --model vit_b --prompts 1,16,50 -r 3
run train_vit_b train --method seqsam,mcl --model vit_b -r 3
run train_p2sam_stage1 train --method p2sam --stage 1 --model vit_b -r 2
run train_p2sam_stage2 train --method p2sam --stage 2 --model vit_b -r 2
echo "bench-cpu.sh: raw outputs in $OUT"
