import torch
import torch.nn.functional as F

# name, trans_a, trans_b, a's shape, b's shape (the same cases as test_ops_linalg.c)
MATMUL = [
    ("matmul_nn", 0, 0, (5, 7), (7, 4)),
    ("matmul_tn", 1, 0, (7, 5), (7, 4)),
    ("matmul_nt", 0, 1, (5, 7), (4, 7)),
    ("matmul_tt", 1, 1, (7, 5), (4, 7)),
    ("matmul_batch3_tn", 1, 0, (3, 6, 5), (3, 6, 4)),
    ("matmul_batch4_nt", 0, 1, (2, 3, 4, 5), (2, 3, 6, 5)),
    ("matmul_batch4_tt", 1, 1, (2, 2, 5, 3), (2, 2, 4, 5)),
    ("matmul_shared_nn", 0, 0, (2, 3, 5, 7), (7, 4)),
    ("matmul_shared_nt", 0, 1, (4, 5, 7), (3, 7)),
    ("matmul_shared_tn", 1, 0, (3, 7, 5), (7, 4)),
    ("matmul_shared_tt", 1, 1, (3, 7, 5), (4, 7)),
]


def matmul(trans_a, trans_b):
    def fn(a, b):
        return torch.matmul(a.transpose(-1, -2) if trans_a else a, b.transpose(-1, -2) if trans_b else b)
    return fn


def lora_linear(scale, has_bias):
    # peft's LoRA: base linear plus scale * B(A(x)).
    def fn(x, w, *rest):
        bias = rest[0] if has_bias else None
        lora_a, lora_b = rest[-2:]
        return F.linear(x, w, bias) + scale * F.linear(F.linear(x, lora_a), lora_b)
    return fn


def cases():
    g = torch.Generator().manual_seed(7)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float32) * 2 - 1

    for name, ta, tb, sa, sb in MATMUL:
        yield name, matmul(ta, tb), [rand(*sa), rand(*sb)], [True, True]
    yield "linear_bias", F.linear, [rand(6, 5), rand(4, 5), rand(4)], [True, True, True]
    yield "linear_nobias", F.linear, [rand(6, 5), rand(4, 5)], [True, True]
    yield "linear_3d", F.linear, [rand(2, 3, 5), rand(4, 5), rand(4)], [True, True, True]
    yield ("lora_frozen", lora_linear(0.5, True), [rand(2, 3, 6), rand(5, 6), rand(5), rand(2, 6), rand(5, 2)],
           [True, False, False, True, True])
    yield ("lora_trainable", lora_linear(2.0, False), [rand(4, 6), rand(5, 6), rand(3, 6), rand(5, 3)],
           [True, True, True, True])
    # Repeated indices (3, 0, 9) so the table gradient sums rows.
    idx = torch.tensor([[1, 3, 3, 9], [0, 0, 5, 2], [9, 1, 7, 3]], dtype=torch.int64)
    yield "embedding", lambda table, i: F.embedding(i, table), [rand(10, 6), idx], [True, False]
