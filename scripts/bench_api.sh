#!/usr/bin/env bash
# Render times and API throughput of `afb serve` (issue 7's benchmark). Usage:
#   AFB=/path/to/afb scripts/bench_api.sh WORKDIR
# Builds two repositories with `afb api-sample` in WORKDIR (kept between runs: delete WORKDIR to rebuild):
#   many/  100 tenants x 2,000 nodes x 2 snapshots (the overview)
#   big/   one share of 10,000,000 nodes x 2 snapshots (share page, directory listing)
# then, for the 10M share, measures each page on a fresh server (first request) and again (repeat), with
# the per-snapshot directory summaries written at commit ("summary") and with them removed ("anchor":
# what a snapshot committed before summaries costs; the server then builds and stores the summary).
# Last, wrk against browse and trends. Prints a Markdown table. Needs curl, wrk, an operator token is
# passed with --token so no token file is written.
set -euo pipefail
AFB=${AFB:?set AFB to the afb binary}
W=${1:?work directory}
mkdir -p "$W"
TOKEN=afb_bench_operator_token_0123456789abcdef
PORT=${PORT:-18080}
BASE=http://127.0.0.1:$PORT
[ -d "$W/many" ] || "$AFB" api-sample --repo "$W/many" --tenants 100 --nodes 2000 --snapshots 2
[ -d "$W/big" ] || "$AFB" api-sample --repo "$W/big" --tenants 1 --nodes 10000000 --snapshots 2

start() { # repo [warm]: with "warm", wait until the server has warmed its directory summaries
  AFB_LOG=info "$AFB" serve --repo "$1" --addr 127.0.0.1:$PORT --token $TOKEN --no-runner 2>"$W/serve.log" &
  SERVER=$!
  for _ in $(seq 100); do curl -s -o /dev/null "$BASE/openapi.json" && break; sleep 0.1; done
  curl -s -o /dev/null "$BASE/openapi.json" || { echo "server did not start" >&2; exit 1; }
  if [ "${2:-}" = warm ]; then
    for _ in $(seq 600); do grep -q "directory summaries" "$W/serve.log" && return; sleep 0.1; done
    echo "server did not finish warming" >&2; exit 1
  fi
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; }
session() { curl -s -o /dev/null -D - -d "token=$TOKEN" "$BASE/login" | sed -n 's/^set-cookie: \(afb_session=[^;]*\).*/\1/ip'; }
# ms for one GET (page with the session cookie, API with the token)
t() { curl -s -o /dev/null -w '%{time_total}' -H "cookie: $COOKIE" -H "authorization: Bearer $TOKEN" "$BASE$1" | awk '{printf "%.1f", $1*1000}'; }

echo "| what | first (ms) | repeat (ms) |"
echo "| --- | --- | --- |"
start "$W/many"; COOKIE=$(session)
a=$(t /); b=$(t /); echo "| overview, 100 tenants / 101 shares | $a | $b |"
a=$(t /api/v1/tenants); b=$(t /api/v1/tenants); echo "| GET /api/v1/tenants, 100 tenants | $a | $b |"
stop

S=/t/tenant-000/s/files
B=/api/v1/tenants/tenant-000/shares/files
echo
echo "10M-node share (2 snapshots): first request right after start (summaries still warming), first request"
echo "after warm-up, repeat (ms). \"anchor\": no stored summaries (what a snapshot committed before summaries costs)."
echo
echo "| what | mode | at start | after warm-up | repeat |"
echo "| --- | --- | --- | --- | --- |"
for mode in summary anchor; do
  for page in "$S" "$S/snap/2?path=%2F" "$B/snapshots/2/browse?path=DIR" "$B/trends"; do
    if [ $mode = anchor ]; then rm -rf "$W/big/tenant-000/files/index/summaries"; fi
    start "$W/big"; COOKIE=$(session)
    if [ -z "${DIR:-}" ]; then # a subdirectory of the root with files in it: the first entry of the root
      DIR=$(curl -s -H "authorization: Bearer $TOKEN" "$BASE$B/snapshots/2/browse?limit=1" | python3 -c 'import sys,json,urllib.parse;print(urllib.parse.quote("/"+json.load(sys.stdin)["entries"][0]["name"],safe=""))')
    fi
    u=${page/DIR/$DIR}
    a=$(t "$u"); stop
    if [ $mode = anchor ]; then rm -rf "$W/big/tenant-000/files/index/summaries"; fi
    start "$W/big" warm; COOKIE=$(session)
    b=$(t "$u"); c=$(t "$u"); stop
    echo "| $u | $mode | $a | $b | $c |" | sed 's|/t/tenant-000/s/files|share page |; s|/api/v1/tenants/tenant-000/shares/files|API |'
  done
done

start "$W/big"; COOKIE=$(session)
t "/api/v1/tenants/tenant-000/shares/files/snapshots/2/browse?path=%2F" >/dev/null
echo
for u in "/api/v1/tenants/tenant-000/shares/files/snapshots/2/browse?path=%2F&limit=100" "/api/v1/tenants/tenant-000/shares/files/trends"; do
  echo "wrk -t2 -c16 -d10s $u"
  wrk -t2 -c16 -d10s -H "authorization: Bearer $TOKEN" "$BASE$u" | grep -E "Requests/sec|Latency|requests in"
done
stop
