#!/usr/bin/env bash
# Conformance part 4 (issue 11): the real Steampipe query path.
#
# Steampipe's own service (CLI + steampipe-postgres-fdw inside Debian's
# PostgreSQL 15, its plugin manager starting our plugin) answers
# `steampipe query` on aws_ec2_instance for a moto fleet, and Powerpipe runs
# the bundled mod's control against that service. Every answer is compared
# with what tests/fixtures/ec2_fleet.py seeded; the normalised transcript is
# written to tests/golden/conformance/steampipe.txt.
#
# Takes prebuilt binaries (their sources are not on the Go module proxy, so
# nothing here builds them; see docs/compatibility.md "Steampipe CLI and FDW"):
#   STEAMPIPE_BIN      steampipe CLI v2.3.6     [target/conformance/bin/steampipe]
#   STEAMPIPE_FDW_DIR  steampipe_postgres_fdw v2.1.5 built for PostgreSQL 15:
#                      .so, .control, --1.0.sql [target/conformance/fdw]
#   POWERPIPE_BIN      [target/conformance/bin/powerpipe] (scripts/conformance/powerpipe.sh builds it)
#   PLUGIN_BIN         [target/release/steampipe-plugin-aws, else target/debug/...]
#   GO_PLUGIN_BIN      turbot's plugin v1.31.0 [target/conformance/bin/steampipe-plugin-aws-go]
#                      (scripts/conformance/go-plugin.sh builds it)
#
#   scripts/conformance/steampipe.sh [all|ours|go]
#
# `ours` runs our plugin (transcript steampipe.txt); `go` runs the same steps
# with turbot's Go plugin in its place (steampipe-go.txt: the same .spc, the
# binary swapped after install); `all` (the default) runs both and keeps
# `diff -u steampipe-go.txt steampipe.txt` as steampipe-go-vs-ours.diff.
#
# Run as root: it creates the user sp-conformance (Steampipe and PostgreSQL
# refuse uid 0) and puts the FDW into Debian's PostgreSQL 15 directories
# (PostgreSQL looks for extensions only there). Run as another user, those
# two things must already be done.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MODE=${1:-all}

die() { echo "conformance steampipe${MODE:+ ($MODE)}: $*" >&2; exit 1; }

case "$MODE" in
  all)
    "$0" ours
    "$0" go
    G=tests/golden/conformance
    diff -u --label steampipe-go.txt --label steampipe.txt "$G/steampipe-go.txt" "$G/steampipe.txt" >"$G/steampipe-go-vs-ours.diff" || true
    echo "conformance steampipe: turbot's plugin vs ours through the same steps: $G/steampipe-go-vs-ours.diff ($(grep -c '^[-+][^-+]' "$G/steampipe-go-vs-ours.diff" || true) lines differ)" >&2
    exit 0 ;;
  ours|go) ;;
  *) die "unknown mode '$MODE' (all, ours or go)" ;;
esac

STEAMPIPE_BIN=${STEAMPIPE_BIN:-$ROOT/target/conformance/bin/steampipe}
STEAMPIPE_FDW_DIR=${STEAMPIPE_FDW_DIR:-$ROOT/target/conformance/fdw}
POWERPIPE_BIN=${POWERPIPE_BIN:-$ROOT/target/conformance/bin/powerpipe}
PY=${TEST_PYTHON:-$ROOT/target/pyenv/bin/python}
PGBIN=/usr/lib/postgresql/15/bin
PG_LIB=/usr/lib/postgresql/15/lib
PG_EXT=/usr/share/postgresql/15/extension
RUN=$ROOT/target/conformance/steampipe-run-$MODE
GOLDEN=$ROOT/tests/golden/conformance/steampipe.txt
[ "$MODE" = go ] && GOLDEN=$ROOT/tests/golden/conformance/steampipe-go.txt
GO_PLUGIN_BIN=${GO_PLUGIN_BIN:-$ROOT/target/conformance/bin/steampipe-plugin-aws-go}
SVC_USER=sp-conformance

# What steampipe v2.3.6 expects (its pkg/constants/db.go: DatabaseVersion,
# FdwVersion, PostgresImageDigest). With these in db/versions.json and the
# files in place, `service start` downloads nothing.
DB_VERSION=14.19.0
FDW_VERSION=2.1.5
PG_IMAGE_DIGEST=sha256:84264ef41853178707bccb091f5450c22e835f8a98f9961592c75690321093d9
FDW_FILES=(steampipe_postgres_fdw.so steampipe_postgres_fdw.control steampipe_postgres_fdw--1.0.sql)

# --- inputs -------------------------------------------------------------------
[ -x "$STEAMPIPE_BIN" ] || die "no Steampipe CLI at $STEAMPIPE_BIN: build steampipe v2.3.6 from its tag (docs/compatibility.md, Steampipe CLI and FDW) and set STEAMPIPE_BIN"
for f in "${FDW_FILES[@]}"; do
  [ -f "$STEAMPIPE_FDW_DIR/$f" ] || die "no $f in $STEAMPIPE_FDW_DIR: build steampipe-postgres-fdw v2.1.5 for PostgreSQL 15 and set STEAMPIPE_FDW_DIR"
done
[ -x "$POWERPIPE_BIN" ] || die "no Powerpipe at $POWERPIPE_BIN: run scripts/conformance.sh powerpipe first, or set POWERPIPE_BIN"
[ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/initdb" ] || die "no PostgreSQL 15 in $PGBIN: apt-get install postgresql-15"
[ -f "$PG_LIB/tablefunc.so" ] && [ -f "$PG_LIB/ltree.so" ] || die "PostgreSQL 15 contrib (tablefunc, ltree) missing: apt-get install postgresql-15"
[ -x "$PY" ] || die "$PY is missing: run scripts/install-deps.sh (moto and boto3 venv)"
if [ -z "${PLUGIN_BIN:-}" ]; then
  if [ -x target/release/steampipe-plugin-aws ]; then PLUGIN_BIN=$ROOT/target/release/steampipe-plugin-aws
  elif [ -x target/debug/steampipe-plugin-aws ]; then PLUGIN_BIN=$ROOT/target/debug/steampipe-plugin-aws
  else die "no plugin binary: run cargo build (or set PLUGIN_BIN)"; fi
fi
[ -x "$PLUGIN_BIN" ] || die "PLUGIN_BIN=$PLUGIN_BIN is not an executable"
if [ "$MODE" = go ]; then
  [ -x "$GO_PLUGIN_BIN" ] || die "no turbot plugin at $GO_PLUGIN_BIN: run scripts/conformance.sh go-plugin first, or set GO_PLUGIN_BIN"
fi

# --- the service user and the FDW in Debian's PostgreSQL -------------------------
if [ "$(id -u)" = 0 ]; then
  if ! id -u "$SVC_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
  fi
  # The install-time postgres of `service start` uses Debian's compiled-in
  # socket directory /var/run/postgresql (group postgres, g+w).
  if getent group postgres >/dev/null && ! id -nG "$SVC_USER" | tr ' ' '\n' | grep -qx postgres; then
    usermod -aG postgres "$SVC_USER"
  fi
  install -m 0755 "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.so" "$PG_LIB/"
  install -m 0644 "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.control" "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw--1.0.sql" "$PG_EXT/"
  as_user() { runuser -u "$SVC_USER" -- env -i "${USER_ENV[@]}" "$@"; }
else
  cmp -s "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.so" "$PG_LIB/steampipe_postgres_fdw.so" \
    && cmp -s "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.control" "$PG_EXT/steampipe_postgres_fdw.control" \
    && cmp -s "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw--1.0.sql" "$PG_EXT/steampipe_postgres_fdw--1.0.sql" \
    || die "the FDW files of $STEAMPIPE_FDW_DIR are not installed in $PG_LIB and $PG_EXT: run this script as root once, or copy them there"
  [ -w /var/run/postgresql ] || die "/var/run/postgresql is not writable by $(id -un): add the user to group postgres"
  SVC_USER=$(id -un)
  as_user() { env -i "${USER_ENV[@]}" "$@"; }
fi

# --- a fresh run directory -----------------------------------------------------
INSTALL=$RUN/install
OUT=$RUN/out
# The service user's whole environment: nothing of the caller's (AWS_*, PG*)
# reaches Steampipe, its plugin or Powerpipe.
USER_ENV=(
  "PATH=/usr/local/bin:/usr/bin:/bin" "HOME=$RUN/home" "LANG=C.UTF-8"
  "STEAMPIPE_INSTALL_DIR=$INSTALL" "STEAMPIPE_UPDATE_CHECK=false" "STEAMPIPE_TELEMETRY=none"
  "STEAMPIPE_LOG_LEVEL=${STEAMPIPE_LOG_LEVEL:-INFO}"
  "POWERPIPE_INSTALL_DIR=$RUN/home/.powerpipe" "POWERPIPE_UPDATE_CHECK=false" "POWERPIPE_TELEMETRY=none"
)
# turbot's plugin drops the connection's keys when endpoint_url is set
# (docs/compatibility.md, turbot's Go AWS plugin): give it the same ones in
# its environment (the service's, which the plugin manager passes on).
[ "$MODE" = go ] && USER_ENV+=("AWS_ACCESS_KEY_ID=AKIDCONFORMANCE" "AWS_SECRET_ACCESS_KEY=conformance-secret")
if [ -d "$RUN" ]; then
  # A service left over from an interrupted run would hold the directory.
  if [ -f "$INSTALL/internal/steampipe.json" ]; then
    as_user "$STEAMPIPE_BIN" service stop --force >/dev/null 2>&1 || true
  fi
  rm -rf "$RUN"
fi
mkdir -p "$RUN/home" "$OUT" "$INSTALL/db/$DB_VERSION/postgres/bin" \
  "$INSTALL/db/$DB_VERSION/postgres/lib/postgresql" "$INSTALL/db/$DB_VERSION/postgres/share/postgresql/extension"
PGD=$INSTALL/db/$DB_VERSION/postgres
ln -s "$PGBIN/postgres" "$PGD/bin/postgres"
ln -s "$PGBIN/initdb" "$PGD/bin/initdb"
# Steampipe checks these copies exist (IsFDWInstalled); PostgreSQL loads the
# ones in its own directories.
ln -s "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.so" "$PGD/lib/postgresql/"
ln -s "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw.control" "$STEAMPIPE_FDW_DIR/steampipe_postgres_fdw--1.0.sql" "$PGD/share/postgresql/extension/"
cat > "$INSTALL/db/versions.json" <<EOF
{"fdw_extension":{"name":"fdw","version":"$FDW_VERSION","struct_version":20220411},
 "embedded_db":{"name":"db","version":"$DB_VERSION","image_digest":"$PG_IMAGE_DIGEST","struct_version":20220411},
 "struct_version":20220411}
EOF
[ "$(id -u)" = 0 ] && chown -R "$SVC_USER" "$RUN"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
DB_PORT=$(free_port)
MOTO_PORT=$(free_port)
ENDPOINT=http://127.0.0.1:$MOTO_PORT

# --- cleanup: the service and the emulator, whatever happens -------------------
MOTO_PID=
SERVICE_UP=
cleanup() {
  local rc=$?
  if [ -n "$SERVICE_UP" ]; then
    as_user "$STEAMPIPE_BIN" service stop --force >/dev/null 2>&1 || true
  fi
  if [ -n "$MOTO_PID" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
  if [ "$rc" != 0 ]; then
    echo "conformance steampipe: FAILED (exit $rc); logs in $INSTALL/logs and $OUT" >&2
  fi
}
trap cleanup EXIT

# --- moto with the fleet ---------------------------------------------------------
coproc MOTO { MOTO_RECORDER_FILEPATH="$RUN/moto_recording" exec "$PY" tests/fixtures/moto_guard.py "$MOTO_PORT" 2>"$OUT/moto.log"; }
MOTO_PID=$MOTO_PID
read -r -t 60 line <&"${MOTO[0]}" || true
[ "${line:-}" = ready ] || die "moto did not start on 127.0.0.1:$MOTO_PORT (see $OUT/moto.log)"
"$PY" tests/fixtures/ec2_fleet.py "$ENDPOINT" "$OUT/fleet.json" 2>"$OUT/seed.log" || die "seeding the fleet failed (see $OUT/seed.log)"
chmod a+r "$OUT/fleet.json"

# --- our plugin, installed in place of turbot's ------------------------------------
as_user "$PLUGIN_BIN" install --as hub --install-dir "$INSTALL" --regions us-east-1,eu-west-1 >"$OUT/install.txt" 2>&1 \
  || { cat "$OUT/install.txt" >&2; die "install --as hub failed"; }
SPC=$INSTALL/config/aws.spc
[ -f "$SPC" ] || die "install --as hub wrote no $SPC"
# Point the connection at the emulator: fill in the commented-out lines.
sed -i \
  -e "s|^  # endpoint_url = .*|  endpoint_url = \"$ENDPOINT\"|" \
  -e 's|^  # access_key    = .*|  access_key    = "AKIDCONFORMANCE"|' \
  -e 's|^  # secret_key    = .*|  secret_key    = "conformance-secret"|' "$SPC"
grep -q "^  endpoint_url = \"$ENDPOINT\"" "$SPC" && grep -q '^  access_key ' "$SPC" && grep -q '^  secret_key ' "$SPC" \
  || die "could not set endpoint_url and keys in $SPC (the file install writes changed?)"
if [ "$MODE" = go ]; then
  # turbot's binary where install put ours, as turbot's Makefile installs it
  PLUGIN_FILE=$INSTALL/plugins/hub.steampipe.io/plugins/turbot/aws@latest/steampipe-plugin-aws.plugin
  [ -f "$PLUGIN_FILE" ] || die "install --as hub wrote no $PLUGIN_FILE"
  install -m 0755 "$GO_PLUGIN_BIN" "$PLUGIN_FILE"
  [ "$(id -u)" = 0 ] && chown "$SVC_USER" "$PLUGIN_FILE"
  echo "then replaced the .plugin file with turbot's steampipe-plugin-aws v1.31.0 ($(basename "$GO_PLUGIN_BIN"))" >>"$OUT/install.txt"
fi

# --- the service ---------------------------------------------------------------------
SERVICE_UP=1
start=$(date +%s.%N)
as_user "$STEAMPIPE_BIN" service start --database-listen local --database-port "$DB_PORT" >"$OUT/service_start.txt" 2>&1 \
  || { cat "$OUT/service_start.txt" >&2; die "steampipe service start failed"; }
echo "service start: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s" >"$OUT/timings.txt"
PASSWORD=$(cat "$INSTALL/internal/.passwd")
# service start returns before the plugin manager has imported the schema
# (turbot's plugin: 585 tables); wait for the connection to be ready.
t0=$(date +%s.%N)
for i in $(seq 1 600); do
  state=$(as_user "$STEAMPIPE_BIN" query --output csv --header=false "select state from steampipe_internal.steampipe_connection where name = 'aws'" 2>/dev/null || true)
  [ "$state" = ready ] && break
  [ "$state" = error ] && die "connection aws is in state error after service start (see $INSTALL/logs)"
  [ "$i" = 600 ] && die "connection aws not ready 300 s after service start (state '$state')"
  sleep 0.5
done
echo "connection ready: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s after service start" >>"$OUT/timings.txt"

moto_api() { curl -sf -X "$1" "$ENDPOINT/moto-api/recorder/$2"; }
# One query through the service; the AWS calls it caused are recorded by
# moto (q_NAME.calls), to check what the FDW's quals turned into.
sp_query() { # name sql
  local t0; t0=$(date +%s.%N)
  moto_api POST reset-recording >/dev/null && moto_api POST start-recording >/dev/null \
    || die "moto's request recorder did not start"
  as_user "$STEAMPIPE_BIN" query --output csv "$2" >"$OUT/q_$1.csv" 2>"$OUT/q_$1.err" \
    || { cat "$OUT/q_$1.err" >&2; die "steampipe query '$1' failed: $2"; }
  echo "query $1: $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t0}") s" >>"$OUT/timings.txt"
  moto_api POST stop-recording >/dev/null && moto_api GET download-recording >"$OUT/q_$1.calls" \
    || die "could not read moto's request recording"
}
"$PY" - "$OUT/fleet.json" >"$OUT/get_ids.txt" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
by_case = {v["case"]: k for k, v in f["extra"].items()}
print(by_case["imds-required-hop2-ipv6-tags"], by_case["stopped"], by_case["eu-optional"])
PY
read -r GET_ID IN_ID2 IN_ID3 <"$OUT/get_ids.txt"

sp_query plugin "select plugin, version from steampipe_internal.steampipe_plugin order by plugin"
sp_query connection "select name, plugin, state, error from steampipe_internal.steampipe_connection order by name"
sp_query columns "select column_name, data_type from information_schema.columns where table_schema = 'aws' and table_name = 'aws_ec2_instance' order by ordinal_position"
# Qualified scans first: the plugin's query cache may answer a stricter scan
# from a complete looser one, which would hide what the quals became.
sp_query get "select instance_id, region, instance_type, metadata_options ->> 'HttpPutResponseHopLimit' as hop_limit, tags from aws_ec2_instance where instance_id = '$GET_ID'"
sp_query get_missing "select instance_id from aws_ec2_instance where instance_id = 'i-0123456789abcdef0'"
sp_query region "select instance_id, metadata_options ->> 'HttpTokens' as http_tokens from aws_ec2_instance where region = 'eu-west-1' order by instance_id"
sp_query state "select instance_id from aws_ec2_instance where instance_state = 'stopped' order by instance_id"
sp_query in_ids "select instance_id, region from aws_ec2_instance where instance_id in ('$GET_ID', '$IN_ID2', '$IN_ID3', 'i-0123456789abcdef0') order by instance_id"
sp_query in_types "select instance_id, instance_type from aws_ec2_instance where instance_type in ('t3.micro', 'c5.xlarge') order by instance_id"
sp_query get_malformed "select instance_id from aws_ec2_instance where instance_id = 'not-an-instance-id'"
sp_query other_region "select instance_id from aws_ec2_instance where region = 'ap-south-1'"
sp_query limit "select instance_id, region from aws_ec2_instance limit 2"
# With a region qual the FDW keeps the limit (region is no key column).
sp_query limit_region "select instance_id, region from aws_ec2_instance where region = 'us-east-1' limit 2"
# Steampipe's `.timing` (`--timing=verbose`; on stderr when not interactive):
# the scan metadata the plugin sent with its rows, as the FDW kept it. Here,
# before any complete scan without quals: no earlier scan covers these
# columns and quals, so each first scan fetches (in both plugins' query
# caches) and the repeat is served from the cache; and the scans after it
# ask for columns these do not cover, so their AWS calls stay as they were.
sp_timing() { # name sql
  as_user "$STEAMPIPE_BIN" query --output csv --timing=verbose "$2" >"$OUT/q_$1.csv" 2>"$OUT/q_$1.timing" \
    || { cat "$OUT/q_$1.timing" >&2; die "steampipe query '$1' failed: $2"; }
}
TIMING_LIST="select instance_id, instance_type, region from aws_ec2_instance"
sp_timing timing_get "select instance_id, instance_type from aws_ec2_instance where instance_id in ('$GET_ID', '$IN_ID2', '$IN_ID3')"
sp_timing timing_list "$TIMING_LIST"
sp_timing timing_list_again "$TIMING_LIST"
sp_timing timing_hydrate "select instance_id, user_data from aws_ec2_instance where region = 'us-east-1'"
sp_query all "select instance_id, region, account_id, instance_state, instance_type, metadata_options ->> 'HttpTokens' as http_tokens, metadata_options ->> 'State' as metadata_state, tags ->> 'Name' as name from aws_ec2_instance order by instance_id"
sp_query count "select count(*) from aws_ec2_instance"
sp_query hydrate "select instance_id, disable_api_termination, user_data from aws_ec2_instance where region = 'us-east-1' order by instance_id"
# Every column through the FDW's type conversions (inet, jsonb, timestamptz, ...).
sp_query star "select * from aws_ec2_instance order by instance_id"
# csv shows SQL NULL, '' and JSON null alike: count each kind per column in SQL.
NULLS_SQL=$("$PY" - "$OUT/q_columns.csv" <<'PY'
import csv, sys
cols = list(csv.reader(open(sys.argv[1])))[1:]
parts = []
for name, typ in cols:
    q = '"' + name.replace('"', '""') + '"'
    parts.append(f"count({q}) as \"{name}:non-null\"")
    if typ == "text":
        parts.append(f"count(*) filter (where {q} = '') as \"{name}:empty\"")
    if typ == "jsonb":
        parts.append(f"count(*) filter (where jsonb_typeof({q}) = 'null') as \"{name}:json-null\"")
print("select " + ", ".join(parts) + " from aws_ec2_instance")
PY
)
sp_query nulls "$NULLS_SQL"
# Four clients at once: four PostgreSQL backends, each with the FDW reattached
# to the one plugin process on its own connection.
pids=()
for n in 1 2 3 4; do
  as_user "$STEAMPIPE_BIN" query --output csv "select instance_id, instance_type, metadata_options ->> 'HttpTokens' as http_tokens from aws_ec2_instance where instance_state = 'running' and region = '$([ $((n % 2)) = 0 ] && echo eu-west-1 || echo us-east-1)' order by instance_id" \
    >"$OUT/q_parallel$n.csv" 2>"$OUT/q_parallel$n.err" &
  pids+=($!)
done
for n in 1 2 3 4; do
  wait "${pids[$((n - 1))]}" || { cat "$OUT/q_parallel$n.err" >&2; die "parallel query $n failed"; }
done

# The plugin process's memory after these queries (a figure, not checked).
PLUGIN_PID=$(pgrep -u "$SVC_USER" -f "$INSTALL/plugins/.*steampipe-plugin-aws.plugin" | head -n1 || true)
if [ -n "$PLUGIN_PID" ]; then
  awk '/^VmHWM|^VmRSS/ {printf "plugin %s %.1f MB\n", $1, $2 / 1024}' "/proc/$PLUGIN_PID/status" >>"$OUT/timings.txt"
fi

# --- Powerpipe against the service ------------------------------------------------------
DB_URL="postgres://steampipe:$PASSWORD@127.0.0.1:$DB_PORT/steampipe"
set +e
t0=$(date +%s.%N)
(cd mod && as_user "$POWERPIPE_BIN" control run aws_compliance.control.foundational_security_ec2_8 \
   --database "$DB_URL" --mod-install=false --output json) >"$OUT/powerpipe.json" 2>"$OUT/powerpipe.err"
PP_RC=$?
set -e
echo "powerpipe control run: $(awk "BEGIN{printf \"%.2f\", $(date +%s.%N) - $t0}") s" >>"$OUT/timings.txt"
echo "powerpipe exit: $PP_RC" >"$OUT/powerpipe.rc"

# --- a connection the plugin rejects ------------------------------------------------------
# A query that may fail: its exit code goes to q_NAME.rc.
sp_try() { # name sql
  set +e
  as_user "$STEAMPIPE_BIN" query --output csv "$2" >"$OUT/q_$1.csv" 2>"$OUT/q_$1.err"
  echo $? >"$OUT/q_$1.rc"
  set -e
}
# Added while the service runs: the plugin manager sends UpdateConnectionConfigs,
# the plugin refuses that one connection and keeps serving the others.
BAD_SPC=$INSTALL/config/aws_bad.spc
printf 'connection "aws_bad" {\n  plugin  = "aws"\n  regions = []\n}\n' >"$BAD_SPC"
[ "$(id -u)" = 0 ] && chown "$SVC_USER" "$BAD_SPC"
for _ in $(seq 1 60); do
  as_user "$STEAMPIPE_BIN" query --output csv "select state from steampipe_internal.steampipe_connection where name = 'aws_bad'" 2>/dev/null | grep -qxE 'ready|error' && break
  sleep 0.5
done
sp_try live_connections "select name, state, error from steampipe_internal.steampipe_connection order by name"
sp_try live_bad "select count(*) from aws_bad.aws_ec2_instance"
sp_try live_good "select count(*) from aws.aws_ec2_instance"

# --- stop -----------------------------------------------------------------------------------
stop_service() { # tag
  as_user "$STEAMPIPE_BIN" service stop >"$OUT/service_stop$1.txt" 2>&1 \
    || { cat "$OUT/service_stop$1.txt" >&2; die "steampipe service stop failed"; }
  SERVICE_UP=
  as_user "$STEAMPIPE_BIN" service status >"$OUT/service_status$1.txt" 2>&1 || true
  pgrep -u "$SVC_USER" -f "$INSTALL" >"$OUT/leftover.txt" && die "processes left after service stop: $(tr '\n' ' ' <"$OUT/leftover.txt")"
  return 0
}
stop_service ""

# Present when the service starts: SetAllConnectionConfigs fails, and with it
# the plugin instance, as turbot's SDK makes it fail (it returns an error as
# soon as one connection fails).
SERVICE_UP=1
as_user "$STEAMPIPE_BIN" service start --database-listen local --database-port "$DB_PORT" >"$OUT/service_start2.txt" 2>&1 \
  || { cat "$OUT/service_start2.txt" >&2; die "steampipe service start (with aws_bad) failed"; }
sp_try start_bad_connections "select name, state, error from steampipe_internal.steampipe_connection order by name"
sp_try start_bad_good "select count(*) from aws.aws_ec2_instance"
stop_service 2

# --- compare with the fleet; write the transcript -----------------------------------------
mkdir -p "$(dirname "$GOLDEN")"
"$PY" - "$OUT" "$GOLDEN" "$PASSWORD" "$DB_PORT" "$MOTO_PORT" "$PP_RC" "$MODE" <<'PY'
import base64, csv, datetime, json, re, sys

out, golden, password, db_port, moto_port, pp_rc, mode = sys.argv[1:]
fleet = json.load(open(f"{out}/fleet.json"))
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def rows(name):
    with open(f"{out}/q_{name}.csv", newline="") as f:
        return list(csv.reader(f))


acct = fleet["account_id"]
want = {}
for region, insts in fleet["regions"].items():
    for i in insts:
        mo = i.get("MetadataOptions") or {}
        want[i["InstanceId"]] = {
            "region": region,
            "state": i["State"]["Name"],
            "type": i["InstanceType"],
            "tokens": mo.get("HttpTokens", ""),
            "mstate": mo.get("State", ""),
            "hop": str(mo.get("HttpPutResponseHopLimit", "")),
            "name": next((t["Value"] for t in i.get("Tags", []) if t["Key"] == "Name"), None),
        }
# Instance ids are random per run: the transcript names each by its fleet
# case (and its Name tag where cases repeat).
case = {iid: v["case"] for iid, v in fleet["extra"].items()}
repeats = {c for c in case.values() if list(case.values()).count(c) > 1}
alias = {iid: f"<{case[iid]}:{want[iid]['name']}>" if case[iid] in repeats else f"<{case[iid]}>"
         for iid in want}

# every instance, as the fleet has it
got = rows("all")
check(got[0] == ["instance_id", "region", "account_id", "instance_state", "instance_type",
                 "http_tokens", "metadata_state", "name"], f"all: header {got[0]}")
expect = [[iid, w["region"], acct, w["state"], w["type"], w["tokens"], w["mstate"],
           "" if w["name"] is None else w["name"]] for iid, w in sorted(want.items())]
check(got[1:] == expect, f"all: rows differ from the fleet:\n got  {got[1:]}\n want {expect}")
check(rows("count")[1:] == [[str(len(want))]], f"count: {rows('count')} != {len(want)}")

gid = open(f"{out}/get_ids.txt").read().split()[0]
g = rows("get")
check(len(g) == 2 and g[1][:4] == [gid, want[gid]["region"], want[gid]["type"], want[gid]["hop"]],
      f"get: {g}")
check(len(g) == 2 and json.loads(g[1][4]) == {"Name": want[gid]["name"]}, f"get tags: {g}")
check(rows("get_missing") == [["instance_id"]], f"get of an unknown id: {rows('get_missing')}")
eu = sorted([iid, w["tokens"]] for iid, w in want.items() if w["region"] == "eu-west-1")
check(rows("region")[1:] == eu, f"region qual: {rows('region')[1:]} != {eu}")
stopped = sorted([iid] for iid, w in want.items() if w["state"] == "stopped")
check(rows("state")[1:] == stopped, f"instance_state qual: {rows('state')[1:]} != {stopped}")
hyd = rows("hydrate")[1:]
exp_h = []
for iid in sorted(i for i, w in want.items() if w["region"] == "us-east-1"):
    h = fleet["hydrate"][iid]
    dat = h["disableApiTermination"]["DisableApiTermination"]["Value"]
    ud = h["userData"].get("UserData", {}).get("Value")
    # decoded, then cleaned of non-printable characters (newlines included),
    # as turbot's plugin does and ours does
    text = "" if ud is None else "".join(c for c in base64.b64decode(ud).decode() if c.isprintable())
    exp_h.append([iid, "true" if dat else "false", text])
check(hyd == exp_h, f"hydrated columns: {hyd} != {exp_h}")
# What the FDW's quals became: the AWS calls each query caused.
from urllib.parse import parse_qsl


def calls(name):
    out_calls = []
    for line in open(f"{out}/q_{name}.calls"):
        if not line.strip():
            continue
        v = json.loads(line)
        body = v.get("body") or ""
        if v.get("body_encoded"):
            body = base64.b64decode(body).decode()
        params = dict(parse_qsl(body, keep_blank_values=True))
        auth = (v.get("headers") or {}).get("Authorization", "")
        region = auth.split("Credential=")[1].split("/")[2] if "Credential=" in auth else "?"
        action = params.pop("Action", "?")
        params.pop("Version", None)
        if "NextToken" in params:
            params["NextToken"] = "<token>"
        out_calls.append((action, region, params))
    return out_calls


def described(name):
    return [c for c in calls(name) if c[0] == "DescribeInstances"]


d = described("get")
check(d and all(p.get("InstanceId.1") == gid and "InstanceId.2" not in p for _, _, p in d),
      f"get: the instance_id qual did not become InstanceId.1 on every DescribeInstances: {d}")
d = described("get_missing")
check(d and all(p.get("InstanceId.1") == "i-0123456789abcdef0" for _, _, p in d), f"get_missing calls: {d}")
d = described("region")
check(d and all(r == "eu-west-1" for _, r, _ in d), f"region qual: DescribeInstances outside eu-west-1: {d}")
d = described("state")
check(d and all(p.get("Filter.1.Name") == "instance-state-name" and p.get("Filter.1.Value.1") == "stopped"
                for _, _, p in d), f"instance_state qual not pushed down as a filter: {d}")
_, id2, id3 = open(f"{out}/get_ids.txt").read().split()
exp = sorted([i, want[i]["region"]] for i in (gid, id2, id3))
check(rows("in_ids")[1:] == exp, f"instance_id in (...): {rows('in_ids')[1:]} != {exp}")
d = described("in_ids")
check(d and all("InstanceId.1" in p and "InstanceId.2" not in p for _, _, p in d)
      and {p["InstanceId.1"] for _, _, p in d} == {gid, id2, id3, "i-0123456789abcdef0"},
      f"instance_id in (...): not one Get call per id: {d}")
exp = sorted([i, w["type"]] for i, w in want.items() if w["type"] in ("t3.micro", "c5.xlarge"))
check(rows("in_types")[1:] == exp, f"instance_type in (...): {rows('in_types')[1:]} != {exp}")
d = described("in_types")
check(d and all(p.get("Filter.1.Name") == "instance-type" for _, _, p in d)
      and {p.get("Filter.1.Value.1") for _, _, p in d} == {"t3.micro", "c5.xlarge"},
      f"instance_type in (...): not one filtered call per value: {d}")
# AWS answers InvalidInstanceID.Malformed here, moto InvalidInstanceID.NotFound;
# a Get ignores both (turbot's ignore config: InvalidInstanceID.*)
check(rows("get_malformed") == [["instance_id"]] and described("get_malformed"),
      f"malformed instance id: {rows('get_malformed')} {described('get_malformed')}")
check(rows("other_region") == [["instance_id"]] and not described("other_region"),
      f"region outside the connection's: {rows('other_region')} {described('other_region')}")
lim = rows("limit")
check(len(lim) == 3 and all(r[0] in want and r[1] == want[r[0]]["region"] for r in lim[1:]), f"limit 2: {lim}")
d = described("limit")
check(d and all(p.get("MaxResults") == "5" for _, r, p in d),
      f"limit 2: not pushed down as MaxResults=5 (the EC2 minimum): {d}")
lim = rows("limit_region")
check(len(lim) == 3 and all(r[0] in want and r[1] == "us-east-1" for r in lim[1:]), f"limit 2 in us-east-1: {lim}")
check(all(r == "us-east-1" for _, r, _ in described("limit_region")), f"limit 2 in us-east-1: calls elsewhere")
for n in (1, 2, 3, 4):
    region = "eu-west-1" if n % 2 == 0 else "us-east-1"
    exp = sorted([iid, w["type"], w["tokens"]] for iid, w in want.items()
                 if w["region"] == region and w["state"] == "running")
    check(rows(f"parallel{n}")[1:] == exp, f"parallel query {n} ({region}): {rows(f'parallel{n}')[1:]} != {exp}")
star = rows("star")
check(len(star) == len(want) + 1, f"select *: {len(star) - 1} rows, want {len(want)}")
hdr = star[0]
raw = {i["InstanceId"]: i for insts in fleet["regions"].values() for i in insts}
for r in star[1:]:
    v = dict(zip(hdr, r))
    iid = v["instance_id"]
    i = raw.get(iid)
    if i is None:
        failures.append(f"select *: unknown instance {iid}")
        continue
    lt = datetime.datetime.fromisoformat(v["launch_time"].replace("Z", "+00:00"))
    check(lt == datetime.datetime.fromisoformat(i["LaunchTime"].replace("Z", "+00:00")),
          f"select * {iid}: launch_time {v['launch_time']} != {i['LaunchTime']}")
    check(v["private_ip_address"] == i.get("PrivateIpAddress", ""), f"select * {iid}: private_ip_address {v['private_ip_address']}")
    check(v["arn"] == f"arn:aws:ec2:{want[iid]['region']}:{acct}:instance/{iid}", f"select * {iid}: arn {v['arn']}")
    mo = json.loads(v["metadata_options"]) if v["metadata_options"] else {}
    check(all(mo.get(k) == x for k, x in (i.get("MetadataOptions") or {}).items()),
          f"select * {iid}: metadata_options {mo} != {i.get('MetadataOptions')}")
    check(v["sp_connection_name"] == "aws" and json.loads(v["_ctx"]).get("connection_name") == "aws",
          f"select * {iid}: sp_connection_name {v['sp_connection_name']!r}, _ctx {v['_ctx']}")
    # the time in the transition reason of a stopped/terminated instance, else
    # the launch time (turbot's ec2InstanceStateChangeTime)
    reason = i.get("StateTransitionReason") or ""
    if want[iid]["state"] in ("stopped", "terminated") and "(" in reason:
        st = datetime.datetime.strptime(reason.split("(")[1].split(")")[0].strip()[:19], "%Y-%m-%d %H:%M:%S")
        st = st.replace(tzinfo=datetime.timezone.utc)
    else:
        st = lt
    check(v["state_transition_time"] and
          datetime.datetime.fromisoformat(v["state_transition_time"].replace("Z", "+00:00")) == st,
          f"select * {iid}: state_transition_time {v['state_transition_time']!r}, want {st} ({want[iid]['state']}, {reason!r})")
cols = rows("columns")[1:]
check(len(cols) == 83 and cols[0] == ["instance_id", "text"] and cols[-1][0] == "_ctx",
      f"columns: {len(cols)} {cols[:1]} {cols[-1:]}")
plugins = rows("plugin")[1:]
conns = rows("connection")[1:]
check(conns == [["aws", "hub.steampipe.io/plugins/turbot/aws@latest", "ready", ""]], f"connection: {conns}")

# Powerpipe's control run against the service
pp_err = open(f"{out}/powerpipe.err").read()
try:
    pp = json.load(open(f"{out}/powerpipe.json"))
except Exception as e:
    pp = None
    failures.append(f"powerpipe: no JSON output ({e}); stderr: {pp_err.strip()[:2000]}")
results = {}
if pp is not None:
    def walk(node):
        for c in node.get("controls") or []:
            for r in c.get("results") or []:
                dims = ",".join(f"{d['key']}={d['value']}" for d in r.get("dimensions") or [])
                results[r["resource"]] = (r["status"], r["reason"], dims)
        for g in node.get("groups") or []:
            walk(g)
    walk(pp)
exp_pp = {}
for iid, w in want.items():
    ok = w["tokens"] == "required" and w["mstate"] == "applied"
    exp_pp[f"arn:aws:ec2:{w['region']}:{acct}:instance/{iid}"] = "ok" if ok else "alarm"
check({k: v[0] for k, v in results.items()} == exp_pp,
      f"powerpipe statuses: {sorted(results.items())} != {sorted(exp_pp.items())}")
# A connection the plugin rejects (regions = []): added live, only it fails;
# present at start, the plugin instance fails with the plugin's reason.
def rc(name):
    return int(open(f"{out}/q_{name}.rc").read())


def err(name):
    return open(f"{out}/q_{name}.err").read()


check(rc("live_good") == 0 and rows("live_good")[1:] == [[str(len(want))]], f"live aws beside aws_bad: {err('live_good')}")
# Both plugins accept regions = [] when the config is set and fail only the
# queries of that connection with turbot's message; the other connection
# keeps answering, added live or present at start.
bad_msg = 'connection aws_bad has invalid value for "regions", it must contain at least 1 region.'
check(rc("live_bad") != 0 and bad_msg in err("live_bad"), f"live aws_bad: {rc('live_bad')} {err('live_bad')}")
check(rc("start_bad_good") == 0 and rows("start_bad_good")[1:] == [[str(len(want))]],
      f"aws with aws_bad at start: {rc('start_bad_good')} {err('start_bad_good')}")

# The mod's require block (plugin "aws" min_version 1.28.0): with our plugin
# installed as turbot's aws, Steampipe lists it with version "local", which
# Powerpipe accepts, so no requirement warning may appear.
check("satisf" not in pp_err and "require" not in pp_err.lower(),
      f"powerpipe reports the require block unsatisfied: {pp_err.strip()}")
alarms = sum(1 for v in exp_pp.values() if v == "alarm")
check(int(pp_rc) == (1 if alarms else 0), f"powerpipe exit {pp_rc}, expected {1 if alarms else 0}")

# transcript, normalised: instance ids by fleet case, no ports or secrets
def norm(text):
    text = text.replace(password, "<password>") if password else text
    for iid in sorted(alias, key=len, reverse=True):
        text = text.replace(iid, alias[iid])
    text = text.replace(f":{db_port}", ":<db-port>").replace(f":{moto_port}", ":<moto-port>")
    return text


def block(title, body, sort=False, header=True):
    lines = norm(body).rstrip().split("\n")
    if sort:  # rows ordered by instance id come in a random order once ids are named
        lines = lines[:1] + sorted(lines[1:]) if header else sorted(lines)
    return f"## {title}\n" + "\n".join(lines) + "\n\n"


who = "our plugin" if mode == "ours" else "turbot's plugin v1.31.0 in place of our binary"
t = [f"# steampipe CLI v2.3.6 + steampipe-postgres-fdw v2.1.5 in Debian PostgreSQL 15, {who}, installed with\n"
     f"# `install --as hub`, moto fleet of tests/fixtures/ec2_fleet.py. Written by scripts/conformance/steampipe.sh {mode}.\n\n"]
t.append(block("install --as hub", open(f"{out}/install.txt").read().replace(out.rsplit("/out", 1)[0], "<run>")))
for name in ["plugin", "connection", "get", "get_missing", "region", "state", "in_ids", "in_types", "get_malformed", "other_region", "limit", "limit_region", "all", "count", "hydrate"]:
    body = open(f"{out}/q_{name}.csv").read()
    if name.startswith("limit"):  # which rows come first is up to timing: keep the count
        body = body.split("\n", 1)[0] + f"\n({len(rows(name)) - 1} rows, checked against the fleet)"
    t.append(block(f"steampipe query {name}", body, sort=True))
    if name not in ("plugin", "connection"):
        aws = [" ".join([a, r] + [f"{k}={v}" for k, v in sorted(p.items())]) for a, r, p in calls(name)]
        t.append(block(f"AWS calls of query {name}", "\n".join(aws) or "(none)", sort=True, header=False))
nulls = rows("nulls")
check(len(nulls) == 2, f"nulls: {nulls}")
kinds = {}
for head, n in zip(nulls[0], nulls[1]):
    col, kind = head.rsplit(":", 1)
    kinds.setdefault(col, []).append(f"{kind} {n}")
check(list(kinds) == [c[0] for c in cols], "nulls: not every column counted")
t.append(block(f"steampipe query star: select * ({len(star) - 1} rows); per column, values that are not SQL NULL, '' (text), JSON null (jsonb)",
               "\n".join(f"{c}: " + ", ".join(k) for c, k in kinds.items())))
grouped = {}
for a, r, p in calls("star"):
    key = " ".join([a, r] + [f"{k}={v}" for k, v in sorted(p.items()) if k not in ("InstanceId", "InstanceId.1")])
    grouped[key] = grouped.get(key, 0) + 1
t.append(block("AWS calls of query star (per instance calls counted)",
               "\n".join(f"{n} x {k}" for k, n in grouped.items()) or "(none)", sort=True, header=False))
# .timing: what Steampipe shows of the scan metadata; rows checked against the fleet
timing_sql = {
    "timing_get": "select instance_id, instance_type from aws_ec2_instance where instance_id in (<3 ids>)",
    "timing_list": "select instance_id, instance_type, region from aws_ec2_instance",
    "timing_list_again": "the same again (served from the plugin's cache)",
    "timing_hydrate": "select instance_id, user_data from aws_ec2_instance where region = 'us-east-1'",
}
timing_rows = {"timing_get": 3, "timing_list": len(want), "timing_list_again": len(want),
               "timing_hydrate": sum(1 for w in want.values() if w["region"] == "us-east-1")}
for name, sql in timing_sql.items():
    check(len(rows(name)) - 1 == timing_rows[name], f"{name}: {len(rows(name)) - 1} rows, expected {timing_rows[name]}")
    text = re.sub(r"Time: [0-9.,]+m?s", "Time: <time>", open(f"{out}/q_{name}.timing").read())
    check("Rows fetched" in text, f"{name}: no scan metadata in the timing output: {text!r}")
    body = "\n".join(l.rstrip() for l in text.splitlines() if l.strip())
    t.append(block(f"steampipe query --timing=verbose {name}: {sql}", body))
t.append(block("four steampipe queries at once (running instances, us-east-1 and eu-west-1 alternately)",
               "\n".join(f"query {n}: {len(rows(f'parallel{n}')) - 1} rows, as the fleet" for n in (1, 2, 3, 4))))
t.append(block("steampipe query columns (name, type)", open(f"{out}/q_columns.csv").read()))
# one line per result: status, resource, reason, [dimensions]; tests/conformance_steampipe.rs
# compares these with `check` on the same fleet
lines = [f"{v[0]:5} {k} : {v[1]} [{v[2]}]" for k, v in sorted(results.items(), key=lambda kv: (kv[1][0], norm(kv[0])))]
summary = pp["summary"]["status"] if pp else {}
t.append(block("powerpipe control run aws_compliance.control.foundational_security_ec2_8 (results sorted)",
               "\n".join(lines) + f"\nsummary: {json.dumps(summary, sort_keys=True)}\nexit code: {pp_rc}"))
warn = "\n".join(l for l in pp_err.splitlines() if l.strip())
t.append(block("powerpipe stderr", warn or "(empty)"))
t.append(block("steampipe service status after stop", open(f"{out}/service_status.txt").read()))
t.append("# config/aws_bad.spc added while the service runs: connection \"aws_bad\" { plugin = \"aws\", regions = [] }\n\n")
for name in ["live_connections", "live_bad", "live_good"]:
    t.append(block(f"steampipe query {name} (exit {rc(name)})", open(f"{out}/q_{name}.csv").read() + err(name)))
t.append("# the service restarted with aws_bad in place\n\n")
for name in ["start_bad_connections", "start_bad_good"]:
    t.append(block(f"steampipe query {name} (exit {rc(name)})", open(f"{out}/q_{name}.csv").read() + err(name)))
t.append(block("steampipe service status after the second stop", open(f"{out}/service_status2.txt").read()))
t.append("## result\n" + ("PASS" if not failures else "FAIL\n" + "\n".join(norm(f) for f in failures)) + "\n")
open(golden, "w").write("".join(t))
if failures:
    print("conformance steampipe: mismatches:\n" + "\n".join(failures), file=sys.stderr)
    sys.exit(1)
PY
cat "$OUT/timings.txt" >&2
if git ls-files --error-unmatch "$GOLDEN" >/dev/null 2>&1 && git diff --quiet -- "$GOLDEN"; then
  echo "conformance steampipe: PASS (transcript $GOLDEN unchanged)" >&2
else
  echo "conformance steampipe: PASS (transcript $GOLDEN new or changed: review with git diff)" >&2
fi
