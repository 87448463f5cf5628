#!/usr/bin/env python3
"""PyTorch references for tests/engine/test_optim.c.

usage: ref_optim.py OUT.safetensors

Writes the initial parameters ("init.<name>"), a fixed sequence of gradients ("grad.<t>.<name>"),
and for every case the parameters and optimizer state after STEPS steps of torch.optim in f32
("<case>.param.<name>", "<case>.m.<name>", "<case>.v.<name>"), plus clip_grad_norm_ results.
The C test reads the inputs from this file, so both sides start from the same bits.
"""
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import save_safetensors  # noqa: E402

STEPS = 10
SHAPES = {"a.weight": (3, 4), "a.bias": (4,), "norm.weight": (5,), "head.weight": (2, 3)}


def inputs():
    g = torch.Generator().manual_seed(7)
    init = {n: torch.rand(s, generator=g) * 2 - 1 for n, s in SHAPES.items()}
    grads = [{n: torch.randn(s, generator=g) for n, s in SHAPES.items()} for _ in range(STEPS)]
    return init, grads


def cosine_warmup_lr(step, base=0.02, floor=0.002, warmup=3, total=STEPS):
    # Written independently of samx_lr_at: linear warm-up to base over `warmup` steps, then cosine.
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / (total - warmup))
    return floor + (base - floor) * 0.5 * (1 + math.cos(math.pi * t))


def run(init, grads, make_groups, make_opt, lr_at=None, clip=None):
    params = {n: torch.nn.Parameter(v.clone()) for n, v in init.items()}
    opt = make_opt(make_groups(params))
    for t in range(STEPS):
        for n, p in params.items():
            p.grad = grads[t][n].clone()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
        if lr_at is not None:
            for group in opt.param_groups:
                group["lr"] = lr_at(t) * group.get("lr_mult", 1.0)
        opt.step()
    out = {}
    for n, p in params.items():
        out[f"param.{n}"] = p.detach()
        st = opt.state[p]
        for key, short in (("exp_avg", "m"), ("exp_avg_sq", "v"), ("momentum_buffer", "m")):
            if st.get(key) is not None:
                out[f"{short}.{n}"] = st[key]
    return out


def single(params):
    return list(params.values())


def groups_with_exemptions(params):
    # The C test adds the "head." group first, then the 1-d group: the first match wins.
    head = [p for n, p in params.items() if n.startswith("head.")]
    one_d = [p for n, p in params.items() if not n.startswith("head.") and p.dim() <= 1]
    rest = [p for n, p in params.items() if not n.startswith("head.") and p.dim() > 1]
    return [{"params": rest}, {"params": head, "lr": 0.01 * 0.1, "weight_decay": 0.1},
            {"params": one_d, "weight_decay": 0.0}]


def cases():
    adamw = lambda lr, wd: (lambda groups: torch.optim.AdamW(groups, lr=lr, weight_decay=wd, foreach=False))
    adam = lambda lr, wd: (lambda groups: torch.optim.Adam(groups, lr=lr, weight_decay=wd, foreach=False))

    def sgd(lr, momentum, nesterov, wd, dampening=0.0):
        return lambda groups: torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=nesterov,
                                              weight_decay=wd, dampening=dampening, foreach=False)

    yield "adamw", dict(make_groups=single, make_opt=adamw(0.01, 0.05))
    yield "adamw_groups", dict(make_groups=groups_with_exemptions, make_opt=adamw(0.01, 0.05))
    yield "adamw_sched", dict(make_groups=single, make_opt=adamw(0.01, 0.05), lr_at=cosine_warmup_lr)
    yield "adamw_clip", dict(make_groups=single, make_opt=adamw(0.01, 0.05), clip=0.5)
    yield "adam", dict(make_groups=single, make_opt=adam(0.01, 0.01))
    yield "sgd_momentum", dict(make_groups=single, make_opt=sgd(0.05, 0.9, False, 0.01))
    yield "sgd_nesterov", dict(make_groups=single, make_opt=sgd(0.05, 0.9, True, 0.01))
    yield "sgd_plain", dict(make_groups=single, make_opt=sgd(0.05, 0.0, False, 0.0))
    yield "sgd_dampening", dict(make_groups=single, make_opt=sgd(0.05, 0.9, False, 0.01, dampening=0.3))


def main():
    out_path = sys.argv[1]
    init, grads = inputs()
    tensors = {f"init.{n}": v for n, v in init.items()}
    for t, g in enumerate(grads):
        tensors.update({f"grad.{t}.{n}": v for n, v in g.items()})
    for name, kw in cases():
        tensors.update({f"{name}.{k}": v for k, v in run(init, grads, **kw).items()})
    for name, max_norm in (("clip_active", 0.5), ("clip_inactive", 100.0)):
        params = {n: torch.nn.Parameter(v.clone()) for n, v in init.items()}
        for n, p in params.items():
            p.grad = grads[0][n].clone()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), max_norm)
        tensors[f"{name}.norm"] = norm.reshape(1).float()
        tensors.update({f"{name}.grad.{n}": p.grad for n, p in params.items()})
    save_safetensors(out_path, {k: v.detach().contiguous().float() for k, v in tensors.items()})
    print(f"wrote {len(tensors)} tensors to {out_path}")


if __name__ == "__main__":
    main()
