#!/usr/bin/env bash
# samx train started by torchrun (no Python runs: --no-python starts the binary itself, once per GPU).
#   scripts/slurm/torchrun_example.sh configs/seqsam_lidc.ini [--set key=value ...]
# samx reads RANK, WORLD_SIZE, LOCAL_RANK (the GPU), MASTER_ADDR and TORCHELASTIC_RUN_ID (the job id
# its rendezvous checks); torchrun's agent holds MASTER_PORT itself, so samx's NCCL-id rendezvous
# listens on MASTER_PORT + 1. torchrun forwards SIGTERM to the ranks; SIGUSR1 only when told to
# (--signals-to-handle in recent torch). GPU ranks only: CPU ranks need mpirun.
# Several nodes: run this on every node with --nnodes=N --node-rank=K --master-addr=FIRST_NODE.
set -u
SAMX=${SAMX:-build/samx}
NPROC=${NPROC:-$(nvidia-smi -L 2>/dev/null | wc -l)}
exec torchrun --nnodes=1 --nproc-per-node="$NPROC" --master-addr=127.0.0.1 --master-port=29500 \
  --no-python "$SAMX" train "$@" --resume auto
