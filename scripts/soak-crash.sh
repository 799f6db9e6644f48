#!/usr/bin/env bash
# Crash soak for `tally run --state`: SIGKILL it many times at random moments, resume,
# and check that the completed run writes exactly the outputs and state digest of an
# uninterrupted run.
#
#   scripts/soak-crash.sh [KILLS] [SEED]
#
#   KILLS  how many times to kill the process (default 300)
#   SEED   seeds the kill schedule (default: from the clock; printed, so a run can be
#          replayed with the same schedule, give or take the machine's timing)
#
# Environment (optional):
#   TALLY_BIN          the tally binary to soak (default: the release build, built if needed)
#   SOAK_DAYS, SOAK_TRADES, SOAK_ACCOUNTS   the generated market (default 10 days x 20,000
#                      trades, 5,000 accounts: about 200,000 events, ~5 s per release run)
#   SOAK_COMMIT_EVENTS --commit-events of the killed runs (default 500)
#   SOAK_KEEP=1        keep the work folder even when everything matched
#
# Each kill waits a random 50-600 ms, counted either from the start of the process (the
# kill lands in RocksDB's open/recovery, the state load or the first events) or, for
# half of the kills, from the run's first commit (RocksDB starts an empty write-ahead
# log on open; the first commit appends to it), so kills also land in the apply/commit
# phase late in the stream, where loading the state takes a while. When a run completes
# before its kill, its outputs are checked and the next runs start a new state folder.
#
# Prints "kills: N, differences: D" and exits 0 only when D is 0.
set -euo pipefail
cd "$(dirname "$0")/.."

KILLS="${1:-300}"
SEED="${2:-$(date +%s)}"
DAYS="${SOAK_DAYS:-10}"
TRADES="${SOAK_TRADES:-20000}"
ACCOUNTS="${SOAK_ACCOUNTS:-5000}"
COMMIT_EVENTS="${SOAK_COMMIT_EVENTS:-500}"
OUTPUTS=(balances.csv clearing.csv entitlements.csv holdings.csv rejections.csv settlement.csv tax.csv)

if [[ -z "${TALLY_BIN:-}" ]]; then
  echo "soak: building tally (release)..." >&2
  swift build -c release --product tally >&2
  TALLY_BIN="$(swift build -c release --show-bin-path)/tally"
fi
[[ -x "$TALLY_BIN" ]] || { echo "soak: no tally binary at $TALLY_BIN" >&2; exit 2; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tally-soak-crash.XXXXXX")"
started=$SECONDS
echo "soak: kills $KILLS, seed $SEED, work folder $WORK, binary $TALLY_BIN"
RANDOM=$SEED

# A random integer in [lo, hi] (bash's RANDOM, seeded above: 15 bits per draw).
rand() { echo $(($1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1))); }

"$TALLY_BIN" generate --out "$WORK/market" --seed "$SEED" --days "$DAYS" --trades-per-day "$TRADES" \
  --accounts "$ACCOUNTS" --quiet
REFERENCE="$WORK/market/reference"
EVENTS="$WORK/market/events.txt"
echo "soak: market of $(grep -cv '^#' "$EVENTS") event lines"

"$TALLY_BIN" run --reference "$REFERENCE" --out "$WORK/straight" --digest --quiet "$EVENTS" >"$WORK/straight.digest"
EXPECTED_DIGEST="$(cat "$WORK/straight.digest")"

differences=0
report=()
# compare OUT_FOLDER DIGEST_FILE WHAT: counts every output file and the digest that differ.
compare() {
  local out="$1" digest_file="$2" what="$3" name
  for name in "${OUTPUTS[@]}"; do
    if ! cmp -s "$WORK/straight/$name" "$out/$name"; then
      differences=$((differences + 1))
      report+=("$what: $name differs")
    fi
  done
  if [[ "$(cat "$digest_file")" != "$EXPECTED_DIGEST" ]]; then
    differences=$((differences + 1))
    report+=("$what: digest $(cat "$digest_file") != $EXPECTED_DIGEST")
  fi
  # Each rejected seq once: no event applied twice across restarts.
  if [[ -n "$(tail -n +2 "$out/rejections.csv" | cut -d, -f1 | sort | uniq -d)" ]]; then
    differences=$((differences + 1))
    report+=("$what: a seq appears twice in rejections.csv")
  fi
}

# The newest write-ahead log of a state folder is non-empty once this run has committed.
committed_since_open() {
  local newest
  newest="$(ls "$1" 2>/dev/null | grep -E '^[0-9]+\.log$' | sort | tail -n 1 || true)"
  [[ -n "$newest" && -s "$1/$newest" ]]
}

folder=1
state="$WORK/state-$folder"
kills=0
completed_early=0
after_commit=0
while ((kills < KILLS)); do
  "$TALLY_BIN" run --state "$state" --commit-events "$COMMIT_EVENTS" --reference "$REFERENCE" \
    --out "$WORK/out-killed" --digest --quiet "$EVENTS" >"$WORK/killed.digest" 2>"$WORK/killed.stderr" &
  pid=$!
  delay=$(rand 50 600)
  if ((RANDOM % 2)); then
    after_commit=$((after_commit + 1))
    for _ in $(seq 1 4000); do # at most ~20 s
      kill -0 "$pid" 2>/dev/null || break
      committed_since_open "$state" && break
      sleep 0.005
    done
  fi
  sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
  kill -KILL "$pid" 2>/dev/null || true
  status=0
  wait "$pid" 2>/dev/null || status=$?
  if ((status == 137)); then
    kills=$((kills + 1))
    if ((kills % 50 == 0)); then echo "soak: $kills kills ($((SECONDS - started)) s)"; fi
  elif ((status == 0)); then
    # Completed before the kill: check it and start again in a new state folder.
    completed_early=$((completed_early + 1))
    compare "$WORK/out-killed" "$WORK/killed.digest" "state folder $folder (completed between kills)"
    rm -rf "$state"
    folder=$((folder + 1))
    state="$WORK/state-$folder"
  else
    differences=$((differences + 1))
    report+=("run in state folder $folder ended with status $status: $(cat "$WORK/killed.stderr")")
    break
  fi
done

"$TALLY_BIN" run --state "$state" --commit-events "$COMMIT_EVENTS" --reference "$REFERENCE" --out "$WORK/out-final" \
  --digest "$EVENTS" >"$WORK/final.digest" 2>"$WORK/final.stderr" || {
  differences=$((differences + 1))
  report+=("final run failed: $(cat "$WORK/final.stderr")")
}
[[ -f "$WORK/out-final/rejections.csv" ]] && compare "$WORK/out-final" "$WORK/final.digest" "final run"
echo "soak: final run: $(cat "$WORK/final.stderr")"
echo "soak: $folder state folders ($completed_early runs completed between kills), $after_commit kills timed from a first commit, seed $SEED, $((SECONDS - started)) s"
for line in "${report[@]+"${report[@]}"}"; do echo "soak: $line"; done
echo "kills: $kills, differences: $differences"
if ((differences == 0)) && [[ "${SOAK_KEEP:-}" != 1 ]]; then
  rm -rf "$WORK"
else
  echo "soak: work folder kept: $WORK"
fi
((differences == 0))
