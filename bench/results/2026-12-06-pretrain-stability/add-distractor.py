#!/usr/bin/env python3
"""A variant of a synthetic dataset with one unannotated lesion-like blob per slice (the hypothesis
test of README finding 3: does the box get read once the image holds two lesions?).

    add-distractor.py IN.h5 OUT.h5 [SEED]

Copies IN.h5 and adds to every image a soft disc of the lesions' radius range (0.05-0.12 of the
side, times the slice's scale is not known here: uniform 2.5-6 px on 64²) and contrast (45-85), inside
the body (pixels above 40), at least 4 px clear of every annotator's mask and of the box. The masks,
splits and everything else are unchanged.
"""
import shutil
import sys

import h5py
import numpy as np

src, dst = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
shutil.copyfile(src, dst)
with h5py.File(dst, "r+") as f:
    images, masks = f["images"], f["masks"]
    n, h, w = images.shape
    yy, xx = np.mgrid[0:h, 0:w]
    placed = 0
    for i in range(n):
        img = images[i].astype(np.float64)
        union = masks[i].any(axis=0)
        keep_out = np.zeros((h, w), bool)
        if union.any():
            ys, xs = np.where(union)
            keep_out[max(ys.min() - 4, 0):ys.max() + 5, max(xs.min() - 4, 0):xs.max() + 5] = True
        for _ in range(200):
            r = rng.uniform(2.5, 6.0)
            cy, cx = rng.uniform(r + 2, h - r - 2), rng.uniform(r + 2, w - r - 2)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= (r + 2) ** 2
            if (disc & keep_out).any() or (img[disc] < 40).any():
                continue
            soft = np.clip((r - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)) / 1.5 + 0.5, 0, 1)
            img = img + rng.uniform(45, 85) * soft
            placed += 1
            break
        images[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
print(f"{dst}: a distractor in {placed} of {n} slices")
