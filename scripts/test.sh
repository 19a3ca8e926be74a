#!/usr/bin/env bash
# The full test suite, from a fresh machine: installs what the tests need,
# checks formatting and lints, builds sphost (the host on steampipe-plugin-sdk's
# own client, tests/host), runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check
export PATH="/usr/local/go/bin:$PATH"   # Go >= 1.26 before any older go on PATH
echo "== gofmt, go vet (tests/host)"
unformatted=$(gofmt -l tests/host)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
(cd tests/host && GOFLAGS=-mod=readonly GOTOOLCHAIN=local go vet .)
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== build sphost (tests/host: steampipe-plugin-sdk's client)"
mkdir -p target
tests/host/build.sh target/sphost
export SPHOST="$PWD/target/sphost"

echo "== cargo test"
cargo test
