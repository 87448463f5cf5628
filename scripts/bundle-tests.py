"""The tests of `ctest --show-only=json-v1` (stdin) as scripts/gpu-check.sh runs them from a bundle.

usage: bundle-tests.py SOURCE_DIR BUILD_DIR > tests.json
Each test becomes {name, command, env, skip_code, timeout, labels, fixture_setup}. In commands and environment values, a
program of the build folder becomes @BIN@/<name>, another path under it @WORK@/<path>, a path under
the source folder @SRC@/<path>, the reference Python (SAMX_PYTHON, or the checkout's .venv) @PY@; other programs keep their base name (bash,
mpiexec), found on the node's PATH.
"""
import json
import os
import sys


def rewrite(arg, src, build, python):
    if arg == python or arg == os.path.join(src, ".venv", "bin", "python"):
        return "@PY@"  # the node's python3 (with PyTorch); the bundle's python/ holds segment_anything
    if arg.startswith(build + "/"):
        rel = arg[len(build) + 1:]
        program = "/" not in rel and not os.path.splitext(rel)[1]  # test_x, samx: the build's programs
        return f"@BIN@/{rel}" if program else f"@WORK@/{rel}"
    if arg.startswith(src + "/"):
        return "@SRC@/" + arg[len(src) + 1:]
    if arg.startswith("/usr/bin/") or arg.startswith("/bin/"):
        return os.path.basename(arg)
    return arg


def main():
    src, build = (os.path.realpath(a) for a in sys.argv[1:3])
    tests = json.load(sys.stdin)["tests"]
    out = []
    for t in tests:
        props = {p["name"]: p["value"] for p in t.get("properties", [])}
        env = dict(kv.split("=", 1) for kv in props.get("ENVIRONMENT", []))
        python = env.get("SAMX_PYTHON", "/usr/bin/python3")
        cmd = [rewrite(a, src, build, python) for a in t["command"]]
        env = {k: rewrite(v, src, build, python) for k, v in env.items()}
        out.append({"name": t["name"], "command": cmd, "env": env,
                    "skip_code": props.get("SKIP_RETURN_CODE"), "timeout": props.get("TIMEOUT", 1500),
                    "labels": props.get("LABELS", []), "fixture_setup": bool(props.get("FIXTURES_SETUP"))})
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
