"""PyTorch's side of `samx bench --precision bf16 --compare-torch` computes what SAM computes.

bench/torch_bench.py routes every attention of segment_anything's modules through
scaled_dot_product_attention, with SAM's decomposed relative-position term assembled as its additive
mask (as segment-anything-fast does). Checked here in fp32 against the unmodified modules, on the tiny
architecture of tests/data/sam_tiny: the image encoder (window and global blocks, rel-pos) and the mask
decoder (the two-way transformer's attentions). With PyTorch >= 2.0 this checks the real
F.scaled_dot_product_attention; with Debian's 1.13 it checks the same bias assembly through the
documented formula that torch_bench.sdpa falls back to. Where a CUDA device is present, the bf16 paths
that the benchmark times (encoder, decoder, one SeqSAM training step under autocast) also run and stay
within bf16's tolerance of fp32.

usage: python test_torch_sdpa.py   (from anywhere; needs torch and segment_anything)
"""
import copy
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import torch_bench  # noqa: E402

failures = []


def check(name, got, ref, tol):
    err = (got.float() - ref.float()).abs().max().item() / max(1.0, ref.float().abs().max().item())
    ok = err <= tol
    print(f"{'ok  ' if ok else 'FAIL'} {name:<44} max |sdpa - ref| / max(1, |ref|) = {err:.2e} (tolerance {tol:.0e})")
    if not ok:
        failures.append(name)


def models(dev):
    torch.manual_seed(0)
    enc, pe, dec, size = torch_bench.build_sam("tiny", dev)
    for p in list(enc.parameters()) + list(dec.parameters()):  # rel-pos tables start at zero: make them count
        with torch.no_grad():
            p.add_(0.05 * torch.randn_like(p))
    return enc, pe, dec, size


def decode(pe, dec, emb, boxes, dtype):
    sparse, dense = pe(points=None, boxes=boxes, masks=None)
    return dec(image_embeddings=emb, image_pe=pe.get_dense_pe().to(dtype), sparse_prompt_embeddings=sparse.to(dtype),
               dense_prompt_embeddings=dense.to(dtype), multimask_output=True)[0]


def fp32_equivalence(dev):
    enc, pe, dec, size = models(dev)
    x = torch.rand(2, 3, size, size, device=dev) - 0.5
    boxes = torch.tensor([[10.0, 20.0, 90.0, 120.0], [40.0, 5.0, 150.0, 60.0]], device=dev)
    with torch.no_grad():
        emb_ref = enc(x)
        masks_ref = decode(pe, dec, emb_ref[:1], boxes, torch.float32)
        enc_sdpa, dec_sdpa = copy.deepcopy(enc), copy.deepcopy(dec)
        torch_bench.use_sdpa(enc_sdpa, dec_sdpa)
        patched = sum("forward" in vars(m) for m in list(enc_sdpa.modules()) + list(dec_sdpa.modules()))
        if patched != 4 + 7:  # 4 encoder blocks; decoder: 2 layers x 3 attentions + the final one
            failures.append(f"use_sdpa patched {patched} attentions, expected 11")
        emb = enc_sdpa(x)
        masks = decode(pe, dec_sdpa, emb[:1], boxes, torch.float32)
    check("image encoder (window + global, rel-pos)", emb, emb_ref, 1e-5)
    check("mask decoder (two-way transformer)", masks, masks_ref, 1e-5)
    return enc, pe, dec, size, x, boxes, emb_ref, masks_ref


def bf16_paths(dev, enc, pe, dec, size, x, boxes, emb_ref, masks_ref):
    """The benchmark's bf16 configuration on a GPU: modules in bf16 with sdpa, against fp32."""
    enc16, dec16 = copy.deepcopy(enc).to(torch.bfloat16), copy.deepcopy(dec).to(torch.bfloat16)
    torch_bench.use_sdpa(enc16, dec16)
    with torch.no_grad():
        emb = enc16(x.to(torch.bfloat16))
        masks = decode(pe, dec16, emb_ref[:1].to(torch.bfloat16), boxes, torch.bfloat16)
    # bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.4%) and the errors of 4 blocks add up
    check("image encoder, bf16 + SDPA vs fp32", emb, emb_ref, 0.05)
    check("mask decoder, bf16 + SDPA vs fp32", masks, masks_ref, 0.05)
    import torch_train
    step = torch_train.mixed_precision(torch_train.Step("seqsam", "tiny", 2, 4, 4, dev), dev)
    losses = [step() for _ in range(3)]
    ok = all(torch.isfinite(torch.tensor(losses)))
    print(f"{'ok  ' if ok else 'FAIL'} seqsam step under autocast(bf16): losses {', '.join(f'{v:.4f}' for v in losses)}")
    if not ok:
        failures.append("bf16 training step")


def main():
    print(f"torch {torch.__version__}: attention through "
          f"{'F.scaled_dot_product_attention' if hasattr(torch.nn.functional, 'scaled_dot_product_attention') else 'the documented formula (PyTorch < 2.0)'}")
    args = fp32_equivalence(torch.device("cpu"))
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        args = fp32_equivalence(dev)
        bf16_paths(dev, *args)
    else:
        print("note: no CUDA device: the bf16 paths (GPU-only in the benchmark) are not run here")
    if failures:
        print(f"{len(failures)} failed: {', '.join(failures)}")
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
