"""The P2SAM training step of `samx bench train --method p2sam --stage 1|2`, built from the authors' modules.

Their code (yu2hi13/P2SAM) is imported at run time, never copied: $P2SAM_ORACLE names
shared/tools/p2sam_oracle.py, whose prepare_sources() extracts their tree from $P2SAM_MIRROR / $SAM_MIRROR
and whose stub_missing_modules() stands in for imports their files make but these paths never use.
Stage 1 is train_first_stage.py's step (LoRA_Sam r = 4 at 128 px, 9 mask tokens, Adam lr 1e-3 + AdamW
lr 1e-3 eps 1e-4 over the 7 weights, CE + Dice + focal); stage 2 is train_second_stage.py's with P2SAM.forward's
prior network and Fcomb (their classes) on that LoRA SAM, Adam lr 1e-6, + 1e-5 x l2_regularisation.
Weights are random (timing only). "tiny": their builder with samx's tiny encoder (64 wide, 4 blocks, 2 heads,
global blocks 1 and 3); their builder fixes the window at 14 where samx's tiny preset uses 4.
"""
import contextlib
import importlib.util
import os
import sys
from functools import partial

import torch

ENCODERS = {"vit_b": dict(encoder_embed_dim=768, encoder_depth=12, encoder_num_heads=12,
                          encoder_global_attn_indexes=[2, 5, 8, 11]),
            "tiny": dict(encoder_embed_dim=64, encoder_depth=4, encoder_num_heads=2, encoder_global_attn_indexes=[1, 3])}


def _authors():
    path = os.environ.get("P2SAM_ORACLE")
    if not path:
        raise SystemExit("torch_train_p2sam: set P2SAM_ORACLE to shared/tools/p2sam_oracle.py (and P2SAM_MIRROR, "
                         "SAM_MIRROR as its docstring says)")
    spec = importlib.util.spec_from_file_location("p2sam_oracle", path)
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    srcs = oracle.prepare_sources(os.environ.get("P2SAM_CACHE", "/tmp/p2sam_oracle"))
    oracle.stub_missing_modules()
    sys.path.insert(0, srcs["src"])
    import segment_anything  # noqa: F401  their SAMed fork
    build = sys.modules["segment_anything.build_sam"]
    import utils
    old = oracle.load_module("p2sam_utils_604ad99", os.path.join(srcs["old"], "utils.py"))
    utils.truncated_normal_ = old.truncated_normal_
    import p2sam
    import sam_lora_image_encoder
    return build, utils, p2sam, sam_lora_image_encoder


class Step:
    def __init__(self, stage, model, B, dev):
        build, self.utils, p2sam, lora = _authors()
        sam, _ = partial(build._build_sam, **ENCODERS[model])(image_size=128, num_classes=8, checkpoint=None,
                                                              pixel_mean=[0, 0, 0], pixel_std=[1, 1, 1])
        self.lora_sam = lora.LoRA_Sam(sam.to(dev), 4).to(dev)
        self.stage, self.B, self.dev = stage, B, dev
        g = torch.Generator().manual_seed(0)
        self.x = torch.rand((B, 1, 128, 128), generator=g).to(dev)
        self.target = (torch.rand((B, 128, 128), generator=g) > 0.7).long().to(dev)
        self.w = torch.nn.Parameter(torch.ones(7, 1, device=dev) / 8)
        if stage == 1:
            for p in list(self.lora_sam.sam.prompt_encoder.parameters()) + list(self.lora_sam.sam.mask_decoder.parameters()):
                p.requires_grad = True
            self.opt = [torch.optim.Adam([p for p in self.lora_sam.parameters() if p.requires_grad], lr=1e-3, weight_decay=0),
                        torch.optim.AdamW([self.w], lr=1e-3, eps=1e-4)]
        else:
            for p in self.lora_sam.parameters():
                p.requires_grad = False
            self.w.requires_grad = False
            self.prior = p2sam.AxisAlignedConvGaussianPrior(1, [32, 64, 128, 192], 3, 256, None).to(dev)
            self.fcomb = p2sam.Fcomb([32, 64, 128, 192], 256, 1, 8, 4, {"w": "orthogonal", "b": "normal"}).to(dev)
            self.opt = [torch.optim.Adam(list(self.prior.parameters()) + list(self.fcomb.parameters()), lr=1e-6,
                                         weight_decay=0)]

    def __call__(self):
        with getattr(self, "amp", contextlib.nullcontext)():  # torch_train.mixed_precision sets it
            loss = self.loss()
        for o in self.opt:
            o.zero_grad()
        loss.backward()
        for o in self.opt:
            o.step()
        return loss.item()

    def loss(self):
        s = self.lora_sam.sam
        img = self.x.repeat(1, 3, 1, 1)
        emb = s.image_encoder(s.preprocess(img))
        sparse, dense = s.prompt_encoder(points=None, boxes=None, masks=None)
        dense = dense.repeat(self.B, 1, 1, 1)
        reg = 0
        if self.stage == 2:  # ref: P2SAM.forward (p2sam.py:127-137), train_second_stage.py:101
            z = self.prior(self.x).rsample()
            dense = self.fcomb(dense, z)
            reg = 1e-5 * (self.utils.l2_regularisation(self.prior) + self.utils.l2_regularisation(self.fcomb.layers))
        low, _ = s.mask_decoder(image_embeddings=emb, image_pe=s.prompt_encoder.get_dense_pe(),
                                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True)
        masks = s.postprocess_masks(low, input_size=(128, 128), original_size=(128, 128))
        w8 = torch.cat((1 - self.w.sum(0).unsqueeze(0), self.w), dim=0)
        high = masks * w8.unsqueeze(-1)
        high_res = high.sum(1).unsqueeze(1)
        gt = self.target.unsqueeze(1)
        return torch.nn.CrossEntropyLoss()(high, self.target) + self.utils.calculate_dice_loss(high_res, gt) \
            + self.utils.calculate_sigmoid_focal_loss(high_res, gt.float()) + reg
