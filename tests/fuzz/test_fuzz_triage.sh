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
expect "SEGV in libc's memcpy under libhdf5 (fifth campaign, embed_cache: H5Aexists)" 0 "==23502==ERROR: AddressSanitizer: SEGV on unknown address 0x61600005bac8 (pc 0x7f7e bp 0x7ffc sp 0x7ffc T0)
==23502==The signal is caused by a READ memory access.
    #0 0x7f7e6664f8a2 in __memcpy_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:372
    #1 0x5647f2b53637 in __interceptor_memcpy (/b/tests/fuzz/fuzz_embed_cache+0x87637) (BuildId: 778a)
    #2 0x7f7e69590f18  ($hdf5+0x190f18) (BuildId: e923)
    #3 0x7f7e695b4ca4 in H5O__msg_iterate_real ($hdf5+0x1b4ca4) (BuildId: e923)
    #5 0x7f7e6945c350 in H5Aexists ($hdf5+0x5c350) (BuildId: e923)
    #6 0x5647f2c03a12 in open_attr /src/data/h5io.c:162:7
SUMMARY: AddressSanitizer: SEGV string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:372 in __memcpy_avx512_unaligned_erms"
expect "SEGV in libc's memcpy under samx's code" 1 "==1==ERROR: AddressSanitizer: SEGV on unknown address 0x6160 (pc 0x7f7e bp 0x7ffc sp 0x7ffc T0)
    #0 0x7f7e6664f8a2 in __memcpy_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:372
    #1 0x5647f2b53637 in __interceptor_memcpy (/b/tests/fuzz/fuzz_embed_cache+0x87637)
    #2 0x5647f2c03a12 in samx_embed_read /src/data/embed_cache.c:370:3
    #3 0x7f7e69590f18 in H5Dread ($hdf5+0x190f18)
SUMMARY: AddressSanitizer: SEGV string/../sysdeps/x86_64/multiarch/memmove-vec-unaligned-erms.S:372 in __memcpy_avx512_unaligned_erms"
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
expect "a libFuzzer timeout without a stack is a finding" 1 "==1== ERROR: libFuzzer: timeout after 10 seconds"
expect "a timeout in libhdf5's endless loop (campaign, embed_cache: H5C_protect under H5HG_read)" 0 "==19094== ERROR: libFuzzer: timeout after 11 seconds
    #0 0x561ed19d6191 in __sanitizer_print_stack_trace (/b/tests/fuzz/fuzz_embed_cache+0xfa191)
    #1 0x561ed1948ae8 in fuzzer::PrintStackTrace() (/b/tests/fuzz/fuzz_embed_cache+0x6cae8)
    #2 0x561ed192e329 in fuzzer::Fuzzer::AlarmCallback() (/b/tests/fuzz/fuzz_embed_cache+0x52329)
    #3 0x7faad267c04f  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f)
    #4 0x7faad5769a56  ($hdf5+0x169a56)
    #5 0x7faad568d9fc in H5C_protect ($hdf5+0x8d9fc)
    #8 0x7faad5767b32 in H5HG_read ($hdf5+0x167b32)
    #14 0x561ed1a13d24 in read_strings /src/data/h5io.c:186:20
SUMMARY: libFuzzer: timeout"
expect "a timeout in samx's loop" 1 "==1== ERROR: libFuzzer: timeout after 11 seconds
    #0 0x1 in __sanitizer_print_stack_trace (/b/fuzz+0x1)
    #1 0x2 in fuzzer::PrintStackTrace() (/b/fuzz+0x2)
    #2 0x3 in fuzzer::Fuzzer::AlarmCallback() (/b/fuzz+0x3)
    #3 0x4  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f)
    #4 0x5 in samx_dataset_scan /src/data/dataset.c:300:5
    #5 0x6 in H5Dread ($hdf5+0x1)
SUMMARY: libFuzzer: timeout"
expect "libhdf5 holding the memory at the RSS limit (campaign, embed_cache)" 0 "==6981== ERROR: libFuzzer: out-of-memory (used: 2683Mb; limit: 2048Mb)
   To change the out-of-memory limit use -rss_limit_mb=<N>

Live Heap Allocations: 1173506479 bytes in 11162 chunks; quarantined: 693671 bytes in 682 chunks; 277896 other chunks; total chunks: 289740; showing top 95% (at most 8 unique contexts)
1157627904 byte(s) (98%) in 11040 allocation(s)
    #0 0x55658a5200be in malloc (/b/tests/fuzz/fuzz_embed_cache+0xf00be)
    #1 0x7f060f1233e4  ($hdf5+0x1233e4)

MS: 3 ManualDict-ChangeBit-PersAutoDict- DE: \"OCHK\"-\"SNOD\"-; base unit: 03722927d40e5e70cc67ac62016e14e3d3fdb41d
SUMMARY: libFuzzer: out-of-memory"
expect "samx holding the memory at the RSS limit" 1 "==1== ERROR: libFuzzer: out-of-memory (used: 2100Mb; limit: 2048Mb)
Live Heap Allocations: 2000000000 bytes in 10 chunks; showing top 95%
1900000000 byte(s) (95%) in 9 allocation(s)
    #0 0x1 in malloc (/b/fuzz+0x1)
    #1 0x2 in samx_embed_read_row /src/data/embed_cache.c:380:3
SUMMARY: libFuzzer: out-of-memory"
expect "one allocation over the limit in samx" 1 "==1== ERROR: libFuzzer: out-of-memory (malloc(4294967296))
   To change the out-of-memory limit use -rss_limit_mb=<N>
    #0 0x1 in __sanitizer_print_stack_trace (/b/fuzz+0x1)
    #1 0x2 in fuzzer::PrintStackTrace() (/b/fuzz+0x2)
    #2 0x3 in fuzzer::MallocHook(void const volatile*, unsigned long) (/b/fuzz+0x3)
    #3 0x4 in __sanitizer::RunMallocHooks(void const*, unsigned long) (/b/fuzz+0x4)
    #4 0x5 in malloc (/b/fuzz+0x5)
    #5 0x6 in load_per_sample /src/data/dataset.c:210:3
SUMMARY: libFuzzer: out-of-memory (malloc(4294967296))"
expect "one allocation over the limit in libhdf5" 0 "==1== ERROR: libFuzzer: out-of-memory (malloc(4294967296))
    #0 0x1 in __sanitizer_print_stack_trace (/b/fuzz+0x1)
    #1 0x2 in fuzzer::PrintStackTrace() (/b/fuzz+0x2)
    #2 0x3 in fuzzer::MallocHook(void const volatile*, unsigned long) (/b/fuzz+0x3)
    #3 0x4 in __sanitizer::RunMallocHooks(void const*, unsigned long) (/b/fuzz+0x4)
    #4 0x5 in malloc (/b/fuzz+0x5)
    #5 0x6 in H5FL_blk_malloc ($hdf5+0x6)
SUMMARY: libFuzzer: out-of-memory (malloc(4294967296))"
expect "a timeout inside libc's memset called by libhdf5 (campaign, data_check)" 0 "==17790== ERROR: libFuzzer: timeout after 10 seconds
    #0 0x1 in __sanitizer_print_stack_trace (/b/tests/fuzz/fuzz_data_check+0x1114c1)
    #1 0x2 in fuzzer::PrintStackTrace() (/b/tests/fuzz/fuzz_data_check+0x83e18)
    #2 0x3 in fuzzer::Fuzzer::AlarmCallback() (/b/tests/fuzz/fuzz_data_check+0x696e3)
    #3 0x7f80806cc04f  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f)
    #4 0x7f80807fe0b9 in __memset_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memset-vec-unaligned-erms.S:235
    #5 0x56374c38f23d in __interceptor_memset (/b/tests/fuzz/fuzz_data_check+0x9e23d)
    #6 0x7f808384dddb in H5T__conv_vlen ($hdf5+0x24dddb)
    #10 0x56374c447e64 in read_strings /src/data/h5io.c:186:20
SUMMARY: libFuzzer: timeout"
expect "a timeout inside libc's memset called by samx" 1 "==1== ERROR: libFuzzer: timeout after 10 seconds
    #2 0x3 in fuzzer::Fuzzer::AlarmCallback() (/b/tests/fuzz/fuzz_data_check+0x696e3)
    #3 0x7f80806cc04f  (/lib/x86_64-linux-gnu/libc.so.6+0x3c04f)
    #4 0x7f80807fe0b9 in __memset_avx512_unaligned_erms string/../sysdeps/x86_64/multiarch/memset-vec-unaligned-erms.S:235
    #5 0x56374c38f23d in __interceptor_memset (/b/tests/fuzz/fuzz_data_check+0x9e23d)
    #6 0x56374c447e64 in samx_dataset_scan /src/data/dataset.c:300:5
SUMMARY: libFuzzer: timeout"
expect "an overflow in ASan's strdup interceptor called by libhdf5 on its own block (campaign, data_check)" 0 "==3284==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x61600005e78c at pc 0x557c548bfd56 bp 0x7ffe sp 0x7ffe
READ of size 13 at 0x61600005e78c thread T0
    #0 0x557c548bfd55 in strdup (/b/tests/fuzz/fuzz_data_check+0xf1d55)
    #1 0x7fbca3b842ad in H5MM_xstrdup ($hdf5+0x1842ad)
    #7 0x7fbca3a5c350 in H5Aexists ($hdf5+0x5c350)
    #8 0x5 in open_attr /src/data/h5io.c:162:7
0x61600005e78c is located 0 bytes to the right of 524-byte region
allocated by thread T0 here:
    #0 0x557c548bf3de in malloc (/b/tests/fuzz/fuzz_data_check+0x1073de)
    #1 0x7fbca3b233e4  ($hdf5+0x1233e4)
SUMMARY: AddressSanitizer: heap-buffer-overflow in strdup"
expect "samx's allocation from a declared size (campaign, data_check: fixed)" 1 "==17257==ERROR: AddressSanitizer: requested allocation size 0x5a000000028 (0x5a000001028 after adjustments for alignment, red zones etc.) exceeds maximum supported size of 0x10000000000 (thread T0)
    #0 0x556571be43de in malloc (/b/tests/fuzz/fuzz_data_check+0x1073de)
    #1 0x556571c22823 in predictions_command /src/tools/cmd_data.c:88:31
    #2 0x556571c22823 in samx_cmd_data /src/tools/cmd_data.c:196:41
SUMMARY: AddressSanitizer: allocation-size-too-big"
# FNV-1a 64 test vectors: "" and "a" (Fowler, Noll, Vo).
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
: >"$tmp"; [ "$(fnv1a "$tmp")" = cbf29ce484222325 ] && echo "ok   fnv1a('')" || { echo "FAIL fnv1a('') = $(fnv1a "$tmp")"; fail=1; }
printf a >"$tmp"; [ "$(fnv1a "$tmp")" = af63dc4c8601ec8c ] && echo "ok   fnv1a('a')" || { echo "FAIL fnv1a('a') = $(fnv1a "$tmp")"; fail=1; }
exit $fail
