#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz (clang, ASan + UBSan, CPU backend) into build-fuzz/ and
# runs each on top of its committed corpus (tests/fuzz/corpus/<target>/), one target at a time.
#
# usage: scripts/fuzz.sh [--seconds-per-target N | --hours H] [--keep-going] [--build-only] [--no-skip-known]
#                        [TARGET...]
#   --seconds-per-target N  run every target N seconds (default 20)
#   --hours H               a long campaign: H hours shared equally by the targets
#   --keep-going            after a finding, start the target again on its grown corpus until its time
#                           is up (a long campaign collects every finding; the exit status still fails)
#   --build-only            configure and build, run nothing
#   --no-build              run the targets already built
# FUZZ_BUILD_DIR (default build-fuzz) names the build folder; logs, corpora and artifacts go under it.
# FUZZ_SEGMENT_S (default 1200): a target runs in libFuzzer segments of at most this many seconds, each
# under a hard time limit, so that a hung report costs one segment, not the campaign.
#   --no-skip-known         also stop on the issues listed in tests/fuzz/known_issues.txt
#   TARGET                  pickle, torch, safetensors, data_check, embed_cache, nifti, image, config,
#                           lidc_pickle, compare (default: all); TARGET:SECONDS gives that target its own time
# One allocation may take at most FUZZ_MALLOC_MB MiB (default 2048), the process FUZZ_RSS_MB MiB of
# resident memory (default twice that) and an input FUZZ_TIMEOUT s (default 10): a pickle bomb or a
# huge declared shape is reported as a finding, not a hang. New inputs go to
# build-fuzz/corpus/<target>/, logs to build-fuzz/logs/<target>.log, crashes, leaks, timeouts and
# out-of-memory inputs to build-fuzz/artifacts/<target>/, inputs on which libhdf5 alone crashes or
# hangs (upstream findings, skipped) to build-fuzz/upstream/<target>/. The targets' own output is
# closed (-close_fd_mask=3); sanitizer reports still reach the log. Exit status 1 when any target failed; the
# reproducer's path and the command that replays it are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
seconds=20 hours="" build_only=0 no_build=0 skip_known=1 keep_going=0 targets=()
b=${FUZZ_BUILD_DIR:-build-fuzz}
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds-per-target) seconds=$2; shift 2 ;;
    --hours) hours=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --keep-going) keep_going=1; shift ;;
    --no-build) no_build=1; shift ;;
    --no-skip-known) skip_known=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("${1#fuzz_}"); shift ;;
  esac
done

if [ "$no_build" = 0 ]; then
  bash scripts/install-deps.sh >/dev/null
  CC=clang CXX=clang++ cmake -S . -B "$b" -G Ninja -DSAMX_FUZZ=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  ninja -C "$b" fuzz_targets | tail -1
fi
[ "$build_only" = 1 ] && exit 0

if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi
if [ -n "$hours" ]; then
  seconds=$(awk -v h="$hours" -v n=${#targets[@]} 'BEGIN { printf "%d", h * 3600 / n }')
fi
skip=""
if [ "$skip_known" = 1 ]; then
  skip=$({ grep -v '^#' tests/fuzz/known_issues.txt || true; } | awk 'NF { printf "%s%s", sep, $1; sep = "," }')
fi
export SAMX_FUZZ_SKIP=$skip
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
# A small quarantine: freed memory ASan holds back counts toward -rss_limit_mb, and with the default an
# input that allocated and freed a large block left ~2 GB quarantined (an out-of-memory stop with 26 MB
# live, twice in the third campaign).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:allocator_may_return_null=0:quarantine_size_mb=64"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0"
# The RSS limit sits above the allocation limit: a declared-size allocation is still a finding at
# FUZZ_MALLOC_MB, while the resident memory the sanitizer's allocator keeps after frees (2.1-2.5 GB with
# under 30 MB live, five stops of the fifth campaign at an RSS limit equal to the allocation limit) is not.
malloc_mb=${FUZZ_MALLOC_MB:-2048} tmo=${FUZZ_TIMEOUT:-10} segment_s=${FUZZ_SEGMENT_S:-1200}
rss=${FUZZ_RSS_MB:-$((2 * malloc_mb))}
echo "fuzz.sh: ${#targets[@]} targets, ${seconds} s each unless TARGET:SECONDS, -malloc_limit_mb=$malloc_mb -rss_limit_mb=$rss -timeout=$tmo, skipping known: ${skip:-none}"
source scripts/fuzz-triage.sh  # crash_is_libhdf5s
set_aside_upstream() {
  for a in $(tail -n +"$1" "$log" | sed -n 's/.*Test unit written to \(.*\)$/\1/p'); do
    [ -f "$a" ] && mv "$a" "$b/upstream/$t/crash-$(fnv1a "$a")"
  done
}
# The committed libhdf5 findings (upstream-* in the corpora) are set aside before the run: they stay in
# the corpus for their mutations, and a layout in which the checker does not crash on them does not
# make them samx's.
set_aside_committed_upstream() {
  local f
  for f in "$seed"/upstream-*; do
    [ -f "$f" ] && cp "$f" "$b/upstream/$t/crash-$(fnv1a "$f")"
  done
  return 0
}
failed=()
printf '%-14s %12s %8s %8s %7s  %s\n' target executions cov ft corpus result
for t in "${targets[@]}"; do
  t_seconds=$seconds
  case "$t" in *:*) t_seconds=${t#*:}; t=${t%%:*} ;; esac
  bin=$b/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz.sh: no target fuzz_$t" >&2; exit 2; }
  seed=tests/fuzz/corpus/$t work=$b/corpus/$t art=$b/artifacts/$t log=$b/logs/$t.log
  mkdir -p "$seed" "$work" "$art" $b/logs $b/upstream/$t
  export SAMX_FUZZ_UPSTREAM_DIR=$root/$b/upstream/$t
  set_aside_committed_upstream
  dict=()
  [ -f "tests/fuzz/dict/$t.dict" ] && dict=(-dict="tests/fuzz/dict/$t.dict")
  # libhdf5 failures that get past the checker come every few hundred to few thousand inputs: one restart per 10 s
  # of a long campaign, and 20 for any run (each set-aside input is skipped from then on)
  rc=0 execs=0 findings=0 left=$t_seconds upstream_restarts=0 max_restarts=$((20 + t_seconds / 10))
  : >"$log"
  while :; do
    start=$(date +%s) r=0 from=$(($(wc -l <"$log") + 1))
    # Segments of at most FUZZ_SEGMENT_S (default 20 minutes) under a hard limit 2 minutes past
    # libFuzzer's own: its out-of-memory report (the heap profile, which stops every thread) hung twice
    # (33 minutes in the fourth campaign, an hour in the fifth), and a hang costs at most one segment.
    seg=$((left < segment_s ? left : segment_s))
    timeout -s KILL $((seg + 120)) "$bin" "$work" "$seed" "${dict[@]}" -max_total_time="$seg" -rss_limit_mb="$rss" -malloc_limit_mb="$malloc_mb" \
      -timeout="$tmo" -artifact_prefix="$art/" -print_final_stats=1 -close_fd_mask=3 >>"$log" 2>&1 || r=$?
    # this segment's count only: a segment killed before its final stats adds nothing, not the last one again
    n=$(tail -n +"$from" "$log" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
    execs=$((execs + ${n:-0}))
    left=$((left - ($(date +%s) - start)))
    if [ "$r" != 0 ] && [ "$upstream_restarts" -lt "$max_restarts" ] && tail -n +"$from" "$log" | crash_is_libhdf5s; then
      set_aside_upstream "$from"
      upstream_restarts=$((upstream_restarts + 1))
      [ "$left" -gt 5 ] || break
      echo "fuzz.sh: libhdf5 crashed on its own (input set aside); restarting fuzz_$t for the remaining ${left} s" >>"$log"
      continue
    fi
    if [ "$r" = 0 ]; then  # a segment ended on time: the next one, while time is left
      [ "$left" -gt 5 ] || break
      echo "fuzz.sh: next segment of fuzz_$t for the remaining ${left} s" >>"$log"
      continue
    fi
    rc=$r findings=$((findings + 1))
    [ "$keep_going" = 1 ] && [ "$left" -gt 5 ] || break
    echo "fuzz.sh: restarting fuzz_$t for the remaining ${left} s" >>"$log"
  done
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last") ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  if [ "$rc" = 0 ]; then
    result=ok
    [ "$upstream_restarts" = 0 ] || result="ok ($upstream_restarts libhdf5 crash(es) set aside in $b/upstream/$t)"
  else
    result="FAILED ($findings finding(s), last exit $rc)"
    failed+=("$t")
  fi
  printf '%-14s %12s %8s %8s %7s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
  if [ "$rc" != 0 ]; then
    grep -E 'ERROR: |SUMMARY: |runtime error|Test unit written' "$log" | head -8 | sed 's/^/    /'
    for a in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      echo "    reproduce: SAMX_FUZZ_SKIP=$skip $bin $a   (log: $log)"
    done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran without a finding"
