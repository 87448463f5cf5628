"""samx eval --labels against scipy: IoU over rows holding the label, ASSD in mm (medpy's borders: the
mask XOR its erosion by the 4-connected cross, the image edge as background; exact EDT with the row's
spacing), missed rows and the false-positive rate. usage: eval_labels_check.py D.h5 P.h5 E.json"""
import json
import sys

import h5py
import numpy as np
from scipy import ndimage

d, p, e = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), json.load(open(sys.argv[3]))
cross = ndimage.generate_binary_structure(2, 1)


def border(m):
    return m ^ ndimage.binary_erosion(m, cross, border_value=0)


def asd(a, b, sp):
    dist = ndimage.distance_transform_edt(~border(b), sampling=sp)
    return dist[border(a)].mean()


fails = 0
for l, lab in enumerate(e["labels"]):
    ious, assds, missed, fp, absent = [], [], 0, 0, 0
    for i, row in enumerate(p["index"][:]):
        gt = d["labels"][row] == lab["id"]
        pr = p["pred_masks"][i, l].astype(bool)
        if not gt.any():
            absent += 1
            fp += pr.any()
            continue
        ious.append((gt & pr).sum() / (gt | pr).sum())
        if not pr.any():
            missed += 1
            continue
        sp = d["spacing"][row].astype(np.float64)
        assds.append(0.5 * (asd(pr, gt, sp) + asd(gt, pr, sp)))
    want = {"iou": np.mean(ious), "assd": np.mean(assds) if assds else None, "missed": missed,
            "fp": fp / absent if absent else 0.0}
    got = {"iou": lab["iou"]["mean"], "assd": lab["assd_mm"]["mean"], "missed": lab["missed"], "fp": lab["fp_rate"]}
    ok = abs(got["iou"] - want["iou"]) < 1e-9 and got["missed"] == want["missed"] and abs(got["fp"] - want["fp"]) < 1e-9
    ok = ok and ((want["assd"] is None and got["assd"] is None) or abs(got["assd"] - want["assd"]) < 1e-6)
    print(("ok" if ok else "FAIL"), lab["name"], "got", got, "want", want)
    fails += not ok
sys.exit(1 if fails else 0)
