#!/usr/bin/env bash
# One measurement of a real cluster by the independent client: a fresh data folder,
# `tally cluster up`, scripts/cluster-client.py (pyzmq, no Tally code) submitting a
# generated day, `tally cluster down`. This is the "independent client" of issue 10's
# figures in docs/PERFORMANCE.md.
#
#   scripts/cluster-client-run.sh MARKET [CLIENT ARGS...]
#
#   MARKET       a folder from `tally generate` (MARKET/reference, MARKET/events.txt), e.g.
#                tally generate --out /tmp/cm1m --seed 20260105 --days 1 \
#                  --trades-per-day 1000000 --accounts 100000 --securities 1000 --participants 20
#   CLIENT ARGS  passed to scripts/cluster-client.py: none for the windowed throughput run
#                (10,000-line batches, 8 in flight), or `--batch-lines 1000 --rate 100000
#                --window 1000` for latency at 100,000 events/s offered
#
# Environment (optional):
#   TALLY_BIN      the tally binary (default: .build/release/tally)
#   TALLY_CONFIG   the cluster config (default: Config/local.toml; its ports must be free)
#   TALLY_DISK_PROBE_SECONDS
#                  seconds of scripts/disk-stall-probe.py in the data folder before the
#                  cluster starts (default 10; 0 skips it): the disk's fsync stalls,
#                  the floor of the latency p99, added to the JSON (host_fsync_*)
#   TALLY_KEEP_DATA=1
#                  keep the data folder after `cluster down` (its path on standard
#                  error): the nodes' logs and their RocksDB LOG files (a journal flush,
#                  a compaction) to set beside a --latencies file and
#                  scripts/latency-episodes.py
#
# Prints the client's one JSON line; exits with the client's status. Alternate two
# binaries run by run to compare them: this machine's speed moves between minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -lt 1 || "$1" == "-h" || "$1" == "--help" ]]; then
  sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'
  exit 64
fi
MARKET="$1"
shift
BIN="${TALLY_BIN:-.build/release/tally}"
CONFIG="${TALLY_CONFIG:-Config/local.toml}"
PROBE_SECONDS="${TALLY_DISK_PROBE_SECONDS:-10}"
for f in "$MARKET/reference" "$MARKET/events.txt" "$BIN"; do
  [[ -e "$f" ]] || { echo "cluster-client-run: $f does not exist" >&2; exit 2; }
done
DATA="$(mktemp -d "${TMPDIR:-/tmp}/tally-client-run.XXXXXX")"
cleanup() {
  "$BIN" cluster down --config "$CONFIG" --data "$DATA" >/dev/null 2>&1 || true
  if [[ "${TALLY_KEEP_DATA:-0}" == "1" ]]; then
    echo "cluster-client-run: data kept in $DATA" >&2
  else
    rm -rf "$DATA"
  fi
}
trap cleanup EXIT
# The disk first, before any node writes to it.
PROBE='{}'
if [[ "$PROBE_SECONDS" != "0" ]]; then
  PROBE="$(python3 scripts/disk-stall-probe.py "$DATA" --seconds "$PROBE_SECONDS")"
fi
"$BIN" cluster up --config "$CONFIG" --reference "$MARKET/reference" --data "$DATA" >/dev/null
# The addresses the client needs, from the config (defaults: base_port and + 5).
read -r INGEST DECIDED < <(python3 - "$CONFIG" <<'EOF'
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
cl = c.get("cluster", {})
host = c.get("sequencer", {}).get("host", cl.get("host", "127.0.0.1"))
vhost = c.get("voter", {}).get("host", cl.get("host", "127.0.0.1"))
base = cl.get("base_port", 7100)
ingest = c.get("sequencer", {}).get("ingest_port", base)
publish = c.get("voter", {}).get("publish_port", base + 5)
print(f"tcp://{host}:{ingest} tcp://{vhost}:{publish}")
EOF
)
set +e
FIGURES="$(python3 scripts/cluster-client.py --ingest "$INGEST" --decided "$DECIDED" "$@" "$MARKET/events.txt")"
STATUS=$?
set -e
# One JSON line: the client's figures and the probe's.
python3 -c 'import json, sys
try:
    f = json.loads(sys.argv[1])
    f.update(json.loads(sys.argv[2]))
except ValueError:
    print(sys.argv[1]); sys.exit(0)  # not figures (the client failed): as they came
print(json.dumps(f, sort_keys=True))' "$FIGURES" "$PROBE"
exit $STATUS
