#!/usr/bin/env bash
# Creates .venv in the repository root: Debian's python3 with its system packages (torch 1.13, numpy)
# plus Hugging Face transformers, for tests/models/test_sam_hf.c (an independent SAM implementation).
# Idempotent: an existing venv with the pinned version is left as it is. Prints the venv's python.
#
# transformers 4.40.2: has SamModel (since 4.29) and still runs on torch 1.13 (later releases
# gradually require torch >= 2). No model weights are downloaded: the test builds a random SamModel.
set -euo pipefail

TRANSFORMERS_VERSION=4.40.2
SEGMENT_ANYTHING_VERSION=1.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

if ! /usr/bin/python3 -c "import ensurepip" 2>/dev/null; then
  echo "setup-venv: /usr/bin/python3 cannot create venvs: apt-get install python3-venv" >&2
  exit 1
fi
if [ ! -x "$PY" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi

have="$("$PY" -c "import transformers; print(transformers.__version__)" 2>/dev/null || true)"
if [ "$have" != "$TRANSFORMERS_VERSION" ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
    "transformers==$TRANSFORMERS_VERSION"
fi
# The official SAM code (pure Python, no dependencies beyond torch): the PyTorch side of `samx bench`.
if ! "$PY" -c "import segment_anything" 2>/dev/null; then
  "$PY" -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps \
    "segment-anything==$SEGMENT_ANYTHING_VERSION"
fi

# The check that matters: SamModel imports and runs on the system torch.
"$PY" -c "import torch, transformers, segment_anything; from transformers import SamModel, SamConfig" >/dev/null
echo "$PY"
