"""Runs samx's CUDA tests and GPU benchmarks from a bundle (scripts/bundle.sh) on a GPU node.

usage: python3 scripts/gpu-check.py BUNDLE [-o OUT] [--budget SECONDS] [-j JOBS] [--no-tests]
                                           [--no-bench] [--bench-quick] [--torch-compile] [--only NAME[,NAME...]]

Run it from a checkout of the bundle's commit: the tests read tests/data/, the PyTorch side of the
benchmarks is bench/torch_bench.py. Only Python's standard library is used; the node's python3 (with
PyTorch, for the reference tests and --compare-torch) runs the references.

Steps: unpack the bundle; link the node's CUDA runtime, cuBLAS, cuBLASLt and NCCL into its lib/ (found
through ldconfig, CUDA_HOME, /usr/local/cuda*, and the nvidia-* Python packages beside PyTorch); check
that every program resolves every library; run the tests of `ctest -L cuda` (a skip, exit 77, counts as
a failure when a GPU is present: there it means the device was not found); run `samx bench` in bf16 and
fp32 with --compare-torch. OUT (default gpu-check-<date>) gets at most six files: summary.md (machine,
tests, benchmarks, and scripts/floor-gap.py's table: the bf16 encoder's kernels against their floors,
the largest gap named), env.txt, tests.log, bench.md (with a kernel profile of the bf16 encoder),
bench.json and, if any test failed, failed.txt.
Exit status: 0 when every test passed, 1 otherwise, 2 when the bundle cannot run here at all.
"""
import argparse
import concurrent.futures
import datetime
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

NODE_LIBS = ("libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libnccl.so.2")


def sh(cmd, **kw):
    """stdout+stderr of a command, or the reason it could not run."""
    try:
        r = subprocess.run(cmd, shell=isinstance(cmd, str), capture_output=True, text=True, timeout=120, **kw)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return f"({cmd if isinstance(cmd, str) else cmd[0]}: {e})"


def unpack(bundle, work):
    if os.path.isdir(bundle):
        return os.path.abspath(bundle)
    with tarfile.open(bundle) as t:  # xz through Python's lzma: no xz program needed on the node
        t.extractall(work, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(work)
    return os.path.join(work, "samx-bundle")


def library_dirs():
    """Folders that may hold the node's CUDA libraries, most specific first."""
    dirs = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var):
            dirs += [os.path.join(os.environ[var], d) for d in ("lib64", "lib", "targets/x86_64-linux/lib")]
    dirs += sorted(glob.glob("/usr/local/cuda*/lib64")) + sorted(glob.glob("/usr/local/cuda*/targets/x86_64-linux/lib"))
    dirs += sorted(glob.glob("/usr/local/cuda*/lib"))
    for line in sh(["ldconfig", "-p"]).splitlines():
        m = re.search(r"=> (\S+)$", line)
        if m:
            dirs.append(os.path.dirname(m.group(1)))
    try:  # PyTorch's CUDA wheels: site-packages/nvidia/<part>/lib
        import site
        for sp in site.getsitepackages() + [site.getusersitepackages()]:
            dirs += sorted(glob.glob(os.path.join(sp, "nvidia", "*", "lib")))
    except Exception:
        pass
    seen, out = set(), []
    for d in dirs:
        if d not in seen and os.path.isdir(d):
            seen.add(d)
            out.append(d)
    return out


def link_node_libs(lib, env_lines):
    dirs = library_dirs()
    missing = []
    for name in NODE_LIBS:
        dst = os.path.join(lib, name)
        if os.path.lexists(dst):
            os.unlink(dst)
        src = next((os.path.join(d, name) for d in dirs if os.path.exists(os.path.join(d, name))), None)
        if src:
            os.symlink(os.path.realpath(src), dst)
            env_lines.append(f"{name}: {os.path.realpath(src)}")
        else:
            missing.append(name)
            env_lines.append(f"{name}: NOT FOUND in {', '.join(dirs) or 'no library folder'}")
    return missing


def unresolved(bundle):
    bad = []
    for f in sorted(glob.glob(os.path.join(bundle, "bin", "*")) + glob.glob(os.path.join(bundle, "lib", "libsamx_engine.so"))):
        for line in sh(["ldd", f]).splitlines():
            if "not found" in line:
                bad.append(f"{os.path.basename(f)}: {line.strip()}")
    return bad


def environment(bundle, src):
    lines = [f"date {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
             f"host {platform.node()} {platform.machine()}; {sh('. /etc/os-release && echo $PRETTY_NAME')}",
             f"glibc {platform.libc_ver()[1]}", f"python {sys.version.split()[0]} ({sys.executable})",
             f"checkout {src}"]
    manifest = open(os.path.join(bundle, "MANIFEST")).read().splitlines()
    lines += ["bundle " + line for line in manifest]
    built = next((m.split()[1] for m in manifest if m.startswith("commit ")), "")
    head = sh(["git", "-C", src, "rev-parse", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{40}", head):  # a copy of the tree without .git
        lines.append("checkout commit unknown (no git repository here): make sure it is the bundle's")
    elif built != head:  # another commit, or uncommitted changes
        lines.append(f"WARNING: the bundle was built at {built}, not at the checkout's commit: tests read its tests/data")
    lines.append("nvidia-smi: " + sh(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                                      "--format=csv,noheader"]))
    lines.append("torch: " + sh([sys.executable, "-c", "import torch; print(torch.__version__, torch.version.cuda, "
                                 "torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device')"]))
    return lines


def substitute(s, bundle, src, work):
    return (s.replace("@BIN@", os.path.join(bundle, "bin")).replace("@SRC@", src)
             .replace("@WORK@", work).replace("@PY@", sys.executable))


def python_path(bundle, src):
    """segment_anything from the bundle, bench/'s modules, then whatever the node had."""
    paths = [os.path.join(bundle, "python"), os.path.join(src, "bench"), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in paths if p)


def run_test(t, bundle, src, work, gpu, deadline):
    """(name, status, seconds, last line, log text) of one test."""
    cmd = [substitute(a, bundle, src, work) for a in t["command"]]
    if time.time() > deadline:
        return t["name"], "not run", 0.0, "time budget spent", ""
    absent = [a for a in cmd if a in (cmd[0], "mpiexec", "mpirun") and not os.path.exists(a) and not shutil.which(a)]
    if "mpi" in t.get("labels", []) and not shutil.which("mpirun"):
        absent.append("Open MPI (mpirun and its runtime)")  # the bundle carries libmpi, not its runtime
    if absent:  # e.g. the tests of several ranks on a node without Open MPI
        return t["name"], "not run", 0.0, f"needs {absent[0]} on this node", ""
    env = dict(os.environ)
    env.update({k: substitute(v, bundle, src, work) for k, v in t["env"].items()})
    env["SAMX_BIN"] = os.path.join(bundle, "bin", "samx")
    env["PYTHONPATH"] = python_path(bundle, src)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True,
                           timeout=min(t["timeout"], max(1, deadline - t0)))
        code, out = r.returncode, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        code, out = "timeout", e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    dt = time.time() - t0
    if code == 0:
        status = "passed"
    elif code == t.get("skip_code"):
        status = "FAILED (skipped with a GPU present)" if gpu else "skipped (no GPU)"
    else:
        status = f"FAILED ({code})"
    last = next((line for line in reversed(out.strip().splitlines()) if line.strip()), "")
    return t["name"], status, dt, last[:160], f"===== {t['name']}: {status}, {dt:.1f} s\n$ {' '.join(cmd)}\n{out}\n"


def run_tests(bundle, src, work, gpu, deadline, only, log, jobs):
    """The fixtures' setup tests first, one by one, then the rest on `jobs` workers; rows in the
    bundle's order."""
    tests = [t for t in json.load(open(os.path.join(bundle, "tests.json"))) if not only or t["name"] in only]
    os.makedirs(os.path.join(work, "torchref"), exist_ok=True)
    results = {}

    def one(t):
        row = run_test(t, bundle, src, work, gpu, deadline)
        log.write(row[4])
        log.flush()
        print(f"{row[0]:<32} {row[1]:<12} {row[2]:7.1f} s", flush=True)
        results[t["name"]] = row[:4]

    for t in tests:
        if t.get("fixture_setup"):
            one(t)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(one, [t for t in tests if not t.get("fixture_setup")]))
    return [results[t["name"]] for t in tests]


BENCHES = [  # (title, arguments, compare with PyTorch); each runs with --device cuda, as md and as json
    ("kernels", ["kernels"], True),
    ("encoder ViT-B bf16", ["encoder", "--model", "vit_b", "--batch", "1,8,32", "--precision", "bf16"], True),
    ("encoder ViT-B fp32", ["encoder", "--model", "vit_b", "--batch", "1,8", "--precision", "fp32"], True),
    ("decoder bf16", ["decoder", "--model", "vit_b", "--precision", "bf16"], True),
    ("train bf16", ["train", "--precision", "bf16"], True),
    ("train fp32", ["train", "--precision", "fp32"], True),
    # where the encoder's time goes, per engine launch site (SAMX_PROFILE=1): the largest gap to the
    # projection's floor (bench/results/2026-12-06-bf16-projection) is read off this
    ("profile: encoder ViT-B bf16, batch 8", ["encoder", "--model", "vit_b", "--batch", "8", "--precision", "bf16"], False),
]


def run_benches(bundle, src, deadline, quick, torch_compile, md, js):
    env = dict(os.environ)
    env["SAMX_PYTHON"] = sys.executable
    env["SAMX_BENCH_TORCH"] = os.path.join(src, "bench", "torch_bench.py")
    env["PYTHONPATH"] = python_path(bundle, src)
    samx = os.path.join(bundle, "bin", "samx")
    results = []
    for title, args, torch_side in BENCHES:
        if time.time() > deadline:
            md.write(f"\n## {title}: not run (time budget spent)\n")
            continue
        profile = not torch_side
        for fmt, out in (("md", md),) if profile else (("md", md), ("json", js)):
            cmd = [samx, "bench"] + args + ["--device", "cuda", "-o", fmt] + (["--quick"] if quick else []) \
                + ((["--torch-compile"] if torch_compile else ["--compare-torch"]) if torch_side else [])
            t0 = time.time()
            try:
                r = subprocess.run(cmd, cwd=src, env=dict(env, SAMX_PROFILE="1") if profile else env,
                                   capture_output=True, text=True, timeout=max(1, deadline - t0))
                text, code = r.stdout, r.returncode
                err = r.stderr
            except subprocess.TimeoutExpired:
                text, code, err = "", "timeout", ""
            if fmt == "md":
                out.write(f"\n<!-- {title}: $ samx {' '.join(cmd[1:])} ({time.time() - t0:.0f} s, exit {code}) -->\n{text}\n")
                if err.strip():
                    out.write("```\n" + err.strip()[-(12000 if profile else 3000):] + "\n```\n")
                results.append((title, code))
                print(f"bench {title:<24} exit {code} ({time.time() - t0:.0f} s)", flush=True)
            else:
                try:
                    out.write(json.dumps({"title": title, "args": cmd[1:], "result": json.loads(text)}) + "\n")
                except ValueError:
                    out.write(json.dumps({"title": title, "args": cmd[1:], "exit": code, "stderr": err[-2000:]}) + "\n")
    return results


def floor_gap(src, bench_json):
    """scripts/floor-gap.py's table (the bf16 encoder's kernels against their floors), or why there is none."""
    r = subprocess.run([sys.executable, os.path.join(src, "scripts", "floor-gap.py"), bench_json],
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else f"## Gap to the floor: not computed ({r.stderr.strip()})\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bundle")
    ap.add_argument("-o", "--out", default="gpu-check-" + datetime.date.today().isoformat())
    ap.add_argument("--budget", type=float, default=540, help="seconds for tests and benchmarks together (default 540)")
    ap.add_argument("--bench-share", type=float, default=0.45, help="share of the budget kept for the benchmarks")
    ap.add_argument("--no-tests", action="store_true")
    ap.add_argument("--no-bench", action="store_true")
    ap.add_argument("--bench-quick", action="store_true", help="samx bench --quick (small shapes)")
    ap.add_argument("--torch-compile", action="store_true",
                    help="PyTorch's side through torch.compile too (minutes of compiling for ViT-B)")
    ap.add_argument("--only", default="", help="comma list of test names")
    ap.add_argument("-j", "--jobs", type=int, default=4, help="tests run at once (default 4)")
    a = ap.parse_args()
    start = time.time()
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="samx-gpu-check.")
    bundle = unpack(a.bundle, work)
    env_lines = environment(bundle, src)
    missing = link_node_libs(os.path.join(bundle, "lib"), env_lines)
    bad = unresolved(bundle)
    env_lines += ["unresolved: " + b for b in bad]
    gpu = shutil.which("nvidia-smi") is not None and "GPU" in sh(["nvidia-smi", "-L"])
    env_lines.append(f"gpu present: {gpu}")
    with open(os.path.join(a.out, "env.txt"), "w") as f:
        f.write("\n".join(env_lines) + "\n")
    print("\n".join(env_lines), flush=True)
    if missing or bad:
        print("gpu-check: the bundle cannot run here (env.txt says what is missing)", file=sys.stderr)
        return 2
    rows, benches = [], []
    bench_time = 0 if a.no_bench else a.budget * a.bench_share
    if not a.no_tests:
        with open(os.path.join(a.out, "tests.log"), "w") as log:
            rows = run_tests(bundle, src, work, gpu, start + a.budget - bench_time,
                             set(filter(None, a.only.split(","))), log, a.jobs)
    if not a.no_bench:
        with open(os.path.join(a.out, "bench.md"), "w") as md, open(os.path.join(a.out, "bench.json"), "w") as js:
            benches = run_benches(bundle, src, start + a.budget, a.bench_quick, a.torch_compile, md, js)
    passed = sum(1 for r in rows if r[1] == "passed")
    failed = [r for r in rows if r[1] != "passed"]
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("# samx GPU check\n\n```\n" + "\n".join(env_lines) + "\n```\n\n")
        f.write(f"## Tests of `ctest -L cuda`: {passed} of {len(rows)} passed\n\n| test | result | s | last line |\n|---|---|---:|---|\n")
        for name, status, dt, last in rows:
            f.write(f"| {name} | {status} | {dt:.1f} | {last.replace('|', '/')} |\n")
        if benches:
            f.write("\n## Benchmarks (bench.md, bench.json)\n\n" + "\n".join(f"- {t}: exit {c}" for t, c in benches) + "\n")
            f.write("\n" + floor_gap(src, os.path.join(a.out, "bench.json")))
        f.write(f"\nwall time {time.time() - start:.0f} s\n")
    if failed:
        with open(os.path.join(a.out, "failed.txt"), "w") as f:
            f.write("\n".join(f"{n}: {s}: {last}" for n, s, _, last in failed) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    print(f"gpu-check: {passed}/{len(rows)} tests passed; results in {a.out}/", flush=True)
    return 0 if not failed and rows else 1


if __name__ == "__main__":
    sys.exit(main())
