#!/usr/bin/env bash
# Data-parallel `samx train` on CPU ranks under mpirun (contracts §8), on a tiny SAM and 32 px
# synthetic data:
#   - 2 ranks x batch b == 1 rank x b x accum 2 bit for bit: every log record (loss, gradient norm,
#     validation), the final checkpoint (weights, optimizer state, RNG) and sam.safetensors;
#   - 2 ranks x b vs 1 rank x 2b (MCL): losses within 1e-5 relative, weights within 5e-4;
#   - buckets reduced during the backward pass (optim.overlap) or after it: the same log and state;
#   - ZeRO-1 on vs off: the same weights (2 ranks: within 1e-6; 3 ranks, padded shards: losses within
#     1e-6, weights within 1e-3);
#   - SIGTERM to one rank: every rank stops at the same step boundary, rank 0 checkpoints, exit 143;
#     the run resumes on 1 rank (accum 2) with the uninterrupted run's losses and weights, and
#     a 1-rank run resumes on 2 ranks likewise;
#   - a resume that would change the global batch is refused with a hint;
#   - kill -9 of one rank, and a rank that hangs (SIGSTOP): the job ends non-zero within the
#     watchdog's train.step_timeout, with a message;
#   - a NaN on one rank only skips the step on every rank;
#   - CPU ranks started with torchrun's variables but without mpirun: a clear error.
# usage: test_mpi_train.sh SAMX_BINARY PYTHON MPIEXEC
set -u
SAMX=$1
PY=${2:-/usr/bin/python3}
MPIEXEC=${3:-mpirun}
W=$(mktemp -d /tmp/samx_mpi_train.XXXXXX)
trap 'rm -rf "$W"' EXIT
source "$(dirname "$0")/../mpi_common.sh"

"$SAMX" pack synthetic --out "$W/data.h5" --n 48 --size 32 >/dev/null || { echo "FAIL: pack"; exit 1; }
config() {  # config NAME -> $W/NAME.ini with run directory $W/NAME
  tiny_config "$1" cpu "[optim]
lr = 2e-3
batch_size = 2
schedule = constant
[train]
steps = 8
val_every = 4
val_samples = 4
save_every = 4
step_timeout = 20"
}

# ---- equivalence ----
for n in one two zero; do config $n; done
"$SAMX" train "$W/one.ini" --set optim.accum_steps=2 >"$W/one.out" 2>&1
check "1 rank x b x accum 2 runs" test $? -eq 0
mpi "$SAMX" train "$W/two.ini" >"$W/two.out" 2>&1
check "2 ranks x b run under mpirun" test $? -eq 0
check "2 ranks print what each detected" grep -q "rank 1/2 local 1 .*Open MPI" "$W/two.out"
check "2 ranks x b == 1 rank x b x accum 2: every log record" same_log "$W/one/log.jsonl" "$W/two/log.jsonl"
check "... the final checkpoint (weights, optimizer state, RNG)" same_tensors "$W/one/checkpoints/final.safetensors" "$W/two/checkpoints/final.safetensors"
check "... sam.safetensors byte for byte" cmp "$W/one/sam.safetensors" "$W/two/sam.safetensors"
# Buckets reduced while the backward pass runs (optim.overlap, the default) or after it: the same
# sums. Small buckets (10 KiB, about 8 of them) and accum 2 on each rank.
config ov
config nov
mpi "$SAMX" train "$W/ov.ini" --set optim.bucket_mb=0.01 --set optim.accum_steps=2 >"$W/ov.out" 2>&1
check "overlapped buckets run" test $? -eq 0
mpi "$SAMX" train "$W/nov.ini" --set optim.bucket_mb=0.01 --set optim.accum_steps=2 --set optim.overlap=false >"$W/nov.out" 2>&1
check "buckets after the backward pass run" test $? -eq 0
check "overlap on vs off: the same log" same_log "$W/nov/log.jsonl" "$W/ov/log.jsonl"
check "overlap on vs off: the same final checkpoint" same_tensors "$W/nov/checkpoints/final.safetensors" "$W/ov/checkpoints/final.safetensors"

# One batch of 2b is not two of b for SeqSAM's per-micro-batch pooling draws, so this compares MCL
# (no draws): the same samples, only the f32 summation order differs (Adam magnifies it in the weights).
config big
config mcl2
"$SAMX" train "$W/big.ini" --set optim.batch_size=4 --set method.name=mcl >"$W/big.out" 2>&1
check "1 rank x 2b runs" test $? -eq 0
mpi "$SAMX" train "$W/mcl2.ini" --set method.name=mcl >"$W/mcl2.out" 2>&1
check "2 ranks x b (MCL) runs" test $? -eq 0
check "2 ranks x b vs 1 rank x 2b: losses within 1e-5" close_losses "$W/big/log.jsonl" "$W/mcl2/log.jsonl" 1e-5
check "2 ranks x b vs 1 rank x 2b: weights within 5e-4" same_tensors "$W/big/sam.safetensors" "$W/mcl2/sam.safetensors" 5e-4
mpi "$SAMX" train "$W/zero.ini" --set optim.zero=1 >"$W/zero.out" 2>&1
check "ZeRO-1 runs" test $? -eq 0
check "ZeRO-1 is announced" grep -q "ZeRO-1" "$W/zero.out"
check "ZeRO-1 on vs off: weights and optimizer state within 1e-6" same_tensors "$W/two/checkpoints/final.safetensors" "$W/zero/checkpoints/final.safetensors" 1e-6

# ZeRO-1 on 3 ranks: the flat buffer does not divide by 3 here, so the last shard is padded. Sums of
# 3 operands depend on MPI's order (all-reduce vs reduce-scatter), so this compares to a tolerance.
config z3
config n3
"$MPIEXEC" -np 3 --oversubscribe "$SAMX" train "$W/z3.ini" --set optim.zero=1 --set optim.batch_size=1 --set method.name=mcl >"$W/z3.out" 2>&1
check "ZeRO-1 on 3 ranks runs" test $? -eq 0
"$MPIEXEC" -np 3 --oversubscribe "$SAMX" train "$W/n3.ini" --set optim.batch_size=1 --set method.name=mcl >"$W/n3.out" 2>&1
check "3 ranks without ZeRO run" test $? -eq 0
check "ZeRO-1 on 3 ranks (padded shards) vs plain: losses within 1e-6" close_losses "$W/n3/log.jsonl" "$W/z3/log.jsonl" 1e-6
check "... weights and optimizer state within 1e-3 (Adam magnifies f32 rounding)" same_tensors "$W/n3/checkpoints/final.safetensors" "$W/z3/checkpoints/final.safetensors" 1e-3

# ---- SIGTERM to one rank, then resume on the other number of ranks ----
config s21
"$MPIEXEC" -np 2 --oversubscribe "$SAMX" train "$W/s21.ini" --set debug.step_sleep_ms=300 >"$W/s21.out" 2>&1 &
MP=$!
check "s21: step 2 logged" wait_for_step "$W/s21/log.jsonl" 2
R1=$(rank_pid $MP 1)
check "rank 1 found among mpirun's children" test -n "$R1"
[ -n "$R1" ] && kill -TERM "$R1"
wait $MP
check "SIGTERM to rank 1: the job exits 143" test $? -eq 143 || show "$W/s21.out"
check "... rank 0 saved the checkpoint" grep -q "SIGTERM at step .*checkpoint saved to" "$W/s21.out"
check "... rank 1 stopped at the same step" grep -q "rank 1 of 2: SIGTERM at step" "$W/s21.out"
check "... latest.safetensors exists" test -f "$W/s21/checkpoints/latest.safetensors"
"$SAMX" train "$W/s21.ini" --resume auto >"$W/s21b.out" 2>&1
check "resuming with another global batch is refused" test $? -eq 1
check "... with a hint" grep -q "global batch of 4 .*HINT: set optim.accum_steps" "$W/s21b.out"
"$SAMX" train "$W/s21.ini" --resume auto --set optim.accum_steps=2 >"$W/s21c.out" 2>&1
check "2 ranks -> 1 rank: resumed run finishes" test $? -eq 0 || show "$W/s21c.out"
check "2 ranks -> 1 rank: the uninterrupted run's log" same_log "$W/one/log.jsonl" "$W/s21/log.jsonl"
check "2 ranks -> 1 rank: the uninterrupted run's weights" same_tensors "$W/one/checkpoints/final.safetensors" "$W/s21/checkpoints/final.safetensors"

config s12
"$SAMX" train "$W/s12.ini" --set optim.accum_steps=2 --set debug.step_sleep_ms=300 >"$W/s12.out" 2>&1 &
P=$!
check "s12: step 2 logged" wait_for_step "$W/s12/log.jsonl" 2
kill -TERM $P
wait $P
check "1 rank: SIGTERM exits 143" test $? -eq 143
mpi "$SAMX" train "$W/s12.ini" --resume auto >"$W/s12b.out" 2>&1
check "1 rank -> 2 ranks: resumed run finishes" test $? -eq 0
check "1 rank -> 2 ranks: the uninterrupted run's log" same_log "$W/one/log.jsonl" "$W/s12/log.jsonl"
check "1 rank -> 2 ranks: the uninterrupted run's weights" same_tensors "$W/one/checkpoints/final.safetensors" "$W/s12/checkpoints/final.safetensors"

# ---- failures: a dead rank, a hung rank ----
config k9
"$MPIEXEC" -np 2 --oversubscribe "$SAMX" train "$W/k9.ini" --set debug.step_sleep_ms=300 --set train.steps=200 >"$W/k9.out" 2>&1 &
MP=$!
check "k9: step 2 logged" wait_for_step "$W/k9/log.jsonl" 2
R1=$(rank_pid $MP 1)
t0=$(date +%s)
[ -n "$R1" ] && kill -KILL "$R1"
wait $MP
rc=$?
t1=$(date +%s)
check "kill -9 of rank 1: the job exits non-zero (rc $rc)" test $rc -ne 0
check "... within the watchdog timeout (20 s; took $((t1 - t0)) s)" test $((t1 - t0)) -le 20
check "... with a message naming the rank" grep -Eq "rank 1|\[\[[0-9]+,1\],1\]|exited on signal 9" "$W/k9.out"

config hang
"$MPIEXEC" -np 2 --oversubscribe "$SAMX" train "$W/hang.ini" --set debug.step_sleep_ms=300 --set train.steps=200 --set train.step_timeout=3 >"$W/hang.out" 2>&1 &
MP=$!
check "hang: step 2 logged" wait_for_step "$W/hang/log.jsonl" 2
R1=$(rank_pid $MP 1)
t0=$(date +%s)
[ -n "$R1" ] && kill -STOP "$R1"
wait $MP
rc=$?
t1=$(date +%s)
[ -n "$R1" ] && kill -CONT "$R1" 2>/dev/null
check "a hung rank: the job exits non-zero (rc $rc)" test $rc -ne 0
check "... after the 3 s step timeout (took $((t1 - t0)) s)" test $((t1 - t0)) -le 15
check "... the watchdog says so" grep -q "rank 0 of 2: no progress for .*train.step_timeout" "$W/hang.out"

# ---- a NaN on one rank skips the step everywhere ----
config nan
mpi "$SAMX" train "$W/nan.ini" --set debug.inject_nan_steps=3 --set debug.nan_rank=1 >"$W/nan.out" 2>&1
check "NaN on rank 1 only: the run completes" test $? -eq 0
check "... step 3 is logged as skipped" grep -q '"step":3,.*"skipped":1' "$W/nan/log.jsonl"
check "... and the ranks still agree (checked at the end: final weights written)" test -f "$W/nan/checkpoints/final.safetensors"

# ---- CPU ranks need MPI ----
config tr
TORCHELASTIC_RUN_ID=t1 RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29400 \
  "$SAMX" train "$W/tr.ini" >"$W/tr.out" 2>&1
check "torchrun variables on CPU without mpirun: exit 1" test $? -eq 1
check "... saying CPU ranks need mpirun" grep -q "CPU ranks communicate with MPI, so start them with mpirun" "$W/tr.out"

summary
