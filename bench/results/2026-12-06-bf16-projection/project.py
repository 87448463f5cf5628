#!/usr/bin/env python3
"""Per-kernel FLOP/byte budget of one SAM ViT-B encoder forward at 1024x1024 in bf16 on an H100 SXM.

NOT MEASURED: a projection from the model's shapes (SAM ViT-B: 64x64 tokens, d 768, 12 heads of 64,
MLP 3072, 12 blocks, global attention in blocks 2, 5, 8, 11, 14x14 windows padded 64 -> 70 elsewhere,
neck 768 -> 256) and two hardware constants from ../shared/docs/perf-anchors.md: 989 TFLOP/s dense
bf16 and 3.35 TB/s HBM3. Each kernel's floor is max(FLOPs / peak, bytes / bandwidth); the sum is the
per-image budget the first GPU run will be held against. Writes README.md next to this script.

Byte counts: every tensor a kernel reads or writes crosses HBM once (bf16 activations and weights,
fp32 for rel_h/rel_w, lse and LayerNorm statistics); L2 reuse between kernels is not counted, nor are
launch gaps. Two plans are summed: "separate" runs every kernel below on its own; "fused" folds the
ones marked with a host kernel into it (LayerNorm into the next GEMM's input, window partition and
padding into the qkv GEMM's addressing, GELU and residual adds into GEMM epilogues), as issue 18 asks.
"""
import os

PEAK = 989e12  # dense bf16 FLOP/s, H100 SXM (perf-anchors.md)
BEST_MM = 794.5e12  # best measured bf16 matmul on H100 SXM (perf-anchors.md, stas00 MAMF)
HBM = 3.35e12  # bytes/s
BF16, F32 = 2, 4

IMG, PATCH, D, HEADS, HD, MLP, BLOCKS, WIN = 1024, 16, 768, 12, 64, 3072, 12, 14
GLOBAL = {2, 5, 8, 11}
NECK = 256
G = IMG // PATCH  # 64
N = G * G  # 4096 tokens
GP = -(-G // WIN) * WIN  # 70: padded grid of the window blocks
NWIN = (GP // WIN) ** 2  # 25 windows
NP = GP * GP  # 4900 padded tokens

kernels = []  # (block, name, kind, flops, bytes, fused_into or None)


def add(block, name, kind, flops, nbytes, fused_into=None):
    kernels.append((block, name, kind, float(flops), float(nbytes), fused_into))


def gemm(block, name, m, k, n, extra_read=0, fused_into=None):
    """C[m, n] = A[m, k] W[k, n] (+ epilogue reads): bf16 in and out."""
    add(block, name, "gemm", 2 * m * k * n, BF16 * (m * k + k * n + m * n + n) + extra_read, fused_into)


def elementwise(block, name, n_read, n_write, flops_per=1, fused_into=None, stat_bytes=0):
    add(block, name, "elementwise", flops_per * n_write, BF16 * (n_read + n_write) + stat_bytes, fused_into)


def attention(block, name, batch, t, kh, kw):
    """Flash attention with the decomposed rel-pos bias: QK^T and AV on tensor cores; q, k, v, out bf16."""
    flops = 2 * 2 * batch * HEADS * t * t * HD + batch * HEADS * t * t * 2  # products + bias adds
    nbytes = BF16 * 4 * batch * t * D + F32 * batch * HEADS * t * (kh + kw + 1)  # q k v out, rel, lse
    add(block, name, "attention", flops, nbytes)


def rel_pos(block, name, batch, t, kh, kw):
    """rel_h = einsum(q, Rh), rel_w = einsum(q, Rw): [batch*heads, t, kh | kw] in fp32."""
    flops = 2 * batch * HEADS * t * (kh + kw) * HD
    nbytes = BF16 * batch * t * D + F32 * batch * HEADS * t * (kh + kw) + BF16 * (kh + kw) * HD
    add(block, name, "rel-pos", flops, nbytes)


# ---- patch embedding: a 16x16/16 convolution = GEMM [4096, 768] x [768, 768], + absolute positions ----
add("embed", "patch embed (conv 16x16/16, implicit GEMM)", "gemm", 2 * N * (3 * PATCH * PATCH) * D,
    BF16 * (3 * IMG * IMG + 3 * PATCH * PATCH * D + N * D + D))
elementwise("embed", "+ pos_embed", 2 * N * D, N * D, fused_into="patch embed (conv 16x16/16, implicit GEMM)")

for b in range(BLOCKS):
    is_global = b in GLOBAL
    m = N if is_global else NP
    tag = f"block {b} ({'global' if is_global else 'window'})"
    ln_stats = F32 * 2 * N
    elementwise(tag, "LayerNorm 1", N * D, N * D, flops_per=8, fused_into="qkv GEMM", stat_bytes=ln_stats)
    if not is_global:
        elementwise(tag, "window partition + pad 64->70", N * D, NP * D, flops_per=0, fused_into="qkv GEMM")
    gemm(tag, "qkv GEMM", m, D, 3 * D)
    if is_global:
        rel_pos(tag, "rel-pos einsums", 1, N, G, G)
        attention(tag, "global attention (flash, rel-pos fused)", 1, N, G, G)
    else:
        rel_pos(tag, "rel-pos einsums", NWIN, WIN * WIN, WIN, WIN)
        attention(tag, "window attention (flash, rel-pos fused)", NWIN, WIN * WIN, WIN, WIN)
    gemm(tag, "proj GEMM", m, D, D)
    if not is_global:
        elementwise(tag, "window unpartition + unpad", NP * D, N * D, flops_per=0, fused_into="proj GEMM")
    elementwise(tag, "residual add 1", 2 * N * D, N * D, fused_into="proj GEMM")
    elementwise(tag, "LayerNorm 2", N * D, N * D, flops_per=8, fused_into="fc1 GEMM", stat_bytes=ln_stats)
    gemm(tag, "fc1 GEMM", N, D, MLP)
    elementwise(tag, "GELU", N * MLP, N * MLP, flops_per=8, fused_into="fc1 GEMM")
    gemm(tag, "fc2 GEMM", N, MLP, D)
    elementwise(tag, "residual add 2", 2 * N * D, N * D, fused_into="fc2 GEMM")

# ---- neck: 1x1 conv 768 -> 256, LayerNorm2d, 3x3 conv 256 -> 256 (implicit GEMM), LayerNorm2d ----
gemm("neck", "conv 1x1 768->256", N, D, NECK)
elementwise("neck", "LayerNorm2d 1", N * NECK, N * NECK, flops_per=8, fused_into="conv 3x3 256->256",
            stat_bytes=F32 * 2 * N)
# Implicit GEMM: A is the 3x3 im2col of the input, but the input itself is read once, not 9 times.
gemm("neck", "conv 3x3 256->256 (implicit GEMM)", N, 9 * NECK, NECK, extra_read=-BF16 * N * 8 * NECK)
elementwise("neck", "LayerNorm2d 2", N * NECK, N * NECK, flops_per=8, stat_bytes=F32 * 2 * N)


def floor_s(flops, nbytes):
    return max(flops / PEAK, nbytes / HBM)


def bound(flops, nbytes):
    return "compute" if flops / PEAK >= nbytes / HBM else "memory"


def summarise():
    # Aggregate the 12 blocks by (kind of block, kernel) to keep the table short.
    rows = {}
    for block, name, kind, fl, by, fused in kernels:
        group = "window blocks (x8)" if "window" in block else ("global blocks (x4)" if "global" in block else block)
        key = (group, name)
        r = rows.setdefault(key, [kind, 0.0, 0.0, 0.0, fused, 0])
        r[1] += fl
        r[2] += by
        r[3] += floor_s(fl, by)
        r[5] += 1
    return rows


def main():
    rows = summarise()
    tot_fl = sum(k[3] for k in kernels)
    sep = sum(floor_s(k[3], k[4]) for k in kernels)
    # Fused plan: a fused kernel's FLOPs join its host; its bytes vanish except what the host must
    # read instead (the host already reads its own input, so the elementwise traffic disappears).
    fused_floor = 0.0
    per_block = {}
    for block, name, kind, fl, by, fused in kernels:
        per_block.setdefault(block, []).append((name, kind, fl, by, fused))
    for block, ks in per_block.items():
        extra = {}
        for name, kind, fl, by, fused in ks:
            if fused:
                extra[fused] = extra.get(fused, 0.0) + fl
        for name, kind, fl, by, fused in ks:
            if not fused:
                fused_floor += floor_s(fl + extra.get(name, 0.0), by)
    gemm_fl = sum(k[3] for k in kernels if k[2] == "gemm")
    prod_fl = sum(2 * 2 * b * HEADS * t * t * HD for b, t in [(1, N)] * len(GLOBAL) + [(NWIN, WIN * WIN)] * (BLOCKS - len(GLOBAL)))
    rel_fl = sum(k[3] for k in kernels if k[2] == "rel-pos")
    other_fl = tot_fl - gemm_fl - prod_fl - rel_fl
    fused_rows = []
    for block, ks in per_block.items():
        extra = {}
        for name, kind, fl, by, fused in ks:
            if fused:
                extra[fused] = extra.get(fused, 0.0) + fl
        fused_rows += [(floor_s(fl + extra.get(name, 0.0), by), block, name) for name, kind, fl, by, fused in ks if not fused]
    top = {}
    for f, block, name in fused_rows:
        key = name
        top[key] = top.get(key, 0.0) + f
    top = sorted(top.items(), key=lambda x: -x[1])[:4]
    best_mm = sum(max(k[3] / (BEST_MM if k[2] == "gemm" else PEAK), k[4] / HBM) for k in kernels if not k[5])
    out = []
    w = out.append
    w("# bf16 ViT-B encoder on an H100 SXM: per-kernel budget (NOT MEASURED: a projection)\n")
    w("**Nothing here was measured.** No GPU was available; every number below is computed by")
    w("`project.py` (this folder) from SAM ViT-B's shapes and two constants of")
    w("`../shared/docs/perf-anchors.md`: 989 TFLOP/s dense bf16 and 3.35 TB/s HBM3 (H100 SXM). It is")
    w("the budget the first GPU run of `samx bench encoder --precision bf16` will be held against.")
    w("Regenerate with `python3 project.py`.\n")
    w("Per kernel: FLOPs (1 FLOP = half a MAC), bytes crossing HBM once (bf16 activations and weights;")
    w("fp32 rel_h/rel_w, lse and LayerNorm statistics), and its floor = max(FLOPs / 989 TFLOP/s,")
    w("bytes / 3.35 TB/s). Not modelled: launch gaps, L2 reuse between kernels, tile quantisation,")
    w("the softmax's exp throughput (MUFU) in attention. One image, batch 1, 1024x1024.\n")
    w("The GEMMs read bf16 weights, which samx has done since it keeps each parameter's bf16 copy between")
    w("calls (`samx_params_shadow_bf16`, 2026-12-07); before, every call cast the fp32 weights first:")
    w("about 85.8M values, 343 MB read and 172 MB written per image, 154 µs of floor this table does not")
    w("count.\n")
    w(f"Total: **{tot_fl / 1e9:.1f} GFLOP**: GEMMs and convolutions {gemm_fl / 1e9:.1f}, attention products "
      f"(QK^T, AV) {prod_fl / 1e9:.1f}, rel-pos einsums {rel_fl / 1e9:.1f} (these three are perf-anchors.md's 972), "
      f"plus {other_fl / 1e9:.1f} of bias additions and elementwise work it does not count.\n")
    w("| kernel | runs | GFLOP | MB | floor µs | bound | fused plan |")
    w("|---|---|---|---|---|---|---|")
    for (group, name), (kind, fl, by, fs, fused, n) in rows.items():
        w(f"| {group}: {name} | {n} | {fl / 1e9:.2f} | {by / 1e6:.1f} | {fs * 1e6:.1f} | {bound(fl, by)} | "
          f"{'into ' + fused if fused else 'own kernel'} |")
    w("")
    w("| budget per image | ms | images/s |")
    w("|---|---|---|")
    w(f"| compute floor alone ({tot_fl / 1e9:.0f} GFLOP at 989 TFLOP/s) | {tot_fl / PEAK * 1e3:.3f} | "
      f"{PEAK / tot_fl:.0f} |")
    w(f"| every kernel separate (sum of floors) | {sep * 1e3:.3f} | {1 / sep:.0f} |")
    w(f"| fused plan (sum of floors) | {fused_floor * 1e3:.3f} | {1 / fused_floor:.0f} |")
    w(f"| fused plan, GEMMs at the best measured 794.5 TFLOP/s | {best_mm * 1e3:.3f} | {1 / best_mm:.0f} |")
    w("")
    goal = 1 / 650
    w(f"Issue 18's goal of ≥ 650 images/s is {goal * 1e3:.3f} ms per image. The fused plan's floor is "
      f"{fused_floor / goal * 100:.0f}% of it: the kernels must run, on average, within "
      f"{goal / fused_floor:.2f}x of their floors. With every elementwise kernel separate the floors alone "
      f"add up to {sep / goal * 100:.0f}% of the budget, so the goal needs the fusions. The fused plan treats "
      "a LayerNorm folded into the next GEMM as free, which is optimistic: its row statistics still need "
      "a pass unless the previous epilogue produces them.\n")
    w("Largest floors in the fused plan (all blocks together): " +
      ", ".join(f"{name} {f * 1e6:.0f} µs" for name, f in top) + ". The window attention is memory-bound "
      "at its floor (q, k, v, out and the fp32 rel_h/rel_w it reads); computing rel_h/rel_w inside the "
      "attention kernel from its q tile would remove the rel-pos einsums' traffic as well.\n")
    w("The first GPU run is held to this table kernel by kernel: the largest gap between a measured time "
      "and its floor names the kernel to work on. `scripts/floor-gap.py` computes that from the run's "
      "`samx bench kernels` and `samx bench encoder` JSON, with these floors per call (the bench's own FLOP "
      "and byte counts), weighted by the calls per image, and `scripts/gpu-check.py` puts its table in "
      "`summary.md`.")
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "README.md.tmp"), "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(os.path.join(here, "README.md.tmp"), os.path.join(here, "README.md"))
    print("\n".join(out))


if __name__ == "__main__":
    main()
