#!/usr/bin/env python3
"""The same work as `samx bench` in PyTorch, timed the same way (median of --reps after one warm-up).

usage: torch_bench.py MODE --device cpu|cuda:N --reps R --threads T --specs FILE
                           [--precision fp32|tf32|bf16] [--compile]
Reads one spec per line (written by samx) and prints one line per spec: milliseconds.

Precision, as a PyTorch user gets the most of it: fp32 with TF32 off; tf32 with TF32 matmuls and
convolutions; bf16 as segment-anything-fast runs SAM (perf-anchors §3): the modules and inputs in
bfloat16 and every attention through F.scaled_dot_product_attention, with SAM's decomposed relative
position bias as its additive mask (the prompt encoder stays fp32: its dense positional grid is built in
fp32 and is a few kilobytes). --compile wraps the timed function in torch.compile when this PyTorch has
it (2.0 or later); where it fails, the eager time is printed and the reason goes to stderr.
"""
import argparse
import math
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}


def set_precision(name):
    tf32 = name == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return DTYPES[name]


def sdpa(q, k, v, bias=None):
    """softmax(q k^T / sqrt(d) + bias) v: F.scaled_dot_product_attention where it exists (PyTorch 2.0
    on), else the same formula as it documents it."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    logits = (q * (1.0 / math.sqrt(q.shape[-1]))) @ k.transpose(-2, -1)
    return (logits if bias is None else logits + bias).softmax(-1) @ v


def rel_pos_bias(q, rel_pos_h, rel_pos_w, size):
    """SAM's decomposed relative-position term (add_decomposed_rel_pos) as an additive [BH, HW, HW] mask."""
    from segment_anything.modeling.image_encoder import get_rel_pos
    h, w = size
    rh, rw = get_rel_pos(h, h, rel_pos_h), get_rel_pos(w, w, rel_pos_w)
    r_q = q.reshape(q.shape[0], h, w, q.shape[-1])
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, rh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, rw)
    return (rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]).reshape(q.shape[0], h * w, h * w)


def encoder_attention_sdpa(self, x):
    """segment_anything.modeling.image_encoder.Attention.forward with the attention through sdpa()."""
    B, H, W, _ = x.shape
    qkv = self.qkv(x).reshape(B, H * W, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.reshape(3, B * self.num_heads, H * W, -1).unbind(0)
    bias = rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (H, W)) if self.use_rel_pos else None
    x = sdpa(q, k, v, bias)
    return self.proj(x.view(B, self.num_heads, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1))


def decoder_attention_sdpa(self, q, k, v):
    """segment_anything.modeling.transformer.Attention.forward with the attention through sdpa()."""
    q = self._separate_heads(self.q_proj(q), self.num_heads)
    k = self._separate_heads(self.k_proj(k), self.num_heads)
    v = self._separate_heads(self.v_proj(v), self.num_heads)
    return self.out_proj(self._recombine_heads(sdpa(q, k, v)))


def use_sdpa(*modules):
    """Routes every SAM attention inside modules through sdpa() (instances only, not the classes)."""
    from segment_anything.modeling import image_encoder, transformer
    for m in modules:
        for sub in m.modules():
            if type(sub) is image_encoder.Attention:
                sub.forward = types.MethodType(encoder_attention_sdpa, sub)
            elif type(sub) is transformer.Attention:
                sub.forward = types.MethodType(decoder_attention_sdpa, sub)


def build(spec, dev, dtype=torch.float32):
    f = spec.split()
    kind = f[0]
    p = [int(x) for x in f[1:]] if kind not in ("encoder", "decoder") else []
    r = lambda *s: (torch.rand(*s, device=dev) - 0.5).to(dtype)  # noqa: E731
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

        def att_sdpa():  # bf16: the fused kernel with the rel-pos terms as its additive mask
            return sdpa(q, k, v, (rh[..., :, None] + rw[..., None, :]).view(b, h, t, t))
        return att_sdpa if dtype == torch.bfloat16 else att
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
        if dtype == torch.bfloat16:
            enc, dec = enc.to(dtype), dec.to(dtype)
            use_sdpa(enc, dec)
        if kind == "encoder":
            x = r(n, 3, size, size)
            return lambda: enc(x)
        g = size // 16
        emb = r(1, pe.embed_dim, g, g)
        boxes = torch.tensor([[p * 7 % (size // 2), p * 13 % (size // 2), p * 7 % (size // 2) + size / 3,
                               p * 13 % (size // 2) + size / 4] for p in range(n)], dtype=torch.float32, device=dev)

        def decode():
            sparse, dense = pe(points=None, boxes=boxes, masks=None)
            return dec(image_embeddings=emb, image_pe=pe.get_dense_pe().to(dtype),
                       sparse_prompt_embeddings=sparse.to(dtype), dense_prompt_embeddings=dense.to(dtype),
                       multimask_output=False)
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
    ap.add_argument("--precision", choices=sorted(DTYPES), default="fp32")
    ap.add_argument("--compile", action="store_true")
    a = ap.parse_args()
    dtype = set_precision(a.precision)
    if a.mode == "train":  # training steps need autograd: bench/torch_train.py times them
        import torch_train
        return torch_train.run(a)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for spec in open(a.specs).read().splitlines():
            fn = build(spec, dev, dtype)
            if a.compile:
                fn = compiled(fn, sync)
            print(f"{median_ms(fn, a.reps, sync):.4f}", flush=True)


def median_ms(fn, reps, sync):
    times = []
    for i in range(reps + 1):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        if i:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def compiled(fn, sync):
    """torch.compile(fn), compiled and run once here so that its compile time stays out of the timing;
    fn itself where this PyTorch cannot compile it."""
    if not hasattr(torch, "compile"):
        print(f"torch_bench: torch {torch.__version__} has no torch.compile; timing eager", file=sys.stderr)
        return fn
    try:
        c = torch.compile(fn)
        c()
        sync()
        return c
    except Exception as e:  # noqa: BLE001 (Inductor raises many kinds)
        print(f"torch_bench: torch.compile failed ({type(e).__name__}: {str(e)[:200]}); timing eager",
              file=sys.stderr)
        return fn


if __name__ == "__main__":
    main()
