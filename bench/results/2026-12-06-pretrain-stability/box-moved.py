#!/usr/bin/env python3
"""Does the pretrained stand-in SAM use its box prompt? For every 8th test sample (16 with a non-empty
annotator 2), `samx segment` with annotator 2's tight box and with the same box moved 20 pixels
sideways (off the lesion); prints the mean predicted area, the share of predicted pixels inside the
box given, and the share on annotator 2's lesion.

    box-moved.py DATA.h5 CHECKPOINT WORK_DIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np
from PIL import Image

data, ck, work = sys.argv[1:4]
samx = os.environ.get("SAMX_BIN", os.path.join(os.path.dirname(__file__), "../../../build/samx"))
os.makedirs(work, exist_ok=True)
res = {"true": [], "moved": []}
with h5py.File(data, "r") as f:
    for i in np.where(f["split"][:] == 2)[0][::8][:16]:
        g = f["masks"][i, 2].astype(bool)
        if not g.any():
            continue
        Image.fromarray(f["images"][i]).save(f"{work}/{i}.png")
        ys, xs = np.where(g)
        box = [xs.min(), ys.min(), xs.max(), ys.max()]
        dx = 20 if box[2] + 20 < g.shape[1] - 4 else -20
        for name, b in [("true", box), ("moved", [box[0] + dx, box[1], box[2] + dx, box[3]])]:
            out = f"{work}/{i}_{name}.png"
            subprocess.run([samx, "segment", "--checkpoint", ck, "--image", f"{work}/{i}.png", "--box",
                            ",".join(map(str, b)), "--device", "cpu", "--out", out], check=True, capture_output=True)
            m = np.array(Image.open(out)) > 0
            m = m[..., 0] if m.ndim == 3 else m
            inside = np.zeros_like(m)
            inside[b[1]:b[3] + 1, b[0]:b[2] + 1] = True
            n = max(m.sum(), 1)
            res[name].append((m.sum(), (m & inside).sum() / n, (m & g).sum() / n))
for name, rows in res.items():
    a = np.array(rows).mean(0)
    print(f"{name} box: predicted area {a[0]:.0f} px, share inside the box given {a[1]:.2f}, share on the lesion {a[2]:.2f}")
