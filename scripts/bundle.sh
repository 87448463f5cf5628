#!/usr/bin/env bash
# Packs a relocatable CUDA build of samx for a GPU node that cannot install packages (a cluster node
# without network access, a container image without samx's libraries): one .tar.xz with the `samx`
# command, the test programs of `ctest -L cuda`, the engine as one shared library, and every shared
# library they need except the C library and CUDA's own (the node's CUDA 13 toolkit and driver provide
# those; scripts/gpu-check.sh links them in). Run scripts/gpu-check.sh BUNDLE on the node, from a
# checkout of the same commit (the tests read tests/data/, the benchmarks bench/*.py).
#
# usage: scripts/bundle.sh [-o FILE] [--arch "80;90"]
#   -o FILE   where to write the bundle (default build-bundle/samx-bundle-<commit>-sm<archs>.tar.xz)
#   --arch A  CUDA architectures to compile for (default 90: H100/H200; "80;90" adds A100, ~2x the size)
# The build goes to build-bundle/ (generic x86-64 CPU code, no -march=native: the node's processor is
# not this one). Programs find their libraries through an RPATH of $ORIGIN/../lib, set as DT_RPATH so
# that it also serves the libraries' own dependencies; nothing is put on LD_LIBRARY_PATH, so Python
# and PyTorch on the node keep their own libstdc++ and CUDA libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
arch=90 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bundle.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "bundle.sh: needs nvcc (the CUDA toolkit)" >&2; exit 2; }
b=build-bundle
dirty=""
git diff --quiet HEAD -- . ':!bench/results' || dirty="-dirty"
commit=$(git rev-parse --short=7 HEAD)$dirty
[ -n "$out" ] || out=$b/samx-bundle-$commit-sm${arch//;/-}.tar.xz

bash scripts/install-deps.sh >/dev/null
cmake -S . -B $b -G Ninja -DCMAKE_BUILD_TYPE=Release -DSAMX_SHARED_ENGINE=ON -DSAMX_NATIVE=OFF \
  "-DCMAKE_CUDA_ARCHITECTURES=$arch" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON '-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib' \
  -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags -DCMAKE_SHARED_LINKER_FLAGS=-Wl,--disable-new-dtags >/dev/null

ninja -C $b | tail -1  # every program: ctest lists a test's command only once it is built
# The tests of the cuda label, with their commands made relative: @BIN@ for the bundle's bin/, @SRC@
# for the checkout the node runs them from.
stage=$(mktemp -d "$b.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/samx-bundle/bin" "$stage/samx-bundle/lib"
sb=$stage/samx-bundle
(cd $b && ctest --show-only=json-v1 -L cuda) |
  /usr/bin/python3 scripts/bundle-tests.py "$root" "$root/$b" >"$sb/tests.json"
mapfile -t progs < <(/usr/bin/python3 -c 'import json,sys
for t in json.load(open(sys.argv[1])):
    for a in t["command"]:
        if a.startswith("@BIN@/"): print(a[6:])' "$sb/tests.json" | sort -u)
readelf -d $b/libsamx_engine.so | grep -q 'libcudart' || { echo "bundle.sh: the engine was built without CUDA (cmake found no nvcc?)" >&2; exit 2; }

for p in samx "${progs[@]}"; do cp $b/$p "$sb/bin/"; done
cp $b/libsamx_engine.so "$sb/lib/"
strip --strip-unneeded "$sb"/bin/* "$sb"/lib/libsamx_engine.so
# Every library the programs load, except glibc's (the node's C library must be as new as this
# machine's: MANIFEST names the version) and CUDA's runtime, BLAS, NCCL and driver (the node's own).
skip='^(ld-linux.*|libc|libm|libmvec|libdl|libpthread|librt|libresolv|libutil|libcuda|libcudart|libcublas|libcublasLt|libnccl|libsamx_engine)\.so'
for f in $(ldd "$sb"/bin/* "$sb"/lib/libsamx_engine.so 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
  n=$(basename "$f")
  [[ $n =~ $skip ]] || cp -L "$f" "$sb/lib/$n"
done
# A library with its own DT_RUNPATH (Open MPI's point at their install folder) looks for its
# dependencies there and not in the programs' RPATH: every bundled library looks beside itself.
for f in "$sb"/lib/*.so*; do patchelf --set-rpath '$ORIGIN' "$f"; done
# PyTorch's side of `samx bench --compare-torch` imports the official segment_anything package.
sa=$(/usr/bin/python3 -c 'import segment_anything, os; print(os.path.dirname(segment_anything.__file__))' 2>/dev/null ||
     ls -d .venv/lib/python3*/site-packages/segment_anything 2>/dev/null | head -1 || true)
if [ -n "$sa" ] && [ -d "$sa" ]; then
  mkdir -p "$sb/python" && cp -r "$sa" "$sb/python/" && find "$sb/python" -name __pycache__ -prune -exec rm -rf {} +
else
  echo "bundle.sh: segment_anything not found (scripts/setup-venv.sh installs it); --compare-torch will need it on the node" >&2
fi
glibc=$(objdump -T "$sb"/bin/* "$sb"/lib/*.so* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
{
  echo "commit $(git rev-parse HEAD)$dirty"
  echo "built $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(uname -m)"
  echo "nvcc $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' || /usr/local/cuda/bin/nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
  echo "cuda_architectures $arch"
  echo "needs_glibc ${glibc#GLIBC_}"
  echo "needs_from_node libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2 libcuda.so.1"
} >"$sb/MANIFEST"
mkdir -p "$(dirname "$out")"
tar -C "$stage" -cJf "$out.tmp" samx-bundle
mv "$out.tmp" "$out"
echo "bundle.sh: $out ($(du -h "$out" | cut -f1); ${#progs[@]} test programs, $(ls "$sb/lib" | wc -l) libraries; needs glibc >= ${glibc#GLIBC_})"
