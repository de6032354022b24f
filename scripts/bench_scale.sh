#!/usr/bin/env bash
# Peak RSS and time of `afb scan` (first and re-scan) and `afb backup --dry-run` (the backup's scan and
# plan against the previous index snapshot, no content read) on virtual shares of the emulator
# (`afb emulator --virtual-share`, served over HTTP, nothing stored per file), at several sizes: memory
# must stay flat in the share's size (README, "Scale"). Optimised build expected.
#
#   bash scripts/bench_scale.sh [AFB_BINARY] [WORK_DIR]     SIZES="1000000 10000000" MEMORY=1GiB
#
# The re-scan and the dry run see the share's next generation (change=0.001: 0.1% of files modified,
# added, deleted, directories renamed). Then `afb diff` of the last two index snapshots (through the
# change record) and a directory listing with subtree sizes (`ls('/d0000')` and `du` in `afb sql`).
#   STEPS=scan SIZES=100000000 ...     a scan, then the dry run (its scan is the second snapshot)
# Prints one line per command and size; JSON reports in WORK_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=${1:-target/release/afb}
WORK=${2:-/tmp/afb-scale}
SIZES=${SIZES:-1000000 10000000}
MEMORY=${MEMORY:-1GiB}
PORT=${PORT:-10951}
source scripts/lib/emulator.sh
rss() { awk -F': ' '/Maximum resident set size/ {printf "%d MiB", $2 / 1024}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }
for n in $SIZES; do
  w="$WORK/$n"
  rm -rf "$w"
  mkdir -p "$w"
  start_emulator "$w/emulator.log" --addr 127.0.0.1:$PORT --data "$w/emulator" --virtual-share "big=$n,seed=7,change=0.001"
  trap 'kill $EMU 2>/dev/null || true' EXIT
  "$AFB" init --repo "$w/repo" --master-key-file "$w/master.key" > /dev/null 2>&1 || true
  common=(--repo "$w/repo" --tenant t --share big)
  for step in ${STEPS:-scan rescan}; do
    /usr/bin/time -v "$AFB" scan "${common[@]}" --memory "$MEMORY" --spill-dir "$w/spill" --json > "$w/$step.json" 2> "$w/$step.time"
    echo "$n files: $step peak RSS $(rss "$w/$step.time"), wall $(wall "$w/$step.time"), $(python3 -c "import json,sys; r=json.load(open('$w/$step.json')); print(f\"{r['entries']} entries, {r['spilled_runs']} spilled runs, {r['list_requests']} list requests\")")"
  done
  if [ -z "${SKIP_DRY_RUN:-}" ]; then
    /usr/bin/time -v "$AFB" backup "${common[@]}" --master-key-file "$w/master.key" --dry-run --json > "$w/dry-run.json" 2> "$w/dry-run.time" || { tail -3 "$w/dry-run.time"; }
    echo "$n files: backup --dry-run peak RSS $(rss "$w/dry-run.time"), wall $(wall "$w/dry-run.time")"
  fi
  # Each scan and the dry run commit an index snapshot (ids 1, 2, ...): diff the last two, list a directory.
  last=$(ls "$w/repo/t/big/index/snapshots/"*.json | wc -l)
  if [ "$last" -ge 2 ]; then
    /usr/bin/time -v "$AFB" diff "${common[@]}" $((last - 1)) "$last" --json > "$w/diff.json" 2> "$w/diff.time"
    echo "$n files: diff $((last - 1)) $last peak RSS $(rss "$w/diff.time"), wall $(wall "$w/diff.time"), $(python3 -c "import json; r=json.load(open('$w/diff.json')); print({k: v for k, v in r.items() if not isinstance(v, (list, dict))})")"
    /usr/bin/time -v "$AFB" sql --repo "$w/repo" --tenant t --share big --csv \
      "SELECT count(*) AS entries, sum(size) AS bytes, sum(du(node_id)) AS subtree_bytes FROM ls('/d0000')" > "$w/ls.csv" 2> "$w/ls.time"
    echo "$n files: ls /d0000 with du peak RSS $(rss "$w/ls.time"), wall $(wall "$w/ls.time"), $(tail -n1 "$w/ls.csv")"
  fi
  echo "$n files: index on disk $(du -sb "$w/repo" | cut -f1) bytes; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  kill $EMU; wait $EMU 2>/dev/null || true
  rm -rf "$w/spill" "$w/emulator"
done
