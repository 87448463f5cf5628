# Sourced by scripts/fuzz.sh (and tests/fuzz/test_fuzz_triage.sh): which crashes are libhdf5's.
# A crash the checker let through (libhdf5's out-of-bounds reads depend on the heap's layout, which differs
# between the checker and the target) is still libhdf5's when the faulting frame lies in libhdf5 and, for
# an overflow or a use after free, the block was allocated by libhdf5 too (or there is no block: a wild
# pointer): samx's buffers are samx's findings even when libhdf5 writes past them. A timeout is libhdf5's
# when the code the alarm interrupted is in libhdf5 (its endless loops on a damaged global heap), an
# out-of-memory when libhdf5 made the allocation (or holds the most live memory). Reads the segment's
# log on stdin.
crash_is_libhdf5s() {
  awk '
    /ERROR: AddressSanitizer: / { in_report = 1; kind = $0; stack = "crash"; next }
    # a timeout: libFuzzer prints the stack from its alarm handler; the interrupted code starts after
    # the handler frames and the signal trampoline in libc
    /ERROR: libFuzzer: timeout/ { in_report = 1; kind = $0; stack = "crash"; in_handler = 1; next }
    # out of memory: one allocation over -malloc_limit_mb (its stack follows), or the RSS limit (the
    # live heap profile follows; its largest entry decides): libhdf5 keeps what it read of damaged files
    /ERROR: libFuzzer: out-of-memory \(malloc/ { in_report = 1; kind = $0; stack = "crash"; next }
    /ERROR: libFuzzer: out-of-memory/ { in_report = 1; kind = $0; stack = "crash"; in_handler = 1; profile = 1; next }
    !in_report { next }
    profile && /^Live Heap Allocations/ { in_handler = 0; profile = 0; next }
    profile { next }
    in_handler && /^ *#[0-9]+ / {
      if ($0 ~ /AlarmCallback/) { in_handler = 0; skip_trampoline = 1 }
      next
    }
    # after the trampoline: libc itself (a memset or memcpy the alarm caught) is not the culprit; the
    # first frame past it is
    in_libc && /^ *#[0-9]+ / { if ($0 ~ /libc\.so|sysdeps\//) next; in_libc = 0 }
    skip_trampoline && /^ *#[0-9]+ / { skip_trampoline = 0; in_libc = 1; if ($0 ~ /libc\.so/) next }
    /allocated by thread|freed by thread|previously allocated by thread/ { stack = "alloc"; next }
    /^ *#[0-9]+ / {
      if ($0 ~ /__interceptor_|__asan_|asan_|__sanitizer|fuzzer::|libclang_rt|[ (]malloc|[ (]calloc|[ (]realloc|[ (]free[ (]/) next
      # libc itself (the memcpy an interceptor handed on faulting on its source) is not the culprit
      # either: its caller is
      if (!(stack in first) && $0 ~ /libc\.so|sysdeps\//) next
      # a frame in the target binary without a source line is one of ASan'"'"'s interceptors (strdup,
      # memcpy ...): samx'"'"'s own frames carry file:line
      if ($0 ~ /\(\/[^ ]*\/fuzz_[a-z_]+\+0x[0-9a-f]+\)/) next
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
