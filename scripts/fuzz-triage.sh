# Sourced by scripts/fuzz.sh (and tests/fuzz/test_fuzz_triage.sh): which crashes are libhdf5's.
# A crash the checker let through (libhdf5's out-of-bounds reads depend on the heap's layout, which differs
# between the checker and the target) is still libhdf5's when the faulting frame lies in libhdf5 and, for
# an overflow or a use after free, the block was allocated by libhdf5 too (or there is no block: a wild
# pointer): samx's buffers are samx's findings even when libhdf5 writes past them. Reads the segment's
# log on stdin.
crash_is_libhdf5s() {
  awk '
    /ERROR: AddressSanitizer: / { in_report = 1; kind = $0; stack = "crash"; next }
    !in_report { next }
    /allocated by thread|freed by thread|previously allocated by thread/ { stack = "alloc"; next }
    /^ *#[0-9]+ / {
      if ($0 ~ /__interceptor_|__asan_|asan_|__sanitizer|libclang_rt|[ (]malloc|[ (]calloc|[ (]realloc|[ (]free[ (]/) next
      if (!(stack in first)) first[stack] = ($0 ~ /libhdf5/) ? "hdf5" : "other"
      next
    }
    /^SUMMARY: / { exit }
    END {
      if (!in_report || first["crash"] != "hdf5") exit 1
      # a wild pointer (no block, no allocation stack) read inside libhdf5 belongs to libhdf5
      if (kind ~ /heap-buffer-overflow|use-after-free|double-free/ && ("alloc" in first) && first["alloc"] != "hdf5") exit 1
      exit 0
    }'
}
# The targets skip an input whose FNV-1a names a file in the upstream folder (tests/fuzz/common.c).
fnv1a() {
  /usr/bin/python3 -c '
import sys
h = 14695981039346656037
for byte in open(sys.argv[1], "rb").read():
    h = ((h ^ byte) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
print("%016x" % h)' "$1"
}
