#!/usr/bin/env bash
# `samx embed` and `samx infer` on 2 CPU ranks (mpirun) write what one process writes (contracts §8):
# the same datasets and attributes in the embedding cache and the prediction files (SeqSAM with M
# hypotheses, SAM with scores; batches of 1 and 3, so a short last round is covered), and `samx eval`
# of them gives the same JSON (but for the file name). A tiny SAM is trained for 2 steps first.
# usage: test_mpi_shard.sh SAMX_BINARY PYTHON MPIEXEC
set -u
SAMX=$1
PY=${2:-/usr/bin/python3}
MPIEXEC=${3:-mpirun}
W=$(mktemp -d /tmp/samx_mpi_shard.XXXXXX)
trap 'rm -rf "$W"' EXIT
source "$(dirname "$0")/../mpi_common.sh"
same_h5() { "$PY" - "$1" "$2" <<'PYEOF'
import sys
import h5py
import numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
bad = [k for k in a if k not in b or not np.array_equal(a[k][...], b[k][...], equal_nan=a[k].dtype.kind == "f")]
bad += [k for k in b if k not in a]
bad += ["attr " + k for k in a.attrs if k not in b.attrs or str(a.attrs[k]) != str(b.attrs[k])]
print(len(list(a)), "datasets,", len(a.attrs), "attributes; differing:", bad)
sys.exit(1 if bad else 0)
PYEOF
}
same_eval() { diff <(grep -v '"pred":' "$1") <(grep -v '"pred":' "$2"); }

"$SAMX" pack synthetic --out "$W/data.h5" --n 40 --size 32 >/dev/null || { echo "FAIL: pack"; exit 1; }
tiny_config t cpu "[optim]
batch_size = 2
[train]
steps = 2
val_every = 0
val_samples = 2"
"$SAMX" train "$W/t.ini" >"$W/train.out" 2>&1
check "tiny model trains" test $? -eq 0
CK=$W/t/checkpoints/final.safetensors
SAM=$W/t/sam.safetensors

for b in 1 3; do
  "$SAMX" embed --checkpoint "$SAM" --data "$W/data.h5" --out "$W/e1.h5" --device cpu --batch $b 2>"$W/e1.out"
  check "embed, 1 process, batch $b" test $? -eq 0
  mpi "$SAMX" embed --checkpoint "$SAM" --data "$W/data.h5" --out "$W/e2.h5" --device cpu --batch $b >"$W/e2.out" 2>&1
  check "embed, 2 ranks, batch $b" test $? -eq 0
  check "embed, batch $b: 2 ranks write the one-process cache" same_h5 "$W/e1.h5" "$W/e2.h5"
  for m in seqsam sam; do
    ck=$CK
    [ $m = sam ] && ck=$SAM
    "$SAMX" infer --method $m --checkpoint "$ck" --data "$W/data.h5" --split all --out "$W/p1.h5" --device cpu --batch $b -q
    check "infer $m, 1 process, batch $b" test $? -eq 0
    mpi "$SAMX" infer --method $m --checkpoint "$ck" --data "$W/data.h5" --split all --out "$W/p2.h5" --device cpu --batch $b -q >"$W/p2.out" 2>&1
    check "infer $m, 2 ranks, batch $b" test $? -eq 0
    check "infer $m, batch $b: 2 ranks write the one-process predictions" same_h5 "$W/p1.h5" "$W/p2.h5"
    "$SAMX" eval --data "$W/data.h5" --pred "$W/p1.h5" --json "$W/v1.json" >/dev/null &&
      "$SAMX" eval --data "$W/data.h5" --pred "$W/p2.h5" --json "$W/v2.json" >/dev/null
    check "eval $m, batch $b: the same metrics" same_eval "$W/v1.json" "$W/v2.json"
  done
done
check "no temporary files left behind" test -z "$(ls "$W" | grep tmp)"
mpi "$SAMX" infer --method simsam --checkpoint "$SAM" --data "$W/data.h5" --out "$W/p3.h5" --candidates "$W/c.h5" --device cpu -q >"$W/c.out" 2>&1
check "--candidates on several ranks is refused" grep -q "written by one process only" "$W/c.out"
mpi "$SAMX" info --ranks >"$W/info.out" 2>&1
check "samx info --ranks under mpirun: one line per rank, MPI agrees" test "$(grep -c 'MPI agrees.*all-reduce ok' "$W/info.out")" -eq 2

summary
