#!/usr/bin/env bash
# Builds sphost, the Steampipe host used by the integration tests, from this
# Go module: steampipe-plugin-sdk v5.14.0's grpc client and hashicorp/go-plugin
# v1.7.0, every version pinned in go.mod/go.sum. The first build downloads the
# modules from the Go module proxy into Go's module cache; later builds are
# offline.
#
# Usage: tests/host/build.sh OUT_BINARY
#
# Needs Go >= 1.26 (the machine's /usr/local/go; Debian's golang-go 1.19
# cannot build it). GO overrides the go command.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_BINARY" >&2
  exit 2
fi
HOST_SRC="$(cd "$(dirname "$0")" && pwd)"
case "$1" in
  /*) OUT="$1" ;;
  *) OUT="$PWD/$1" ;;
esac

GO="${GO:-}"
if [[ -z "$GO" ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO="$(command -v go || true)"; fi
fi
if [[ -z "$GO" ]]; then
  echo "error: cannot build sphost: no Go toolchain (need Go >= 1.26 at /usr/local/go/bin/go or on PATH, or GO=...)" >&2
  exit 1
fi
ver="$("$GO" env GOVERSION 2>/dev/null || true)"
minor="${ver#go1.}"; minor="${minor%%.*}"
if [[ "$ver" != go1.* || ! "$minor" =~ ^[0-9]+$ || "$minor" -lt 26 ]]; then
  echo "error: cannot build sphost: $GO is ${ver:-unknown}, need Go >= 1.26 (Debian's golang-go is too old; use /usr/local/go/bin/go)" >&2
  exit 1
fi

mkdir -p "$(dirname "$OUT")"
cd "$HOST_SRC"
# -mod=readonly: go.mod and go.sum are the pins; a build never edits them.
GOFLAGS="-mod=readonly -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0 "$GO" build -o "$OUT" .
echo "built $OUT ($ver)" >&2
