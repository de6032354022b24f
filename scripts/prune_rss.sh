#!/usr/bin/env bash
# Peak RSS of `afb prune` at two repository sizes (docs/backup.md "Prune's memory").
# Usage: scripts/prune_rss.sh [CHUNKS...]   (default: 250000 2500000); debug build of this checkout.
# Each repository: CHUNKS tiny distinct chunks in 16 KiB packs, 8 per file, 4,096 files per metadata
# object, one snapshot referring to 60% of them (the test `prune_bench_repository` builds it); then
# `afb prune --grace-secs 0` with the default budget and with `--memory 16MiB`, each run on a fresh copy.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-250000 2500000}")
read -r -a sizes <<<"${sizes[*]}"
work=$(mktemp -d "${TMPDIR:-/tmp}/afb-prune-rss.XXXXXX")
trap 'rm -rf "$work"' EXIT
cargo build --bins -q
# Copies of both binaries, so that editing the checkout meanwhile changes nothing.
it=$(cargo test --test it --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p')
cp target/debug/afb "$it" "$work/"
it="$work/$(basename "$it")"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in "${sizes[@]}"; do
    AFB_BENCH_DIR="$work/repo-$n" AFB_BENCH_CHUNKS="$n" \
        "$it" prune_bench_repository --ignored --nocapture 2>&1 | grep chunks
    for mem in 1GiB 16MiB; do
        rm -rf "$work/run" && cp -a "$work/repo-$n" "$work/run"
        start=$(date +%s.%N)
        AFB_PEAK_RSS_FILE="$work/rss" "$work/afb" prune --repo "$work/run" --tenant t1 --share s1 \
            --master-key-file "$work/repo-$n.key" --grace-secs 0 --memory "$mem" --spill-dir "$work/spill" --json \
            >"$work/report.json"
        end=$(date +%s.%N)
        printf '%s chunks, --memory %s: peak RSS %s MiB, %.1f s; %s\n' "$n" "$mem" \
            "$(($(cat "$work/rss") / 1048576))" "$(echo "$end - $start" | bc)" \
            "$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join(f"{k} {r[k]}" for k in ("referenced_chunks","packs","packs_unused","packs_repacked","sets_spilled","objects_deleted")))' "$work/report.json")"
    done
done
