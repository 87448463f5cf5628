#!/usr/bin/python3
"""Writes the libFuzzer dictionaries of tests/fuzz/dict/ (usage: make_dicts.py). Keys and names are
read from samx's sources (train/config.c's key table, eval/evaluate.c's metric table) so the
dictionaries follow them; the rest are the formats' own tokens."""
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def esc(b):
    return "".join(chr(c) if 32 <= c < 127 and chr(c) not in '"\\' else "\\x%02x" % c for c in b)


def write(name, tokens):
    os.makedirs(os.path.join(HERE, "dict"), exist_ok=True)
    seen, lines = set(), []
    for t in tokens:
        b = t.encode("latin1") if isinstance(t, str) else t
        if b and b not in seen:
            seen.add(b)
            lines.append('"%s"' % esc(b))
    with open(os.path.join(HERE, "dict", name + ".dict"), "w") as f:
        f.write("# libFuzzer dictionary for fuzz_%s (written by tests/fuzz/make_dicts.py)\n" % name)
        f.write("\n".join(lines) + "\n")


def src(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


# pickle: protocol opcodes and the globals the restricted unpickler knows
opcodes = [b"\x80\x02", b"\x80\x04", b"\x80\x05", b"\x95", b"(", b")", b".", b"0", b"1", b"2", b"K", b"M", b"J",
           b"\x8a", b"\x8b", b"G", b"N", b"\x88", b"\x89", b"X", b"\x8c", b"\x8d", b"\x8e", b"B", b"C", b"T", b"U",
           b"\x8f", b"\x90", b"\x91", b"\x92", b"\x93", b"\x94", b"]", b"}", b"e", b"a", b"s", b"u", b"t", b"\x85",
           b"\x86", b"\x87", b"q", b"r", b"h", b"j", b"p", b"g", b"c", b"R", b"b", b"Q", b"P", b"\x81", b"\x82"]
globals_ = ["collections\nOrderedDict\n", "torch._utils\n_rebuild_tensor_v2\n", "torch._utils\n_rebuild_parameter\n",
            "torch\nFloatStorage\n", "torch\nHalfStorage\n", "torch\nBFloat16Storage\n", "torch\nLongStorage\n",
            "torch\nByteStorage\n", "torch\n_utils\n", "numpy.core.multiarray\n_reconstruct\n", "numpy\nndarray\n",
            "numpy\ndtype\n", "_codecs\nencode\n", "builtins\nset\n", "storage", "cpu", "latin1", "f4", "<f4", ">f8",
            "u1", "b1", "i8", "model", "state_dict", "image", "masks", "series_uid", "os\nsystem\n"]
write("pickle", opcodes + globals_)
write("lidc_pickle", opcodes + globals_)
write("torch", opcodes + globals_ + ["PK\x03\x04", "PK\x01\x02", "PK\x05\x06", "archive/data.pkl", "archive/data/0",
                                      "archive/byteorder", "little", "big", "archive/version"])

# safetensors: header JSON and SAM tensor names (samx's and Hugging Face's)
names = re.findall(r'"((?:image_encoder|prompt_encoder|mask_decoder|vision_encoder|shared_image_embedding)[a-z_.0-9]*)"',
                   src("models/sam/sam_model.c"))
write("safetensors", ['"dtype"', '"shape"', '"data_offsets"', '"__metadata__"', '"F32"', '"F16"', '"BF16"', '"I64"',
                      '"I32"', '"U8"', '"F64"', '"BOOL"', '"format"', '"samx-checkpoint"', "[0,0]", "[", "]", "{", "}",
                      ":", ","] + names + [".weight", ".bias", ".rel_pos_h", ".rel_pos_w", "pos_embed"])

# eval JSON for samx compare
metrics = re.findall(r'\{"([a-z_0-9]+)", "', src("eval/evaluate.c"))
write("compare", ['"metrics"', '"per_sample"', '"method"', '"index"', '"mean"', '"std"', "null", "true", "1e308", "-0",
                  "NaN"] + ['"%s"' % m for m in metrics])

# INI config: every section and key of the table
keys = re.findall(r'[A-Z]+\("([a-z_]+)", "([a-z_0-9]+)"', src("train/config.c"))
write("config", ["[%s]" % s for s, _ in keys] + ["%s = " % k for _, k in keys] + ["%s.%s=" % (s, k) for s, k in keys]
      + ["\x00", "\n", "=", ";", "#", "yes", "no", "true", "1e-4", "-1", "9223372036854775807"])

# HDF5 files: signatures, object headers and samx's schema names
h5 = [b"\x89HDF\r\n\x1a\n", "TREE", "HEAP", "SNOD", "GCOL", "OHDR", "OCHK", "FRHP", "FSHD", "BTHD", "BTLF", "FHDB",
      "FHIB", "schema", "version", "split", "created_by", "checkpoint", "dataset", "method", "dtype", "window",
      "value_range", "source", "modality", "model_config", "input_size", "f32", "f16", "bf16", "all", "test", "train",
      "val"]
write("data_check", h5 + ["samx-dataset", "samx-predictions", "images", "masks", "annotator_valid", "case_id", "spacing",
                          "pred_masks", "index", "pred_scores", "quality"])
write("embed_cache", h5 + ["samx-embeddings", "embeddings", "index", "image_info"])

# images and volumes
write("image", [b"\x89PNG\r\n\x1a\n", "IHDR", "IDAT", "IEND", "PLTE", "tRNS", "gAMA", "sBIT", "II*\x00", "MM\x00*",
                b"\x00\x01", b"\x01\x00\x03\x00", b"\x02\x01", b"\x53\x01", b"\xff\xd8", b"\xff\xc0", b"\xff\xc2",
                b"\xff\xc4", b"\xff\xda", b"\xff\xdb", b"\xff\xdd", b"\xff\xd9", b"\xff\xe0", b"\xff\xe2"])
write("nifti", [b"n+1\x00", b"ni1\x00", b"n+2\x00\r\n\x1a\n", b"\x5c\x01\x00\x00", b"\x1c\x02\x00\x00",
                b"\x02\x00", b"\x04\x00", b"\x08\x00", b"\x10\x00", b"\x40\x00", b"\x00\x01", b"\x00\x02", b"\x00\x00\xb0\x43"])
