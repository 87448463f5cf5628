import numpy as np
import torch

# f32 bit patterns around bf16/f16 rounding edges: ties (both parities), just above a tie, overflow to
# inf, subnormals (and their carry into the normals), signed zeros, infinities, NaNs.
SPECIAL_BITS = [
    0x3F808000, 0x3F818000, 0x3F808001, 0x7F7FFFFF, 0x7F7F7FFF, 0x00000001, 0x00018000, 0x00008000,
    0x80008000, 0x3F801000, 0x3F803000, 0x477FE000, 0x477FEFFF, 0x477FF000, 0xC77FF000, 0x33800000,
    0x33000000, 0x33000001, 0x33C00000, 0xB3C00000, 0x38800000, 0x387FE000, 0x2EDBE6FF, 0x00000000,
    0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0x3F800000, 0x40490FDB,
]


def special_values():
    return torch.from_numpy(np.array(SPECIAL_BITS, dtype=np.uint32).view(np.float32).copy())


def cases():
    g = torch.Generator().manual_seed(3)

    def u(*shape, lo=-1.0, hi=1.0):
        return torch.rand(*shape, generator=g) * (hi - lo) + lo

    yield "add_same", torch.add, [u(3, 4, 5), u(3, 4, 5)], [True, True]
    yield "add_bias", torch.add, [u(2, 3, 4), u(4)], [True, True]
    yield "sub_both", torch.sub, [u(2, 1, 4), u(3, 1)], [True, True]
    yield "sub_rank", torch.sub, [u(5), u(2, 3, 5)], [True, True]
    yield "mul_scalar", torch.mul, [u(1), u(2, 3)], [True, True]
    yield "mul_4d", torch.mul, [u(2, 3, 1, 5), u(3, 4, 1)], [True, True]
    yield "mul_outer", torch.mul, [u(4, 1), u(1, 5)], [True, True]
    yield "add_5d", torch.add, [u(2, 1, 3, 1, 2), u(1, 4, 1, 5, 1)], [True, True]
    yield "scale", lambda x: x * -2.5, [u(3, 5)], [True]
    yield "add_scalar", lambda x: x + 0.75, [u(3, 5)], [True]
    yield "softmax", lambda x: torch.softmax(x, -1), [u(4, 7, lo=-5, hi=5)], [True]
    yield "softmax_large", lambda x: torch.softmax(x, -1), [u(2, 3, 33, lo=-100, hi=100)], [True]
    yield "sum", lambda x: x.sum().reshape(1), [u(3, 4, 5)], [True]
    yield "mean", lambda x: x.mean().reshape(1), [u(3, 4, 5)], [True]
    yield "sum_dim1", lambda x: x.sum(dim=1), [u(3, 4, 5)], [True]
    yield "sum_dimlast_keep", lambda x: x.sum(dim=-1, keepdim=True), [u(3, 4, 5)], [True]
    yield "mean_dim0", lambda x: x.mean(dim=0), [u(3, 4, 5)], [True]
    yield "mean_dim1_long", lambda x: x.mean(dim=1, keepdim=True), [u(2, 100, 3)], [True]
    # Not op cases: read by the plain cast test (round to nearest even on special values).
    yield "cast_special_bf16", lambda x: x.to(torch.bfloat16), [special_values()], [False]
    yield "cast_special_f16", lambda x: x.half(), [special_values()], [False]
