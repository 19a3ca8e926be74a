#!/usr/bin/env bash
# Profiles the plugin's hot path: one scan of all non-hydrated columns of
# aws_ec2_instance over N instances served by tests/fixtures/bench_endpoint.py,
# driven through sphost (steampipe-plugin-sdk's client) (tests/host), with `perf record`
# wrapped around the plugin process. Prints the top of `perf report`.
#
# usage: scripts/profile.sh [instances=100000] [columns=all|narrow] [perf record args...]
# needs: scripts/install-deps.sh run once, and linux-perf (apt-get install linux-perf).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
WHICH=${2:-all}
shift 2 2>/dev/null || shift $#
PERF_ARGS=("$@")
[ ${#PERF_ARGS[@]} -eq 0 ] && PERF_ARGS=(-F 999)
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
cargo build --profile profiling --bin steampipe-plugin-aws
OUT=target/profile
mkdir -p "$OUT"
tests/host/build.sh "$OUT/sphost" >/dev/null
cat > "$OUT/plugin-under-perf" <<WRAP
#!/bin/sh
exec perf record ${PERF_ARGS[*]} -o "$PWD/$OUT/perf.data" -- "$PWD/target/profiling/steampipe-plugin-aws" "\$@" 2>>"$PWD/$OUT/perf.log"
WRAP
chmod +x "$OUT/plugin-under-perf"
target/pyenv/bin/python3 - "$N" "$WHICH" "$OUT" <<'PY'
import json, subprocess, sys, os
n, which, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ep = subprocess.Popen(["target/pyenv/bin/python3", "tests/fixtures/bench_endpoint.py",
                       "--instances", str(n)], stdout=subprocess.PIPE, text=True)
port = ep.stdout.readline().split()[1]
cfg = (f'access_key = "AKIDPROF"\nsecret_key = "prof"\ndefault_region = "us-east-1"\n'
       f'regions = ["us-east-1"]\nendpoint_url = "http://127.0.0.1:{port}"\n')
def run(plugin, steps):
    sc = {"plugin": os.path.abspath(plugin), "env": {"AWS_EC2_METADATA_DISABLED": "true"},
          "connections": [{"connection": "aws", "plugin": "aws", "pluginShortName": "aws", "config": cfg}],
          "steps": steps}
    path = os.path.join(out, "scenario.json")
    json.dump(sc, open(path, "w"))
    r = subprocess.run([os.path.join(out, "sphost"), path], capture_output=True, text=True, check=True)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
ev = run("target/profiling/steampipe-plugin-aws", [{"op": "get_schema", "connection": "aws"}])
schema = next(e for e in ev if e.get("event") == "schema")
cols = schema["response"]["schema"]["schema"]["aws_ec2_instance"]["columns"]
names = [c["name"] for c in cols if c.get("hydrate", "") == ""
         and c["name"] not in ("sp_connection_name", "sp_ctx", "_ctx")]
if which == "narrow":
    names = ["instance_id", "metadata_options"]
req = {"table": "aws_ec2_instance", "queryContext": {"columns": names, "quals": {}},
       "connection": "aws", "callId": "1", "traceContext": {"value": "{}"},
       "executeConnectionData": {"aws": {"cacheEnabled": False}}}
ev = run(os.path.join(out, "plugin-under-perf"), [{"op": "execute", "quiet": True, "request": req}])
for e in ev:
    if e.get("event") == "execute_end":
        print(f"profile: {len(names)} columns, {e['rows']} rows in {e['ms']:.0f} ms "
              f"({e['rows'] / e['ms'] * 1000:.0f} rows/s, under perf)")
ep.kill()
PY
perf report -i "$OUT/perf.data" --no-children --percent-limit 0.7 --stdio 2>/dev/null | grep -v '^$' | head -70
