#!/usr/bin/env bash
# Sets up everything, builds Tally and runs every test. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# Tests that start `tally` as a real process find it here.
export TALLY_BIN="$PWD/.build/debug/tally"
swift test --skip-build
