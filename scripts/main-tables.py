#!/usr/bin/env python3
"""The main job's results table, seeds pooled (scripts/main.sh calls it).

    scripts/main-tables.py RUN SEEDS > RUN/table.md

RUN/methods.tsv lists "id|infer method|label" per row; the first row (sam-ft, the pretrained model)
is scored once from RUN/eval/sam-ft.json, every other row once per seed from
RUN/eval/seed<s>/<id>.json. A cell is the mean over seeds of the metric's mean over test samples,
± the sample standard deviation of those per-seed means (the spread over seeds). It also writes
RUN/eval/pooled/<id>.json: each test sample's metric averaged over the seeds, the input of the
paired tests (samx compare), so that a test compares methods on what does not depend on one seed.
"""
import json
import math
import os
import sys

COLS = [("D_avg ↑", "dice_avg"), ("GED ↓", "ged"), ("D_max ↑", "dmax"), ("HM-IoU ↑", "hm_iou")]


def mean_sd(xs):
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def pool(evals):
    """One eval JSON whose per-sample metrics are the means over evals (matched by dataset index)."""
    out = dict(evals[0])
    rows = {}
    for e in evals:
        for r in e["per_sample"]:
            rows.setdefault(r["index"], []).append(r)
    per_sample = []
    for index in sorted(rows):
        rs = rows[index]
        if len(rs) != len(evals):
            sys.exit(f"main-tables: sample {index} is not scored in every seed's eval file")
        merged = {"index": index}
        for k in rs[0]:
            if k == "index":
                continue
            vals = [r[k] for r in rs]
            ok = [v for v in vals if isinstance(v, (int, float)) and math.isfinite(v)]
            merged[k] = sum(ok) / len(ok) if len(ok) == len(vals) else None
        per_sample.append(merged)
    out["per_sample"] = per_sample
    out["n"] = len(per_sample)
    metrics = {}
    for k in evals[0]["metrics"]:
        vals = [r[k] for r in per_sample if r.get(k) is not None]
        if vals:
            m, sd = mean_sd(vals)
            metrics[k] = {"mean": m, "std": sd or 0.0, "n_valid": len(vals)}
        else:
            metrics[k] = {"mean": None, "std": None, "n_valid": 0}
    out["metrics"] = metrics
    out["pooled_seeds"] = len(evals)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    run, seeds = sys.argv[1], int(sys.argv[2])
    rows = [line.rstrip("\n").split("|") for line in open(f"{run}/methods.tsv") if line.strip()]
    os.makedirs(f"{run}/eval/pooled", exist_ok=True)
    print("| method | " + " | ".join(c for c, _ in COLS) + " | runs |")
    print("|---|" + "---:|" * len(COLS) + "---:|")
    n = None
    for i, (ident, _, label) in enumerate(rows):
        if i == 0:
            evals = [json.load(open(f"{run}/eval/{ident}.json"))]
        else:
            evals = [json.load(open(f"{run}/eval/seed{s}/{ident}.json")) for s in range(1, seeds + 1)]
            tmp = f"{run}/eval/pooled/{ident}.json.part"
            with open(tmp, "w") as f:
                json.dump(pool(evals), f)
            os.replace(tmp, f"{run}/eval/pooled/{ident}.json")
        cells = []
        for _, k in COLS:
            m, sd = mean_sd([e["metrics"][k]["mean"] for e in evals])
            cells.append(f"{m:.3f} ± {sd:.3f}" if sd is not None else f"{m:.3f}")
        n = evals[0]["n"]
        print(f"| {label} | " + " | ".join(cells) + f" | {len(evals)} |")
    print(f"\n(test split, {n} samples; each cell: the mean over runs (seeds 1..{seeds}) of the metric's mean "
          f"over samples ± the standard deviation of those means over seeds; {rows[0][2]} is one run, "
          f"the pretraining, which every seed starts from; empty-mask policy "
          f"{evals[0].get('empty_policy', '?')})")


if __name__ == "__main__":
    main()
