#!/usr/bin/env bash
# The few-shot paper's claims on the synthetic anatomy volumes, at the main job's sizes (about a minute
# on 2 cores): 5 shots beat SAM with one point per component and the atlas of the same 5 shots on every
# structure of the test split, and the decoder fits its shots (IoU >= 0.9).
#   tests/models/test_fewshot_claims.sh SAMX
set -euo pipefail
cd "$(dirname "$0")/../.."
SAMX=$1 DEVICE=cpu
A=$(mktemp -d "${TMPDIR:-/tmp}/samx_fewshot_claims.XXXXXX")
trap 'rm -rf "$A"' EXIT
mkdir -p "$A/pred" "$A/eval"
source scripts/anatomy-fewshot.sh
anatomy_data > "$A/log.txt" 2>&1
anatomy_sam >> "$A/log.txt" 2>&1
anatomy_fewshot 5 >> "$A/log.txt" 2>&1
anatomy_eval 5 >> "$A/log.txt" 2>&1 || { tail -20 "$A/log.txt"; exit 1; }
anatomy_claims 5
