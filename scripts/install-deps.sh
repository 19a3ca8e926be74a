#!/usr/bin/env bash
# Installs what the tests and the main job need on a fresh Debian machine:
# PostgreSQL (the tests run it in a temporary cluster of their own), a Python
# venv in target/pyenv with the moto EC2/STS emulator and boto3, and the Go
# modules of tests/host (sphost: steampipe-plugin-sdk's client and
# hashicorp/go-plugin, pinned in its go.mod/go.sum) from the Go module proxy.
# Go itself is the machine's Go >= 1.26 (/usr/local/go); Debian's golang-go
# (1.19) cannot build sphost and is not installed.
set -euo pipefail

packages=(
  python3-venv
  postgresql
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cd "$(dirname "$0")/.."

go=/usr/local/go/bin/go
[ -x "$go" ] || go="$(command -v go || true)"
if [ -z "$go" ]; then
  echo "install-deps: no Go toolchain: sphost (tests/host) needs Go >= 1.26 at /usr/local/go/bin/go or on PATH" >&2
  exit 1
fi
echo "downloading the Go modules of tests/host (pinned in tests/host/go.sum)" >&2
(cd tests/host && GOFLAGS=-mod=readonly GOTOOLCHAIN=local "$go" mod download)

venv=target/pyenv
if ! "$venv/bin/python" -c 'import moto, boto3, flask' 2>/dev/null; then
  echo "creating $venv with moto[ec2,server] and boto3" >&2
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[ec2,server]==5.2.5' 'boto3==1.44.8'
fi
