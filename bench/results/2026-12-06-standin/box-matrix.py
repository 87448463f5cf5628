#!/usr/bin/env python3
"""Does the stand-in SAM read its box? Prompted with annotator k's tight box (PRED_DIR/p{k}.h5 from
`samx infer --method sam-ft --annotator k --split test`), the Dice of its mask against each annotator j
on the test split, beside the Dice of the filled box of k against j. A model that reads its box scores
highest against the annotator whose box it was given (the row's diagonal), as the filled box does.

    box-matrix.py DATA.h5 PRED_DIR
"""
import sys

import h5py
import numpy as np


def main():
    data, pred_dir = sys.argv[1:3]
    with h5py.File(data, "r") as d:
        masks, valid = d["masks"][:].astype(bool), d["annotator_valid"][:]
    K = masks.shape[1]
    print("| box of annotator | " + " | ".join(f"model vs {j}" for j in range(K)) + " | "
          + " | ".join(f"filled box vs {j}" for j in range(K)) + " |")
    print("|---:|" + "---:|" * (2 * K))
    for k in range(K):
        with h5py.File(f"{pred_dir}/p{k}.h5", "r") as p:
            rows, pred = p["index"][:], p["pred_masks"][:, 0].astype(bool)
        model, fill = [[] for _ in range(K)], [[] for _ in range(K)]
        for r, h in zip(rows, pred):
            if not valid[r, k] or not masks[r, k].any():
                continue
            ys, xs = np.where(masks[r, k])
            box = np.zeros_like(h)
            box[ys.min():ys.max() + 1, xs.min():xs.max() + 1] = True
            for j in range(K):
                g = masks[r, j]
                if not valid[r, j] or not g.any():
                    continue
                model[j].append(2.0 * (h & g).sum() / (h.sum() + g.sum()))
                fill[j].append(2.0 * (box & g).sum() / (box.sum() + g.sum()))
        print(f"| {k} | " + " | ".join(f"{np.mean(v):.3f}" for v in model) + " | "
              + " | ".join(f"{np.mean(v):.3f}" for v in fill) + " |")


if __name__ == "__main__":
    main()
