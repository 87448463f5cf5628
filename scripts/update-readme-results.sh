#!/usr/bin/env bash
# Records a main job's results and embeds the latest recorded ones in README.md.
#
#   scripts/update-readme-results.sh --record RUN   copy RUN's results (results.md, table.md, table2.md, compare.md,
#                                                   timings.tsv, info.txt, main.log, eval/, grid.png, the
#                                                   runs' log.jsonl) into bench/results/<date>-main-job/,
#                                                   then embed it
#   scripts/update-readme-results.sh                embed the latest bench/results/*-main-job/results.md
#   scripts/update-readme-results.sh --check        exit 1 when README.md's block differs from that file
#
# README.md's "Main job" section holds the file between the lines <!-- main-job-results:begin --> and
# <!-- main-job-results:end -->, word for word (its headings one level down), so every number there is
# one a recorded run produced; the file names its commit and machine.
set -euo pipefail
cd "$(dirname "$0")/.."
begin='<!-- main-job-results:begin -->'
end='<!-- main-job-results:end -->'

mode=embed
case "${1:-}" in
  --record)
    [ $# -eq 2 ] || { echo "update-readme-results.sh: --record needs a run directory" >&2; exit 2; }
    mode=record ;;
  --check) mode=check ;;
  '') ;;
  -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "update-readme-results.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

if [ "$mode" = record ]; then
  run="$2"
  [ -f "$run/results.md" ] || { echo "update-readme-results.sh: $run/results.md does not exist (a finished scripts/main.sh run?)" >&2; exit 1; }
  dest="bench/results/$(date -u +%Y-%m-%d)-main-job"
  [ -e "$dest" ] && dest="$dest-$(date -u +%H%M)"
  mkdir -p "$dest.part"
  cp "$run/results.md" "$run/table.md" "$run/compare.md" "$run/timings.tsv" "$run/info.txt" "$run/main.log" \
    "$run/grid.png" "$dest.part/"
  if [ -f "$run/table2.md" ]; then cp "$run/table2.md" "$dest.part/"; fi
  cp -r "$run/eval" "$dest.part/eval"
  for log in "$run"/pretrain/log.jsonl "$run"/seed*/*/log.jsonl; do
    rel="${log#"$run"/}"
    mkdir -p "$dest.part/logs/$(dirname "$rel")"
    cp "$log" "$dest.part/logs/$rel"
  done
  mv "$dest.part" "$dest"
  echo "recorded $run in $dest"
fi

# without the trailing slash, so that a same-day record (-main-job-HHMM) sorts after the day's first
latest="$(for d in bench/results/*-main-job*/; do if [ -f "$d/results.md" ]; then echo "${d%/}"; fi; done | LC_ALL=C sort | tail -1)"
[ -n "$latest" ] || { echo "update-readme-results.sh: no bench/results/*-main-job*/results.md recorded yet" >&2; exit 1; }
src="${latest%/}/results.md"

block="$(mktemp)"
trap 'rm -f "$block" README.md.part' EXIT
{
  echo "$begin"
  echo "<!-- written by scripts/update-readme-results.sh from $src; do not edit by hand -->"
  echo
  sed -e 's/^# Main job results$/### Latest recorded run/' "$src"
  echo
  echo "$end"
} > "$block"

grep -qxF "$begin" README.md && grep -qxF "$end" README.md || {
  echo "update-readme-results.sh: README.md lacks the lines $begin and $end" >&2
  exit 1
}
awk -v b="$begin" -v e="$end" -v f="$block" '
  $0 == b { while ((getline line < f) > 0) print line; skip = 1; next }
  $0 == e { skip = 0; next }
  !skip { print }' README.md > README.md.part
if [ "$mode" = check ]; then
  cmp -s README.md README.md.part || { echo "README.md's main job results differ from $src (run scripts/update-readme-results.sh)" >&2; exit 1; }
  echo "README.md's main job results are $src"
  exit 0
fi
mv README.md.part README.md
echo "README.md: main job results from $src"
