#!/usr/bin/env bash
# Scan time of one large share against the number of worker processes, with the emulator's per-share
# IOPS cap (docs/jobs.md, "Scan fan-out benchmark").
#
#   AFB=/path/to/afb FILES=1000000 IOPS=500 LATENCY_MS=20 SCAN_CONCURRENCY=4 WORKERS="1 2 4" \
#     scripts/bench-scan-workers.sh
#
# - The share is generated once into $WORK/emu through the REST API: `afb gen` with the sample spec
#   (data/sample-share.json: ~19 files per directory, depth up to 12) but every file empty
#   (`empty_file_ratio` 1), so each file is one Create File request; $GEN_CONCURRENCY in flight. Reused
#   by later runs.
# - Each run: a fresh repository and a fresh PostgreSQL database, N `afb worker` processes (one job at a
#   time each), one `scan` job enqueued; the time is from the enqueue until no job is unfinished.
# - The emulator runs as its own process with `--share-iops-limit $IOPS` (0 = no cap) and
#   `--fault-latency-ms $LATENCY_MS` added to every request (a WAN round trip to Azure); each scan job
#   keeps $SCAN_CONCURRENCY listing calls in flight, so one worker is bound by latency, not by the CPU.
# Prints one JSON line per run.
set -euo pipefail
AFB=${AFB:?set AFB to the afb binary}
FILES=${FILES:-1000000}
IOPS=${IOPS:-0}
WORKERS=${WORKERS:-"1 2 4"}
WORK=${WORK:-/tmp/afb-bench-scan}
PG=${PG:-postgres://postgres@127.0.0.1:5432}
GEN_CONCURRENCY=${GEN_CONCURRENCY:-64}
BUDGET=${BUDGET:-2000}
LATENCY_MS=${LATENCY_MS:-0}
SCAN_CONCURRENCY=${SCAN_CONCURRENCY:-16}
PORT=${PORT:-10044}
mkdir -p "$WORK"

EMU_PID=
cleanup() {
  [ -n "${WORKER_PIDS:-}" ] && kill $WORKER_PIDS 2>/dev/null || true
  [ -n "$EMU_PID" ] && kill "$EMU_PID" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_emulator() {
  "$AFB" emulator --addr "127.0.0.1:$PORT" --data "$WORK/emu" --share-iops-limit "$1" --fault-latency-ms "$2" \
    > "$WORK/emu.out" 2> "$WORK/emu.err" &
  EMU_PID=$!
  for _ in $(seq 100); do [ -s "$WORK/emu.out" ] && break; sleep 0.1; done
  CONN=$(head -n1 "$WORK/emu.out")
}

if [ ! -f "$WORK/filled-$FILES" ]; then
  rm -rf "$WORK/emu"
  start_emulator 0 0
  start=$(date +%s.%N)
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["empty_file_ratio"]=1.0; json.dump(s, open(sys.argv[2],"w"))' \
    "$(dirname "$0")/../data/sample-share.json" "$WORK/empty-spec.json"
  "$AFB" gen --connection-string "$CONN" --share big --files "$FILES" --spec "$WORK/empty-spec.json" --no-nfs-modes \
    --concurrency "$GEN_CONCURRENCY" --json > "$WORK/gen.json"
  end=$(date +%s.%N)
  echo "{\"fill_seconds\": $(echo "$end - $start" | bc), \"gen\": $(cat "$WORK/gen.json")}"
  touch "$WORK/filled-$FILES"
  kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=
fi

start_emulator "$IOPS" "$LATENCY_MS"
for n in $WORKERS; do
  db="afb_bench_scan_$$_$n"
  psql "$PG/postgres" -qAtc "CREATE DATABASE $db" >/dev/null
  url="$PG/$db"
  repo="$WORK/repo-$n"
  rm -rf "$repo"; mkdir -p "$repo/.afb"
  printf '{"t/big": {"connection_string": "%s", "sas_url": null, "azure_share": null}}' "$CONN" > "$repo/.afb/shares.json"
  "$AFB" migrate --database-url "$url" 2>/dev/null
  WORKER_PIDS=
  for i in $(seq "$n"); do
    AFB_MASTER_KEY=$(printf '%064d' 0) "$AFB" worker --database-url "$url" --repo "$repo" --concurrency 1 \
      --scan-budget-pages "$BUDGET" --scan-concurrency "$SCAN_CONCURRENCY" --metrics-addr "127.0.0.1:$((19000 + i))" 2> "$WORK/worker-$n-$i.log" &
    WORKER_PIDS="$WORKER_PIDS $!"
  done
  sleep 1
  start=$(date +%s.%N)
  job=$("$AFB" jobs enqueue --database-url "$url" --tenant 1 --kind scan --payload '{"tenant":"t","share":"big"}')
  while :; do
    s=$("$AFB" jobs status --database-url "$url" --json)
    unfinished=$(echo "$s" | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["waiting"]+c["queued"]+c["running"])')
    [ "$unfinished" = 0 ] && break
    sleep 0.2
  done
  end=$(date +%s.%N)
  kill $WORKER_PIDS; wait $WORKER_PIDS 2>/dev/null || true; WORKER_PIDS=
  jobs=$(psql "$url" -qAtc "SELECT json_agg(json_build_object('kind', kind, 'state', state, 'n', n)) FROM (SELECT kind, state, count(*) n FROM jobs GROUP BY 1, 2) x")
  phases=$(psql "$url" -qAtc "SELECT json_build_object(
      'root_s', (SELECT extract(epoch FROM finished_at - started_at) FROM jobs WHERE job_id = $job),
      'listing_s', (SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM jobs WHERE kind = 'scan'),
      'commit_s', (SELECT extract(epoch FROM finished_at - started_at) FROM jobs WHERE kind = 'commit' AND parent_id IS NULL AND job_id <> $job))")
  totals=$(python3 -c 'import json,glob,sys; m=json.load(open(sorted(glob.glob(sys.argv[1]+"/t/big/index/snapshots/*.json"))[-1])); print(json.dumps(m["totals"]))' "$repo")
  echo "{\"workers\": $n, \"files\": $FILES, \"iops_limit\": $IOPS, \"budget_pages\": $BUDGET, \"latency_ms\": $LATENCY_MS, \"scan_concurrency\": $SCAN_CONCURRENCY, \"seconds\": $(echo "$end - $start" | bc), \"totals\": $totals, \"jobs\": $jobs, \"phases\": $phases}"
  psql "$PG/postgres" -qAtc "DROP DATABASE $db" >/dev/null
done
