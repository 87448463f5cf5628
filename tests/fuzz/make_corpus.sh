#!/usr/bin/env bash
# Regenerates the seed corpora of tests/fuzz/corpus/ (small valid files of every kind written by
# samx's own writers and Debian's python3 torch/numpy, the test suite's hostile fixtures, the
# known-issue inputs). Inputs that the fuzzers found (crash regressions, crash-*/leak-* renamed
# regress-*) live beside them and are kept: only the generated names are rewritten.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/fuzz.sh --build-only
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
build-fuzz/tests/fuzz/fuzz_make_seeds "$seeds"
/usr/bin/python3 tests/fuzz/make_corpus.py tests/fuzz/corpus "$seeds"
