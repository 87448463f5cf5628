#!/usr/bin/python3
"""Writes the P2SAM reference files that tests/models/test_p2sam_oracle.c reads (tests/data/p2sam/).

Run by hand, not by the tests: it needs the authors' code, which ../shared/tools/p2sam_oracle.py imports from
git mirrors of yu2hi13/P2SAM and facebookresearch/segment-anything ($P2SAM_MIRROR, $SAM_MIRROR):

  P2SAM_MIRROR=... SAM_MIRROR=... /usr/bin/python3 tests/models/make_p2sam_refs.py ORACLE.py OUTDIR

The oracle runs unchanged except that every weight it draws is rounded to float16 right after it is drawn, so the
weights its checkpoints hold are exactly representable in half precision and can be committed at half the size,
with nothing lost (tensors that load_from computes, the resized pos_embed and rel-pos tables, stay float32).
Outputs (their code's outputs: data, no code):
  p2sam_tiny_weights.safetensors  snapshot epoch_10 of final_weights.pth under its own key names (f16 where exact)
                                  and "weights_eight" [8, 1] f32
  p2sam_tiny_ref.safetensors      the batch, eps, forward tensors, stage-1/2 losses, the small gradients
                                  (LoRA, assembling weights, no_mask_embed, the PGN's head and Fcomb's first layer),
                                  the evaluation's predictions and metrics
"""
import importlib.util
import json
import os
import sys

import torch


def load_oracle(path):
    spec = importlib.util.spec_from_file_location("p2sam_oracle", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def rounding(fn):
    def wrapped(module, g, *a, **k):
        fn(module, g, *a, **k)
        with torch.no_grad():
            for p in module.parameters():
                p.copy_(p.half().float())
    return wrapped


def main():
    oracle_path, out = sys.argv[1], os.path.abspath(sys.argv[2])
    mod = load_oracle(oracle_path)
    mod.randomize = rounding(mod.randomize)
    mod.randomize_lora = rounding(mod.randomize_lora)
    # randomize_pgn calls mod.randomize for the encoder and Fcomb; round its head as well
    mod.randomize_pgn = rounding(mod.randomize_pgn)
    work = os.path.join(out, "oracle")
    sys.argv = [oracle_path, "--variant", "tiny", "--out", work, "--quantize-images", "--skip-checks"]
    mod.main()
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from st_io import load_safetensors as load_file, save_safetensors  # noqa: E402

    def save_file(tensors, path, metadata=None):
        save_safetensors(path, tensors, metadata)

    ck = torch.load(os.path.join(work, "work", "checkpoint", "final_weights.pth"), map_location="cpu")
    snap = ck["epoch_10"]
    weights = {}
    for k, v in snap.items():
        v = v.detach().float().contiguous()
        h = v.half()
        weights[k] = h if torch.equal(h.float(), v) else v
    weights["weights_eight"] = torch.load(os.path.join(work, "work", "checkpoint", "last_mask_weights_epoch_101.pt"),
                                          map_location="cpu").detach().float().contiguous()
    save_file(weights, os.path.join(out, "p2sam_tiny_weights.safetensors"), metadata={"snapshot": "epoch_10"})

    cases, _ = load_file(os.path.join(work, "p2sam_tiny_cases.safetensors"))
    keep = {}
    small_grads = ("s1.grad.w_", "s1.grad.mask_weights", "s1.grad.prompt_encoder", "s2.grad.prior_dense.conv_layer",
                   "s2.grad.fcomb.layers.0", "s2.grad.fcomb.last_layer")
    for k, v in cases.items():
        if k.startswith(("in.", "fwd.", "eval.", "weights_eight")) and k not in ("in.image", "eval.eps") \
                or k.startswith(("s1.loss", "s2.loss", "s1.low_res", "s1.assembled", "s1.weights_eight")) \
                or k.startswith(small_grads):
            keep[k] = v.contiguous()
    keep.pop("fwd.masks", None)  # 8 x 128 x 128 per image; the low-res logits and the assembled logit pin it down
    manifest = json.load(open(os.path.join(work, "p2sam_tiny_manifest.json")))
    meta = {k: json.dumps(manifest[k]) for k in ("p2sam_commit", "sam_commit", "config", "metrics", "seed", "batch")}
    save_file(keep, os.path.join(out, "p2sam_tiny_ref.safetensors"), metadata=meta)
    print("wrote", out)


if __name__ == "__main__":
    main()
