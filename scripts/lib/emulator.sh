# Sourced by the bench scripts: `start_emulator LOG ARGS...` starts `$AFB emulator ARGS...` in the
# background with its output in LOG, waits (up to 20 s) for the connection string it prints first, and
# sets EMU (its pid) and exports AZURE_STORAGE_CONNECTION_STRING. Fails with the log if it exits first.
start_emulator() {
  local log=$1
  shift
  "$AFB" emulator "$@" > "$log" 2>&1 &
  EMU=$!
  for _ in $(seq 100); do
    grep -q DefaultEndpointsProtocol "$log" && break
    kill -0 "$EMU" 2>/dev/null || { echo "afb emulator exited:" >&2; cat "$log" >&2; return 1; }
    sleep 0.2
  done
  AZURE_STORAGE_CONNECTION_STRING=$(grep -o 'DefaultEndpointsProtocol[^ ]*' "$log" | head -1)
  export AZURE_STORAGE_CONNECTION_STRING
}
