#!/usr/bin/env bash
# Small files at Azure's pace (README "Small files", docs/backup.md): FILES (100,000) files of at most
# 8 KiB generated into an `afb emulator` share, then side by side in one run:
#   afb first backup, unchanged re-run, 1% of the files changed, restore to a local directory;
#   restic 0.14 on a local copy of the same files (afb's restore): the same three backups and a restore;
#   afb first backups with the emulator adding 10 ms to every request, without and with a share limit of
#   5,000 requests per second (--fault-latency-ms 10, --share-iops-limit 5000).
# Every step runs under /usr/bin/time -v; one line per step: label, wall seconds, peak RSS (MB), files/s,
# CPU seconds of the step's process and of the emulator meanwhile.
#
#   bash scripts/bench_small_files.sh AFB_BINARY [WORK_DIR]
#
# AFB_BINARY: an optimised build (CARGO_TARGET_DIR=/work/release-target cargo build --release --bins).
# Needs restic (apt-get install -y restic) and the Python SDK azure-storage-file-share (tests/requirements.txt)
# to change 1% of the files in the share. FILES, RIF (requests in flight, default the binary's) scale it.
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=$(realpath "$1")
WORK=${2:-/tmp/afb-bench-small}
FILES=${FILES:-100000}
PORT=${PORT:-10961}
command -v restic >/dev/null || { echo "restic is not installed (apt-get install -y restic)" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"
export RESTIC_PASSWORD=afb-bench RESTIC_REPOSITORY="$WORK/restic"
EMU=
start_emulator() {
  [ -n "$EMU" ] && { kill "$EMU"; wait "$EMU" 2>/dev/null || true; }
  "$AFB" emulator --addr 127.0.0.1:$PORT --data "$WORK/emulator" "$@" > "$WORK/emulator.log" 2>&1 &
  EMU=$!
  for _ in $(seq 100); do grep -q DefaultEndpointsProtocol "$WORK/emulator.log" && break; sleep 0.1; done
  AZURE_STORAGE_CONNECTION_STRING=$(grep -o 'DefaultEndpointsProtocol[^ ]*' "$WORK/emulator.log" | head -1)
  export AZURE_STORAGE_CONNECTION_STRING
}
trap '[ -n "$EMU" ] && kill $EMU 2>/dev/null || true' EXIT

# step LABEL FILES CMD...: runs CMD under /usr/bin/time -v; prints label, seconds, peak RSS, files/s.
step() {
  local label=$1 n=$2 emu_cpu0
  shift 2
  emu_cpu0=$(awk '{print $14+$15}' "/proc/$EMU/stat")
  /usr/bin/time -v -o "$WORK/time.txt" "$@" > "$WORK/out.txt" 2> "$WORK/err.txt" || {
    echo "$label failed:" >&2; tail -5 "$WORK/err.txt" >&2; exit 1; }
  local wall rss cpu emu_cpu
  wall=$(awk -F': ' '/Elapsed/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$WORK/time.txt")
  rss=$(awk '/Maximum resident/ {printf "%.0f", $6/1024}' "$WORK/time.txt")
  cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {printf "%.1f", s}' "$WORK/time.txt")
  emu_cpu=$(echo "($(awk '{print $14+$15}' "/proc/$EMU/stat") - $emu_cpu0) / $(getconf CLK_TCK)" | bc -l)
  printf '%s\t%.1f s\t%s MB\t%.0f files/s\tCPU %s s\temulator CPU %.1f s\n' "$label" "$wall" "$rss" \
    "$(echo "$n / $wall" | bc -l)" "$cpu" "$emu_cpu"
  cp "$WORK/out.txt" "$WORK/$(echo "$label" | tr ' /,%' '____').out"
}

# afb backup/restore of share "small", tenant t; RIF overrides the requests in flight.
COMMON=(--tenant t --share small --master-key-file "$WORK/master.key" ${RIF:+--requests-in-flight "$RIF"} --json)

start_emulator
"$AFB" init --repo "$WORK/repo" --master-key-file "$WORK/master.key" > /dev/null
t0=$(date +%s)
"$AFB" gen --share small --files "$FILES" --max-file-size 8192 --concurrency 64 --seed 1 > /dev/null
echo "generated $FILES files in $(( $(date +%s) - t0 )) s" >&2
"$AFB" --version >&2
restic version >&2
nproc >&2

step "afb first backup" "$FILES" "$AFB" backup --repo "$WORK/repo" "${COMMON[@]}"
step "afb unchanged re-run" "$FILES" "$AFB" backup --repo "$WORK/repo" "${COMMON[@]}"
step "afb restore" "$FILES" "$AFB" restore --repo "$WORK/repo" --target "local:$WORK/local" "${COMMON[@]}"
restic init > /dev/null
( cd "$WORK/local" && step "restic first backup" "$FILES" restic backup --json . )
( cd "$WORK/local" && step "restic unchanged re-run" "$FILES" restic backup --json . )

# 1% of the files (every 100th in path order) get their first 4 KiB (or all of it) rewritten, in the
# share and in the local copy alike.
.venv/bin/python - "$WORK/local" <<'EOF'
import os, sys
from azure.storage.fileshare import ShareServiceClient
root = sys.argv[1]
paths = sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
share = ShareServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"]).get_share_client("small")
changed = 0
for p in paths[::100]:
    size = os.path.getsize(os.path.join(root, p))
    if size == 0:
        continue
    data = os.urandom(min(size, 4096))
    share.get_file_client(p).upload_range(data, offset=0, length=len(data))
    with open(os.path.join(root, p), "r+b") as f:
        f.write(data)
    changed += 1
print(f"changed {changed} files", file=sys.stderr)
EOF
CHANGED=$(( FILES / 100 ))
step "afb 1% changed" "$CHANGED" "$AFB" backup --repo "$WORK/repo" "${COMMON[@]}"
( cd "$WORK/local" && step "restic 1% changed" "$CHANGED" restic backup --json . )
step "afb restore (after the change)" "$FILES" "$AFB" restore --repo "$WORK/repo" --target "local:$WORK/restore2" \
  "${COMMON[@]}"
step "restic restore" "$FILES" restic restore latest --target "$WORK/restic-restore"
diff -r "$WORK/restore2" "$WORK/restic-restore" > /dev/null && echo "afb and restic restores are identical" >&2

# Azure's pace: every request 10 ms, then also at most 5,000 requests per second on the share.
start_emulator --fault-latency-ms 10
step "afb first backup, 10 ms latency" "$FILES" "$AFB" backup --repo "$WORK/repo-latency" "${COMMON[@]}"
start_emulator --fault-latency-ms 10 --share-iops-limit 5000
step "afb first backup, 10 ms, 5000 requests/s" "$FILES" "$AFB" backup --repo "$WORK/repo-limit" "${COMMON[@]}"
python3 -c "
import json; s = json.load(open('$WORK/afb_first_backup__10_ms__5000_requests_s.out'))
print('throttled', s['requests_throttled'], 'of', s['requests_sent'], 'requests; lowest limit', s['requests_in_flight_lowest'])" >&2
