"""scripts/floor-gap.py against hand-computed cases, and (--samx BIN, a CUDA-emulator build) on what
`samx bench kernels` and `samx bench encoder` print, so that a renamed or missing bench row fails here
rather than on the GPU run whose table it is for.

usage: test_floor_gap.py [--samx BIN]   (from the repository root)
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "floor-gap.py")
failed = 0


def check(ok, what):
    global failed
    print(("ok   " if ok else "FAIL ") + what)
    failed += not ok


def floor_gap(files, *args):
    r = subprocess.run([sys.executable, SCRIPT, *files, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def kernels_doc(rows, peaks=(1e12, 1e11)):
    return {"bench": "kernels", "precision": "bf16", "device_info": "hand", "build_commit": "x",
            "peak_flops": peaks[0], "peak_bytes_per_s": peaks[1], "results": rows}


def hand_cases(tmp):
    # At 1 TFLOP/s and 100 GB/s: 2e6 FLOP take 2 µs, 1e5 bytes 1 µs.
    runs = {"gemm qkv": 12, "gemm proj": 12, "gemm mlp fc1": 12, "gemm mlp fc2": 12, "attention window 14x14": 8,
            "attention global 64x64": 4, "layernorm": 24, "conv2d neck 3x3": 1}
    rows = [{"name": n, "flops": 2e6, "bytes": 1e5, "ms": 0.004} for n in runs]  # floor 2 µs, 4 measured
    rows[5] = {"name": "attention global 64x64", "flops": 1e7, "bytes": 1e5, "ms": 0.05}  # floor 10, 50 measured
    rows[6] = {"name": "layernorm", "flops": 0, "bytes": 3e5, "ms": 0.006}  # memory-bound: floor 3, 6 measured
    rows.append({"name": "conv2d patch-embed 16x16", "flops": 1, "bytes": 1, "ms": 1})  # not an encoder row
    enc = {"bench": "encoder", "precision": "bf16", "results": [
        {"name": "encoder vit_b", "shape": "1x3x1024x1024", "items_per_s": 1000.0},
        {"name": "encoder vit_b", "shape": "8x3x1024x1024", "items_per_s": 2000.0}]}
    k_path, e_path = os.path.join(tmp, "k.json"), os.path.join(tmp, "e.json")
    json.dump(kernels_doc(rows), open(k_path, "w"))
    json.dump(enc, open(e_path, "w"))
    rc, out, err = floor_gap([k_path, e_path], "-o", "json")
    check(rc == 0, f"hand case runs (exit {rc}, {err.strip()})")
    if rc:
        return
    a = json.loads(out)
    by = {t["kernel"]: t for t in a["kernels"]}
    # 6 kernels at 4 µs (floor 2) x their runs, the global attention 4 x 50 (floor 10), LayerNorm 24 x 6 (floor 3)
    n6 = 12 * 4 + 8 + 1
    check(set(by) == set(runs), "one row per encoder kernel, the patch embedding's left out")
    check(abs(by["gemm qkv"]["floor_us"] - 2) < 1e-9 and abs(by["gemm qkv"]["ratio"] - 2) < 1e-9,
          "compute-bound floor 2 µs, ratio 2")
    check(abs(by["layernorm"]["floor_us"] - 3) < 1e-9 and abs(by["layernorm"]["lost_us"] - 72) < 1e-9,
          "memory-bound floor 3 µs, 24 x 3 µs lost")
    check(abs(a["kernels_us"] - (n6 * 4 + 200 + 144)) < 1e-6, f"kernels' sum {a['kernels_us']} µs per image")
    check(abs(a["floors_us"] - (n6 * 2 + 40 + 72)) < 1e-6, f"floors' sum {a['floors_us']} µs per image")
    check(a["largest_gap"] == "attention global 64x64", f"largest gap named: {a['largest_gap']}")
    check(a["encoder_us"] == {"1": 1000.0, "8": 500.0}, f"encoder µs per image by batch: {a['encoder_us']}")

    # gpu-check's bench.json: JSON lines wrapping each result, a failed bench among them
    lines = os.path.join(tmp, "bench.json")
    with open(lines, "w") as f:
        f.write(json.dumps({"title": "kernels", "result": kernels_doc(rows)}) + "\n")
        f.write(json.dumps({"title": "train", "exit": 1, "stderr": "boom"}) + "\n")
        f.write(json.dumps({"title": "encoder", "result": enc}) + "\n")
    rc, out, _ = floor_gap([lines])
    check(rc == 0 and "largest gap to the floor: **attention global 64x64**" in out, "gpu-check's JSON lines, markdown")

    # what is missing is said, exit 2
    json.dump(kernels_doc(rows[1:]), open(k_path, "w"))
    rc, _, err = floor_gap([k_path, e_path])
    check(rc == 2 and "lacks gemm qkv" in err, f"a missing kernel row: exit {rc}, {err.strip()}")
    json.dump(kernels_doc(rows, peaks=(0, 0)), open(k_path, "w"))
    rc, _, err = floor_gap([k_path, e_path])
    check(rc == 2 and "--peak-flops" in err, f"no peak figures: exit {rc}, {err.strip()}")
    rc, _, err = floor_gap([k_path, e_path, "--peak-flops", "1e12", "--peak-bw", "1e11"])
    check(rc == 0, "peaks given on the command line")
    rc, _, err = floor_gap([e_path])
    check(rc == 2 and "samx bench kernels" in err, f"no kernels result: exit {rc}, {err.strip()}")


def samx_case(samx, tmp):
    env = dict(os.environ, SAMX_CUDA_EMU_DRY_RUN="1")  # the emulator allocates and launches, computes nothing
    files = []
    for mode, extra in (("kernels", []), ("encoder", ["--model", "vit_b", "--batch", "1"])):
        path = os.path.join(tmp, f"{mode}.json")
        r = subprocess.run([samx, "bench", mode, *extra, "--device", "cuda", "--precision", "bf16", "-r", "1", "-o",
                            "json"], capture_output=True, text=True, env=env, cwd=ROOT)
        check(r.returncode == 0, f"samx bench {mode} (emulator dry run): exit {r.returncode} {r.stderr[-300:]}")
        open(path, "w").write(r.stdout)
        files.append(path)
    rc, out, err = floor_gap(files, "--peak-flops", "989.4e12", "--peak-bw", "3.35e12", "-o", "json")
    check(rc == 0, f"floor-gap on samx's own output (exit {rc}, {err.strip()})")
    if rc == 0:
        a = json.loads(out)
        floors = {t["kernel"]: t["floor_us"] for t in a["kernels"]}
        # H100 floors of bench/results/2026-12-06-bf16-projection, per call: qkv 58.6 / 4, fc1 78.2 / 4
        check(abs(floors["gemm qkv"] - 14.65) < 0.1 and abs(floors["gemm mlp fc1"] - 19.55) < 0.1,
              f"samx's FLOP and byte counts give the projection's GEMM floors: {floors}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        hand_cases(tmp)
        if len(sys.argv) == 3 and sys.argv[1] == "--samx":
            samx_case(sys.argv[2], tmp)
    print(f"{'FAILED' if failed else 'passed'}: {failed} failed checks")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
