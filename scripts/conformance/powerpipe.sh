#!/usr/bin/env bash
# Conformance part "powerpipe" (issue 11, item 2): real Powerpipe runs the
# bundled mod over the plugin's rows in PostgreSQL, and `steampipe-plugin-aws
# check` must match it format by format.
#
#   scripts/conformance.sh powerpipe
#
# 1. Builds Powerpipe v1.5.2 from its Go module into
#    target/conformance/bin/powerpipe (skipped when that binary already reports
#    1.5.2). The module proxy serves exact versions only and `go install`
#    needs a version list, so: `go mod download -json`, copy the module's Dir
#    out of the read-only module cache, `CGO_ENABLED=1 go build` there (cgo:
#    sqlite and duckdb). About 3 min on 2 cores.
# 2. Runs tests/conformance_powerpipe.rs (`--ignored`): a seeded moto fleet,
#    the plugin's rows loaded into a temporary PostgreSQL as the FDW types
#    them, Powerpipe and `check` run side by side. It rewrites tests/golden/
#    with Powerpipe's normalised outputs.
# 3. Runs tests/output_golden.rs: `check`'s own outputs against those goldens
#    (the same test runs in the default `cargo test`, without Powerpipe).
#
# Heavy builds take target/conformance/build.lock. Environment:
#   POWERPIPE_BIN  use this Powerpipe binary instead of building one
#   SPHOST         the go-plugin host stand-in (else target/sphost, built if missing)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"

PP_VERSION=1.5.2
PP_MODULE=github.com/turbot/powerpipe
LOCK=target/conformance/build.lock
mkdir -p target/conformance/bin
touch "$LOCK"

# Powerpipe never calls home in these runs.
export POWERPIPE_UPDATE_CHECK=false POWERPIPE_TELEMETRY=none

pp_ok() { [ -x "$1" ] && "$1" --version 2>/dev/null | grep -qF "$PP_VERSION"; }

build_powerpipe() {
  local out=$1
  pp_ok "$out" && return 0
  local dir src
  dir=$(go mod download -json "$PP_MODULE@v$PP_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -d "$dir" ] || {
    echo "powerpipe: go mod download of $PP_MODULE@v$PP_VERSION gave no module directory" >&2
    exit 1
  }
  src=target/conformance/src/powerpipe-$PP_VERSION
  rm -rf "$src"
  mkdir -p "$(dirname "$src")"
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  echo "powerpipe: building $PP_MODULE@v$PP_VERSION (cgo) ..." >&2
  local t0=$SECONDS
  (cd "$src" && CGO_ENABLED=1 go build -ldflags "-X main.version=$PP_VERSION" -o "$PWD/powerpipe.bin" .)
  mv "$src/powerpipe.bin" "$out"
  echo "powerpipe: built in $((SECONDS - t0)) s" >&2
  pp_ok "$out" || {
    echo "powerpipe: the built binary does not report version $PP_VERSION" >&2
    exit 1
  }
}

if [ -n "${POWERPIPE_BIN:-}" ]; then
  pp_ok "$POWERPIPE_BIN" || {
    echo "powerpipe: POWERPIPE_BIN=$POWERPIPE_BIN is not Powerpipe $PP_VERSION" >&2
    exit 1
  }
else
  POWERPIPE_BIN=$PWD/target/conformance/bin/powerpipe
  if ! pp_ok "$POWERPIPE_BIN"; then
    export -f build_powerpipe pp_ok
    export PP_VERSION PP_MODULE
    flock "$LOCK" bash -c 'build_powerpipe "$0"' "$POWERPIPE_BIN"
  fi
fi
export POWERPIPE_BIN
echo "powerpipe: $("$POWERPIPE_BIN" --version)" >&2
[ "${1:-}" = --build-only ] && exit 0

if [ -z "${SPHOST:-}" ]; then
  SPHOST=$PWD/target/sphost
  [ -x "$SPHOST" ] || flock "$LOCK" tests/host/build.sh "$SPHOST"
fi
export SPHOST

flock "$LOCK" cargo test --no-run --test conformance_powerpipe --test output_golden
cargo test --test conformance_powerpipe -- --ignored --test-threads=1
cargo test --test output_golden
