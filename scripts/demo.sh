#!/usr/bin/env bash
# Sets up everything, builds Tally in release mode and runs `tally demo`
# (a generated trading week run by the embedded engine, with a summary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product tally
exec .build/release/tally demo "$@"
