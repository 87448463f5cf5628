import torch


def cases():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 5, 7, generator=g) * 10 - 5
    yield "relu", torch.relu, [x], [True]
    yield "gelu", torch.nn.GELU(), [x], [True]
    yield "sigmoid", torch.sigmoid, [x * 4], [True]
