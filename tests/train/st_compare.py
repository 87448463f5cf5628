"""Compares the tensors of two safetensors files (checkpoints of samx train).

usage: st_compare.py A B [TOL]  -- TOL 0 (default): bit for bit; else max |a-b| / (1 + |a|) <= TOL.
Prints the number of tensors, how many differ and the largest relative difference; exit 1 on failure.
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def load(path):
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        lo, hi = e["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=DTYPES[e["dtype"]])
    return out


def main():
    a, b = load(sys.argv[1]), load(sys.argv[2])
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    if sorted(a) != sorted(b):
        print("different tensor names:", sorted(set(a) ^ set(b))[:5])
        return 1
    differ, worst = 0, 0.0
    for k in a:
        if not np.array_equal(a[k], b[k]):
            differ += 1
            if a[k].size:
                x, y = a[k].astype(np.float64), b[k].astype(np.float64)
                worst = max(worst, float(np.max(np.abs(x - y) / (1 + np.abs(x)))))
    print(f"{len(a)} tensors, {differ} differ, max relative difference {worst:.3g} (tolerance {tol:g})")
    return 0 if (differ == 0 if tol == 0 else worst <= tol) else 1


if __name__ == "__main__":
    sys.exit(main())
