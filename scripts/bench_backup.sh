#!/usr/bin/env bash
# The backup benchmarks of docs/backup.md: (a) mixed files, (b) 200,000 small files, (c) a 1 GB file with
# 1% of its 4 KiB ranges rewritten, (d) renaming a directory of 10,000 files; each a first and an
# incremental afb backup from the emulator, and restic backing up the same files from a local directory.
#
#   bash scripts/bench_backup.sh [AFB_BINARY] [WORK_DIR]
#
# AFB_BINARY defaults to an optimised build made here (dependencies stay at the dev profile's opt-level 2):
#   CARGO_PROFILE_DEV_OPT_LEVEL=3 CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false \
#   CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false cargo build --bin afb
# Needs restic on PATH (Debian: apt-get install -y restic). Writes docs/bench/backup-*.json.
# SCENARIOS="mixed small" limits the run; MIXED_FILES, SMALL_FILES, BIG_SIZE scale it; SMALL_COMPARE=1 also
# times the small-file first backup with one reader (mixed always does).
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=${1:-}
WORK=${2:-/tmp/afb-bench-backup}
if [ -z "$AFB" ]; then
  CARGO_PROFILE_DEV_OPT_LEVEL=3 CARGO_PROFILE_DEV_DEBUG_ASSERTIONS=false CARGO_PROFILE_DEV_OVERFLOW_CHECKS=false \
    cargo build --bin afb
  AFB="${CARGO_TARGET_DIR:-target}/debug/afb"
fi
command -v restic >/dev/null || { echo "restic is not installed (apt-get install -y restic)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK" docs/bench
cp "$AFB" "$WORK/afb"
AFB="$WORK/afb"
PORT=${PORT:-10931}
source scripts/lib/emulator.sh
start_emulator "$WORK/emulator.log" --addr 127.0.0.1:$PORT --data "$WORK/emulator"
trap 'kill $EMU 2>/dev/null || true' EXIT
restic version
for s in ${SCENARIOS:-mixed small bigfile rename}; do
  extra=()
  case $s in
    mixed) extra=(--files "${MIXED_FILES:-13300}" --compare-requests-in-flight 1) ;;
    small) extra=(--files "${SMALL_FILES:-200000}" ${SMALL_COMPARE:+--compare-requests-in-flight "$SMALL_COMPARE"}) ;;
    bigfile) extra=(--big-size "${BIG_SIZE:-1073741824}") ;;
    rename) extra=(--files 10000) ;;
  esac
  echo "== $s" >&2
  "$AFB" bench backup --scenario "$s" --work "$WORK/$s" --restic "${extra[@]}" > "docs/bench/backup-$s.json"
  rm -rf "$WORK/$s"
done
