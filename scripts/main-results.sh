#!/usr/bin/env bash
# results.md of a main job (scripts/main.sh calls it; stdout): where and when the numbers were made
# (commit, date, CPU model, cores, BLAS and its threads, load average), the results table, the pooled
# paired tests, the pretrained model's box-prompted Dice and the time of each stage. README.md's
# "Main job" results are this file of the latest recorded run (scripts/update-readme-results.sh).
#
#   scripts/main-results.sh RUN SAMX SEEDS BOX PROMPTED_DICE DATE LOAD_AT_START
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 7 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
run="$1" samx="$2" seeds="$3" box="$4" prompted="$5" date_start="$6" load_start="$7"

commit="$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)"
cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
blas="$(ldd "$samx" 2>/dev/null | sed -n 's/.*\(lib[a-z]*blas[^ ]*\) => \([^ ]*\).*/\2/p' | head -1)"
[ -n "$blas" ] && blas="$(readlink -f "$blas")"
cores=$(nproc --all)  # plain nproc counts OMP_NUM_THREADS, not the machine
threads="${OMP_NUM_THREADS:-unset (OpenBLAS/OpenMP use all $cores cores)}"
jobs="${SAMX_MAIN_JOBS:-1}"  # stages at once (scripts/main.sh)
IFS=$'\t' read -r pd_mean pd_std pd_n <<< "$prompted"

echo "# Main job results"
echo
echo "- commit: \`$commit\` (\`$(head -1 "$run/info.txt")\`)"
echo "- date: $date_start"
echo "- machine: ${cpu:-unknown CPU}, $cores cores; BLAS \`${blas:-none linked}\`; OMP_NUM_THREADS $threads;" \
  "$jobs stage(s) at once"
echo "- load average (1, 5, 15 min) at the start: $load_start; at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- downstream seeds: $seeds (run.seed = 1..$seeds); device: ${SAMX_DEVICE:-auto}"
echo
cat "$run/table.md"
echo
echo "Paired tests, seeds pooled: each test sample's metric is first averaged over the $seeds seeds,"
echo "then every method is compared with MCL on those per-sample means."
echo
cat "$run/compare.md"
echo
echo "The pretrained model (SAM-FT) against the annotator whose tight box prompts it (annotator $box):"
echo "Dice $pd_mean ± $pd_std over $pd_n test samples with a non-empty mask of that annotator."
echo
echo "| stage | seconds | CPU seconds | started at s |"
echo "|---|---:|---:|---:|"
tail -n +2 "$run/timings.tsv" |
  awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, ($3 == "" ? "—" : $3), ($4 == "" ? "—" : $4) }'
