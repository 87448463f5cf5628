#!/usr/bin/env python3
"""The same work as `samx bench` in PyTorch, timed the same way (median of --reps after one warm-up).

usage: torch_bench.py MODE --device cpu|cuda:N --reps R --threads T --specs FILE
Reads one spec per line (written by samx) and prints one line per spec: milliseconds.
"""
import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F


def build(spec, dev):
    f = spec.split()
    kind, p = f[0], [int(x) for x in f[1:]]
    r = lambda *s: torch.rand(*s, device=dev) - 0.5  # noqa: E731
    if kind == "gemm":
        m, n, k = p
        a, b = r(m, k), r(n, k)
        return lambda: torch.matmul(a, b.t())
    if kind == "attention":
        b, h, t, d, side = p
        q, k, v = r(b, h, t, d), r(b, h, t, d), r(b, h, t, d)
        rh, rw = r(b, h, t, side), r(b, h, t, side)

        def att():
            # SAM's reference path: materialised logits + decomposed rel-pos + softmax.
            logits = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)
            logits = (logits.view(b, h, t, side, side) + rh[..., :, None] + rw[..., None, :]).view(b, h, t, t)
            return logits.softmax(-1) @ v
        return att
    if kind == "layernorm":
        n, c = p
        x, w, bb = r(n, c), r(c), r(c)
        return lambda: F.layer_norm(x, (c,), w, bb, 1e-6)
    if kind in ("conv2d", "convt"):
        b, cin, hw, cout, k, s, pad = p
        x = r(b, cin, hw, hw)
        if kind == "conv2d":
            w, bb = r(cout, cin, k, k), r(cout)
            return lambda: F.conv2d(x, w, bb, stride=s, padding=pad)
        w, bb = r(cin, cout, k, k), r(cout)
        return lambda: F.conv_transpose2d(x, w, bb, stride=s, padding=pad)
    raise SystemExit(f"torch_bench: unknown spec {spec!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--specs", required=True)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for spec in open(a.specs).read().splitlines():
            fn = build(spec, dev)
            times = []
            for i in range(a.reps + 1):
                sync()
                t0 = time.perf_counter()
                fn()
                sync()
                if i:
                    times.append((time.perf_counter() - t0) * 1e3)
            print(f"{statistics.median(times):.4f}", flush=True)


if __name__ == "__main__":
    main()
