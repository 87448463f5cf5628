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
    kind = f[0]
    p = [int(x) for x in f[1:]] if kind not in ("encoder", "decoder") else []
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
    if kind in ("encoder", "decoder"):
        model, n = f[1], int(f[2])
        enc, pe, dec, size = build_sam(model, dev)
        if kind == "encoder":
            x = r(n, 3, size, size)
            return lambda: enc(x)
        g = size // 16
        emb = r(1, pe.embed_dim, g, g)
        boxes = torch.tensor([[p * 7 % (size // 2), p * 13 % (size // 2), p * 7 % (size // 2) + size / 3,
                               p * 13 % (size // 2) + size / 4] for p in range(n)], dtype=torch.float32, device=dev)

        def decode():
            sparse, dense = pe(points=None, boxes=boxes, masks=None)
            return dec(image_embeddings=emb, image_pe=pe.get_dense_pe(), sparse_prompt_embeddings=sparse,
                       dense_prompt_embeddings=dense, multimask_output=False)
        return decode
    raise SystemExit(f"torch_bench: unknown spec {spec!r}")


def build_sam(model, dev):
    """The official segment_anything modules with random weights (fp32, eval mode)."""
    from functools import partial

    from segment_anything import sam_model_registry
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, TwoWayTransformer
    if model in ("vit_b", "vit_l", "vit_h"):
        sam = sam_model_registry[model](checkpoint=None)
        parts, size = (sam.image_encoder, sam.prompt_encoder, sam.mask_decoder), 1024
    elif model == "tiny":  # tests/data/sam_tiny's architecture
        size, dim = 160, 64
        parts = (ImageEncoderViT(img_size=size, patch_size=16, embed_dim=dim, depth=4, num_heads=2, mlp_ratio=4,
                                 out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                                 use_rel_pos=True, window_size=4, global_attn_indexes=(1, 3)),
                 PromptEncoder(embed_dim=dim, image_embedding_size=(10, 10), input_image_size=(size, size),
                               mask_in_chans=16),
                 MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=3, iou_head_hidden_dim=dim,
                             transformer=TwoWayTransformer(depth=2, embedding_dim=dim, mlp_dim=128, num_heads=8)))
    else:
        raise SystemExit(f"torch_bench: unknown SAM model {model!r}")
    return tuple(p.to(dev).eval() for p in parts) + (size,)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--specs", required=True)
    a = ap.parse_args()
    if a.mode == "train":  # training steps need autograd: bench/torch_train.py times them
        import torch_train
        return torch_train.run(a)
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
