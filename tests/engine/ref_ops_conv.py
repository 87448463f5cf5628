import torch
import torch.nn.functional as F


def cases():
    g = torch.Generator().manual_seed(3)

    def rand(*shape):
        return torch.rand(shape, generator=g) * 2 - 1

    # name, B, Cin, H, W, Cout, kh, kw, stride, pad, bias (as in test_ops_conv.c)
    conv2d = [
        ("conv2d_k1", 2, 5, 4, 6, 3, 1, 1, 1, 0, True),
        ("conv2d_k3p1", 2, 3, 7, 9, 4, 3, 3, 1, 1, True),
        ("conv2d_k3p1_nobias", 1, 2, 6, 5, 3, 3, 3, 1, 1, False),
        ("conv2d_k2s2", 2, 4, 6, 8, 3, 2, 2, 2, 0, True),
        ("conv2d_k4s4_patch", 1, 3, 12, 8, 5, 4, 4, 4, 0, True),
        ("conv2d_k3s2_odd", 2, 3, 7, 6, 2, 3, 3, 2, 0, False),
        ("conv2d_k3s2p1_odd", 1, 2, 5, 7, 3, 3, 3, 2, 1, True),
        ("conv2d_k1x3p1", 1, 3, 4, 5, 2, 1, 3, 1, 1, True),
        ("conv2d_k3p1_wide", 1, 1, 2, 520, 2, 3, 3, 1, 1, True),
    ]
    for name, B, ci, H, W, co, kh, kw, s, p, bias in conv2d:
        ins = [rand(B, ci, H, W), rand(co, ci, kh, kw)] + ([rand(co)] if bias else [])
        yield name, lambda x, w, b=None, s=s, p=p: F.conv2d(x, w, b, stride=s, padding=p), ins, [True] * len(ins)

    conv_t = [
        ("conv_transpose2d_k2s2", 2, 4, 3, 5, 3, 2, 2, 2, 0, True),
        ("conv_transpose2d_k3s2p1", 1, 3, 4, 3, 2, 3, 3, 2, 1, True),
        ("conv_transpose2d_k3s1p1_nobias", 1, 2, 4, 4, 3, 3, 3, 1, 1, False),
        ("conv_transpose2d_k1", 2, 3, 3, 4, 2, 1, 1, 1, 0, True),
        ("conv_transpose2d_k3x2s2", 1, 2, 3, 4, 3, 3, 2, 2, 0, True),
        ("conv_transpose2d_k2s2_wide", 1, 1, 2, 300, 1, 2, 2, 2, 0, True),
    ]
    for name, B, ci, H, W, co, kh, kw, s, p, bias in conv_t:
        ins = [rand(B, ci, H, W), rand(ci, co, kh, kw)] + ([rand(co)] if bias else [])
        yield (name, lambda x, w, b=None, s=s, p=p: F.conv_transpose2d(x, w, b, stride=s, padding=p), ins,
               [True] * len(ins))

    resize = [
        ("resize_up", 2, 3, 5, 7, 12, 16),
        ("resize_down", 1, 2, 12, 16, 5, 7),
        ("resize_same", 1, 2, 4, 5, 4, 5),
        ("resize_mixed", 1, 1, 6, 5, 3, 9),
        ("resize_to_1x1", 1, 2, 4, 3, 1, 1),
    ]
    for name, B, C, H, W, ho, wo in resize:
        fn = lambda x, ho=ho, wo=wo: F.interpolate(x, size=(ho, wo), mode="bilinear", align_corners=False)
        yield name, fn, [rand(B, C, H, W)], [True]

    # P2SAM's prior encoder pooling: nn.AvgPool2d(2, 2, ceil_mode=True) (count_include_pad's default)
    pool = [
        ("avg_pool2_ceil_even", 2, 3, 6, 4),
        ("avg_pool2_ceil_odd", 1, 2, 5, 7),
        ("avg_pool2_ceil_1x3", 1, 2, 1, 3),
        ("avg_pool2_ceil_odd_square", 2, 1, 9, 9),
    ]
    for name, B, C, H, W in pool:
        yield name, lambda x: F.avg_pool2d(x, 2, 2, ceil_mode=True), [rand(B, C, H, W)], [True]
