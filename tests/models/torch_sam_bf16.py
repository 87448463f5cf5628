"""PyTorch's own bf16 on the SAM golden cases, for tests/models/test_sam_golden_bf16.c.

Usage: torch_sam_bf16.py OUTDIR   (the venv's python: segment_anything, see scripts/setup-venv.sh)

Runs the official segment_anything SamPredictor on tests/data/sam_tiny (sam_tiny.pth, the 3 images x 6
prompt cases of sam_tiny_cases.safetensors) in fp32 and in three bf16 modes, and measures how close each
bf16 run comes to fp32: the IoU of the masks (logits > 0 over every output mask, as the C test counts
it) and the largest logit difference. samx's bf16 is held to come at least as close as PyTorch's best.

Modes (as PyTorch users run SAM in bf16):
  eager     the encoder and decoder in bfloat16 (module.to), segment_anything's attention as written:
            q k^T is a bf16 matmul, so the attention logits are rounded to bf16 before the softmax.
  autocast  fp32 modules under autocast to bfloat16 with CUDA's op lists: linear, conv and matmul in
            bf16; layer_norm, softmax and pow in fp32 (PyTorch 1.13's CPU autocast lacks these three
            and fails on a bf16 layer_norm input; they are routed as CUDA's autocast routes them).
  sdpa      the modules in bfloat16 and every attention as bench/torch_bench.py runs it on a GPU
            (segment-anything-fast's recipe): fused, with the rel-pos terms as a bf16 additive mask,
            computed as a flash kernel computes it (fp32 logits and softmax statistics, exp(s - max)
            rounded to bf16 for the product with v, fp32 sums, bf16 out).
The prompt encoder stays fp32 in every mode (its dense positional grid is built in fp32). PyTorch 1.13
has no CPU bf16 conv_transpose2d: those run on the bf16 values with fp32 sums and a bf16 output, as a
bf16 GPU kernel does. The fp32 run is first checked against the golden logits (within 1e-4).

Writes OUTDIR/torch_sam_bf16.safetensors: `<image>.<case>.iou` and `<image>.<case>.logit_err`, F32 [3],
the modes in the order above; metadata "modes".
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import torch_bench  # noqa: E402
from st_io import load_safetensors, save_safetensors  # noqa: E402

DATA = os.path.join(HERE, "..", "data", "sam_tiny")
IMAGES = ("same", "up", "down")
CASES = ("box", "box_multi", "points", "point1", "box_points", "box_maskin")
MODES = ("eager", "autocast", "sdpa")
BF16, F32 = torch.bfloat16, torch.float32


def cast(x, dtype):
    return x.to(dtype) if torch.is_tensor(x) and x.is_floating_point() else x


def cast_io(module, dtype_in, dtype_out):
    """The module takes its floating inputs in dtype_in and returns its outputs in dtype_out."""
    forward = module.forward

    def run(*args, **kw):
        out = forward(*[cast(a, dtype_in) for a in args], **{k: cast(v, dtype_in) for k, v in kw.items()})
        return tuple(cast(o, dtype_out) for o in out) if isinstance(out, tuple) else cast(out, dtype_out)
    module.forward = run


def flash(q, k, v, bias=None):
    """softmax(q k^T / sqrt(d) + bias) v with a flash kernel's roundings (bf16 q, k, v and bias)."""
    s = (q.float() @ k.float().transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if bias is not None:
        s = s + bias.float()
    e = torch.exp(s - s.amax(-1, keepdim=True))
    return ((e.to(BF16).float() @ v.float()) / e.sum(-1, keepdim=True)).to(q.dtype)


def bf16_conv_transpose(m):
    m.forward = lambda x: F.conv_transpose2d(x.float(), m.weight.float(), m.bias.float(), stride=m.stride,
                                             padding=m.padding).to(BF16)


def build(mode):
    from segment_anything.modeling import Sam
    enc, pe, dec, _ = torch_bench.build_sam("tiny", "cpu")
    sam = Sam(enc, pe, dec).eval()
    sam.load_state_dict(torch.load(os.path.join(DATA, "sam_tiny.pth"), map_location="cpu"))
    if mode in ("eager", "sdpa"):
        for part in (sam.image_encoder, sam.mask_decoder):
            part.to(BF16)
            cast_io(part, BF16, F32)
        for m in sam.mask_decoder.modules():
            if isinstance(m, torch.nn.ConvTranspose2d):
                bf16_conv_transpose(m)
        if mode == "sdpa":
            torch_bench.use_sdpa(sam.image_encoder, sam.mask_decoder)
    elif mode == "autocast":  # the decoder's outputs leave autocast as bf16; SamPredictor wants fp32
        forward = sam.mask_decoder.forward
        sam.mask_decoder.forward = lambda *a, **k: tuple(o.float() for o in forward(*a, **k))
    return sam


class CudaAutocastLists:
    """torch.autocast("cpu", bfloat16) plus CUDA autocast's fp32 ops that SAM uses."""

    def __enter__(self):
        self.saved = F.layer_norm, torch.Tensor.softmax, torch.Tensor.pow
        ln, sm, pw = self.saved
        F.layer_norm = lambda x, *a, **k: ln(x.float(), *[cast(v, F32) for v in a], **k)
        torch.Tensor.softmax = lambda x, *a, **k: sm(x.float(), *a, **k)
        torch.Tensor.pow = lambda x, *a, **k: pw(x.float(), *a, **k)
        self.autocast = torch.autocast("cpu", dtype=BF16)
        self.autocast.__enter__()

    def __exit__(self, *exc):
        self.autocast.__exit__(*exc)
        F.layer_norm, torch.Tensor.softmax, torch.Tensor.pow = self.saved


def predict(predictor, golden, img, case):
    p, kw = f"{img}.{case}.", {}
    for key in ("box", "point_coords", "point_labels", "mask_input"):
        if p + key in golden:
            kw[key] = golden[p + key].numpy()
    kw["multimask_output"] = bool(golden[p + "multimask"].item())
    logits, _, _ = predictor.predict(return_logits=True, **kw)
    return torch.as_tensor(logits).float()


def run_image(mode, golden, img):
    from contextlib import nullcontext

    from segment_anything import SamPredictor
    predictor = SamPredictor(build(mode))
    image = golden[f"{img}.image"].numpy().astype(np.uint8)
    with torch.no_grad(), (CudaAutocastLists() if mode == "autocast" else nullcontext()):
        predictor.set_image(image)
        return {c: predict(predictor, golden, img, c) for c in CASES}


def mask_iou(a, b):
    a, b = a > 0, b > 0
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    torch_bench.sdpa = flash
    golden, _ = load_safetensors(os.path.join(DATA, "sam_tiny_cases.safetensors"))
    out = {}
    for img in IMAGES:
        fp32 = run_image("fp32", golden, img)
        for c in CASES:
            err = (fp32[c] - golden[f"{img}.{c}.logits"].float()).abs().max().item()
            if err > 1e-4:
                sys.exit(f"torch_sam_bf16: fp32 {img}.{c} differs from the golden logits by {err:.3g}")
        runs = [run_image(mode, golden, img) for mode in MODES]
        for c in CASES:
            out[f"{img}.{c}.iou"] = torch.tensor([mask_iou(r[c], fp32[c]) for r in runs])
            out[f"{img}.{c}.logit_err"] = torch.tensor([(r[c] - fp32[c]).abs().max().item() for r in runs])
            if out[f"{img}.{c}.logit_err"].min() == 0:
                sys.exit(f"torch_sam_bf16: a bf16 mode gives {img}.{c}'s fp32 logits bit for bit (no bf16 ran)")
            print(f"{img}.{c}: " + "  ".join(f"{m} IoU {out[f'{img}.{c}.iou'][i]:.4f} logits "
                                             f"{out[f'{img}.{c}.logit_err'][i]:.4f}" for i, m in enumerate(MODES)))
    save_safetensors(os.path.join(sys.argv[1], "torch_sam_bf16.safetensors"), out, {"modes": ",".join(MODES)})


if __name__ == "__main__":
    main()
