#!/usr/bin/env bash
# Installs what Tally needs to build on a fresh Debian machine with Swift:
# the C libraries (RocksDB, ZeroMQ), rocksdb-tools (ldb, for reading state folders) and
# prometheus (its promtool checks the nodes' /metrics and Config/alerts.yml in the tests),
# chromium (headless, for the dashboard's browser test) and iproute2 (network namespaces
# for the tests of nodes on separate hosts).
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
[ -f /usr/include/rocksdb/c.h ] || need+=(librocksdb-dev)
[ -f /usr/include/zmq.h ] || need+=(libzmq3-dev)
command -v ldb >/dev/null 2>&1 || command -v rocksdb_ldb >/dev/null 2>&1 || need+=(rocksdb-tools)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# chromium: the dashboard test loads the page in headless Chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# iproute2 (`ip netns`, veth, bridges): the namespace cluster test and Chaos/scenarios/netns.toml.
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# pyzmq: the interop test submits from a Python ZeroMQ client (SPEC §7).
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import zmq" >/dev/null 2>&1; then
  echo "setup: installing pyzmq (pip)" >&2
  python3 -m pip install -q pyzmq >/dev/null 2>&1 || echo "setup: pyzmq not installed; the interop test will be skipped" >&2
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: swift is not on PATH (Swift 6.1 or later is required; see README.md)" >&2
  exit 1
fi
