# Shared by the tests that run samx on several ranks (tests/*/test_mpi_*.sh): source it after setting
# SAMX, PY, MPIEXEC and W (a scratch directory). Checks count into $passed / $failed.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
MPI_COMMON_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
passed=0
failed=0
check() {  # check "what" command...: counts, and on failure prints the command's output
  local what=$1
  shift
  if "$@" >"$W/check.out" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $what"
    sed 's/^/    /' "$W/check.out" | tail -20
    return 1
  fi
}
show() { echo "    --- $1:"; grep -v '^|' "$1" | tail -n 15 | sed 's/^/    /'; }
mpi() { "$MPIEXEC" -np 2 --oversubscribe "$@"; }
summary() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
# tiny_config NAME DEVICE [EXTRA]: $W/NAME.ini, a tiny SAM (32 px, width 16) on $W/data.h5, run in $W/NAME
tiny_config() {
  cat >"$W/$1.ini" <<INI
[run]
dir = $W/$1
device = $2
; CUDA ranks are compared with CPU ranks: fp32 on both (auto would be bf16 on a GPU)
precision = fp32
act_mem_mb = 256
[model]
arch = tiny
img_size = 32
patch = 8
enc_dim = 16
enc_depth = 1
enc_heads = 2
enc_mlp = 32
window = 2
global_blocks = 0
prompt_dim = 16
dec_heads = 2
dec_mlp = 32
iou_hidden = 16
[data]
path = $W/data.h5
${3:-}
[log]
progress = none
INI
}
# The log without its timing fields, one sorted JSON object per line.
records() { "$PY" - "$1" <<'PYEOF'
import json, sys
for line in open(sys.argv[1]):
    o = json.loads(line)
    for k in ("time_s", "samples_per_s", "rss_mb", "act_peak_mb", "comm_ms"):
        o.pop(k, None)
    if "val" in o:
        o["val"].pop("seconds", None)
    print(json.dumps(o, sort_keys=True))
PYEOF
}
same_log() { diff <(records "$1") <(records "$2"); }
same_tensors() { "$PY" "$MPI_COMMON_DIR/train/st_compare.py" "$1" "$2" "${3:-0}"; }
close_losses() { "$PY" - "$1" "$2" "$3" <<'PYEOF'
import json, sys
la = [json.loads(l)["loss"] for l in open(sys.argv[1]) if '"val"' not in l]
lb = [json.loads(l)["loss"] for l in open(sys.argv[2]) if '"val"' not in l]
worst = max(abs(x - y) / (1 + abs(x)) for x, y in zip(la, lb))
print(len(la), "losses, max relative difference", worst)
sys.exit(0 if len(la) == len(lb) and la and worst <= float(sys.argv[3]) else 1)
PYEOF
}
# pid of rank R among mpirun's children (mpirun PID R)
rank_pid() {
  local p try
  for try in 1 2 3 4 5; do
    for p in $(ps -o pid= --ppid "$1"); do
      if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
    done
    sleep 0.2
  done
}
wait_for_step() {  # wait_for_step LOG STEP: until the log holds that step (at most 60 s)
  for _ in $(seq 600); do
    [ -f "$1" ] && grep -q "\"step\":$2," "$1" && return 0
    sleep 0.1
  done
  return 1
}
