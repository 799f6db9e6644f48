#!/usr/bin/env bash
# Sets up everything, builds Tally and runs every test. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Style: the checked-in .swift-format, enforced.
swift format lint --strict -r Sources Tests Package.swift
swift build --build-tests
# Tests that start `tally` as a real process find it here.
export TALLY_BIN="$PWD/.build/debug/tally"
# Every test is XCTest; Swift Testing would close the log with "0 tests".
swift test --skip-build --disable-swift-testing
