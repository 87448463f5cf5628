#!/usr/bin/env python3
"""Writes PyTorch reference tensors for an op family's parity test.

usage: torch_refs.py FAMILY_SCRIPT.py OUT.safetensors

FAMILY_SCRIPT defines cases() -> iterable of (name, fn, inputs, needs_grad) where fn maps input
tensors to one output tensor. For each case this writes <name>.in<i>, <name>.out and, when some
input needs a gradient, <name>.gout (a fixed random upstream gradient) and <name>.gin<i>.
"""
import importlib.util
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_io import save_safetensors  # noqa: E402


def main():
    script, out = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("family", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    tensors = {}
    for name, fn, inputs, needs_grad in mod.cases():
        xs = []
        for i, (x, g) in enumerate(zip(inputs, needs_grad)):
            x = x.detach().clone()
            tensors[f"{name}.in{i}"] = x
            xs.append(x.double().requires_grad_(bool(g)) if x.is_floating_point() else x)
        # Double precision: the reference is exact to far below the f32 tolerances.
        y = fn(*xs)
        tensors[f"{name}.out"] = y.detach().float()
        if any(needs_grad):
            gen = torch.Generator().manual_seed(len(tensors))
            gout = torch.rand(y.shape, generator=gen, dtype=torch.float64) * 2 - 1
            tensors[f"{name}.gout"] = gout.float()
            y.backward(gout.float().double())
            for i, (x, g) in enumerate(zip(xs, needs_grad)):
                if g:
                    tensors[f"{name}.gin{i}"] = x.grad.float()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_safetensors(out, {k: v.contiguous() for k, v in tensors.items()})
    print(f"wrote {len(tensors)} tensors to {out}")


if __name__ == "__main__":
    main()
