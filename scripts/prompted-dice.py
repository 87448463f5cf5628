#!/usr/bin/env python3
"""Dice of a single-mask prediction against the annotator whose box prompted it.

    scripts/prompted-dice.py DATA.h5 PRED.h5 ANNOTATOR

The issue's pretraining target ("box-prompted single-mask Dice"): for every prediction row (its
dataset row in /index) whose annotator ANNOTATOR is valid and non-empty, the Dice of the first
hypothesis against that annotator's mask. Prints the mean, the std and the count, tab-separated.
"""
import sys

import h5py
import numpy as np


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    data, pred, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with h5py.File(data, "r") as d, h5py.File(pred, "r") as p:
        index = p["index"][:].astype(np.int64)
        hyp = p["pred_masks"][:, 0].astype(bool)
        valid = d["annotator_valid"][:, k]
        masks = d["masks"]
        dice = []
        for row, h in zip(index, hyp):
            if not valid[row]:
                continue
            g = masks[row, k].astype(bool)
            if not g.any():
                continue
            dice.append(2.0 * (h & g).sum() / (h.sum() + g.sum()))
    if not dice:
        sys.exit(f"{pred}: no prediction has a non-empty annotator {k} in {data}")
    print(f"{np.mean(dice):.4f}\t{np.std(dice):.4f}\t{len(dice)}")


if __name__ == "__main__":
    main()
