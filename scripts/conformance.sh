#!/usr/bin/env bash
# Conformance against the real components (issue 11, items 2-4). Long: Go
# builds on 2 cores. Not part of scripts/test.sh; CI keeps the proof through
# the golden files and recorded results these parts write.
#
#   scripts/conformance.sh [all|powerpipe|go-plugin|steampipe] ...
#
# Each part is scripts/conformance/<part>.sh. Builds are cached under
# target/conformance/ and serialised through target/conformance/build.lock
# (never two heavy builds at once).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
mkdir -p target/conformance

parts=("$@")
if [ ${#parts[@]} -eq 0 ] || [ "${parts[0]}" = all ]; then
  parts=(powerpipe go-plugin steampipe)
fi
for part in "${parts[@]}"; do
  script="scripts/conformance/$part.sh"
  [ -x "$script" ] || { echo "conformance: unknown part '$part' (no $script)" >&2; exit 2; }
  echo "== conformance: $part" >&2
  "$script"
done
