#!/usr/bin/env bash
# Peak RSS of `afb restore` of one large file, at several sizes (docs/backup.md, "Measured"): restore
# streams content, so peak RSS should stay flat as the file grows. For each size, `afb bench backup
# --scenario bigfile` fills a share of the emulator with one file of that size and backs it up into
# WORK/SIZE/repo (key WORK/SIZE/master.key, mode 0600); then `/usr/bin/time -v afb restore` restores it
# to a local directory. (Byte identity is tested by backup::a_64_mib_file_restores_byte_identical_...)
#
#   bash scripts/restore_rss.sh [AFB_BINARY] [WORK_DIR]      SIZES="67108864 536870912" (bytes)
#   FILES="5000 20000" bash scripts/restore_rss.sh            many small files instead (`--scenario small`):
#                                                            peak RSS of restore and of verify per count
#
# AFB_BINARY defaults to target/debug/afb (cargo build --bin afb); RESTORE_BINARY (default AFB_BINARY)
# runs the restore, e.g. an older build to compare. Prints one line per size.
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=${1:-target/debug/afb}
WORK=${2:-/tmp/afb-restore-rss}
SIZES=${SIZES:-67108864 536870912}
rm -rf "$WORK"
mkdir -p "$WORK"
PORT=${PORT:-10941}
"$AFB" emulator --addr 127.0.0.1:$PORT --data "$WORK/emulator" > "$WORK/emulator.log" 2>&1 &
EMU=$!
trap 'kill $EMU 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q DefaultEndpointsProtocol "$WORK/emulator.log" && break; sleep 0.2; done
export AZURE_STORAGE_CONNECTION_STRING=$(grep DefaultEndpointsProtocol "$WORK/emulator.log" | head -1)
if [ -n "${FILES:-}" ]; then
  for n in $FILES; do
    w="$WORK/files-$n"
    "$AFB" bench backup --scenario small --files "$n" --work "$w" > "$w.bench.json"
    repo=(--repo "$w/repo" --tenant bench --share bench-small --master-key-file "$w/master.key")
    /usr/bin/time -v "${RESTORE_BINARY:-$AFB}" restore "${repo[@]}" --target "local:$w/out" > "$w.restore.txt" 2> "$w.time.txt"
    /usr/bin/time -v "${RESTORE_BINARY:-$AFB}" verify "${repo[@]}" > "$w.verify.txt" 2> "$w.vtime.txt"
    rss() { awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$1"; }
    restored=$(find "$w/out" -type f | wc -l)
    echo "$n files: restored $restored files, restore peak RSS $(rss "$w.time.txt") MiB, verify peak RSS $(rss "$w.vtime.txt") MiB"
    rm -rf "$w/out"
  done
  exit 0
fi
for size in $SIZES; do
  w="$WORK/$size"
  "$AFB" bench backup --scenario bigfile --big-size "$size" --work "$w" > "$w.bench.json"
  repo=(--repo "$w/repo" --tenant bench --share bench-bigfile --master-key-file "$w/master.key")
  /usr/bin/time -v "${RESTORE_BINARY:-$AFB}" restore "${repo[@]}" --target "local:$w/out" > "$w.restore.txt" 2> "$w.time.txt"
  rss_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$w.time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$w.time.txt")
  restored=$(find "$w/out" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  echo "file size $size bytes: restored $restored bytes, peak RSS $((rss_kb / 1024)) MiB, wall $wall"
  rm -rf "$w/out" "$w/repo-compare"
done
