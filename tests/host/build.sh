#!/usr/bin/env bash
# Builds sphost, the go-plugin host stand-in used by the integration tests.
#
# Usage: tests/host/build.sh OUT_BINARY
#
# Everything is built offline in GOPATH mode from Debian's Go packages. The Go
# stubs for proto/steampipe/plugin.proto are generated into a temporary GOPATH
# at build time and never written into the repository.
#
# Environment:
#   HOST_BUILD_DIR  directory to hold the temporary GOPATH (default: mktemp -d,
#                   removed on exit)
#   GOCACHE         Go build cache (default: go's own, or one inside the build dir)
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_BINARY" >&2
  exit 2
fi

REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HOST_SRC="$REPO_ROOT/tests/host"
PROTO_DIR="$REPO_ROOT/proto/steampipe"
GOCODE=/usr/share/gocode

case "$1" in
  /*) OUT="$1" ;;
  *) OUT="$PWD/$1" ;;
esac

APT_PACKAGES="golang-go protobuf-compiler libprotobuf-dev protoc-gen-go protoc-gen-go-grpc \
golang-github-hashicorp-go-plugin-dev golang-github-hashicorp-go-hclog-dev \
golang-google-grpc-dev golang-google-protobuf-dev"

missing=()
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("command '$tool'")
done
for dir in github.com/hashicorp/go-plugin github.com/hashicorp/go-hclog \
           google.golang.org/grpc google.golang.org/protobuf; do
  [[ -d "$GOCODE/src/$dir" ]] || missing+=("Go source $GOCODE/src/$dir")
done
TIMESTAMP_PROTO_DIR=""
for inc in /usr/include /usr/local/include; do
  if [[ -f "$inc/google/protobuf/timestamp.proto" ]]; then
    TIMESTAMP_PROTO_DIR="$inc"
    break
  fi
done
[[ -n "$TIMESTAMP_PROTO_DIR" ]] || missing+=("google/protobuf/timestamp.proto")
if [[ ${#missing[@]} -gt 0 ]]; then
  {
    echo "error: cannot build sphost; missing:"
    for m in "${missing[@]}"; do echo "  - $m"; done
    echo "install the Debian packages:"
    echo "  apt-get install -y $APT_PACKAGES"
  } >&2
  exit 1
fi

if [[ -n "${HOST_BUILD_DIR:-}" ]]; then
  BUILD_DIR="$HOST_BUILD_DIR"
  mkdir -p "$BUILD_DIR"
else
  BUILD_DIR="$(mktemp -d)"
  trap 'rm -rf "$BUILD_DIR"' EXIT
fi
BUILD_DIR="$(cd "$BUILD_DIR" && pwd)"

GOPATH_DIR="$BUILD_DIR/gopath"
PKG_ROOT="$GOPATH_DIR/src/steampipehost"
rm -rf "$PKG_ROOT"
mkdir -p "$PKG_ROOT/proto" "$PKG_ROOT/sphost"

# go_package in plugin.proto is ".;proto"; map the file to an import path
# inside the temporary GOPATH instead.
protoc \
  -I "$PROTO_DIR" -I "$TIMESTAMP_PROTO_DIR" \
  --go_out="$GOPATH_DIR/src" --go_opt=Mplugin.proto=steampipehost/proto \
  --go-grpc_out="$GOPATH_DIR/src" --go-grpc_opt=Mplugin.proto=steampipehost/proto \
  "$PROTO_DIR/plugin.proto"

cp "$HOST_SRC"/*.go "$PKG_ROOT/sphost/"

if [[ -z "${GOCACHE:-}" ]]; then
  GOCACHE="$(go env GOCACHE 2>/dev/null || true)"
  if [[ -z "$GOCACHE" || "$GOCACHE" == off ]]; then
    GOCACHE="$BUILD_DIR/gocache"
  fi
fi

mkdir -p "$(dirname "$OUT")"
(
  cd "$PKG_ROOT/sphost"
  GOPATH="$GOPATH_DIR:$GOCODE" GO111MODULE=off GOPROXY=off GOFLAGS= GOCACHE="$GOCACHE" \
    go build -o "$OUT" .
)
echo "built $OUT" >&2
