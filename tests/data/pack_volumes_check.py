"""samx pack volumes against nibabel + numpy/scipy (run by tests/data/test_pack_volumes.c).

Writes small NIfTI volumes with nibabel (anisotropic voxels, a tilted affine with a flipped axis,
int16 CT; float32 MR), packs them with samx, and recomputes every slice independently: world grid
from the affine's corners, inverse-affine sampling with scipy.ndimage.map_coordinates (order 1) for
the image and nearest voxel for labels, CT window / MR percentiles with numpy, radiological slice
orientation, centred pad/crop, empty slices dropped, cases whole within splits. Then bad inputs.
usage: pack_volumes_check.py SAMX_BIN DIR
"""
import os
import subprocess
import sys

import h5py
import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates

samx, root = sys.argv[1], sys.argv[2]
fails = 0


def check(ok, msg):
    global fails
    if not ok:
        fails += 1
        print("FAIL:", msg)
    else:
        print("ok:", msg)


def rot(ax, deg):
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    i, j = [(1, 2), (0, 2), (0, 1)][ax]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def phantom(shape, rng, scale):
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    img = scale * (0.3 + 0.4 * np.sin(3 * x + 1) * np.cos(2 * y) + 0.3 * z) + rng.normal(0, 0.05 * scale, shape)
    lab = np.zeros(shape, np.uint8)
    lab[(x - 0.1) ** 2 + y ** 2 + (z / 1.5) ** 2 < 0.3] = 1
    lab[(x + 0.4) ** 2 / 0.04 + (y - 0.3) ** 2 / 0.09 < 1] = 3
    lab[(x - 0.5) ** 2 + (y + 0.5) ** 2 < 0.02] = 7
    return img, lab


def write_case(folder, name, img, lab, aff, img_name=None):
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    os.makedirs(os.path.join(folder, "labels"), exist_ok=True)
    nib.save(nib.Nifti1Image(img, aff), os.path.join(folder, "images", img_name or name + "_0000.nii.gz"))
    nib.save(nib.Nifti1Image(lab, aff), os.path.join(folder, "labels", name + ".nii.gz"))


def oracle(path_img, path_lab, spacing, axis, window=None, pct=None, ids=None, size=None):
    im, lb = nib.load(path_img), nib.load(path_lab)
    data = np.asarray(im.get_fdata(), np.float64)
    labs = np.asarray(lb.dataobj).astype(np.int64)
    A = im.affine  # nibabel: sform if its code > 0 (what samx must read)
    n = np.array(data.shape)
    corners = np.array([[(c >> a & 1) * (n[a] - 1) for a in range(3)] for c in range(8)], float)
    w = corners @ A[:3, :3].T + A[:3, 3]
    lo, hi = w.min(0), w.max(0)
    dims = np.floor((hi - lo) / spacing + 1e-6).astype(int) + 1
    idx = np.meshgrid(*[np.arange(d) for d in dims], indexing="ij")
    pts = np.stack([lo[a] + spacing[a] * idx[a] for a in range(3)], -1)
    inv = np.linalg.inv(A)
    c = pts @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((c >= -1e-4) & (c <= n - 1 + 1e-4), -1)
    cc = np.clip(c, 0, n - 1)
    vi = map_coordinates(data, cc.reshape(-1, 3).T, order=1, mode="nearest").reshape(dims)
    vi = np.where(inside, vi, data.min())
    near = np.floor(cc + 0.5).astype(int)
    vl = np.where(inside, labs[near[..., 0], near[..., 1], near[..., 2]], 0)
    if window:
        a, b = window
    else:
        nz = data[data != 0]
        a, b = np.percentile(nz, pct[0]), np.percentile(nz, pct[1])
    vi = np.clip((vi - a) / (b - a), 0, 1)
    pad = float(np.clip((data.min() - a) / (b - a), 0, 1))
    if ids:
        m = np.zeros(256, np.int64)
        for k, i in enumerate(ids):
            m[i] = k + 1
        vl = m[vl]
    # radiological display: axial rows y (anterior up), cols x (right on the left); coronal rows z, cols x;
    # sagittal rows z, cols y (anterior on the left)
    ra, ca = (1 if axis == 2 else 2), (1 if axis == 0 else 0)
    out_i, out_l = [], []
    for at in range(dims[axis]):
        sl_i = np.take(vi, at, axis)
        sl_l = np.take(vl, at, axis)
        rest = [a for a in range(3) if a != axis]
        order = (rest.index(ra), rest.index(ca))
        sl_i = np.transpose(sl_i, order)[::-1, ::-1]
        sl_l = np.transpose(sl_l, order)[::-1, ::-1]
        if not sl_l.any():
            continue
        out_i.append(sl_i)
        out_l.append(sl_l)
    return out_i, out_l, pad, dims


def centre(a, h, w, pad):
    r, c = a.shape
    out = np.full((h, w), pad, a.dtype)
    r0 = (r - h) // 2 if r >= h else -((h - r) // 2)
    c0 = (c - w) // 2 if c >= w else -((w - c) // 2)
    for i in range(h):
        for j in range(w):
            if 0 <= i + r0 < r and 0 <= j + c0 < c:
                out[i, j] = a[i + r0, j + c0]
    return out


def run(*args):
    p = subprocess.run([samx, "pack", "volumes", *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


rng = np.random.default_rng(0)

# ---- CT: int16, anisotropic voxels, tilted affine with a flipped x axis (LPS-like storage), axial ----
ct = os.path.join(root, "ct")
cases_ct = []
for i in range(3):
    img, lab = phantom((18, 15, 7), rng, 1400)
    img = (img - 600).astype(np.int16)
    R = rot(0, 9 + 3 * i) @ rot(2, -14)
    aff = np.eye(4)
    aff[:3, :3] = R @ np.diag([-1.3, 1.1, 2.5])
    aff[:3, 3] = [10 * i, -5, 3]
    write_case(ct, "ct%d" % i, img, lab, aff)
    cases_ct.append("ct%d" % i)
out = os.path.join(root, "ct.h5")
rc, log = run("--images", ct + "/images", "--labels", ct + "/labels", "--axis", "axial", "--spacing", "1.0",
              "--window", "-500,1300", "--label-ids", "1=organ,3=bone,7=vessel", "--out", out, "--ratios", "1,1,1")
check(rc == 0, "pack CT volumes (%s)" % log.strip().splitlines()[-1])
f = h5py.File(out, "r")
names = [x.decode() if isinstance(x, bytes) else x for x in f["labels"].attrs["names"]]
check(names == ["background", "organ", "bone", "vessel"], "label names %s" % names)
H, W = f["images"].shape[1:]
row = 0
worst_i, bad_l, bad_m = 0.0, 0, 0
shapes = []
for case in cases_ct:
    oi, ol, pad, dims = oracle(os.path.join(ct, "images", case + "_0000.nii.gz"), os.path.join(ct, "labels", case + ".nii.gz"),
                               np.array([1.0, 1.0, 1.0]), 2, window=(-500, 1300), ids=[1, 3, 7])
    shapes.append((dims[1], dims[0]))
    for si, sl in zip(oi, ol):
        got_id = f["case_id"][row]
        got_id = got_id.decode() if isinstance(got_id, bytes) else got_id
        if got_id != case:
            bad_m += 1
        worst_i = max(worst_i, float(np.abs(f["images"][row] - centre(si, H, W, pad)).max()))
        want_l = centre(sl, H, W, 0)
        bad_l += int((f["labels"][row] != want_l).sum())
        bad_m += int((f["masks"][row, 0] != (want_l > 0)).sum())
        row += 1
check(row == f["images"].shape[0], "slice count %d (oracle) vs %d (file)" % (row, f["images"].shape[0]))
check((H, W) == (max(s[0] for s in shapes), max(s[1] for s in shapes)), "slice size %s = largest extent %s" % ((H, W), shapes))
check(worst_i < 2e-5, "CT images match numpy/scipy resampling + window (max |diff| %.3g)" % worst_i)
check(bad_l == 0, "CT labels match nearest-voxel resampling (%d pixels differ)" % bad_l)
check(bad_m == 0, "masks are the union of the selected classes, case ids in order (%d differences)" % bad_m)
check(np.allclose(f["spacing"][:], 1.0), "spacing recorded 1.0 mm")
split = f["split"][:]
ids = [x.decode() if isinstance(x, bytes) else x for x in f["case_id"][:]]
check(all(len({s for s, c in zip(split, ids) if c == k}) == 1 for k in set(ids)), "every case in one split")
check(len(set(split)) == 3, "three cases over three splits: %s" % sorted(set(split)))

# ---- MR: float32, percentiles, coronal, every id its own class, fixed size ----
mr = os.path.join(root, "mr")
img, lab = phantom((16, 12, 10), rng, 800)
img = np.maximum(img, 0).astype(np.float32)
img[:2] = 0  # background of zeros: percentiles are over nonzero voxels
aff = np.eye(4)
aff[:3, :3] = rot(1, 20) @ np.diag([0.9, 1.6, 1.2])
write_case(mr, "mr0", img, lab, aff, img_name="mr0.nii")
out = os.path.join(root, "mr.h5")
rc, log = run("--images", mr + "/images", "--labels", mr + "/labels", "--axis", "coronal", "--spacing", "1.1,0.8,1.3",
              "--percentile", "0.5,99.5", "--size", "20", "--modality", "MR", "--out", out)
check(rc == 0, "pack MR volume (%s)" % log.strip().splitlines()[-1])
f = h5py.File(out, "r")
oi, ol, pad, dims = oracle(os.path.join(mr, "images", "mr0.nii"), os.path.join(mr, "labels", "mr0.nii.gz"),
                           np.array([1.1, 0.8, 1.3]), 1, pct=(0.5, 99.5))
check(f["images"].shape == (len(oi), 20, 20), "MR shape %s vs %d slices of 20x20" % (f["images"].shape, len(oi)))
names = [x.decode() if isinstance(x, bytes) else x for x in f["labels"].attrs["names"]]
check(names[:2] == ["background", "label_1"] and len(names) == 8, "MR names without --label-ids: %s" % names)
if f["images"].shape[0] == len(oi):
    di = max(float(np.abs(f["images"][r] - centre(oi[r], 20, 20, pad)).max()) for r in range(len(oi)))
    dl = sum(int((f["labels"][r] != centre(ol[r], 20, 20, 0)).sum()) for r in range(len(oi)))
    check(di < 2e-5, "MR images match (percentiles, coronal, per-axis spacing, crop/pad): max |diff| %.3g" % di)
    check(dl == 0, "MR labels match (%d pixels differ)" % dl)
    check(np.allclose(f["spacing"][:], [1.3, 1.1]), "coronal slice spacing (z, x) = (1.3, 1.1): %s" % f["spacing"][0])

# ---- bad inputs: one clear error naming the file ----
bad = os.path.join(root, "bad_grid")
write_case(bad, "b0", img, lab[:, :, :-1], aff)
rc, log = run("--images", bad + "/images", "--labels", bad + "/labels", "--axis", "axial", "--spacing", "1", "--out",
              os.path.join(root, "x.h5"))
check(rc == 1 and "b0.nii.gz: label grid is 16x12x9" in log and not os.path.exists(os.path.join(root, "x.h5")),
      "label grid of other dimensions: %s" % log.strip())
bad = os.path.join(root, "bad_affine")
write_case(bad, "b1", img, lab, aff)
aff2 = aff.copy()
aff2[0, 3] += 2
nib.save(nib.Nifti1Image(lab, aff2), os.path.join(bad, "labels", "b1.nii.gz"))
rc, log = run("--images", bad + "/images", "--labels", bad + "/labels", "--axis", "axial", "--spacing", "1", "--out",
              os.path.join(root, "x.h5"))
check(rc == 1 and "b1.nii.gz: label affine differs" in log, "label affine that differs: %s" % log.strip())
bad = os.path.join(root, "bad_nan")
nan_img = img.copy()
nan_img[3, 4, 5] = np.nan
write_case(bad, "b2", nan_img, lab, aff)
rc, log = run("--images", bad + "/images", "--labels", bad + "/labels", "--axis", "axial", "--spacing", "1", "--out",
              os.path.join(root, "x.h5"))
check(rc == 1 and "b2_0000.nii.gz: holds NaN at voxel (3, 4, 5)" in log, "NaN voxel: %s" % log.strip())

print("%d failures" % fails)
sys.exit(1 if fails else 0)
