#!/usr/bin/env bash
# The GPU code path of data-parallel `samx train` (NCCL back end: its stream, events, collectives,
# ZeRO-1 shard, watchdog polling) with 2 ranks under mpirun, on the emulated CUDA build whose NCCL is
# kernels/cuda/emu/nccl/ (NCCL's API over MPI). Both ranks see the one emulated device
# (CUDA_VISIBLE_DEVICES=0, so the GPU is device 0, as under Slurm's per-task GPU binding).
#   - 2 CUDA ranks x b == 1 CUDA rank x b x accum 2 bit for bit (log, final checkpoint);
#   - ZeRO-1 on the NCCL path == plain;
#   - CUDA ranks vs CPU ranks (MCL, 8 steps): losses within 1e-6, weights within 1e-3 (the CUDA and
#     CPU kernels sum in different orders; Adam magnifies that in the weights);
#   - SIGTERM to one CUDA rank: exit 143 with a checkpoint; resumed on 1 rank with the same log.
# usage: test_mpi_train_cuda.sh SAMX_BINARY PYTHON MPIEXEC   (exit 77 when the binary has no CUDA device)
set -u
SAMX=$1
PY=${2:-/usr/bin/python3}
MPIEXEC=${3:-mpirun}
if ! "$SAMX" info | grep -Eq "^cuda devices: [1-9]"; then
  echo "skipped: no CUDA device (real or emulated)"
  exit 77
fi
W=$(mktemp -d /tmp/samx_mpi_train_cuda.XXXXXX)
trap 'rm -rf "$W"' EXIT
source "$(dirname "$0")/../mpi_common.sh"
export CUDA_VISIBLE_DEVICES=0
"$SAMX" pack synthetic --out "$W/data.h5" --n 48 --size 32 >/dev/null || { echo "FAIL: pack"; exit 1; }
config() {  # config NAME DEVICE
  tiny_config "$1" "$2" "[optim]
lr = 2e-3
batch_size = 2
schedule = constant
[train]
steps = 6
val_every = 3
val_samples = 4
save_every = 3
step_timeout = 60"
}

for n in one two zero; do config $n cuda; done
"$SAMX" train "$W/one.ini" --set optim.accum_steps=2 >"$W/one.out" 2>&1
check "1 CUDA rank x b x accum 2 runs" test $? -eq 0 || show "$W/one.out"
mpi "$SAMX" train "$W/two.ini" >"$W/two.out" 2>&1
check "2 CUDA ranks run" test $? -eq 0 || show "$W/two.out"
check "... on the NCCL back end" grep -q "rank 1/2 .*nccl back end" "$W/two.out"
check "2 CUDA ranks x b == 1 CUDA rank x b x accum 2: the log" same_log "$W/one/log.jsonl" "$W/two/log.jsonl"
check "... the final checkpoint" same_tensors "$W/one/checkpoints/final.safetensors" "$W/two/checkpoints/final.safetensors"
mpi "$SAMX" train "$W/zero.ini" --set optim.zero=1 >"$W/zero.out" 2>&1
check "ZeRO-1 on CUDA ranks runs" test $? -eq 0 || show "$W/zero.out"
check "ZeRO-1 on vs off (NCCL path): within 1e-6" same_tensors "$W/two/checkpoints/final.safetensors" "$W/zero/checkpoints/final.safetensors" 1e-6

config gpu cuda
config cpu cpu
mpi "$SAMX" train "$W/gpu.ini" --set method.name=mcl --set train.steps=8 >"$W/gpu.out" 2>&1
check "MCL on 2 CUDA ranks runs" test $? -eq 0 || show "$W/gpu.out"
mpi "$SAMX" train "$W/cpu.ini" --set method.name=mcl --set train.steps=8 >"$W/cpu.out" 2>&1
check "MCL on 2 CPU ranks runs" test $? -eq 0 || show "$W/cpu.out"
check "CUDA ranks vs CPU ranks: losses within 1e-6" close_losses "$W/cpu/log.jsonl" "$W/gpu/log.jsonl" 1e-6
check "CUDA ranks vs CPU ranks: weights within 1e-3" same_tensors "$W/cpu/checkpoints/final.safetensors" "$W/gpu/checkpoints/final.safetensors" 1e-3

config sig cuda
"$MPIEXEC" -np 2 --oversubscribe "$SAMX" train "$W/sig.ini" --set debug.step_sleep_ms=500 >"$W/sig.out" 2>&1 &
MP=$!
check "sig: step 2 logged" wait_for_step "$W/sig/log.jsonl" 2
R1=$(rank_pid $MP 1)
check "CUDA rank 1 found" test -n "$R1"
[ -n "$R1" ] && kill -TERM "$R1"
wait $MP
check "SIGTERM to a CUDA rank: exit 143" test $? -eq 143 || show "$W/sig.out"
"$SAMX" train "$W/sig.ini" --resume auto --set optim.accum_steps=2 >"$W/sig2.out" 2>&1
check "... resumed on 1 CUDA rank" test $? -eq 0 || show "$W/sig2.out"
check "... with the uninterrupted run's log" same_log "$W/one/log.jsonl" "$W/sig/log.jsonl"

summary
