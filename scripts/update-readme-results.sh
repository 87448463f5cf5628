#!/usr/bin/env bash
# Records a main job's results and embeds the latest recorded ones in README.md.
#
#   scripts/update-readme-results.sh --record RUN   copy RUN's results (results.md, table.md, table2.md, compare.md,
#                                                   timings.tsv, info.txt, main.log, eval/, grid.png, the
#                                                   runs' log.jsonl, anatomy/'s evals and few-shot logs)
#                                                   into bench/results/<date>-main-job/,
#                                                   then embed it
#   scripts/update-readme-results.sh                embed the latest bench/results/*-main-job/results.md
#   scripts/update-readme-results.sh --check        exit 1 when README.md's block differs from that file
#
# README.md's "Main job" section holds the file between the lines <!-- main-job-results:begin --> and
# <!-- main-job-results:end -->, word for word (its headings one level down), so every number there is
# one a recorded run produced; the file names its commit and machine. The "Few-shot decoders" section
# holds the same run's table2.md between <!-- fewshot-results:begin --> and <!-- fewshot-results:end -->.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=embed
case "${1:-}" in
  --record)
    [ $# -eq 2 ] || { echo "update-readme-results.sh: --record needs a run directory" >&2; exit 2; }
    mode=record ;;
  --check) mode=check ;;
  '') ;;
  -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
  *) echo "update-readme-results.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

if [ "$mode" = record ]; then
  run="$2"
  [ -f "$run/results.md" ] || { echo "update-readme-results.sh: $run/results.md does not exist (a finished scripts/main.sh run?)" >&2; exit 1; }
  dest="bench/results/$(date -u +%Y-%m-%d)-main-job"
  # a later record of the day gets -HHMM, which sorts after the day's others (pruned ones included)
  compgen -G "$dest*" >/dev/null && dest="$dest-$(date -u +%H%M)"
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
  # the second table's evaluations and few-shot training logs (anatomy/eval, anatomy/seed*/eval, ...)
  if [ -d "$run/anatomy" ]; then
    (cd "$run" && find anatomy -path '*/eval/*.json' -o -name log.jsonl -o -name rows.txt) | while read -r f; do
      mkdir -p "$dest.part/$(dirname "$f")"
      cp "$run/$f" "$dest.part/$f"
    done
  fi
  mv "$dest.part" "$dest"
  echo "recorded $run in $dest"
fi

# without the trailing slash, so that a same-day record (-main-job-HHMM) sorts after the day's first
latest="$(for d in bench/results/*-main-job*/; do if [ -f "$d/results.md" ]; then echo "${d%/}"; fi; done | LC_ALL=C sort | tail -1)"
[ -n "$latest" ] || { echo "update-readme-results.sh: no bench/results/*-main-job*/results.md recorded yet" >&2; exit 1; }
src="${latest%/}/results.md"

table2="${latest%/}/table2.md"
work="$(mktemp -d)"
trap 'rm -rf "$work" README.md.part' EXIT
cp README.md "$work/readme"

# embed MARK SOURCE BODY: replace what lies between <!-- MARK:begin --> and <!-- MARK:end --> in
# $work/readme with the comment naming SOURCE and the text of the file BODY.
embed() {
  local b="<!-- $1:begin -->" e="<!-- $1:end -->"
  grep -qxF "$b" "$work/readme" && grep -qxF "$e" "$work/readme" || {
    echo "update-readme-results.sh: README.md lacks the lines $b and $e" >&2
    exit 1
  }
  {
    echo "$b"
    echo "<!-- written by scripts/update-readme-results.sh from $2; do not edit by hand -->"
    echo
    cat "$3"
    echo
    echo "$e"
  } > "$work/block"
  awk -v b="$b" -v e="$e" -v f="$work/block" '
    $0 == b { while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }' "$work/readme" > "$work/readme.next"
  mv "$work/readme.next" "$work/readme"
}
sed -e 's/^# Main job results$/### Latest recorded run/' "$src" > "$work/results"
embed main-job-results "$src" "$work/results"
# The few-shot section shows the same run's second table (README "Few-shot decoders").
if [ -f "$table2" ]; then embed fewshot-results "$table2" "$table2"; fi
cp "$work/readme" README.md.part
if [ "$mode" = check ]; then
  cmp -s README.md README.md.part || { echo "README.md's main job results differ from $src / $table2 (run scripts/update-readme-results.sh)" >&2; exit 1; }
  echo "README.md's main job results are $src (and $table2)"
  exit 0
fi
mv README.md.part README.md
echo "README.md: main job results from $src (and $table2)"
