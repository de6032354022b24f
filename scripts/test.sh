#!/usr/bin/env bash
# Runs every test of the project. Installs what the tests need first, idempotently: a Python venv (.venv)
# with tests/requirements.txt, planus-cli, the npm packages of package-lock.json (Azurite, htmx,
# playwright-core) and Debian's Chromium;
# starts PostgreSQL if it is down. Safe to run again and again.
set -euo pipefail
cd "$(dirname "$0")/.."

# One build directory for both README commands (the demo's `cargo run` and this script): `target/`,
# unless CARGO_TARGET_DIR says otherwise, so a fresh machine compiles the dependencies once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR=never

echo "== cargo fmt --check (rustfmt.toml)"
cargo fmt --check

# PostgreSQL: the machine's service, started if it is down (tests create and drop their own databases).
if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

# Python test environment, rebuilt only when tests/requirements.txt changes.
if [ ! -x .venv/bin/python ] || ! cmp -s tests/requirements.txt .venv/requirements.installed; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
  cp tests/requirements.txt .venv/requirements.installed
fi

# planus-cli regenerates the FlatBuffers code so a test can check the checked-in copy is current.
if ! cargo install --list | grep -q '^planus-cli v1.3.0:'; then
  cargo install --quiet --locked planus-cli --version 1.3.0
fi

# npm packages of package-lock.json, before cargo test: Azurite (tests/it/repository_blob.rs runs the
# repository on it), htmx served by afb serve, playwright-core for the browser tests, the JavaScript SDK
# for tests/conformance-js.
if [ ! -d node_modules/htmx.org ] || [ ! -d node_modules/playwright-core ] || [ ! -d node_modules/@azure/storage-file-share ] || [ ! -x node_modules/.bin/azurite-blob ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "== cargo test (one integration binary, tests/it)"
cargo build --quiet --bins
cargo test --quiet 2>&1

echo "== python conformance (official SDK against the emulator)"
AFB_BIN="$CARGO_TARGET_DIR/debug/afb" .venv/bin/python -m pytest -q tests/conformance

echo "== JavaScript conformance (official @azure/storage-file-share against the emulator)"
AFB_BIN="$CARGO_TARGET_DIR/debug/afb" node --test tests/conformance-js/

echo "== notebooks (executed with nbclient on a repository the demo makes)"
AFB_BIN="$CARGO_TARGET_DIR/debug/afb" .venv/bin/python -m pytest -q tests/notebooks

# ---- web: browser tests of the dashboard (afb serve) ----------------------------------------------
# Debian's Chromium, installed only when missing (the npm packages were installed before cargo test);
# playwright never downloads a browser.
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
echo "== browser tests (node --test tests/web/, Chromium headless)"
AFB_BIN="$CARGO_TARGET_DIR/debug/afb" node --test tests/web/
# ---- end web ---------------------------------------------------------------------------------------

echo "== cargo clippy --all-targets -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
