"""Reference outputs of Hugging Face transformers' SamModel for tests/models/test_sam_hf.c.

Usage: hf_sam_reference.py OUTDIR   (run with the venv's python, see scripts/setup-venv.sh)

Builds a tiny SamModel with every parameter randomised from a fixed seed (nothing is downloaded) and
writes to OUTDIR:
  sam_hf.safetensors       the weights as save_pretrained writes them (HF key names, float32)
  sam_hf_full.safetensors  model.state_dict() as is: also holds the tied duplicate
                           prompt_encoder.shared_embedding.positional_embedding
  sam_hf.pth               torch.save(model.state_dict()), as fine-tuning scripts save SamModel
                           (the duplicate shares its storage with shared_image_embedding's)
  sam_hf_cases.safetensors inputs and outputs of each case (layout below)
The forward passes run in float64 on the float32 weights, so the reference carries no float32
rounding of its own. No image processor is involved: pixel_values are fed as they are and the
prompt coordinates are already in the model's input frame (0..image_size).

Case file keys (P prompt sets, one image):
  image [1,3,S,S]; image_embeddings [1,C,g,g]; dense_pe [1,C,g,g]
  <case>.points [P,N,2], <case>.labels [P,N] (I32), <case>.box [P,4], <case>.mask_input [P,1,4g,4g]
      (each only when the case has it)
  <case>.sparse [P,Ns,C]; <case>.dense [1,C,g,g]
  <case>.multi.low_res [P,3,4g,4g], <case>.multi.iou [P,3], <case>.single.low_res [P,1,4g,4g],
  <case>.single.iou [P,1]
"""
import os
import shutil
import sys
import tempfile

import torch
from transformers import SamConfig, SamModel
from transformers.models.sam.modeling_sam import SamLayerNorm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from st_io import save_safetensors  # noqa: E402

S = 160  # image size: grid 10 with patch 16, windows of 4 need padding (10 = 2*4 + 2)


def tiny_config():
    vision = dict(image_size=S, patch_size=16, hidden_size=64, num_hidden_layers=4, num_attention_heads=2,
                  window_size=4, global_attn_indexes=[1, 3], mlp_dim=256, output_channels=64,
                  num_pos_feats=32)  # 2 * num_pos_feats = the prompt encoder's width
    prompt = dict(image_size=S, patch_size=16, hidden_size=64, mask_input_channels=16)
    # HF's two-way blocks default to eps 1e-6; segment_anything (which samx follows) uses nn.LayerNorm's
    # 1e-5. Set it so that both compute the same function.
    decoder = dict(hidden_size=64, num_attention_heads=8, mlp_dim=128, num_hidden_layers=2, iou_head_hidden_dim=64,
                   num_multimask_outputs=3, iou_head_depth=4, layer_norm_eps=1e-5)
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


# HF initialises norms to identity, rel-pos tables and pos_embed to zero and biases to zero: a test on
# those would not see a swapped or missing tensor. Every tensor gets distinct random values instead.
@torch.no_grad()
def randomise(model, gen):
    def rnd(t, std, mean=0.0):
        t.copy_(torch.randn(t.shape, generator=gen) * std + mean)

    for mod in model.modules():
        if isinstance(mod, (torch.nn.LayerNorm, SamLayerNorm)):
            rnd(mod.weight, 0.2, 1.0)
            rnd(mod.bias, 0.2)
        elif isinstance(mod, torch.nn.ConvTranspose2d):
            rnd(mod.weight, mod.weight.shape[0] ** -0.5)  # [in, out, k, k]; stride = k: fan-in is `in`
            rnd(mod.bias, 0.1)
        elif isinstance(mod, (torch.nn.Linear, torch.nn.Conv2d)):
            rnd(mod.weight, mod.weight[0].numel() ** -0.5)
            if mod.bias is not None:
                rnd(mod.bias, 0.1)
        elif isinstance(mod, torch.nn.Embedding):
            rnd(mod.weight, 1.0)
    enc = model.vision_encoder
    rnd(enc.pos_embed, 0.5)
    for layer in enc.layers:
        rnd(layer.attn.rel_pos_h, 0.3)
        rnd(layer.attn.rel_pos_w, 0.3)
    # segment_anything's PositionEmbeddingRandom scale (1.0); HF's init uses hidden_size // 2
    rnd(model.shared_image_embedding.positional_embedding, 1.0)


def cases(gen, g):
    def pts(*xy):
        return torch.tensor(xy, dtype=torch.float32).reshape(1, -1, 2)

    mask = torch.randn(1, 1, 4 * g, 4 * g, generator=gen) * 3
    return {
        "box": dict(box=torch.tensor([[30.5, 40.0, 121.0, 135.25]])),
        "points": dict(points=pts(80.0, 70.0, 20.25, 140.5, 150.0, 9.0), labels=torch.tensor([[1, 0, 1]])),
        "point1": dict(points=pts(101.5, 33.0), labels=torch.tensor([[1]])),
        "box_points": dict(points=pts(60.0, 100.0, 10.0, 10.0), labels=torch.tensor([[1, 0]]),
                           box=torch.tensor([[5.0, 12.0, 150.0, 100.0]])),
        # two prompt sets in one call; the second pads with a label -1 point
        "batch": dict(points=torch.tensor([[[40.0, 50.0], [90.0, 120.0]], [[130.0, 20.0], [0.0, 0.0]]]),
                      labels=torch.tensor([[1, 0], [1, -1]])),
        "box_maskin": dict(box=torch.tensor([[20.0, 25.0, 110.0, 140.0]]), mask_input=mask),
    }


@torch.no_grad()
def run_case(model, emb, case, multimask):
    # HF shapes: points [B, P, N, 2], labels [B, P, N], boxes [B, P, 4] (P prompt sets per image)
    kw = dict(image_embeddings=emb, multimask_output=multimask)
    if "points" in case:
        kw["input_points"] = case["points"][None].double()
        kw["input_labels"] = case["labels"][None].long()
    if "box" in case:
        kw["input_boxes"] = case["box"][None].double()
    if "mask_input" in case:
        kw["input_masks"] = case["mask_input"].double()
    out = model(**kw)
    return out.pred_masks[0], out.iou_scores[0]


def main():
    outdir = sys.argv[1]
    gen = torch.Generator().manual_seed(20240611)
    model = SamModel(tiny_config()).eval()
    randomise(model, gen)

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.move(os.path.join(tmp, "model.safetensors"), os.path.join(outdir, "sam_hf.safetensors"))
    save_safetensors(os.path.join(outdir, "sam_hf_full.safetensors"), model.state_dict())
    torch.save(model.state_dict(), os.path.join(outdir, "sam_hf.pth"))

    g = S // 16
    image = torch.randn(1, 3, S, S, generator=gen)
    model = model.double()
    out = {"image": image}
    with torch.no_grad():
        emb = model.get_image_embeddings(image.double())
        out["image_embeddings"] = emb
        out["dense_pe"] = model.get_image_wide_positional_embeddings()
        for name, case in cases(gen, g).items():
            for key in ("points", "box", "mask_input"):
                if key in case:
                    out[f"{name}.{key}"] = case[key]
            if "labels" in case:
                out[f"{name}.labels"] = case["labels"].int()
            sparse, dense = model.prompt_encoder(
                input_points=case["points"][None].double() if "points" in case else None,
                input_labels=case["labels"][None].long() if "labels" in case else None,
                input_boxes=case["box"][None].double() if "box" in case else None,
                input_masks=case["mask_input"].double() if "mask_input" in case else None)
            out[f"{name}.sparse"] = sparse[0]
            out[f"{name}.dense"] = dense
            for mode, multimask in (("multi", True), ("single", False)):
                low, iou = run_case(model, emb, case, multimask)
                out[f"{name}.{mode}.low_res"] = low
                out[f"{name}.{mode}.iou"] = iou
    out = {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}
    save_safetensors(os.path.join(outdir, "sam_hf_cases.safetensors"), out)


if __name__ == "__main__":
    main()
