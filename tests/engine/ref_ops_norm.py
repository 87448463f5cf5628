import torch
import torch.nn.functional as F


def layernorm2d(x, weight, bias, eps):
    # segment_anything/modeling/common.py: LayerNorm2d.forward
    u = x.mean(1, keepdim=True)
    s = (x - u).pow(2).mean(1, keepdim=True)
    x = (x - u) / torch.sqrt(s + eps)
    x = weight[:, None, None] * x + bias[:, None, None]
    return x


def cases():
    g = torch.Generator().manual_seed(2)

    # x in [lo, hi]: the eps cases use a variance close to eps (as in test_ops_norm.c).
    def inputs(shape, C, lo=-1.0, hi=3.0):
        x = torch.rand(shape, generator=g) * (hi - lo) + lo
        w = torch.rand(C, generator=g) + 0.5
        b = torch.rand(C, generator=g) * 2 - 1
        return [x, w, b]

    def layernorm(C, eps):
        return lambda x, w, b: F.layer_norm(x, (C,), w, b, eps)

    yield "layernorm_eps1e-5", layernorm(40, 1e-5), inputs((3, 5, 40), 40, -0.012, 0.004), [True] * 3
    yield "layernorm_eps1e-6", layernorm(33, 1e-6), inputs((7, 33), 33, -0.001, 0.003), [True] * 3
    yield "layernorm_rows150", layernorm(8, 1e-6), inputs((150, 8), 8), [True] * 3
    yield "layernorm2d", lambda x, w, b: layernorm2d(x, w, b, 1e-6), inputs((2, 6, 7, 9), 6), [True] * 3
    yield "layernorm2d_eps1e-5", lambda x, w, b: layernorm2d(x, w, b, 1e-5), inputs((1, 16, 3, 4), 16, -0.012, 0.004), [True] * 3
