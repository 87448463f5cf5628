#!/usr/bin/python3
"""Seed inputs written with Debian's python3 (torch, numpy): usage make_corpus.py CORPUS_DIR SEEDS_DIR

SEEDS_DIR holds what fuzz_make_seeds wrote with samx's own writers (its micro SAM is converted here
to .pth and to Hugging Face names). Also runs the hostile-fixture scripts of the test suite
(tests/engine/make_torch_ckpts.py, tests/data/make_lidc_pickles.py) and writes the known-issue inputs
named in tests/fuzz/known_issues.txt. Deterministic: rerunning gives the same files.
"""
import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, TESTS)
from st_io import load_safetensors, save_safetensors  # noqa: E402

corpus, seeds = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy_dir(src, target):
    for name in sorted(os.listdir(src)):
        with open(os.path.join(src, name), "rb") as f:
            put(target, name, f.read())


# ---- samx's own writers (fuzz_make_seeds) ----
for target in ("data_check", "embed_cache", "nifti", "image", "safetensors"):
    copy_dir(os.path.join(seeds, target), target)

# ---- checkpoints: micro SAM as .pth (original names, nested), as HF-named safetensors ----
sam, _ = load_safetensors(os.path.join(seeds, "safetensors", "micro_sam.safetensors"))


def torch_bytes(obj):
    b = io.BytesIO()
    torch.save(obj, b)
    return b.getvalue()


put("torch", "micro_sam.pth", torch_bytes(sam))
put("torch", "micro_sam_nested.pth", torch_bytes({"model": sam, "epoch": 1}))
# training-checkpoint forms (as P2SAM's and other SAM fine-tuning repositories save them): the state
# dict beside the optimizer state, an epoch and a config dict; and a whole nn.Module (refused).
opt = torch.optim.AdamW([torch.nn.Parameter(torch.ones(2, 2))])
put("torch", "train_ckpt_state_dict.pth", torch_bytes({"state_dict": {k: v for k, v in list(sam.items())[:6]},
                                                       "optimizer": opt.state_dict(), "epoch": 7,
                                                       "config": {"lr": 1e-4, "arch": "vit_b", "prompts": [1, 2]}}))
put("torch", "whole_module.pth", torch_bytes(torch.nn.Linear(2, 2)))

HF = [  # segment_anything prefix -> transformers SamModel prefix (inverse of hf_to_sam in sam_model.c)
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."), ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."), ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    ("image_encoder.blocks.", "vision_encoder.layers."), ("image_encoder.", "vision_encoder."),
    ("prompt_encoder.pe_layer.positional_encoding_gaussian_matrix", "shared_image_embedding.positional_embedding"),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("prompt_encoder.point_embeddings.", "prompt_encoder.point_embed."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
]


def to_hf(name):
    for a, b in HF:
        if name.startswith(a):
            name = b + name[len(a):]
            break
    for k in "1234":
        name = name.replace(".norm%s." % k, ".layer_norm%s." % k)
    if "output_hypernetworks_mlps." in name or "iou_prediction_head." in name:
        head, _, rest = name.partition(".layers.")
        if rest:
            i, _, tail = rest.partition(".")
            last = 2 if "output_hypernetworks_mlps." in name else max(
                int(k.partition(".layers.")[2].split(".")[0]) for k in sam if k.startswith(head + ".layers."))
            i = int(i)
            name = "%s.%s.%s" % (head, "proj_in" if i == 0 else "proj_out" if i == last else "layers.%d" % (i - 1), tail)
    return name


# shapes that made sam_load divide by zero (regression inputs): a zero-width rel_pos table, and no
# rel_pos tables with an encoder narrower than one 64-wide head
d = tempfile.mkdtemp()
relpos = [k for k in sam if k.endswith("attn.rel_pos_h")][0]
for name, edited in (("regress-sam-relpos-width-zero", dict(sam, **{relpos: torch.zeros(sam[relpos].shape[0], 0)})),
                     ("regress-sam-no-relpos-narrow", {k: v for k, v in sam.items() if "rel_pos" not in k})):
    save_safetensors(os.path.join(d, "r.safetensors"), edited)
    with open(os.path.join(d, "r.safetensors"), "rb") as f:
        put("safetensors", name + ".safetensors", f.read())
hf = {to_hf(k): v for k, v in sam.items()}
save_safetensors(os.path.join(d, "hf.safetensors"), hf)
with open(os.path.join(d, "hf.safetensors"), "rb") as f:
    put("safetensors", "micro_sam_hf.safetensors", f.read())

# ---- the test suite's checkpoint fixtures (good and hostile), and their pickles ----
tmp = tempfile.mkdtemp()
subprocess.check_call([sys.executable, os.path.join(TESTS, "engine", "make_torch_ckpts.py"), tmp])
for name in sorted(os.listdir(tmp)):
    with open(os.path.join(tmp, name), "rb") as f:
        data = f.read()
    if name.endswith(".pth"):
        put("torch", name, data)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for m in z.namelist():
                    if m.endswith("data.pkl"):
                        put("pickle", "torch_" + name[:-4] + ".pkl", z.read(m))
        except zipfile.BadZipFile:
            pass
    elif name.endswith(".safetensors"):
        put("safetensors", "torch_ckpts_" + name, data)

# known issue pth-zip-crc: a member's bytes changed after the CRC was written (loads silently)
with open(os.path.join(tmp, "plain.pth"), "rb") as f:
    data = bytearray(f.read())
with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
    info = next(i for i in z.infolist() if "/data/" in i.filename)
    off = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
data[off] ^= 0x5A
put("torch", "known-pth-zip-crc.pth", bytes(data))

tmp = tempfile.mkdtemp()
subprocess.check_call([sys.executable, os.path.join(TESTS, "data", "make_lidc_pickles.py"), tmp])
for name in sorted(os.listdir(tmp)):
    with open(os.path.join(tmp, name), "rb") as f:
        data = f.read()
    put("lidc_pickle", name, data)
    put("pickle", "lidc_" + name, data)

# ---- pickles of every kind the unpickler knows, at protocols 2..5 ----
values = {
    "scalars": {"i": 1, "big": 2 ** 70, "neg": -300, "f": 1.5, "s": "text", "b": b"\x00\x01", "t": True, "n": None},
    "nested": [(1, 2), [3, [4, {"k": (5,)}]], {"a": [], "b": ()}],
    "arrays": {str(dt): (np.arange(6) % 2).astype(dt).reshape(2, 3) for dt in ("f4", "f8", ">f4", "i8", "u1", "?", "i2")},
    "fortran": np.asfortranarray(np.arange(12, dtype="i8").reshape(3, 4)),
    "shared": [[1, 2]] * 3,
}
for proto in (2, 3, 4, 5):
    for name, v in values.items():
        put("pickle", "%s_p%d.pkl" % (name, proto), pickle.dumps(v, protocol=proto))
put("pickle", "torch_state_dict.pkl", zipfile.ZipFile(io.BytesIO(torch_bytes({"w": torch.ones(2, 3)}))).read("archive/data.pkl"))

# ---- safetensors: valid and the hostile headers of tests/engine/test_safetensors.c ----
def st(header, data=b""):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "two.safetensors", st('{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                          '"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[8,12]}}', bytes(12)))
for i, h in enumerate([
    '{"w":{"dtype":"F32","shape":[1],"data_offsets":[400,404]}}',
    '{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}',
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}',
    '{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}',
    '{"w": {dtype: F32}}',
    '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
    '{"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}',
    '{"w":{"dtype":"U8","shape":[-1,2],"data_offsets":[0,2]}}',
    '{"w":{"dtype":"U8","shape":[1]}}',
    '{"__metadata__":{"k":3}}',
    '{"w":{"dtype":"F16","shape":[4294967296,4294967296],"data_offsets":[0,2]}}',
]):
    put("safetensors", "hostile_%02d.safetensors" % i, st(h, bytes(16)))
put("safetensors", "hostile_header_len.safetensors", struct.pack("<Q", 1 << 62) + b"{}")

# ---- images the C writers cannot make: 16-bit and float TIFF, the known-issue PNGs ----
def png(w, h, depth, colour, raw):
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


put("image", "known-resize-zero-side-2000x1.png", png(2000, 1, 8, 0, b"\x00" + bytes(range(256)) * 7 + bytes(208)))
put("image", "known-png-huge-alloc-20000x20000.png", png(20000, 20000, 16, 2, b"\x00" * 64))  # 2.4 GB of rows
put("image", "palette_1bit.png", png(8, 2, 1, 0, b"\x00\xa5\x00\x5a"))


def tiff(w, h, bits, fmt, spp, data, photometric=1):
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, bits), (259, 3, 1, 1), (262, 3, 1, photometric),
               (273, 4, 1, 8), (277, 3, 1, spp), (278, 3, 1, h), (279, 4, 1, len(data)), (339, 3, 1, fmt)]
    ifd = 8 + len(data)
    out = b"II*\x00" + struct.pack("<I", ifd) + data + struct.pack("<H", len(entries))
    for tag, typ, cnt, val in entries:
        out += struct.pack("<HHI", tag, typ, cnt) + (struct.pack("<HH", val, 0) if typ == 3 else struct.pack("<I", val))
    return out + struct.pack("<I", 0)


put("image", "grey16.tif", tiff(4, 3, 16, 1, 1, np.arange(12, dtype="<u2").tobytes() * 1))
put("image", "float32.tif", tiff(4, 3, 32, 3, 1, (np.arange(12, dtype="<f4") - 5.5).tobytes()))
put("image", "float64.tif", tiff(3, 2, 64, 3, 1, np.linspace(-1, 1, 6).astype("<f8").tobytes()))
put("image", "int16_min_is_white.tif", tiff(3, 2, 16, 2, 1, np.array([-3, 0, 5, 7, -9, 2], "<i2").tobytes(), 0))

# ---- INI configs: the shipped ones, and overrides after a NUL byte ----
cfg_dir = os.path.join(os.path.dirname(TESTS), "configs")
for name in sorted(os.listdir(cfg_dir)):
    with open(os.path.join(cfg_dir, name), "rb") as f:
        put("config", name, f.read())
put("config", "sets.in", b"[run]\nseed = 3\n\x00optim.lr=1e-4\nmethod.method=mcl\ntrain.steps=10\nmodel.arch=tiny\n")
put("config", "bad_key.ini", b"[run]\nnot_a_key = 1\n")
put("config", "bad_value.ini", b"[optim]\nlr = fast\n")

# ---- eval JSON for samx compare ----
def eval_json(method, vals):
    per = [{"index": i, "dice": v, "ged": None if v is None else 1 - v} for i, v in enumerate(vals)]
    good = [v for v in vals if v is not None]
    mean = sum(good) / len(good)
    return json.dumps({"method": method, "metrics": {"dice": {"mean": mean, "std": 0.1}, "ged": {"mean": 1 - mean}},
                       "per_sample": per}).encode()


put("compare", "eval_a.json", eval_json("sam-ft", [0.5, 0.6, None, 0.8]))
put("compare", "eval_b.json", eval_json("mcl", [0.55, 0.1, 0.9]))
put("compare", "known-compare-bad-second-file.json", b'{"not": "an eval file"}')
