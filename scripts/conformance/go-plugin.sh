#!/usr/bin/env bash
# Conformance part "go-plugin" (issue 11 item 3): turbot's Go AWS plugin as
# the oracle for aws_ec2_instance, and side-by-side figures.
#
#   scripts/conformance/go-plugin.sh [all|download|build|test|bench]
#
#   download  copy github.com/turbot/steampipe-plugin-aws@$GO_AWS_VERSION out of
#             the module cache into target/conformance/src/, apply the two
#             test-bed edits below, download its dependencies (network only)
#   build     download, then compile it into target/conformance/bin/
#             steampipe-plugin-aws-go (cached; under the build lock)
#   test      build, then run tests/oracle_go_plugin.rs with -- --ignored; it
#             rewrites tests/golden/go_plugin_oracle.json, which the default
#             test run then checks our plugin against
#   bench     build, then `cargo bench --bench side_by_side` (our release build
#             beside the Go plugin, one table)
#   all       test, then bench (the default)
#
# Upstream code is only built here, never committed. Two edits are made to the
# copy (docs/compatibility.md, "turbot's Go AWS plugin"):
#   1. The module proxy refuses github.com/aws/aws-sdk-go-v2/service/synthetics
#      @v1.42.15 (403), so the one table that needs it, aws_synthetics_canary,
#      is taken out: its file, its line in aws/plugin.go, the import and
#      SyntheticsClient in aws/service.go, and the requirement in go.mod.
#   2. ec2InstanceStateChangeTime turns "(2019-09-12 16:38:34 GMT)" (what AWS
#      writes in StateTransitionReason) into a timestamp by replacing " GMT";
#      moto writes " UTC", which makes the Go plugin fail every scan that meets
#      a stopped instance. The copy replaces " UTC" the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="/usr/local/go/bin:$PATH"
GO=/usr/local/go/bin/go
GO_AWS_VERSION=v1.31.0
MODULE=github.com/turbot/steampipe-plugin-aws
SRC=$ROOT/target/conformance/src/steampipe-plugin-aws-$GO_AWS_VERSION
BIN=$ROOT/target/conformance/bin/steampipe-plugin-aws-go
LOCK=$ROOT/target/conformance/build.lock
TAGS=netgo,dev
mkdir -p "$ROOT/target/conformance/bin" "$ROOT/target/conformance/src"

die() { echo "go-plugin: $*" >&2; exit 1; }
[ -x "$GO" ] || die "needs Go 1.26 at $GO (https://go.dev/dl/)"

# The recipe's fingerprint: the version, the tags and this script's edits.
recipe_id() {
  { echo "$GO_AWS_VERSION $TAGS"; sed -n '/^apply_edits()/,/^}/p' "$0"; } | sha256sum | cut -c1-16
}

apply_edits() {
  local d=$1
  # 1. Drop aws_synthetics_canary (its SDK module is refused by the proxy).
  rm -f "$d/aws/table_aws_synthetics_canary.go"
  sed -i '/"aws_synthetics_canary": *tableAwsSyntheticsCanary(ctx),/d' "$d/aws/plugin.go"
  sed -i '\#"github.com/aws/aws-sdk-go-v2/service/synthetics"#d' "$d/aws/service.go"
  sed -i '/^func SyntheticsClient(/,/^}/d' "$d/aws/service.go"
  (cd "$d" && "$GO" mod edit -droprequire github.com/aws/aws-sdk-go-v2/service/synthetics)
  # 2. Accept moto's " UTC" where AWS writes " GMT" in StateTransitionReason.
  sed -i 's/strings.Replace(strings.Replace(stateTransitionTime\[1\], " ", "T", 1), " GMT", "Z", 1)/strings.Replace(strings.Replace(strings.Replace(stateTransitionTime[1], " ", "T", 1), " GMT", "Z", 1), " UTC", "Z", 1)/' \
    "$d/aws/table_aws_ec2_instance.go"
  # Each edit must have taken: fail loudly if upstream moved.
  ! grep -q 'aws_synthetics_canary\|SyntheticsClient' "$d/aws/plugin.go" "$d/aws/service.go" ||
    die "the synthetics edit did not apply to $d"
  grep -q '" UTC", "Z", 1)' "$d/aws/table_aws_ec2_instance.go" ||
    die "the ' UTC' edit did not apply to $d/aws/table_aws_ec2_instance.go"
  ! grep -q 'service/synthetics' "$d/go.mod" || die "go.mod still requires service/synthetics"
}

download() {
  local id; id=$(recipe_id)
  if [ -f "$SRC/.recipe" ] && [ "$(cat "$SRC/.recipe")" = "$id" ]; then
    echo "go-plugin: source ready in $SRC" >&2
  else
    echo "go-plugin: fetching $MODULE@$GO_AWS_VERSION" >&2
    local dir
    dir=$("$GO" mod download -json "$MODULE@$GO_AWS_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || die "go mod download $MODULE@$GO_AWS_VERSION gave no directory"
    rm -rf "$SRC" "$SRC.tmp"
    cp -r "$dir" "$SRC.tmp"
    chmod -R u+w "$SRC.tmp"
    apply_edits "$SRC.tmp"
    mv "$SRC.tmp" "$SRC"
    echo "$id" > "$SRC/.recipe"
  fi
  echo "go-plugin: downloading dependencies (network only)" >&2
  (cd "$SRC" && "$GO" mod download) || die "go mod download of the dependencies failed (see above)"
}

build() {
  download
  local id; id=$(recipe_id)
  if [ -x "$BIN" ] && [ -f "$BIN.recipe" ] && [ "$(cat "$BIN.recipe")" = "$id" ]; then
    echo "go-plugin: cached $BIN" >&2
    return
  fi
  echo "go-plugin: compiling $MODULE@$GO_AWS_VERSION (-tags $TAGS; 20-40 min on 2 cores)" >&2
  local start=$SECONDS
  (cd "$SRC" && flock "$LOCK" env CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
     "$GO" build -tags "$TAGS" -o "$BIN.tmp" .) || die "go build failed (see above)"
  mv "$BIN.tmp" "$BIN"
  echo "$id" > "$BIN.recipe"
  echo "go-plugin: built $BIN in $((SECONDS - start)) s, $(stat -c %s "$BIN") bytes" >&2
}

run_tests() {
  build
  export GO_AWS_PLUGIN=$BIN
  # Compile under the lock, run outside it.
  flock "$LOCK" cargo test --test oracle_go_plugin --no-run
  # Live: both plugins, same client, same fleet; rewrites the recording.
  cargo test --test oracle_go_plugin -- --ignored --nocapture
  # The default test: ours against that recording, as CI runs it.
  cargo test --test oracle_go_plugin
  flock "$LOCK" cargo test --test oracle_ec2_launch_template --no-run && cargo test --test oracle_ec2_launch_template -- --include-ignored --test-threads 1
  flock "$LOCK" cargo test --test oracle_ec2_ami --no-run && cargo test --test oracle_ec2_ami -- --include-ignored --test-threads 1
  flock "$LOCK" cargo test --test oracle_ec2_launch_configuration --no-run && cargo test --test oracle_ec2_launch_configuration -- --include-ignored --test-threads 1
  # GetRateLimiters: turbot's plugin-defined limiters, recorded and compared.
  flock "$LOCK" cargo test --test rate_limiters --no-run
  cargo test --test rate_limiters -- --ignored go_plugin_rate_limiters_recording
}

run_bench() {
  build
  export GO_AWS_PLUGIN=$BIN
  flock "$LOCK" cargo build --release
  flock "$LOCK" cargo bench --bench side_by_side --no-run
  cargo bench --bench side_by_side
}

case "${1:-all}" in
  download) download ;;
  build) build ;;
  test) run_tests ;;
  bench) run_bench ;;
  all) run_tests; run_bench ;;
  *) die "unknown step '$1' (download, build, test, bench or all)" ;;
esac
