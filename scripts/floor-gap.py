#!/usr/bin/env python3
"""Where a SAM ViT-B encoder image's time goes against its floor, from `samx bench` JSON output.

usage: floor-gap.py BENCH_JSON... [--precision bf16] [--peak-flops F --peak-bw B] [-o md|json]

Reads `samx bench kernels` and `samx bench encoder --model vit_b` results (each file one samx JSON
object, or JSON lines as scripts/gpu-check.py's bench.json holds them) of one precision. Each kernel
of `bench kernels` that the encoder runs is weighted by how often one image runs it (ViT-B: 12 blocks,
8 windowed and 4 global; RUNS below) and held against its floor, max(FLOPs / peak FLOP/s, bytes /
peak bytes/s), with the bench's own FLOP and byte counts and the device's peaks from the same JSON
(--peak-flops/--peak-bw where the JSON has none, e.g. the CUDA emulator). Prints per kernel: µs per
call measured and at the floor, the ratio, and the µs per image lost to the gap; then the kernels'
sum against the measured encoder time per image (the rest: launch gaps, the patch embedding, the
rel-pos terms, casts, the neck's norms), and names the kernel with the largest loss: issue 18's
"largest gap to the floor, named with its kernel". Exit status 2 when an input lacks a needed row.
"""
import argparse
import json
import sys


def die(msg):
    print(f"floor-gap: {msg}", file=sys.stderr)
    sys.exit(2)

# Calls per ViT-B image of each `samx bench kernels` row, as samx's bf16 encoder runs them: the
# projections and MLP on the image's 4,096 tokens in every block, the window partition in the
# attention's addressing, two LayerNorms per block, the neck's 3x3 convolution once.
RUNS = {
    "gemm qkv": 12,
    "gemm proj": 12,
    "gemm mlp fc1": 12,
    "gemm mlp fc2": 12,
    "attention window 14x14": 8,
    "attention global 64x64": 4,
    "layernorm": 24,
    "conv2d neck 3x3": 1,
}


def results(paths):
    """Every samx bench JSON object in the files (plain, or gpu-check's {"result": ...} lines)."""
    out = []
    for path in paths:
        text = open(path).read()
        try:
            docs = [json.loads(text)]
        except ValueError:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        for d in docs:
            d = d.get("result", d)
            if isinstance(d, dict) and "bench" in d:
                out.append(d)
    return out


def pick(docs, bench, precision):
    found = [d for d in docs if d["bench"] == bench and d.get("precision") == precision]
    if not found:
        die(f"no `samx bench {bench}` result in {precision} in the input")
    return found[0]


def encoder_ms_per_image(doc):
    """{batch: ms per image} of the vit_b rows."""
    out = {}
    for r in doc["results"]:
        if r["name"] == "encoder vit_b" and r.get("items_per_s", 0) > 0:
            out[int(r["shape"].split("x")[0])] = 1e3 / r["items_per_s"]
    if not out:
        die("the encoder result has no `encoder vit_b` row")
    return out


def analyse(kernels, encoder, peak_flops, peak_bw):
    rows = {r["name"]: r for r in kernels["results"]}
    missing = [k for k in RUNS if k not in rows]
    if missing:
        die(f"`samx bench kernels` lacks {', '.join(missing)}")
    table = []
    for name, runs in RUNS.items():
        r = rows[name]
        floor_us = max(r["flops"] / peak_flops, r["bytes"] / peak_bw) * 1e6
        us = r["ms"] * 1e3
        table.append({"kernel": name, "runs": runs, "us": us, "floor_us": floor_us, "ratio": us / floor_us,
                      "image_us": runs * us, "lost_us": runs * (us - floor_us)})
    per_image = encoder_ms_per_image(encoder)
    worst = max(table, key=lambda t: t["lost_us"])
    return {"precision": kernels.get("precision"), "device": kernels.get("device_info"),
            "commit": kernels.get("build_commit"), "peak_flops": peak_flops, "peak_bw": peak_bw, "kernels": table,
            "kernels_us": sum(t["image_us"] for t in table), "floors_us": sum(t["runs"] * t["floor_us"] for t in table),
            "encoder_us": {b: ms * 1e3 for b, ms in sorted(per_image.items())}, "largest_gap": worst["kernel"]}


def markdown(a):
    w = [f"## Gap to the floor: ViT-B encoder, {a['precision']} ({a['device']}, {a['commit']})", "",
         f"Floors at {a['peak_flops'] / 1e12:.1f} TFLOP/s and {a['peak_bw'] / 1e12:.2f} TB/s.", "",
         "| kernel | per image | µs per call | floor µs | × floor | µs per image | lost µs per image |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for t in sorted(a["kernels"], key=lambda t: -t["lost_us"]):
        w.append(f"| {t['kernel']} | {t['runs']} | {t['us']:.1f} | {t['floor_us']:.1f} | {t['ratio']:.2f} | "
                 f"{t['image_us']:.0f} | {t['lost_us']:.0f} |")
    w.append(f"| **these kernels** | | | | | **{a['kernels_us']:.0f}** | "
             f"**{a['kernels_us'] - a['floors_us']:.0f}** |")
    w.append("")
    for b, us in a["encoder_us"].items():
        w.append(f"- encoder at batch {b}: {us:.0f} µs per image measured; the kernels above account for "
                 f"{a['kernels_us']:.0f}, the rest {us - a['kernels_us']:.0f} µs (launch gaps, patch embedding, "
                 "rel-pos terms, casts, neck norms).")
    w.append(f"- largest gap to the floor: **{a['largest_gap']}**.")
    return "\n".join(w) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--peak-flops", type=float, default=0, help="FLOP/s (default: the JSON's peak_flops)")
    ap.add_argument("--peak-bw", type=float, default=0, help="bytes/s (default: the JSON's peak_bytes_per_s)")
    ap.add_argument("-o", choices=("md", "json"), default="md")
    a = ap.parse_args()
    docs = results(a.inputs)
    kernels, encoder = pick(docs, "kernels", a.precision), pick(docs, "encoder", a.precision)
    peak_flops = a.peak_flops or kernels.get("peak_flops", 0)
    peak_bw = a.peak_bw or kernels.get("peak_bytes_per_s", 0)
    if peak_flops <= 0 or peak_bw <= 0:
        die(f"no peak figures for {kernels.get('device_info')}: give --peak-flops and --peak-bw")
    result = analyse(kernels, encoder, peak_flops, peak_bw)
    print(json.dumps(result, indent=1) if a.o == "json" else markdown(result), end="" if a.o == "md" else "\n")


if __name__ == "__main__":
    main()
