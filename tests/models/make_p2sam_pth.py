#!/usr/bin/python3
"""Writes the authors' P2SAM checkpoint forms (method-notes §4, contracts §6) from the committed reference weights,
with torch.save exactly as their code saves them, for tests/models/test_p2sam_oracle.c:

  make_p2sam_pth.py tests/data/p2sam/p2sam_tiny_weights.safetensors OUTDIR
    OUTDIR/final_weights.pth               {"epoch_10": state dict, "epoch_20": the same with fcomb.last_layer.bias + 1}
                                           (float32; save_non_lora_weights keeps every key not starting with "lora")
    OUTDIR/last_model_epoch_101.pth        save_lora_parameters: w_a_XXX / w_b_XXX as nn.Parameter (index 2i: block
                                           i's q, 2i + 1: its v), then prompt_encoder.* and mask_decoder.*
    OUTDIR/last_mask_weights_epoch_101.pt  torch.save of the [8, 1] weights (a non-leaf tensor, as train_first_stage.py)
    OUTDIR/sam_base.pth                    the plain SAM state dict (no LoRA) at 128 px, a --base for the stage-1 file
    OUTDIR/truncated.pth                   final_weights.pth cut in half
    OUTDIR/sam_base_256.pth                that SAM as if trained at 256 px (pos_embed 16 x 16, global rel-pos tables
                                           31 rows, fresh values), and OUTDIR/resized_ref.safetensors: what the
                                           authors' load_from (build_sam.py:147-160) makes of them at 128 px
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import load_safetensors  # noqa: E402


def main():
    src, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    w, _ = load_safetensors(src)
    w = {k: v.float() for k, v in w.items()}
    w8 = w.pop("weights_eight")
    sd = dict(w)
    sd2 = {k: (v + 1 if k == "fcomb.last_layer.bias" else v.clone()) for k, v in sd.items()}
    torch.save({"epoch_10": sd, "epoch_20": sd2}, os.path.join(out, "final_weights.pth"))
    depth = 1 + max(int(k.split(".")[3]) for k in sd if k.startswith("sam.image_encoder.blocks."))
    lora = {}
    for i in range(depth):
        for j, qv in enumerate("qv"):
            p = f"sam.image_encoder.blocks.{i}.attn.qkv.linear_%s_{qv}.weight"
            lora[f"w_a_{2 * i + j:03d}"] = torch.nn.Parameter(sd[p % "a"])
            lora[f"w_b_{2 * i + j:03d}"] = torch.nn.Parameter(sd[p % "b"])
    # ref: sam_lora_image_encoder.py save_lora_parameters: a_tensors, b_tensors, prompt_encoder, mask_decoder
    merged = {k: lora[k] for k in sorted(lora) if k.startswith("w_a_")}
    merged.update({k: lora[k] for k in sorted(lora) if k.startswith("w_b_")})
    for k, v in sd.items():
        if k.startswith(("sam.prompt_encoder.", "sam.mask_decoder.")):
            merged[k[4:]] = v
    torch.save(merged, os.path.join(out, "last_model_epoch_101.pth"))
    p = torch.nn.Parameter(w8[1:].clone())
    torch.save(torch.cat((1 - p.sum(0).unsqueeze(0), p), dim=0), os.path.join(out, "last_mask_weights_epoch_101.pt"))
    base = {}
    for k, v in sd.items():
        if k.startswith("sam.") and ".linear_" not in k:
            base[k[4:].replace(".attn.qkv.qkv.", ".attn.qkv.")] = v
    torch.save(base, os.path.join(out, "sam_base.pth"))
    g = torch.Generator().manual_seed(5)
    big, ref = dict(base), {}
    pe = big["image_encoder.pos_embed"]
    big["image_encoder.pos_embed"] = 0.05 * torch.randn((1, 16, 16, pe.shape[3]), generator=g)
    # ref: load_from: F.interpolate(pos_embed.permute(0, 3, 1, 2), (8, 8), bilinear, align_corners=False)
    ref["image_encoder.pos_embed"] = torch.nn.functional.interpolate(
        big["image_encoder.pos_embed"].permute(0, 3, 1, 2), (8, 8), mode="bilinear",
        align_corners=False).permute(0, 2, 3, 1).contiguous()
    for k in list(big):
        if "rel_pos" in k and big[k].shape[0] == 15:  # the global blocks' tables
            big[k] = 0.05 * torch.randn((31, big[k].shape[1]), generator=g)
            ref[k] = torch.nn.functional.interpolate(big[k][None, None], (15, big[k].shape[1]), mode="bilinear",
                                                     align_corners=False)[0, 0].contiguous()
    torch.save(big, os.path.join(out, "sam_base_256.pth"))
    from st_io import save_safetensors
    save_safetensors(os.path.join(out, "resized_ref.safetensors"), ref)
    data = open(os.path.join(out, "final_weights.pth"), "rb").read()
    open(os.path.join(out, "truncated.pth"), "wb").write(data[: len(data) // 2])


if __name__ == "__main__":
    main()
