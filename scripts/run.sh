#!/usr/bin/env bash
# The main job: builds the plugin (release) and starts it exactly as Steampipe
# does, through HashiCorp go-plugin's client: handshake, health check, the
# plugin manager's init sequence, GetSchema, a reattached client as the FDW
# makes, then Shutdown. Prints what the host saw.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --bin steampipe-plugin-aws
mkdir -p target
tests/host/build.sh target/sphost >/dev/null

plugin="$PWD/target/release/steampipe-plugin-aws"
scenario=$(mktemp)
trap 'rm -f "$scenario"' EXIT
cat >"$scenario" <<JSON
{
  "plugin": "$plugin",
  "connections": [{
    "connection": "aws",
    "plugin": "hub.steampipe.io/plugins/turbot/aws@latest",
    "pluginShortName": "aws",
    "config": "regions = [\"us-east-1\", \"eu-west-1\"]\n",
    "pluginInstance": "hub.steampipe.io/plugins/turbot/aws@latest"
  }],
  "steps": [
    {"op": "reattach", "count": 1},
    {"op": "get_schema", "connection": "aws", "client": 1},
    {"op": "kill"}
  ]
}
JSON
target/sphost "$scenario" | python3 scripts/show_host_events.py
