#!/usr/bin/env python3
"""`samx bench train`'s step in PyTorch: the official segment_anything PromptEncoder + MaskDecoder
(+ TwoWayTransformer) with random weights of the same architecture, SeqSAM's recurrent cell, the
methods' losses, backward, gradient clipping and torch.optim.AdamW, timed like torch_bench.py
(median of --reps after one warm-up step). --precision bf16 runs the step as PyTorch's mixed precision
does (torch.autocast to bfloat16 over fp32 parameters and optimizer state) with every attention through
F.scaled_dot_product_attention (torch_bench.use_sdpa); tf32 allows TF32 matmuls; fp32 (the default)
disallows them.

usage: torch_train.py train --device cpu|cuda:N --reps R --threads T --specs FILE [--precision P]
(torch_bench.py routes its "train" mode here.) One spec per line, "train METHOD MODEL B M K", one line of
milliseconds per spec on stdout.

The step mirrors bench/bench_train.c: B random embeddings [C, g, g] uploaded from the host, one box per
sample, K disc-shaped annotator masks at the low-res logits' resolution (4g), then
  seqsam: M-step rollout; at step t the prompt encoder embeds the previous low-res logits (none at t = 0),
          conv_out(concat(dense, hidden)) is the dense prompt and conv_hidden(...) the next hidden state
          (3x3, 2C -> C, N(0, 0.02) weights); BPTT through the fed-back logits; per image the Hungarian
          matching (scipy's linear_sum_assignment on the detached pair Dice costs) of the M outputs (K of
          them, one per strided chunk, when M > K) to the K labels, matched Dice summed and divided by K;
  mcl:    3 multimask outputs, winner-takes-all Dice against annotator 0, mean over the batch;
  sam-ft: single-mask output, Dice + BCE with logits;
then backward, clip_grad_norm_(1.0) and AdamW (lr 1e-4, weight decay 0.01, none on 1-d tensors);
  fewshot: the few-shot decoder (models/fewshot/fewshot.h) built from the official modules: the K masks are
          K labels, tokens = [2K new output tokens, the B * K target embeddings (masked averages of the
          embeddings over the masks at the grid, majority of each cell)], the official TwoWayTransformer on
          all B images at once with the image PE and no_mask_embed added, the official output_upscaling,
          one official MLP per output token (copies of output_hypernetworks_mlps[0]); Dice over the two
          channels; Adam (lr 1e-4, betas 0.9, 0.99), no clipping.
Soft Dice is MONAI's DiceLoss(sigmoid, squared_pred, smooth 1e-5) of one map pair. The official
MaskDecoder decodes the prompts of one image per call (Sam.forward loops over images), so the batch is
decoded sample by sample, as the official code does.
"""
import argparse
import contextlib
import sys
import os

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from torch_bench import build_sam, median_ms

EPS = 1e-5


def soft_dice(logits, target):
    """Dice loss of every pair: logits [..., h, w] against target [..., h, w] (broadcast)."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum((-2, -1))
    return 1 - (2 * inter + EPS) / ((p * p).sum((-2, -1)) + (target * target).sum((-2, -1)) + EPS)


def strided_selection(M, K, rng):
    """Randomised strided pooling: one output from each of K near-equal consecutive chunks (all when M <= K)."""
    if M <= K:
        return list(range(M))
    return [int(rng.integers(j * M // K, (j + 1) * M // K)) for j in range(K)]


def set_dice_loss(outs, labels, nonempty, selected):
    """SeqSAM's Hungarian-matched soft-Dice set loss; outs: M tensors [B, 1, L, L], labels [B, K, L, L]."""
    B, K = labels.shape[:2]
    loss = 0
    for b in range(B):
        preds = torch.stack([outs[t][b, 0] for t in selected[b]])           # [M', L, L]
        cost = soft_dice(preds[:, None], labels[b][None])                    # [M', K]
        rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
        rows, cols = torch.as_tensor(rows, device=cost.device), torch.as_tensor(cols, device=cost.device)
        loss = loss + (cost[rows, cols] * nonempty[b, cols]).sum()
    return loss / K


class Step:
    def __init__(self, method, model, B, M, K, dev):
        torch.manual_seed(0)
        _, self.pe, self.dec, size = build_sam(model, dev)
        self.pe.train(), self.dec.train()
        C, g = self.pe.embed_dim, self.pe.image_embedding_size[0]
        self.method, self.B, self.M, self.K, self.dev = method, B, M, K, dev
        params = list(self.pe.parameters()) + list(self.dec.parameters())
        if method == "seqsam":
            self.conv_out = torch.nn.Conv2d(2 * C, C, 3, padding=1).to(dev)
            self.conv_hidden = torch.nn.Conv2d(2 * C, C, 3, padding=1).to(dev)
            for conv in (self.conv_out, self.conv_hidden):
                torch.nn.init.normal_(conv.weight, 0, 0.02)
                torch.nn.init.zeros_(conv.bias)
                params += list(conv.parameters())
        if method == "fewshot":
            self.fewshot_init(C, g, K, dev)
            params = [self.tokens.weight] + [p for m in self.hyper for p in m.parameters()] + list(self.dec.parameters())
        self.params = params
        if method == "fewshot":
            self.opt = torch.optim.Adam(params, lr=1e-4, betas=(0.9, 0.99))
        else:
            self.opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim > 1], "weight_decay": 0.01},
                                          {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
                                         lr=1e-4)
        self.emb_host = torch.rand(B, C, g, g) - 0.5
        L = 4 * g
        yy, xx = torch.meshgrid(torch.arange(L, dtype=torch.float32), torch.arange(L, dtype=torch.float32),
                                indexing="ij")
        labels, boxes = torch.zeros(B, K, L, L), []
        for b in range(B):
            cx, cy, r0 = L * (0.35 + 0.3 * b / B), L * (0.6 - 0.2 * b / B), L * 0.15
            for k in range(K):
                r = r0 * (0.6 + 0.4 * k / K)
                labels[b, k] = (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).float()
            s = size / L
            boxes.append([(cx - r0) * s, (cy - r0) * s, (cx + r0) * s, (cy + r0) * s])
        self.labels = labels.to(dev)
        self.target = self.labels[:, 0]
        self.nonempty = (self.labels.sum((2, 3)) > 0).float()
        self.boxes = torch.tensor(boxes, dtype=torch.float32, device=dev)
        self.rng = np.random.default_rng(42)
        if method == "fewshot":
            self.fewshot_targets(g)

    def fewshot_init(self, C, g, K, dev):
        import copy
        self.tokens = torch.nn.Embedding(2 * K, C).to(dev)
        torch.nn.init.kaiming_normal_(self.tokens.weight, nonlinearity="relu")  # He: std sqrt(2 / C)
        self.hyper = torch.nn.ModuleList([copy.deepcopy(self.dec.output_hypernetworks_mlps[0]) for _ in range(2 * K)]).to(dev)

    def fewshot_targets(self, g):
        """Masked averages of each sample's embedding over its K masks taken to the g x g grid (majority)."""
        B, K, L = self.labels.shape[:3]
        w = F.avg_pool2d(self.labels.reshape(B * K, 1, L, L), L // g).reshape(B, K, g * g)
        w = (w >= 0.5).float()
        emb = self.emb_host.to(self.dev).reshape(B, -1, g * g)
        self.targets = (torch.einsum("bkp,bcp->bkc", w, emb) / w.sum(-1, keepdim=True)).permute(1, 0, 2).reshape(B * K, -1)

    def fewshot_loss(self, emb):
        B, C = emb.shape[:2]
        tokens = torch.cat([self.tokens.weight, self.targets], 0)[None].expand(B, -1, -1)
        src = emb + self.pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        hs, src = self.dec.transformer(src, self.pe.get_dense_pe(), tokens)
        g = emb.shape[-1]
        up = self.dec.output_upscaling(src.transpose(1, 2).reshape(B, C, g, g))
        hyper = torch.stack([m(hs[:, j]) for j, m in enumerate(self.hyper)], 1)
        b, c, h, w = up.shape
        masks = (hyper @ up.reshape(b, c, h * w)).reshape(b, -1, h, w)
        d = masks[:, 0::2] - masks[:, 1::2]                                  # [B, K, 4g, 4g]: fg - bg
        fg = soft_dice(d, self.labels).mean(0)
        bg = soft_dice(-d, 1 - self.labels).mean(0)
        return (0.5 * (fg + bg)).mean()

    def decode(self, emb, sparse, dense, multimask):
        """The official decoder, one image (and its one prompt) per call."""
        pe = self.pe.get_dense_pe()
        outs = [self.dec(image_embeddings=emb[b:b + 1], image_pe=pe, sparse_prompt_embeddings=sparse[b:b + 1],
                         dense_prompt_embeddings=dense[b:b + 1], multimask_output=multimask)[0]
                for b in range(self.B)]
        return torch.cat(outs, 0)

    def rollout(self, emb):
        B = self.B
        hidden, mask, outs = None, None, []
        for t in range(self.M):
            sparse, dense = self.pe(points=None, boxes=self.boxes, masks=mask)
            dense = dense.expand(B, -1, -1, -1)
            if hidden is None:
                hidden = torch.zeros_like(dense)
            x = torch.cat([dense, hidden], 1)
            prompt = self.conv_out(x)
            if t + 1 < self.M:
                hidden = self.conv_hidden(x)
            mask = self.decode(emb, sparse, prompt, False)
            outs.append(mask)
        return outs

    def loss(self, emb):
        if self.method == "fewshot":
            return self.fewshot_loss(emb)
        if self.method == "seqsam":
            selected = [strided_selection(self.M, self.K, self.rng) for _ in range(self.B)]
            return set_dice_loss(self.rollout(emb), self.labels, self.nonempty, selected)
        sparse, dense = self.pe(points=None, boxes=self.boxes, masks=None)
        if self.method == "mcl":
            low = self.decode(emb, sparse, dense, True)                       # [B, 3, L, L]
            return soft_dice(low, self.target[:, None]).min(1).values.mean()
        low = self.decode(emb, sparse, dense, False)[:, 0]
        return soft_dice(low, self.target).mean() + F.binary_cross_entropy_with_logits(low, self.target)

    def __call__(self):
        self.opt.zero_grad()
        with getattr(self, "amp", contextlib.nullcontext)():  # mixed_precision() sets it
            loss = self.loss(self.emb_host.to(self.dev))
        value = loss.item()
        loss.backward()
        if self.method != "fewshot":
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return value


def build(spec, dev):
    f = spec.split()
    if len(f) == 6 and f[0] == "train" and f[1] in ("p2sam-s1", "p2sam-s2"):  # bench/torch_train_p2sam.py
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import torch_train_p2sam
        return torch_train_p2sam.Step(int(f[1][-1]), f[2], int(f[3]), dev)
    if f[0] != "train" or len(f) != 6 or f[1] not in ("seqsam", "mcl", "sam-ft", "fewshot"):
        raise SystemExit(f"torch_train: bad spec {spec!r} (train seqsam|mcl|sam-ft MODEL B M K)")
    return Step(f[1], f[2], int(f[3]), int(f[4]), int(f[5]), dev)


def mixed_precision(step, dev):
    """The step's forward and loss under torch.autocast(bfloat16) (backward outside it, as PyTorch's AMP
    recipe says), its attentions through scaled_dot_product_attention."""
    from torch_bench import use_sdpa
    use_sdpa(*[m for m in vars(step).values() if isinstance(m, torch.nn.Module)])
    step.amp = lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)
    return step


def run(a):
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    precision = getattr(a, "precision", "fp32")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    for spec in open(a.specs).read().splitlines():
        step = build(spec, dev)
        if precision == "bf16":
            step = mixed_precision(step, dev)
        print(f"{median_ms(step, a.reps, sync):.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["train"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--specs", required=True)
    ap.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
