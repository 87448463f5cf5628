"""bf16 against fp32 training from two `samx train` logs (log.jsonl): the loss curves' agreement and
the validation metrics side by side, as a markdown table.

usage: python3 compare.py FP32_LOG_JSONL BF16_LOG_JSONL
"""
import json
import sys


def load(path):
    loss, val = {}, {}
    for line in open(path):
        r = json.loads(line)
        if "val" in r:
            val[r["step"]] = r["val"]
        elif "loss" in r:
            loss[r["step"]] = r["loss"]
    return loss, val


def moving_average(loss, step, k=5):
    return sum(loss[t] for t in range(step - k + 1, step + 1)) / k


def main():
    lf, vf = load(sys.argv[1])
    lb, vb = load(sys.argv[2])
    steps = sorted(set(lf) & set(lb))
    early = max(abs(lb[s] - lf[s]) / abs(lf[s]) for s in steps[:15])
    ma = max(abs(moving_average(lb, s) - moving_average(lf, s)) / abs(moving_average(lf, s)) for s in steps if s >= 5)
    last = steps[-50:]
    mf = sum(lf[s] for s in last) / len(last)
    mb = sum(lb[s] for s in last) / len(last)
    print(f"{len(steps)} steps: first 15 steps within {100 * early:.2f}%; 5-step average within {100 * ma:.1f}%; "
          f"mean loss of the last 50 steps fp32 {mf:.4f}, bf16 {mb:.4f} ({100 * abs(mb - mf) / mf:.2f}%)")
    print("\n| step | precision | GED | D_avg | D_max | HM-IoU | val loss |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for s in sorted(set(vf) & set(vb)):
        for name, v in (("fp32", vf[s]), ("bf16", vb[s])):
            print(f"| {s} | {name} | {v['ged']:.4f} | {v['d_avg']:.4f} | {v['d_max']:.4f} | {v['hm_iou']:.4f} | "
                  f"{v['loss']:.4f} |")


if __name__ == "__main__":
    main()
