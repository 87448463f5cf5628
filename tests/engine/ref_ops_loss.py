import torch
import torch.nn.functional as F


def reduce(loss, reduction):
    if reduction == "none":
        return loss
    return (loss.mean() if reduction == "mean" else loss.sum()).reshape(1)


def scalar_as_1(y):
    return y.reshape(1) if y.dim() == 0 else y


def focal(x, t, alpha, gamma, reduction):
    # torchvision.ops.sigmoid_focal_loss, written out (torchvision is not installed here).
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return reduce(loss, reduction)


def dice(x, t, w=None, from_logits=True, squared=False, eps=1.0, reduction="mean", per_sample=True):
    p = torch.sigmoid(x) if from_logits else x
    rows = x.shape[0] if per_sample else 1
    p, t = p.reshape(rows, -1), t.reshape(rows, -1)
    inter = (p * t).sum(1)
    den = (p * p).sum(1) + (t * t).sum(1) if squared else p.sum(1) + t.sum(1)
    d = 1 - (2 * inter + eps) / (den + eps)
    if w is not None:
        d = d * w
    if reduction == "none":
        return d
    if reduction == "sum":
        return d.sum().reshape(1)
    return (d.sum() / (w.sum() if w is not None else rows)).reshape(1)


def cases():
    g = torch.Generator().manual_seed(3)
    shape = (3, 2, 4, 5)

    def uniform(lo, hi, s=shape):
        return torch.rand(s, generator=g) * (hi - lo) + lo

    def target(binary=False, zero_row=None):
        t = uniform(0, 1)
        if binary:
            t = (t > 0.5).float()
        if zero_row is not None:
            t[zero_row] = 0
        return t

    def weight(zero=None):
        w = uniform(0.2, 1, (3,))
        if zero is not None:
            w[zero] = 0
        return w

    x = uniform(-3, 3)
    yield ("dice_sq_sample_mean", lambda x, t: dice(x, t, squared=True),
           [x, target()], [True, False])
    yield ("dice_plain_sample_none_zero", lambda x, t: dice(x, t, reduction="none"),
           [x, target(zero_row=1)], [True, False])
    yield ("dice_sq_weighted_mean", lambda x, t, w: dice(x, t, w, squared=True),
           [x, target(binary=True, zero_row=0), weight(zero=2)], [True, False, False])
    yield ("dice_plain_weighted_sum", lambda x, t, w: dice(x, t, w, eps=0.5, reduction="sum"),
           [x, target(zero_row=2), weight()], [True, False, False])
    yield ("dice_sq_weighted_none", lambda x, t, w: dice(x, t, w, squared=True, reduction="none"),
           [x, target(), weight(zero=1)], [True, False, False])
    yield ("dice_plain_probs_global",
           lambda p, t: dice(p, t, from_logits=False, eps=1e-3, per_sample=False),
           [uniform(0.05, 0.95), target(zero_row=1)], [True, False])
    yield ("dice_sq_global_sum",
           lambda x, t: dice(x, t, squared=True, eps=0.01, reduction="sum", per_sample=False),
           [x, target(binary=True)], [True, False])

    x = uniform(-6, 6)
    for red, binary in (("mean", False), ("sum", True), ("none", False)):
        yield (f"bce_{red}", lambda x, t, red=red: scalar_as_1(F.binary_cross_entropy_with_logits(x, t, reduction=red)),
               [x, target(binary=binary)], [True, False])

    x = uniform(-4, 4)
    yield "focal_mean", lambda x, t: focal(x, t, 0.25, 2.0, "mean"), [x, target(binary=True)], [True, False]
    yield "focal_none_noalpha", lambda x, t: focal(x, t, -1, 1.5, "none"), [x, target()], [True, False]
    yield "focal_sum_gamma0", lambda x, t: focal(x, t, 0.6, 0.0, "sum"), [x, target()], [True, False]

    x = uniform(-2, 2)
    for red in ("mean", "sum", "none"):
        yield f"mse_{red}", lambda x, t, red=red: scalar_as_1(F.mse_loss(x, t, reduction=red)), [x, target()], [True, False]
