#!/usr/bin/env bash
# The full test suite, from a fresh machine: installs what the tests need,
# checks formatting and lints, builds the go-plugin host stand-in, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== gofmt (tests/host)"
unformatted=$(gofmt -l tests/host)
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings

echo "== build the host stand-in"
mkdir -p target
tests/host/build.sh target/sphost
export SPHOST="$PWD/target/sphost"

echo "== cargo test"
cargo test
