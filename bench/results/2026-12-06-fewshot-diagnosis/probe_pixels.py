# Per-pixel probe of cached embeddings against the pixel intensity (README "Few-shot decoders"):
#   python3 probe_pixels.py anatomy.h5 anatomy_emb.h5 [shots]
# A 64-unit MLP per pixel, class-balanced cross-entropy, on every 6th train-split slice or on 5
# random train-split shots; pixel IoU per structure on every 3rd test-split slice.
# per-pixel probe: embeddings bilinearly upsampled to the image vs the pixel's own intensity
import h5py, numpy as np, sys, torch, torch.nn.functional as F
torch.manual_seed(0)
d, e = sys.argv[1], sys.argv[2]
f = h5py.File(d); E = torch.tensor(h5py.File(e)['embeddings'][:])
lab = torch.tensor(f['labels'][:]).long(); split = f['split'][:]; img = torch.tensor(f['images'][:])
N, C, g, _ = E.shape; H = lab.shape[1]
tr = np.where(split == 0)[0]; te = np.where(split == 2)[0]; te = te[::3]; tr_all = tr; tr = tr[::6]
rng = np.random.default_rng(0); shots = rng.choice(tr_all, int(sys.argv[3]) if len(sys.argv) > 3 else 5, replace=False)
def feats(rows, kind):
    x = E[rows]
    up = F.interpolate(x, size=(H, H), mode='bilinear', align_corners=False)
    if kind == 'emb': return up
    if kind == 'int': return img[rows][:, None]
def iou(p, y, k): return ((p == k) & (y == k)).sum().item() / max(1, ((p == k) | (y == k)).sum().item())
for kind in ('emb', 'int'):
    for rows, name in ((tr, 'all train'), (shots, '%d shots' % len(shots))):
        X = feats(rows, kind); Cx = X.shape[1]
        Xs = X.permute(0, 2, 3, 1).reshape(-1, Cx); ys = lab[rows].reshape(-1)
        mu, sd = Xs.mean(0), Xs.std(0) + 1e-6
        W = 1.0 / torch.bincount(ys, minlength=4).float().clamp(min=1); W = W / W.sum()
        # a small MLP per pixel (what a decoder could do locally)
        net = torch.nn.Sequential(torch.nn.Linear(Cx, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        idx = torch.randperm(len(ys))[:20000]
        for i in range(200):
            opt.zero_grad(); l = F.cross_entropy(net((Xs[idx] - mu) / sd), ys[idx], weight=W); l.backward(); opt.step()
        Xt = feats(te, kind).permute(0, 2, 3, 1).reshape(-1, Cx); yt = lab[te].reshape(-1)
        with torch.no_grad(): p = net((Xt - mu) / sd).argmax(1)
        print('%-4s %-10s pixel IoU organ/vessel/bone:' % (kind, name), ' '.join('%.2f' % iou(p, yt, k) for k in (1, 2, 3)))
