#!/usr/bin/env bash
# Soak test (outside the default tests; figures in issue 14's closing note): WORKERS `afb worker`
# processes on PostgreSQL back up a FILES-file virtual share of the emulator, split into parts of
# BATCH_FILES files, while KILLS of them are killed with SIGKILL at random moments (each replaced at once).
# Then the backup must be whole: every job succeeded, `afb verify` passes, and a restored directory
# equals what the emulator serves, byte for byte (read with the official Python SDK).
#
#   AFB=target/release/afb FILES=1000000 WORKERS=4 KILLS=100 bash scripts/soak_kill.sh
set -euo pipefail
cd "$(dirname "$0")/.."
AFB=${AFB:-target/release/afb}
AFB=$(realpath "$AFB")
FILES=${FILES:-1000000}
WORKERS=${WORKERS:-4}
KILLS=${KILLS:-100}
BATCH_FILES=${BATCH_FILES:-20000}
WORK=${WORK:-/tmp/afb-soak}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-10961}
rm -rf "$WORK"; mkdir -p "$WORK"
pids=()
cleanup() { kill "${pids[@]}" "${EMU:-}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

"$AFB" emulator --addr 127.0.0.1:$PORT --data "$WORK/emulator" --virtual-share "big=$FILES,seed=7" > "$WORK/emulator.out" 2> "$WORK/emulator.err" &
EMU=$!
for _ in $(seq 100); do [ -s "$WORK/emulator.out" ] && break; sleep 0.1; done
CONN=$(head -n1 "$WORK/emulator.out")
db="afb_soak_$$"
psql "$PG/postgres" -qAtc "CREATE DATABASE $db" > /dev/null
url="$PG/$db"
"$AFB" migrate --database-url "$url" > /dev/null 2>&1
repo="$WORK/repo"
"$AFB" init --repo "$repo" --master-key-file "$WORK/master.key" > /dev/null
mkdir -p "$repo/.afb"
printf '{"t/big": {"connection_string": "%s", "sas_url": null, "azure_share": null}}' "$CONN" > "$repo/.afb/shares.json"
chmod 600 "$repo/.afb/shares.json"

start_worker() {
  "$AFB" worker --database-url "$url" --repo "$repo" --master-key-file "$WORK/master.key" --concurrency 1 \
    --lease-secs 6 --retry-base-secs 1 --backup-batch-files "$BATCH_FILES" >> "$WORK/worker-$1.log" 2>&1 &
  pids[$1]=$!
}
for i in $(seq 0 $((WORKERS - 1))); do start_worker "$i"; done
started=$(date +%s)
job=$("$AFB" jobs enqueue --database-url "$url" --tenant 1 --share 1 --kind backup --payload '{"tenant":"t","share":"big"}' --max-attempts 1000)
kills=0
unfinished() { psql "$url" -qAtc "SELECT count(*) FROM jobs WHERE state NOT IN ('succeeded','failed','cancelled')"; }
while [ "$(unfinished)" != 0 ]; do
  sleep "$(python3 -c 'import random; print(round(random.uniform(0.3, 3.0), 2))')"
  if [ "$kills" -lt "$KILLS" ]; then
    i=$((RANDOM % WORKERS))
    kill -9 "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
    kills=$((kills + 1))
    start_worker "$i"
  fi
done
seconds=$(( $(date +%s) - started ))
psql "$url" -qAtc "SELECT kind, state, count(*), sum(attempts) FROM jobs GROUP BY kind, state ORDER BY kind, state" > "$WORK/jobs.txt"
echo "backup of $FILES files with $WORKERS workers and $kills SIGKILLs: ${seconds}s; jobs (kind|state|count|attempts):"
cat "$WORK/jobs.txt"
failed=$(psql "$url" -qAtc "SELECT count(*) FROM jobs WHERE state <> 'succeeded'")
[ "$failed" = 0 ] || { echo "FAILED: $failed jobs did not succeed"; exit 1; }
common=(--repo "$repo" --tenant t --share big --master-key-file "$WORK/master.key")
snapshots=$(ls "$repo/t/big/snapshots" | wc -l)
echo "backup snapshots: $snapshots"
[ "$snapshots" = 1 ] || { echo "FAILED: $snapshots backup snapshots, not exactly one"; exit 1; }
echo "$("$AFB" verify "${common[@]}" 2>&1 | tail -1)"
"$AFB" restore "${common[@]}" --path d0001 --target "local:$WORK/restored" > "$WORK/restore.txt"
CONN="$CONN" OUT="$WORK/restored" .venv/bin/python - <<'PY'
import os, pathlib
from azure.storage.fileshare import ShareServiceClient
share = ShareServiceClient.from_connection_string(os.environ["CONN"]).get_share_client("big")
out = pathlib.Path(os.environ["OUT"])
n = 0
def walk(d, rel):
    global n
    for e in share.get_directory_client(d).list_directories_and_files():
        path = f"{d}/{e['name']}"
        if e["is_directory"]:
            walk(path, f"{rel}/{e['name']}")
        else:
            data = share.get_file_client(path).download_file().readall()
            got = (out / rel.lstrip("/") / e["name"]).read_bytes()
            assert got == data, f"{path} differs"
            n += 1
walk("d0001", "d0001")
restored = sum(1 for p in out.rglob("*") if p.is_file())
assert restored == n, f"restored {restored} files, the share has {n} under d0001"
print(f"restore of d0001: {n} files equal the emulator's byte for byte")
PY
kill "${pids[@]}" 2>/dev/null || true
wait "${pids[@]}" 2>/dev/null || true
psql "$PG/postgres" -qAtc "DROP DATABASE $db" > /dev/null
