#!/usr/bin/env bash
# Peak RSS and time of the backup's stages on virtual shares of the emulator (README "Scale"): at each
# size, a first backup, an unchanged re-run, a re-run after 0.1% of the files changed, a restore of
# 1,000,000 files of the latest snapshot to a local directory (the whole share up to 1M files; above, the
# first top-level directory, which holds 1M files from 2M on), and verify of the whole snapshot. Memory must stay
# flat in the share's size.
# The share is `big=N,seed=7,change=0.001,every=2`: generation 1 repeats generation 0 (the unchanged
# re-run), generation 2 brings the changes. Optimised build expected.
#
#   bash scripts/bench_scale_backup.sh AFB_BINARY [WORK_DIR]      SIZES="100000 1000000" PORT=10981
#
# With RESTIC=1 (sizes up to 1M), restic 0.14 backs up the restored files from local disk (first backup,
# unchanged re-run) and restores them, in the same run (apt-get install -y restic).
#
# One line per step: size, label, wall seconds, peak RSS (MiB), files/s (of the share; of the restored
# files for the restore), CPU seconds of afb and of the emulator meanwhile; then the repository size and load.
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=$(realpath "${1:-target/release/afb}")
WORK=$(realpath -m "${2:-/tmp/afb-scale-backup}")
SIZES=${SIZES:-100000 1000000}
PORT=${PORT:-10981}
EMU=
source scripts/lib/emulator.sh
trap '[ -n "$EMU" ] && kill $EMU 2>/dev/null || true' EXIT

# step N LABEL CMD...: runs CMD under /usr/bin/time -v and prints one line.
step() {
  local n=$1 label=$2 emu_cpu0 wall rss cpu emu_cpu
  shift 2
  emu_cpu0=$(awk '{print $14+$15}' "/proc/$EMU/stat")
  /usr/bin/time -v -o "$w/time.txt" "$@" > "$w/out.txt" 2> "$w/err.txt" || {
    echo "$n $label failed:" >&2; tail -5 "$w/err.txt" >&2; exit 1; }
  wall=$(awk -F': ' '/Elapsed/ {k=split($2,t,":"); s=0; for(i=1;i<=k;i++) s=s*60+t[i]; print s}' "$w/time.txt")
  rss=$(awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$w/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.1f", s}' "$w/time.txt")
  emu_cpu=$(echo "($(awk '{print $14+$15}' "/proc/$EMU/stat") - $emu_cpu0) / $(getconf CLK_TCK)" | bc -l)
  printf '%s files\t%s\t%.1f s\t%s MiB\t%.0f files/s\tCPU %s s\temulator CPU %.1f s\n' "$n" "$label" "$wall" "$rss" \
    "$(echo "${STEP_FILES:-$n} / $wall" | bc -l)" "$cpu" "$emu_cpu"
  cp "$w/out.txt" "$w/$(echo "$label" | tr ' /,.%' '_____').json"
}

for n in $SIZES; do
  w="$WORK/$n"
  rm -rf "$w"
  mkdir -p "$w"
  start_emulator "$w/emulator.log" --addr 127.0.0.1:$PORT --data "$w/emulator" --virtual-share "big=$n,seed=7,change=0.001,every=2"
  "$AFB" init --repo "$w/repo" --master-key-file "$w/master.key" > /dev/null
  common=(--repo "$w/repo" --tenant t --share big --master-key-file "$w/master.key" --json)
  step "$n" "first backup" "$AFB" backup "${common[@]}"
  step "$n" "unchanged re-run" "$AFB" backup "${common[@]}"
  step "$n" "re-run, 0.1% changed" "$AFB" backup "${common[@]}"
  if [ "$n" -le 1000000 ]; then
    step "$n" "restore (whole share)" "$AFB" restore "${common[@]}" --target "local:$w/restore"
  else
    # The first top-level directory holds 1M files; the changes may have renamed it (`d0000-r2`).
    sub=$("$AFB" sql --repo "$w/repo" --csv "SELECT name FROM current_nodes WHERE parent_id = 0 ORDER BY name LIMIT 1" | tail -1)
    STEP_FILES=1000000 step "$n" "restore (subtree $sub, 1M files)" "$AFB" restore "${common[@]}" --path "$sub" --target "local:$w/restore"
  fi
  if [ -n "${RESTIC:-}" ] && [ "$n" -le 1000000 ]; then
    # restic 0.14 on the restored files (a local directory), in the same run.
    export RESTIC_PASSWORD=afb-bench RESTIC_REPOSITORY="$w/restic"
    restic init > /dev/null
    ( cd "$w/restore" && step "$n" "restic first backup" restic backup --json . )
    ( cd "$w/restore" && step "$n" "restic unchanged re-run" restic backup --json . )
    step "$n" "restic restore" restic restore latest --target "$w/restic-restore"
    mv "$w/restic-restore" "$w/old-restic-restore"   # deleting 1M files takes minutes: left to the next run
    echo "$n files: restic repository $(du -sb "$w/restic" | cut -f1) bytes"
  fi
  mv "$w/restore" "$w/old-restore"
  step "$n" "verify" "$AFB" verify "${common[@]}"
  echo "$n files: repository $(du -sb "$w/repo" | cut -f1) bytes; load average $(cut -d' ' -f1-3 /proc/loadavg)"
  kill $EMU; wait $EMU 2>/dev/null || true; EMU=
  rm -rf "$w/emulator"
done
