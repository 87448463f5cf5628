#!/usr/bin/env bash
# scripts/fuzz-triage.sh: which sanitizer reports scripts/fuzz.sh sets aside as libhdf5's, on reports
# shaped as ASan prints them (a CI run's embed_cache crash among them), and its FNV-1a against the
# published test vectors (tests/fuzz/common.c names the set-aside inputs with the same hash).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/fuzz-triage.sh
fail=0
expect() {  # expect NAME 0|1 REPORT
  local got=0
  printf '%s\n' "$3" | crash_is_libhdf5s || got=1
  if [ "$got" = "$2" ]; then echo "ok   $1"; else echo "FAIL $1: crash_is_libhdf5s returned $got, expected $2"; fail=1; fi
}
hdf5=/lib/x86_64-linux-gnu/libhdf5_serial.so.103
expect "overflow in H5HG_read of a block libhdf5 allocated (CI, embed_cache)" 0 "INFO: seed corpus: files: 25
==1502==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x621000006108 at pc 0x5637 bp 0x7ffd sp 0x7ffd
READ of size 4100 at 0x621000006108 thread T0
    #0 0x563749151582 in __interceptor_memcpy (/b/tests/fuzz/fuzz_embed_cache+0x87582)
    #1 0x7f27aeb67b8d in H5HG_read ($hdf5+0x167b8d)
    #2 0x7f27aec4d924 in H5T__conv_vlen ($hdf5+0x24d924)
    #3 0x55bc2e397574 in read_strings /src/data/h5io.c:186:20
0x621000006108 is located 0 bytes to the right of 4104-byte region
allocated by thread T0 here:
    #0 0x55bc2e35003e in malloc (/b/tests/fuzz/fuzz_embed_cache+0xf003e)
    #1 0x7f27aeb233e4  ($hdf5+0x1233e4)
SUMMARY: AddressSanitizer: heap-buffer-overflow in __interceptor_memcpy"
expect "wild-pointer read inside libhdf5 (campaign, embed_cache: H5Aexists)" 0 "==3487==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x61600000c518 at pc 0x5624 bp 0x7ffc sp 0x7ffc
READ of size 32 at 0x61600000c518 thread T0
    #0 0x5624ad44e483 in __interceptor_memcpy (/b/tests/fuzz/fuzz_embed_cache+0x87483)
    #1 0x7fe84d790f18  ($hdf5+0x190f18)
    #2 0x7fe84d7b4ca4 in H5O__msg_iterate_real ($hdf5+0x1b4ca4)
    #4 0x7fe84d65c350 in H5Aexists ($hdf5+0x5c350)
    #5 0x5624ad4fe892 in open_attr /src/data/h5io.c:162:7

Address 0x61600000c518 is a wild pointer inside of access range of size 0x000000000020.
SUMMARY: AddressSanitizer: heap-buffer-overflow in __interceptor_memcpy"
expect "SEGV inside libhdf5" 0 "==4322==ERROR: AddressSanitizer: SEGV on unknown address 0x623000013510 (pc 0x7f9c T0)
    #0 0x7f9cc0f67b56 in H5HG_read ($hdf5+0x167b56)
    #1 0x7f9cc10beeff  ($hdf5+0x2beeff)
    #6 0x5630601a0574 in read_strings /src/data/h5io.c:186:20
SUMMARY: AddressSanitizer: SEGV ($hdf5+0x167b56) in H5HG_read"
expect "libhdf5 writing past a buffer samx allocated" 1 "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x6020 at pc 0x1
WRITE of size 16 at 0x6020 thread T0
    #0 0x1 in __interceptor_memcpy (/b/fuzz+0x1)
    #1 0x2 in H5T__conv_s_s ($hdf5+0x1)
    #2 0x3 in read_strings /src/data/h5io.c:197:10
allocated by thread T0 here:
    #0 0x4 in calloc (/b/fuzz+0x2)
    #1 0x5 in read_strings /src/data/h5io.c:196:22
SUMMARY: AddressSanitizer: heap-buffer-overflow in __interceptor_memcpy"
expect "SEGV in samx's code" 1 "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x0 (pc 0x1 T0)
    #0 0x1 in samx_embed_read /src/data/embed_cache.c:370:3
    #1 0x2 in LLVMFuzzerTestOneInput /src/tests/fuzz/fuzz_embed_cache.c:22:5
SUMMARY: AddressSanitizer: SEGV /src/data/embed_cache.c:370:3 in samx_embed_read"
expect "a leak (LeakSanitizer) is a finding" 1 "==1==ERROR: LeakSanitizer: detected memory leaks
Direct leak of 8 byte(s) in 1 object(s) allocated from:
    #0 0x1 in malloc (/b/fuzz+0x1)
    #1 0x2 in H5FL_blk_malloc ($hdf5+0x2)
SUMMARY: AddressSanitizer: 8 byte(s) leaked in 1 allocation(s)."
expect "a UBSan report is a finding" 1 "/src/data/h5io.c:12:3: runtime error: signed integer overflow"
expect "a libFuzzer timeout is a finding" 1 "==1== ERROR: libFuzzer: timeout after 10 seconds"
# FNV-1a 64 test vectors: "" and "a" (Fowler, Noll, Vo).
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
: >"$tmp"; [ "$(fnv1a "$tmp")" = cbf29ce484222325 ] && echo "ok   fnv1a('')" || { echo "FAIL fnv1a('') = $(fnv1a "$tmp")"; fail=1; }
printf a >"$tmp"; [ "$(fnv1a "$tmp")" = af63dc4c8601ec8c ] && echo "ok   fnv1a('a')" || { echo "FAIL fnv1a('a') = $(fnv1a "$tmp")"; fail=1; }
exit $fail
