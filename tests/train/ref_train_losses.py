"""PyTorch / SciPy reference of the training losses (train/losses.h), for tests/train/test_train_losses.c.

usage: ref_train_losses.py IN.safetensors OUT.safetensors

For every case prefix P in IN:
  set loss (P.kind == 0): P.outs [M, B, 1, h, w], P.labels [B, K, h*w], P.valid [B*K] (U8),
      P.selected [B*M] (U8), P.identity [1] (I32), P.eps [1]
      -> P.loss [1], P.grad [M, B, 1, h, w]: SeqSAM's Hungarian-matched soft-Dice set loss, matching by
         scipy.optimize.linear_sum_assignment on the detached costs, computed in float64 by autograd.
  wta loss (P.kind == 1): P.logits [B, J, h, w], P.target [B, h*w], P.per_row [1] (I32), P.eps [1]
      -> P.loss [1], P.grad [B, J, h, w]: MCL's winner-takes-all Dice, mean over the batch.
"""
import os
import sys

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import load_safetensors, save_safetensors  # noqa: E402


def dice(logits, target, eps):
    """MONAI DiceLoss(sigmoid=True, squared_pred=True) over the last dim."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum(-1)
    den = (p * p).sum(-1) + (target * target).sum(-1)
    return 1.0 - (2.0 * inter + eps) / (den + eps)


def set_loss(t, P):
    outs = t[P + ".outs"].double().requires_grad_(True)
    labels = t[P + ".labels"].double()
    valid = t[P + ".valid"].numpy().astype(bool)
    selected = t[P + ".selected"].numpy().astype(bool)
    identity = int(t[P + ".identity"][0])
    eps = float(t[P + ".eps"][0])
    M, B = outs.shape[0], outs.shape[1]
    K = labels.shape[1]
    flat = outs.reshape(M, B, -1)
    loss = torch.zeros((), dtype=torch.float64)
    for b in range(B):
        rows = [i for i in range(M) if selected[b * M + i]]
        cols = [k for k in range(K) if valid[b * K + k]]
        if not rows or not cols:
            continue
        cost = torch.stack([dice(flat[i, b][None, :], labels[b, cols], eps) for i in rows])  # [rows, cols]
        if identity:
            pairs = [(r, r) for r in range(min(len(rows), len(cols)))]
        else:
            ri, ci = linear_sum_assignment(cost.detach().numpy())
            pairs = list(zip(ri, ci))
        for r, c in pairs:
            if labels[b, cols[c]].sum() > 0:  # the paper's label_mask: empty annotators do not count
                loss = loss + cost[r, c]
    loss = loss / K
    loss.backward()
    return {P + ".loss": loss.reshape(1).float(), P + ".grad": outs.grad.float()}


def wta_loss(t, P):
    logits = t[P + ".logits"].double().requires_grad_(True)
    target = t[P + ".target"].double()
    per_row = int(t[P + ".per_row"][0])
    eps = float(t[P + ".eps"][0])
    B, J, h, w = logits.shape
    tgt = target.reshape(B, 1, h, w).expand(B, J, h, w)
    if per_row:
        d = dice(logits, tgt, eps).mean(-1)  # rows of w pixels, averaged over the h rows
    else:
        d = dice(logits.reshape(B, J, -1), tgt.reshape(B, J, -1), eps)
    loss = d.min(dim=1).values.mean()
    loss.backward()
    return {P + ".loss": loss.reshape(1).float(), P + ".grad": logits.grad.float()}


def main():
    t, _ = load_safetensors(sys.argv[1])
    out = {}
    for name in sorted(k[: -len(".kind")] for k in t if k.endswith(".kind")):
        out.update(set_loss(t, name) if int(t[name + ".kind"][0]) == 0 else wta_loss(t, name))
    save_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
