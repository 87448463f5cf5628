#!/usr/bin/env python3
"""The main job's second table: the few-shot decoder on the synthetic anatomy volumes, seeds pooled.

    scripts/fewshot-table.py A SEEDS > RUN/table2.md

SAM with a point or a box per component has no seed: it is scored once, from A/eval/sam-{point,box}.json.
The atlas of the 5 shots and the few-shot decoders depend on the seed (which slices are the shots, the
decoder's training order): A/seed<s>/eval/{atlas-5,fewshot-N}.json for s = 1..SEEDS. A cell is the mean
over seeds of the structure's mean over the test slices that hold it, ± the sample standard deviation of
those per-seed means (the spread over seeds). The last lines say, per claim of the few-shot paper, in
how many seeds it holds (the fit on the shots from A/seed<s>/fewshot_5/log.jsonl).
"""
import json
import math
import sys

COLS = [("SAM point", "sam-point"), ("SAM box", "sam-box"), ("atlas (5 shots)", "atlas-5"),
        ("ours n=5", "fewshot-5"), ("ours n=20", "fewshot-20"), ("ours n=50", "fewshot-50")]
METRICS = [("IoU %", "iou", 100), ("ASSD mm", "assd_mm", 1)]


def load(a, seeds, key):
    if key.startswith("sam-"):
        return [json.load(open(f"{a}/eval/{key}.json"))]
    return [json.load(open(f"{a}/seed{s}/eval/{key}.json")) for s in range(1, seeds + 1)]


def label_mean(ev, i, key):
    m = ev["labels"][i][key]["mean"]
    return None if m is None else float(m)


def cell(evals, i, key, scale):
    xs = [label_mean(e, i, key) for e in evals]
    if any(x is None for x in xs):
        return "n/a"
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return f"{scale * m:.1f}"
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    return f"{scale * m:.1f} ± {scale * sd:.1f}"


def main():
    a, seeds = sys.argv[1], int(sys.argv[2])
    res = {k: load(a, seeds, k) for _, k in COLS}
    labels = [lab["name"] for lab in res["sam-point"][0]["labels"]]
    print("| anatomy | metric | " + " | ".join(c for c, _ in COLS) + " |")
    print("|---|---|" + "---:|" * len(COLS))
    for i, name in enumerate(labels):
        for metric, key, scale in METRICS:
            print(f"| {name} | {metric} | " + " | ".join(cell(res[k], i, key, scale) for _, k in COLS) + " |")
    rows = res["sam-point"][0]["rows"]
    print(f"\n(test split of the synthetic anatomy volumes, {rows} slices; a structure's metric is its mean over "
          f"the slices that hold it (ASSD over those with a non-empty prediction); seeded columns: mean over "
          f"{seeds} seed(s) ± spread over seeds; SAM point and box have no seed)")
    # The paper's claims per seed, for 5 shots: few-shot above SAM point and above the atlas of its shots.
    for base, bname in (("sam-point", "SAM point"), ("atlas-5", "the atlas of the same 5 shots")):
        held = []
        for i, name in enumerate(labels):
            wins = 0
            for s in range(seeds):
                b = res[base][0 if base.startswith("sam-") else s]
                wins += (label_mean(res["fewshot-5"][s], i, "iou") or 0.0) > (label_mean(b, i, "iou") or 0.0)
            held.append(f"{name} {wins}/{seeds}")
        print(f"\n5 shots above {bname} in IoU, seeds where it holds: " + ", ".join(held))
    # ... and the decoder fits its own shots (IoU >= 0.9 on them, the last shot_iou of its log).
    fits = []
    for s in range(1, seeds + 1):
        logs = [json.loads(line) for line in open(f"{a}/seed{s}/fewshot_5/log.jsonl") if "shot_iou" in line]
        fits.append(logs[-1]["shot_iou"])
    held = [f"{name} {sum(f[i] >= 0.9 for f in fits)}/{seeds} (" + " / ".join(f"{f[i]:.2f}" for f in fits) + ")"
            for i, name in enumerate(labels)]
    print("\n5 shots fitted (IoU >= 0.9 on the shots themselves), seeds where it holds: " + ", ".join(held))


if __name__ == "__main__":
    main()
