#!/usr/bin/env bash
# The main job: a real IMDSv2 check against a local EC2 emulator.
#
# Builds the plugin (release), starts the moto EC2/STS emulator on loopback,
# seeds it with a small fleet in two regions (some instances require IMDSv2,
# some still allow IMDSv1) and with launch templates and launch
# configurations, and runs the bundled mod's AWS Foundational Security Best
# Practices benchmark (its IMDS controls: EC2.8, EC2.170, AutoScaling.3/.4)
# with the plugin's own `check` command, through the same table code
# Steampipe queries.
#
# Against real AWS, drop the emulator and run for example:
#   target/release/steampipe-plugin-aws check --regions 'us-*,eu-*'
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --bin steampipe-plugin-aws

port=$(target/pyenv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
work=$(mktemp -d)
coproc MOTO { exec target/pyenv/bin/python tests/fixtures/moto_guard.py "$port" 2>"$work/moto.log"; }
trap 'kill "$MOTO_PID" 2>/dev/null || true; rm -rf "$work"' EXIT
read -r ready <&"${MOTO[0]}"
[ "$ready" = ready ] || { echo "the EC2 emulator did not start" >&2; exit 1; }
echo "EC2 emulator (moto) on $endpoint; seeding a fleet in us-east-1 and eu-west-1..." >&2
target/pyenv/bin/python tests/fixtures/ec2_fleet.py "$endpoint" "$work/fleet.json" 2>/dev/null
echo "... and launch templates and launch configurations, some still allowing IMDSv1" >&2
target/pyenv/bin/python tests/fixtures/launch_templates.py "$endpoint" "$work/templates.json"
target/pyenv/bin/python tests/fixtures/launch_configurations.py "$endpoint" "$work/lcs.json" --bulk-count 0 2>/dev/null

export AWS_ACCESS_KEY_ID=AKIDEMULATOR AWS_SECRET_ACCESS_KEY=emulator-secret AWS_EC2_METADATA_DISABLED=true
# Like Powerpipe, check renders text at the terminal's width, and at the
# narrowest width when stdout is not a terminal (a log, CI): give it one there.
[ -t 1 ] || export POWERPIPE_DISPLAY_WIDTH="${POWERPIPE_DISPLAY_WIDTH:-120}"
set +e
# AWS Foundational Security Best Practices, the IMDS controls: EC2.8
# (instances), EC2.170 (launch templates), AutoScaling.3 and .4 (launch
# configurations).
target/release/steampipe-plugin-aws check aws_compliance.benchmark.foundational_security \
  --endpoint-url "$endpoint" --default-region us-east-1 --regions us-east-1,eu-west-1
code=$?
set -e
case $code in
  0) echo "exit code 0: everything requires IMDSv2" >&2 ;;
  1) echo "exit code 1: some instances, templates or launch configurations still allow IMDSv1 (alarms), as seeded" >&2 ;;
  *) echo "exit code $code: the check could not run" >&2; exit "$code" ;;
esac
