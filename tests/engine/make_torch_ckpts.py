#!/usr/bin/env python3
"""Writes torch.save checkpoints (good and hostile) for test_torch_ckpt.c into DIR.

good:    plain.pth (f32/f16/bf16/i64, a view with a storage offset, a transposed view, a Parameter,
         two tensors sharing one storage), nested_model.pth, nested_state_dict.pth
         and expected.safetensors with the contiguous values samx must produce.
hostile: evil_global.pth (a pickle that would call os.system), truncated.pth, short_storage.pth
         (storage file shorter than declared), offset_oob.pth (a view reaching past its storage),
         not_a_dict.pth (a list), non_tensor.pth (a state dict with an int entry).
"""
import collections
import io
import os
import pickle
import sys
import zipfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import save_safetensors  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
g = torch.Generator().manual_seed(0)
base = torch.randn(5, 4, generator=g)
sd = collections.OrderedDict()
sd["enc.w"] = torch.randn(2, 3, generator=g)
sd["enc.half"] = torch.randn(4, generator=g).half()
sd["enc.bf16"] = torch.randn(2, 2, generator=g).bfloat16()
sd["enc.offset_view"] = base[2:]  # storage offset 8
sd["enc.transposed"] = base.t()  # strides (1, 4)
sd["enc.shared"] = base  # same storage as the two views
sd["dec.param"] = torch.nn.Parameter(torch.randn(3, generator=g))
sd["dec.steps"] = torch.arange(6, dtype=torch.int64).reshape(2, 3)
torch.save(sd, os.path.join(out, "plain.pth"))
torch.save({"model": sd, "epoch": 3}, os.path.join(out, "nested_model.pth"))
torch.save({"state_dict": sd, "optimizer": {"lr": 0.1}}, os.path.join(out, "nested_state_dict.pth"))
save_safetensors(os.path.join(out, "expected.safetensors"),
                 {k: v.detach().contiguous() for k, v in sd.items()})


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > " + os.path.join(out, "PWNED"),))


torch.save({"w": torch.zeros(1), "x": Evil()}, os.path.join(out, "evil_global.pth"))

raw = open(os.path.join(out, "plain.pth"), "rb").read()
open(os.path.join(out, "truncated.pth"), "wb").write(raw[: len(raw) // 2])


def rewrite(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item.filename, edit(item.filename, data))


torch.save({"w": torch.randn(16, generator=g)}, os.path.join(out, "one.pth"))
rewrite(os.path.join(out, "one.pth"), os.path.join(out, "short_storage.pth"),
        lambda name, data: data[:20] if name.endswith("/data/0") else data)


# A pickle naming a 4-element storage but a view starting at element 10.
class StorageRef:
    pass


class BadView:
    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, (StorageRef(), 10, (2,), (1,), False, collections.OrderedDict()))


class RefPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", torch.FloatStorage, "0", "cpu", 4)
        return None


def write_archive(path, obj, storage_bytes):
    buf = io.BytesIO()
    RefPickler(buf, protocol=2).dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/data/0", storage_bytes)


write_archive(os.path.join(out, "offset_oob.pth"), {"w": BadView()}, bytes(16))
torch.save([torch.zeros(2)], os.path.join(out, "not_a_dict.pth"))
torch.save({"w": torch.zeros(2), "step": 7}, os.path.join(out, "non_tensor.pth"))
print("wrote checkpoints to", out)
