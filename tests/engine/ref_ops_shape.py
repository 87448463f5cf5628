import torch
import torch.nn.functional as F


# segment_anything/modeling/image_encoder.py, verbatim.
def window_partition(x, window_size):
    B, H, W, C = x.shape
    pad_h = (window_size - H % window_size) % window_size
    pad_w = (window_size - W % window_size) % window_size
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window_size, window_size, Wp // window_size, window_size, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, C)
    return windows, (Hp, Wp)


def window_unpartition(windows, window_size, pad_hw, hw):
    Hp, Wp = pad_hw
    H, W = hw
    B = windows.shape[0] // (Hp * Wp // window_size // window_size)
    x = windows.view(B, Hp // window_size, Wp // window_size, window_size, window_size, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, Hp, Wp, -1)
    if Hp > H or Wp > W:
        x = x[:, :H, :W, :].contiguous()
    return x


def cases():
    g = torch.Generator().manual_seed(5)

    def u(*shape):
        return torch.rand(*shape, generator=g) * 2 - 1

    yield "reshape", lambda x: x.reshape(4, -1), [u(2, 3, 4)], [True]
    yield "permute_3d", lambda x: x.permute(2, 0, 1), [u(2, 3, 4)], [True]
    yield "permute_4d", lambda x: x.permute(0, 2, 1, 3), [u(2, 3, 4, 5)], [True]
    yield "permute_5d", lambda x: x.permute(4, 2, 0, 3, 1), [u(2, 3, 2, 3, 2)], [True]
    yield "concat_dim1", lambda a, b, c: torch.cat([a, b, c], 1), [u(2, 3, 4), u(2, 1, 4), u(2, 2, 4)], [True] * 3
    yield "concat_dim0", lambda a, b: torch.cat([a, b], 0), [u(1, 3), u(2, 3)], [True, True]
    yield "concat_last", lambda a, b: torch.cat([a, b], -1), [u(2, 3, 2), u(2, 3, 3)], [True, True]
    yield "slice_mid", lambda x: x.narrow(1, 1, 3), [u(3, 5, 4)], [True]
    yield "slice_first", lambda x: x.narrow(0, 2, 2), [u(4, 3)], [True]
    yield "slice_last", lambda x: x.narrow(-1, 0, 2), [u(2, 3, 6)], [True]
    yield "window_partition_pad", lambda x: window_partition(x, 4)[0], [u(2, 10, 10, 3)], [True]
    yield "window_partition_exact", lambda x: window_partition(x, 4)[0], [u(1, 8, 8, 2)], [True]
    yield "window_partition_rect", lambda x: window_partition(x, 4)[0], [u(1, 6, 9, 2)], [True]
    yield "window_unpartition_pad", lambda w: window_unpartition(w, 4, (12, 12), (10, 10)), [u(18, 4, 4, 3)], [True]
    yield "window_unpartition_rect", lambda w: window_unpartition(w, 4, (8, 12), (6, 9)), [u(6, 4, 4, 2)], [True]
