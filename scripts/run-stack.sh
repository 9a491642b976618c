#!/usr/bin/env bash
# Runs the local stack in the foreground: a Chroma server, a long-lived Dagster code server, the
# Dagster webserver and daemon, the warm run workers, and the REST API.
# Ctrl-C (or any one of them exiting) stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/dagster_home}"
export RAG_DATA_DIR="${RAG_DATA_DIR:-$PWD/data}"
export RAG_CHROMA_URL="${RAG_CHROMA_URL:-http://127.0.0.1:8001}"
# One machine, one user: the API is open while no key exists, unless .env says otherwise.
export RAG_OPEN_ACCESS="${RAG_OPEN_ACCESS:-true}"
dagster_host="${DAGSTER_WEBSERVER_HOST:-127.0.0.1}"
dagster_port="${DAGSTER_WEBSERVER_PORT:-3000}"
code_port="${DAGSTER_CODE_SERVER_PORT:-4000}"

mkdir -p "$DAGSTER_HOME" "$RAG_DATA_DIR/chroma" "$RAG_DATA_DIR/landing"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster_home/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

chroma_host=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).hostname)' "$RAG_CHROMA_URL")
chroma_port=$(python3 -c 'import sys, urllib.parse as u; print(u.urlparse(sys.argv[1]).port or 80)' "$RAG_CHROMA_URL")

pids=()
# Each service runs in its own process group, so stopping it also stops what it started
# (the code server its gRPC child, the worker its warm processes).
start() { setsid "$@" & pids+=($!); }
stop() {
  trap - INT TERM EXIT
  echo "stopping the stack..."
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

if [ "$chroma_host" = "127.0.0.1" ] || [ "$chroma_host" = "localhost" ]; then
  start "$BIN/chroma" run --path "$RAG_DATA_DIR/chroma" --host "$chroma_host" \
    --port "$chroma_port" > "$RAG_DATA_DIR/chroma.log" 2>&1
  for _ in $(seq 1 100); do
    curl -fsS "$RAG_CHROMA_URL/api/v2/heartbeat" > /dev/null 2>&1 && break
    sleep 0.2
  done
  curl -fsS "$RAG_CHROMA_URL/api/v2/heartbeat" > /dev/null \
    || { echo "Chroma did not start; see $RAG_DATA_DIR/chroma.log" >&2; exit 1; }
  echo "Chroma server on $RAG_CHROMA_URL (data in $RAG_DATA_DIR/chroma)"
fi

# The daemon, its code server, the webserver and the API all open the instance at once; on a
# fresh SQLite DAGSTER_HOME they race to create its tables and can leave two alembic heads
# behind, after which the code location never loads. Create the storage once, first.
"$BIN/python" -c 'from dagster import DagsterInstance; DagsterInstance.get().dispose()'
# A data dir from before the document registry moves into it before anything reads it.
"$BIN/rag-pipeline" migrate

# One long-lived code server that the webserver and the daemon share, as in docker-compose:
# nothing re-imports the project every minute.
start "$BIN/dagster" code-server start -h 127.0.0.1 -p "$code_port" \
  -m rag_pipeline.definitions --location-name rag_pipeline > "$RAG_DATA_DIR/code-server.log" 2>&1
workspace="$DAGSTER_HOME/workspace.grpc.yaml"
cat > "$workspace" <<EOF
# Written by scripts/run-stack.sh: the code location is the code server on port $code_port.
load_from:
  - grpc_server:
      host: 127.0.0.1
      port: $code_port
      location_name: rag_pipeline
EOF
for _ in $(seq 1 150); do
  "$BIN/dagster" api grpc-health-check -p "$code_port" > /dev/null 2>&1 && break
  sleep 0.2
done
"$BIN/dagster" api grpc-health-check -p "$code_port" > /dev/null 2>&1 \
  || { echo "the code server did not start; see $RAG_DATA_DIR/code-server.log" >&2; exit 1; }
echo "Dagster code server on 127.0.0.1:$code_port"

# Runs execute here, in processes that have loaded the code and the model once.
start "$BIN/rag-pipeline" worker
echo "run worker: ${RAG_WORKER_CONCURRENCY:-2} warm processes (rag-pipeline worker)"
start "$BIN/dagster-daemon" run -w "$workspace"
start "$BIN/dagster-webserver" -w "$workspace" -h "$dagster_host" -p "$dagster_port"
echo "Dagster UI on http://$dagster_host:$dagster_port (DAGSTER_HOME=$DAGSTER_HOME)"
start "$BIN/python" -m rag_api
api_url="http://${RAG_API_HOST:-127.0.0.1}:${RAG_API_PORT:-8000}"
echo "REST API on $api_url (OpenAPI at /docs)"
# Pydantic's spellings of true; the API logs the same warning once it is up.
if [[ "${RAG_OPEN_ACCESS,,}" =~ ^(true|1|yes|on|t|y)$ ]] && [ -z "${RAG_API_KEY:-}" ]; then
  cat >&2 <<EOF

WARNING: RAG_OPEN_ACCESS=true. Until the first API key exists, anyone who can reach
$api_url acts as an admin. Close it by making one (its secret is the last line):
  $BIN/rag-pipeline keys create --role admin --name "\$USER"
or set RAG_OPEN_ACCESS=false (or RAG_API_KEY) in .env.

EOF
fi

# Whichever process exits first brings the rest down.
wait -n
