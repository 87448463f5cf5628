"""Fixtures for test_packers_medical: data_lidc.pickle look-alikes and hostile pickles.

usage: make_lidc_pickles.py OUTDIR
Values follow formulas that the C test recomputes (record r, row i, column j, H = 6, W = 5):
  image[i, j]    = ((r * 31 + i * 7 + j * 3) % 17) / 16            (float32; record 1 stored big-endian)
  masks[k][i, j] = 1 if (i + j + r + k) % 3 == 0 else 0            (k = 0..3; uint8, bool, float64, Fortran int64)
  series_uid     = "uid-%d" % (r // 2)
"""
import os
import pickle
import sys

import numpy as np

H, W, R, K = 6, 5, 5, 4


def record(r):
    i, j = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    image = (((r * 31 + i * 7 + j * 3) % 17) / 16).astype(">f4" if r == 1 else "<f4")
    masks = []
    for k in range(K):
        m = (i + j + r + k) % 3 == 0
        kinds = [m.astype(np.uint8), m, m.astype(np.float64), np.asfortranarray(m.astype(np.int64))]
        masks.append(kinds[k])
    return {"image": image, "masks": masks, "series_uid": "uid-%d" % (r // 2)}


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def main():
    out = sys.argv[1]
    data = {"LIDC-slice-%d" % r: record(r) for r in range(R)}
    for proto in (2, 3, 4):
        with open(os.path.join(out, "lidc_p%d.pickle" % proto), "wb") as f:
            pickle.dump(data, f, protocol=proto)
    good = pickle.dumps(data, protocol=4)
    with open(os.path.join(out, "truncated.pickle"), "wb") as f:
        f.write(good[: len(good) * 2 // 3])
    with open(os.path.join(out, "evil.pickle"), "wb") as f:
        pickle.dump({"a": Evil()}, f, protocol=2)
    bad = {"a": record(0)}
    bad["a"]["masks"][2] = bad["a"]["masks"][2] * 2  # values 0 and 2
    with open(os.path.join(out, "mask2.pickle"), "wb") as f:
        pickle.dump(bad, f, protocol=3)
    nan = {"a": record(0)}
    nan["a"]["image"][2, 3] = np.nan
    with open(os.path.join(out, "nan.pickle"), "wb") as f:
        pickle.dump(nan, f, protocol=3)
    fewer = {"a": record(0), "b": record(1)}
    fewer["b"]["masks"] = fewer["b"]["masks"][:3]
    with open(os.path.join(out, "fewer.pickle"), "wb") as f:
        pickle.dump(fewer, f, protocol=4)


if __name__ == "__main__":
    main()
