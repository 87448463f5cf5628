"""Independent oracles for tests/eval/test_eval_scipy.c.

Usage: ref_eval.py IN OUT. Each line of IN is one case ("kind numbers..."); the matching line of OUT
holds the expected results. Geometry and statistics come from scipy (linear_sum_assignment,
ndimage.label, distance_transform_edt, stats.wilcoxon/pearsonr/spearmanr); NSD is DeepMind's
surface-distance algorithm (compute_surface_distances + compute_surface_dice_at_tolerance, 2-D)
re-typed here with numpy/scipy; ASSD/HD95 are medpy's definitions; the set metrics are written
from method-notes §7 directly on numpy arrays.
"""
import sys
import warnings

import numpy as np
from scipy import ndimage, optimize, stats

warnings.simplefilter("ignore")


def masks(vals, n, h, w):
    return np.array(vals[: n * h * w], dtype=np.int64).reshape(n, h, w).astype(bool), vals[n * h * w:]


# ---- DeepMind surface-distance (2-D) ----
def contour_length_table(spacing):
    t = np.zeros(16)
    vertical, horizontal = spacing
    diag = 0.5 * np.sqrt(spacing[0] ** 2 + spacing[1] ** 2)
    for code, v in [(0b0001, diag), (0b0010, diag), (0b0011, horizontal), (0b0100, diag),
                    (0b0101, vertical), (0b0110, 2 * diag), (0b0111, diag), (0b1000, diag),
                    (0b1001, 2 * diag), (0b1010, vertical), (0b1011, diag), (0b1100, horizontal),
                    (0b1101, diag), (0b1110, diag)]:
        t[code] = v
    return t


def bounding_box(mask):
    rows, cols = np.nonzero(np.amax(mask, axis=1))[0], np.nonzero(np.amax(mask, axis=0))[0]
    if len(rows) == 0:
        return None, None
    return np.array([rows.min(), cols.min()]), np.array([rows.max(), cols.max()])


def crop(mask, lo, hi):
    out = np.zeros((hi - lo) + 2, np.uint8)
    out[0:-1, 0:-1] = mask[lo[0]:hi[0] + 1, lo[1]:hi[1] + 1]
    return out


def surface_distances(gt, pred, spacing):
    table = contour_length_table(spacing)
    lo, hi = bounding_box(gt | pred)
    if lo is None:
        return np.array([]), np.array([]), np.array([]), np.array([])
    kernel = np.array([[8, 4], [2, 1]])
    code_gt = ndimage.correlate(crop(gt, lo, hi), kernel, mode="constant", cval=0)
    code_pred = ndimage.correlate(crop(pred, lo, hi), kernel, mode="constant", cval=0)
    b_gt = (code_gt != 0) & (code_gt != 15)
    b_pred = (code_pred != 0) & (code_pred != 15)
    dist_gt = ndimage.distance_transform_edt(~b_gt, sampling=spacing) if b_gt.any() else np.inf * np.ones(b_gt.shape)
    dist_pred = (ndimage.distance_transform_edt(~b_pred, sampling=spacing) if b_pred.any()
                 else np.inf * np.ones(b_pred.shape))
    return dist_pred[b_gt], dist_gt[b_pred], table[code_gt][b_gt], table[code_pred][b_pred]


def nsd(gt, pred, spacing, tol):
    d_gp, d_pg, a_gt, a_pred = surface_distances(gt, pred, spacing)
    with np.errstate(invalid="ignore"):
        return (np.sum(a_gt[d_gp <= tol]) + np.sum(a_pred[d_pg <= tol])) / (np.sum(a_gt) + np.sum(a_pred))


# ---- medpy ----
def medpy_surface(result, reference, spacing):
    fp = ndimage.generate_binary_structure(2, 1)
    rb = result ^ ndimage.binary_erosion(result, structure=fp, iterations=1)
    refb = reference ^ ndimage.binary_erosion(reference, structure=fp, iterations=1)
    return ndimage.distance_transform_edt(~refb, sampling=spacing)[rb]


def assd_hd95(a, b, spacing):
    if not a.any() and not b.any():
        return np.nan, np.nan
    if not a.any() or not b.any():
        return np.inf, np.inf
    d1, d2 = medpy_surface(a, b, spacing), medpy_surface(b, a, spacing)
    return np.mean((d1.mean(), d2.mean())), np.percentile(np.hstack((d1, d2)), 95)


# ---- set metrics (method-notes §7) ----
def pair(p, g, policy, kind):
    inter, np_, ng = np.sum(p & g), np.sum(p), np.sum(g)
    if ng == 0:
        if policy == "monai":
            return np.nan
        if np_ > 0:
            return 0.0
        return 1.0 if (policy == "p2sam" or kind == "iou") else 0.0
    return 2 * inter / (np_ + ng) if kind == "dice" else inter / (np_ + ng - inter)


def iou_sym(a, b):
    u = np.sum(a | b)
    return 1.0 if u == 0 else np.sum(a & b) / u


def set_metrics(hyp, ann, policy, replicate):
    n, m = len(hyp), len(ann)
    d = lambda A, B: np.mean([[1 - iou_sym(a, b) for b in B] for a in A])
    ged = 2 * d(hyp, ann) - d(hyp, hyp) - d(ann, ann)
    div = d(hyp, hyp)
    vote = np.round(np.mean(hyp.astype(float), axis=0)).astype(bool)  # numpy rounds 0.5 to 0
    davg_vals = [pair(vote, g, policy, "dice") for g in ann]
    davg = np.nanmean(davg_vals) if not np.all(np.isnan(davg_vals)) else np.nan
    if policy == "seqsam":
        with np.errstate(invalid="ignore"):
            per = [np.max([2 * np.sum(h & g) / (np.sum(h) + np.sum(g)) for g in ann]) for h in hyp]
        dmax = np.mean(per)
    else:
        per = [[pair(h, g, policy, "dice") for g in ann] for h in hyp]
        best = [np.nanmax(r) for r in per if not np.all(np.isnan(r))]
        dmax = np.mean(best) if best else np.nan
    allp = np.array([[pair(h, g, policy, "dice") for g in ann] for h in hyp])
    dmaxp = np.nanmax(allp) if not np.all(np.isnan(allp)) else np.nan
    refs = [ann[j % m] for j in range(n)] if (replicate and n > m) else list(ann)
    iou = np.array([[iou_sym(h, g) for g in refs] for h in hyp])
    r, c = optimize.linear_sum_assignment(1 - iou)
    hm = iou[r, c].mean()
    return [ged, div, davg, dmax, dmaxp, hm]


def normalise_labels(lab):
    out = np.zeros_like(lab)
    mapping = {}
    for v in lab.ravel():
        if v and v not in mapping:
            mapping[v] = len(mapping) + 1
    for k, v in mapping.items():
        out[lab == k] = v
    return out


def run(kind, v):
    if kind == "hungarian":
        r, c = int(v[0]), int(v[1])
        cost = np.array(v[2:2 + r * c]).reshape(r, c)
        ri, ci = optimize.linear_sum_assignment(cost)
        assign = -np.ones(r, np.int64)
        assign[ri] = ci
        return [cost[ri, ci].sum()] + list(assign)
    if kind == "label":
        h, w, conn = int(v[0]), int(v[1]), int(v[2])
        m = np.array(v[3:3 + h * w]).reshape(h, w) != 0
        lab, n = ndimage.label(m, structure=ndimage.generate_binary_structure(2, 1 if conn == 4 else 2))
        return [n] + list(normalise_labels(lab).ravel())
    if kind == "edt":
        h, w, sr, sc = int(v[0]), int(v[1]), v[2], v[3]
        seeds = np.array(v[4:4 + h * w]).reshape(h, w) != 0
        if not seeds.any():
            return [np.inf] * (h * w)
        return list(ndimage.distance_transform_edt(~seeds, sampling=(sr, sc)).ravel())
    if kind == "border":
        h, w, conn = int(v[0]), int(v[1]), int(v[2])
        m = np.array(v[3:3 + h * w]).reshape(h, w) != 0
        fp = ndimage.generate_binary_structure(2, 1 if conn == 4 else 2)
        return list((m ^ ndimage.binary_erosion(m, structure=fp)).astype(int).ravel())
    if kind == "nsd":
        h, w, sr, sc, tol = int(v[0]), int(v[1]), v[2], v[3], v[4]
        m, _ = masks(v[5:], 2, h, w)
        return [nsd(m[0], m[1], (sr, sc), tol)]
    if kind == "surf":
        h, w, sr, sc = int(v[0]), int(v[1]), v[2], v[3]
        m, _ = masks(v[4:], 2, h, w)
        return list(assd_hd95(m[0], m[1], (sr, sc)))
    if kind in ("wilcoxon", "pearson", "spearman"):
        n = int(v[0])
        x, y = np.array(v[1:1 + n]), np.array(v[1 + n:1 + 2 * n])
        if kind == "wilcoxon":
            res = stats.wilcoxon(x, y)
            return [res.statistic, res.pvalue]
        return [(stats.pearsonr if kind == "pearson" else stats.spearmanr)(x, y)[0]]
    if kind == "set":
        n, m, h, w, policy, rep = int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), int(v[5])
        hyp, rest = masks(v[6:], n, h, w)
        ann, _ = masks(rest, m, h, w)
        return set_metrics(hyp, ann, ["monai", "seqsam", "p2sam"][policy], rep)
    raise ValueError("unknown case kind " + kind)


def main():
    with open(sys.argv[1]) as f, open(sys.argv[2], "w") as out:
        for line in f:
            parts = line.split()
            res = run(parts[0], [float(x) for x in parts[1:]])
            out.write(" ".join(repr(float(x)) for x in res) + "\n")


if __name__ == "__main__":
    main()
