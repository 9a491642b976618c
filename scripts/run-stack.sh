#!/usr/bin/env bash
# Runs the local stack in the foreground: a Chroma server, then the Dagster webserver and daemon.
# Ctrl-C (or any one of them exiting) stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
export RAG_DATA_DIR="${RAG_DATA_DIR:-$PWD/data}"
export RAG_CHROMA_URL="${RAG_CHROMA_URL:-http://127.0.0.1:8001}"
DAGSTER_HOST="${DAGSTER_WEBSERVER_HOST:-127.0.0.1}"
DAGSTER_PORT="${DAGSTER_WEBSERVER_PORT:-3000}"

mkdir -p "$DAGSTER_HOME" "$RAG_DATA_DIR/chroma" "$RAG_DATA_DIR/landing"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster_home/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

chroma_host=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).hostname)' "$RAG_CHROMA_URL")
chroma_port=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 80)' "$RAG_CHROMA_URL")

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping the stack..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

if [ "$chroma_host" = "127.0.0.1" ] || [ "$chroma_host" = "localhost" ]; then
  "$BIN/chroma" run --path "$RAG_DATA_DIR/chroma" --host "$chroma_host" --port "$chroma_port" \
    > "$RAG_DATA_DIR/chroma.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -fsS "$RAG_CHROMA_URL/api/v2/heartbeat" > /dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "$RAG_CHROMA_URL/api/v2/heartbeat" > /dev/null \
    || { echo "Chroma did not start; see $RAG_DATA_DIR/chroma.log" >&2; exit 1; }
  echo "Chroma server on $RAG_CHROMA_URL (data in $RAG_DATA_DIR/chroma)"
fi

"$BIN/dagster" dev -w workspace.yaml -h "$DAGSTER_HOST" -p "$DAGSTER_PORT" &
pids+=($!)
echo "Dagster UI on http://$DAGSTER_HOST:$DAGSTER_PORT (DAGSTER_HOME=$DAGSTER_HOME)"

# Whichever process exits first brings the rest down.
wait -n
