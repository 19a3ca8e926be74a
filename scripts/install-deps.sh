#!/usr/bin/env bash
# Installs what the tests and the main job need on a fresh Debian machine:
# Go and HashiCorp go-plugin (the host stand-in), protoc and its Go plugins
# (stubs for the host stand-in only; the Rust build needs no protoc), and a
# Python venv in target/pyenv with the moto EC2/STS emulator and boto3, and
# PostgreSQL (the tests run it in a temporary cluster of their own).
set -euo pipefail

packages=(
  golang-go
  golang-github-hashicorp-go-plugin-dev
  golang-google-grpc-dev
  golang-google-protobuf-dev
  golang-github-hashicorp-go-hclog-dev
  protoc-gen-go
  protoc-gen-go-grpc
  protobuf-compiler
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
venv=target/pyenv
if ! "$venv/bin/python" -c 'import moto, boto3, flask' 2>/dev/null; then
  echo "creating $venv with moto[ec2,server] and boto3" >&2
  mkdir -p target
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[ec2,server]==5.2.5' 'boto3==1.44.8'
fi
