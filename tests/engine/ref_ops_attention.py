"""Attention with SAM's decomposed relative-position bias, as segment_anything computes it.

Same case names, shapes and scales as tests/engine/test_ops_attention.c. The bias follows
segment_anything/modeling/image_encoder.py (Attention.forward, add_decomposed_rel_pos): the
logits are viewed as (B, q_h, q_w, k_h, k_w) and rel_h / rel_w are broadcast over k_w / k_h.
"""
import torch


def sam_attention(q, k, v, rel_h, rel_w, scale, q_size, k_size):
    B, H, Tq, D = q.shape
    attn = (q * scale) @ k.transpose(-2, -1)
    if rel_h is not None:
        q_h, q_w = q_size
        k_h, k_w = k_size
        rel_h = rel_h.reshape(B * H, q_h, q_w, k_h)
        rel_w = rel_w.reshape(B * H, q_h, q_w, k_w)
        attn = (attn.view(B * H, q_h, q_w, k_h, k_w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :])
        attn = attn.view(B, H, q_h * q_w, k_h * k_w)
    attn = attn.softmax(dim=-1)
    return attn @ v


def uniform(g, shape, lo, hi):
    return torch.rand(*shape, generator=g) * (hi - lo) + lo


# name, B, H, Tq, Tk, D, (KH, KW) or None, scale (f32 as in the C cases), needs_grad per input
CASES = [
    ("attn_nobias_d16", 1, 2, 9, 9, 16, None, 0.25, [1, 1, 1]),
    ("attn_relpos_4x4_d32", 2, 1, 16, 16, 32, (4, 4), 0.1767767, [1, 1, 1, 1, 1]),
    ("attn_relpos_4x4_d64", 1, 2, 16, 16, 64, (4, 4), 0.125, [1, 1, 0, 1, 0]),
    ("attn_cross_d16", 2, 2, 7, 64, 16, None, 0.25, [1, 1, 1]),
    ("attn_relpos_5x8_d16", 1, 3, 40, 40, 16, (5, 8), 0.25, [1, 0, 0, 1, 1]),
    ("attn_relpos_1x40_d48", 1, 1, 40, 40, 48, (1, 40), 0.144, [1, 1, 1, 1, 1]),
    ("attn_cross_d128", 1, 2, 5, 12, 128, None, 0.0884, [1, 1, 1]),
]


def cases():
    g = torch.Generator().manual_seed(3)
    for name, B, H, Tq, Tk, D, rel, scale, needs_grad in CASES:
        # The engine takes scale as an f32: use the same value.
        scale = float(torch.tensor(scale, dtype=torch.float32))
        q = uniform(g, (B, H, Tq, D), -2, 2)
        k = uniform(g, (B, H, Tk, D), -2, 2)
        v = uniform(g, (B, H, Tk, D), -1, 1)
        if rel is None:
            yield name, (lambda q, k, v, s=scale: sam_attention(q, k, v, None, None, s, None, None)), \
                [q, k, v], needs_grad
        else:
            KH, KW = rel
            # Self-attention: the query grid is the key grid.
            rel_h = uniform(g, (B, H, Tq, KH), -1, 1)
            rel_w = uniform(g, (B, H, Tq, KW), -1, 1)
            yield name, (lambda q, k, v, rh, rw, s=scale, r=rel: sam_attention(q, k, v, rh, rw, s, r, r)), \
                [q, k, v, rel_h, rel_w], needs_grad
