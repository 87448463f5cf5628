"""SimSAM's click simulation and aggregation from the paper's equations (Towle et al., ISBI 2024),
independent of samx's code. Input: a safetensors trace written by test_infer_simsam (samx's SAM
outputs: the initial prediction and the K candidates). Output: the reference clicks, labels, mask
prompt, IoU-matrix row means and choice, which the C test compares with samx's.

  eq. (2): p(e_n = 1) = 0.5 - |p(y_n | x) - 0.5|,  p = sigmoid(logits at the original size)
  eq. (3): z_k in TopK(q(z | x)), ties to the lower row-major index (authors' deterministic top-K)
  click label = 1 - b with b = p > 0.5; mask prompt = (initial low-res logits > 0) as 0/1
  eq. (4)-(5): y = argmax_k mean_j IoU(y_k, y_j) over the binarised candidates, diagonal included,
  IoU of two empty masks taken as 0 (the authors' NaN -> 0)
"""
import sys

import numpy as np
import torch

sys.path.insert(0, __file__.rsplit("/", 2)[0])
from st_io import load_safetensors, save_safetensors  # noqa: E402


def reference(t, img):
    logits = t[f"{img}.init_logits"].double().numpy()
    h, w = logits.shape
    p = 1.0 / (1.0 + np.exp(-logits.reshape(-1)))
    err = 0.5 - np.abs(p - 0.5)
    k = int(t[f"{img}.clicks"].shape[0])
    order = np.lexsort((np.arange(h * w), -err))  # by error descending, then index ascending
    clicks = order[:k]
    labels = 1 - (p[clicks] > 0.5).astype(np.int64)
    mask_prompt = (t[f"{img}.init_low_res"].double().numpy() > 0).astype(np.float32)
    cand = torch.sigmoid(t[f"{img}.cand_logits"].double()).numpy().reshape(k, -1) > 0.5
    inter = cand.astype(np.float64) @ cand.T.astype(np.float64)
    area = cand.sum(1).astype(np.float64)
    union = area[:, None] + area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    iou = np.nan_to_num(iou, nan=0.0)
    row_mean = iou.mean(1)
    chosen = int(np.argmax(row_mean))  # first maximum
    return {
        f"{img}.clicks": torch.from_numpy(clicks.astype(np.int64)),
        f"{img}.click_x": torch.from_numpy((clicks % w).astype(np.int64)),
        f"{img}.click_y": torch.from_numpy((clicks // w).astype(np.int64)),
        f"{img}.error": torch.from_numpy(err.astype(np.float64)).float(),
        f"{img}.labels": torch.from_numpy(labels.astype(np.int32)),
        f"{img}.mask_prompt": torch.from_numpy(mask_prompt),
        f"{img}.row_mean": torch.from_numpy(row_mean).float(),
        f"{img}.chosen": torch.tensor([chosen], dtype=torch.int32),
        f"{img}.mask": torch.from_numpy(cand[chosen].reshape(h, w).astype(np.uint8)),
    }


def main():
    t, _ = load_safetensors(sys.argv[1])
    images = sorted({k.split(".")[0] for k in t})
    out = {}
    for img in images:
        out.update(reference(t, img))
    save_safetensors(sys.argv[2], out)


if __name__ == "__main__":
    main()
