"""Checks with h5py (independently of samx's HDF5 code) that files written by samx follow
docs/contracts.md §3 (datasets) and §4 (predictions), and the embedding cache schema of
data/embed_cache.h. Run by tests/data/test_contract_h5py.c, which writes the files and a JSON file of
what it wrote (sizes, sums, case ids); usage: test_contract_h5py.py EXPECT.json.
Prints one line per problem and exits 1 when there is any."""
import json
import sys

import h5py
import numpy as np

problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
    return cond


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def check_root(f, path, schema, names):
    a = f.attrs
    check(text(a.get("schema", "")) == schema, f"{path}: schema attribute {a.get('schema')!r}, want {schema!r}")
    check("version" in a and int(np.asarray(a["version"]).reshape(-1)[0]) == 1, f"{path}: version is not 1")
    for n in names:
        check(n in a, f"{path}: root attribute {n} is missing")


def check_per_sample_chunks(d, path, name, compressed):
    check(d.chunks is not None and d.chunks[0] == 1 and tuple(d.chunks[1:]) == d.shape[1:],
          f"{path}: {name} chunks {d.chunks}, want one sample per chunk (1, {d.shape[1:]})")
    if compressed:
        check(d.compression == "gzip", f"{path}: {name} compression {d.compression}, want gzip")


def check_dataset(path, e):
    with h5py.File(path, "r") as f:
        check_root(f, path, "samx-dataset", ["source", "modality", "created_by"])
        for name in ["images", "masks", "annotator_valid", "split", "case_id", "spacing"]:
            if not check(name in f, f"{path}: /{name} is missing"):
                return
        n, h, w, k = e["n"], e["h"], e["w"], e["k"]
        img, masks = f["images"], f["masks"]
        want_img_shape = (n, h, w) if e["channels"] == 1 else (n, h, w, 3)
        check(img.shape == want_img_shape, f"{path}: /images shape {img.shape}, want {want_img_shape}")
        want_dtype = np.uint8 if e["dtype"] == "uint8" else np.float32
        check(img.dtype == want_dtype, f"{path}: /images dtype {img.dtype}, want {e['dtype']}")
        if img.dtype == np.float32:
            check("window" in img.attrs or "value_range" in img.attrs,
                  f"{path}: float /images carries neither window nor value_range")
        check(masks.shape == (n, k, h, w) and masks.dtype == np.uint8,
              f"{path}: /masks {masks.shape} {masks.dtype}, want {(n, k, h, w)} uint8")
        for name in ["images", "masks"]:
            check_per_sample_chunks(f[name], path, "/" + name, True)
        m = masks[...]
        check(np.isin(m, [0, 1]).all(), f"{path}: /masks holds values other than 0/1")
        check(int(m.sum()) == e["mask_sum"], f"{path}: /masks sums to {int(m.sum())}, samx wrote {e['mask_sum']}")
        im = img[...].astype(np.float64)
        check(abs(im.sum() - e["image_sum"]) <= 1e-6 * max(1.0, abs(e["image_sum"])),
              f"{path}: /images sums to {im.sum()}, samx wrote {e['image_sum']}")
        v = f["annotator_valid"]
        check(v.shape == (n, k) and v.dtype == np.uint8, f"{path}: /annotator_valid {v.shape} {v.dtype}")
        vv = v[...]
        check(np.isin(vv, [0, 1]).all(), f"{path}: /annotator_valid holds values other than 0/1")
        check(not m[vv == 0].any(), f"{path}: a mask of an annotator marked not valid is not empty")
        s = f["split"]
        check(s.shape == (n,) and s.dtype == np.uint8 and np.isin(s[...], [0, 1, 2]).all(),
              f"{path}: /split {s.shape} {s.dtype} must be uint8 [N] in {{0, 1, 2}}")
        c = f["case_id"]
        sinfo = h5py.check_string_dtype(c.dtype)
        check(c.shape == (n,) and sinfo is not None and sinfo.length is None and sinfo.encoding == "utf-8",
              f"{path}: /case_id {c.shape} {c.dtype}: want variable-length UTF-8 strings [N]")
        ids = [text(x) for x in c[...]]
        check(ids == e["case_ids"], f"{path}: /case_id {ids[:4]}..., samx wrote {e['case_ids'][:4]}...")
        split_of = {}
        for cid, sp in zip(ids, s[...]):
            check(split_of.setdefault(cid, sp) == sp, f"{path}: case {cid} is in two splits")
        sp = f["spacing"]
        check(sp.shape == (n, 2) and sp.dtype == np.float32 and (sp[...] > 0).all(),
              f"{path}: /spacing {sp.shape} {sp.dtype} must be positive float32 [N, 2]")


def check_predictions(path, e):
    with h5py.File(path, "r") as f:
        check_root(f, path, "samx-predictions", ["method", "checkpoint", "dataset", "split"])
        for name in ["checkpoint", "dataset"]:
            v = f.attrs.get(name)
            check(v is not None and len(v) == 2, f"{path}: attribute {name} must be [path, sha256]")
        check(text(f.attrs.get("checkpoint", ["", ""])[1]) == e["checkpoint_sha256"], f"{path}: checkpoint sha256")
        n, m, h, w = e["n"], e["m"], e["h"], e["w"]
        idx = f["index"]
        check(idx.shape == (n,) and idx.dtype == np.int64, f"{path}: /index {idx.shape} {idx.dtype}, want int64 [{n}]")
        check(list(idx[...]) == e["index"], f"{path}: /index {list(idx[...])}, samx wrote {e['index']}")
        pm = f["pred_masks"]
        check(pm.shape == (n, m, h, w) and pm.dtype == np.uint8, f"{path}: /pred_masks {pm.shape} {pm.dtype}")
        check(np.isin(pm[...], [0, 1]).all(), f"{path}: /pred_masks holds values other than 0/1")
        check(int(pm[...].sum()) == e["mask_sum"], f"{path}: /pred_masks sum {int(pm[...].sum())}, want {e['mask_sum']}")
        ps = f["pred_scores"]
        check(ps.shape == (n, m) and ps.dtype == np.float32, f"{path}: /pred_scores {ps.shape} {ps.dtype}")
        check(np.allclose(ps[...].reshape(-1), e["scores"], rtol=0, atol=0), f"{path}: /pred_scores values")
        q = f["quality"]
        check(q.shape == (n,) and q.dtype == np.float32, f"{path}: /quality {q.shape} {q.dtype}")


def check_embeddings(path, e):
    with h5py.File(path, "r") as f:
        check_root(f, path, "samx-embeddings",
                   ["dtype", "checkpoint", "dataset", "model_config", "input_size", "split", "created_by"])
        json.loads(text(f.attrs["model_config"]))
        emb = f["embeddings"]
        n, c, h, w = e["n"], e["c"], e["h"], e["w"]
        check(emb.shape == (n, c, h, w), f"{path}: /embeddings shape {emb.shape}")
        stored = emb.id.get_type()  # h5py shows bfloat16 as float32 (numpy has no bfloat16): ask HDF5
        check(isinstance(stored, h5py.h5t.TypeFloatID) and stored.get_size() == (4 if e["dtype"] == "f32" else 2),
              f"{path}: /embeddings is stored as {stored.get_size()}-byte {type(stored).__name__} for {e['dtype']}")
        if e["dtype"] != "f32":
            want_fields = (15, 10, 5, 0, 10) if e["dtype"] == "f16" else (15, 7, 8, 0, 7)
            check(stored.get_fields() == want_fields and stored.get_ebias() == (15 if e["dtype"] == "f16" else 127),
                  f"{path}: /embeddings bit fields {stored.get_fields()} are not IEEE {e['dtype']}")
        check_per_sample_chunks(emb, path, "/embeddings", False)
        check(list(f["index"][...]) == e["index"] and f["index"].dtype == np.int64, f"{path}: /index")
        check(f["image_info"].shape == (n, 4) and f["image_info"].dtype == np.int64, f"{path}: /image_info")
        # HDF5 converts the 16-bit floats on read: the values must be samx's within their rounding.
        got = emb[...].astype(np.float64).reshape(-1)
        want = np.array(e["values"], dtype=np.float64)
        tol = {"f32": 0, "f16": 1.0 / 2048, "bf16": 1.0 / 256}[e["dtype"]]
        check(np.all(np.abs(got - want) <= tol * np.abs(want)), f"{path}: /embeddings values differ from samx's")


def main():
    with open(sys.argv[1]) as fh:
        expect = json.load(fh)
    for d in expect["datasets"]:
        check_dataset(d["path"], d)
    for p in expect["predictions"]:
        check_predictions(p["path"], p)
    for e in expect["embeddings"]:
        check_embeddings(e["path"], e)
    for p in problems:
        print("FAIL", p)
    print(f"h5py {h5py.__version__}: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
