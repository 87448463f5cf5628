#!/usr/bin/env bash
# Replays the inputs the libhdf5 checker set aside (build-fuzz/upstream/<target>/) in-process, without
# the checker, and prints for each the sanitizer's verdict and the innermost libhdf5 function of the
# stack (the upstream finding), one line per input, then a count per (verdict, function).
# usage: tests/fuzz/triage_upstream.sh [TARGET] (default data_check; the binary comes from build-fuzz/)
set -uo pipefail
cd "$(dirname "$0")/../.."
t=${1:-data_check} b=${FUZZ_BUILD_DIR:-build-fuzz}
# libhdf5 has no frame pointers: the slow unwinder gives its frames.
export SAMX_FUZZ_NO_ISOLATION=1 OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=0:fast_unwind_on_malloc=0:fast_unwind_on_fatal=0
for f in "$b"/upstream/"$t"/*; do
  [ -f "$f" ] || continue
  out=$(timeout 20 "$b/tests/fuzz/fuzz_$t" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=2048 -close_fd_mask=3 "$f" 2>&1)
  verdict=$(grep -oE 'ERROR: (AddressSanitizer: [a-z-]+|libFuzzer: [a-z-]+)|runtime error: [a-z ]+|deadly signal' <<<"$out" | head -1)
  fn=$(grep -E '^ +#[0-9]+ ' <<<"$out" | grep -E 'libhdf5' | grep -oE ' in H5[A-Za-z0-9_]+' | head -1 | sed 's/ in //')
  printf '%s\t%s\t%s\n' "$(basename "$f")" "${verdict:-no failure in-process}" "${fn:-?}"
done | tee /dev/stderr | cut -f2,3 | sort | uniq -c | sort -rn
