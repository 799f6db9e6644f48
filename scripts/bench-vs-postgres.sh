#!/usr/bin/env bash
# Tally against a peer: clearing-only SQL in a throwaway PostgreSQL, same generated day.
#
#   scripts/bench-vs-postgres.sh [--market DIR] [--tally BIN] [--runs N] [--kernel K]
#   scripts/bench-vs-postgres.sh --check [--tally BIN]
#
# Without --market it uses (or generates) the day of issue 8 in .build/bench-market/, the
# folder `tally bench` uses. It
#   1. installs Debian's postgresql and hyperfine when missing;
#   2. starts a throwaway cluster: initdb into a temporary folder, a unix socket in that
#      folder only (no TCP), fsync=off, synchronous_commit=off, full_page_writes=off;
#      as root the server runs as the `postgres` user;
#   3. runs `tally run` once (its outputs are the reference for the check, its
#      rejections.csv says which lines Tally applied), then loads the reference data
#      (securities, units, calendar, the fee table of SPEC §2 or fees.csv) and the TRADE
#      lines Tally applied plus the CANCELs it applied into UNLOGGED tables with COPY;
#   4. times the clearing-only SQL (amount = round_half_up(price x quantity, 2), the four
#      fees by kind, side and effective date, cancels removed, grouped per trade date,
#      participant (via units) and security; CREATE UNLOGGED TABLE AS) with hyperfine,
#      and `tally run` on the same day with hyperfine;
#   5. checks the SQL's rows equal Tally's clearing.csv byte for byte (exit 1 if not);
#   6. prints both rates, the ratio, and a last line for `tally bench --vs-postgres`:
#      RESULT trades=N pg_query_s=S pg_trades_per_s=R tally_s=S tally_trades_per_s=R ratio=X
#   and stops and deletes the cluster (also on error or Ctrl-C).
#
# --check runs steps 2-5 without timing on the worked example (Tests/Fixtures/basic) and
# on a small generated day with cancels, bad lines and three security kinds; it exits
# non-zero when any SQL row differs from Tally's clearing.csv.
#
# Rates are TRADE lines of the day / median wall clock; both tools get the same numerator.
# Validation (rejections) is Tally's work only: the SQL clears the trades Tally applied.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

MARKET=""
TALLY="${TALLY_BIN:-$ROOT/.build/release/tally}"
RUNS=3
KERNEL=v1
CHECK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --market) MARKET="$2"; shift 2 ;;
    --tally) TALLY="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --kernel) KERNEL="$2"; shift 2 ;;
    --check) CHECK=1; shift ;;
    -h|--help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-vs-postgres: unknown argument $1 (see --help)" >&2; exit 64 ;;
  esac
done
say() { echo "bench-vs-postgres: $*" >&2; }
[ -x "$TALLY" ] || { say "no tally binary at $TALLY (swift build -c release, or --tally BIN)"; exit 64; }

# --- 1. tools -------------------------------------------------------------------------
apt_install() {
  local SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  say "installing $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ] || ! command -v psql >/dev/null; then
  apt_install postgresql
  PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
if [ "$CHECK" -eq 0 ] && ! command -v hyperfine >/dev/null; then apt_install hyperfine; fi

# --- 2. a throwaway cluster -----------------------------------------------------------
WORK="$(mktemp -d /tmp/tally-pg.XXXXXX)"
PGDATA="$WORK/data"
SOCK="$WORK/sock"
PORT=5439
mkdir -p "$SOCK"
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres: "$WORK"
  chmod 755 "$WORK"
  AS=(runuser -u postgres --)
fi
cleanup() {
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting a throwaway PostgreSQL ($("$PGBIN/postgres" --version)) in $WORK"
"${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U tally -A trust -E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 ||
  { cat "$WORK/initdb.log" >&2; exit 1; }
"${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/server.log" -w -o \
  "-c listen_addresses='' -k $SOCK -p $PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
   -c shared_buffers=1GB -c work_mem=512MB -c maintenance_work_mem=512MB -c max_wal_size=8GB" start >/dev/null ||
  { cat "$WORK/server.log" >&2; exit 1; }
export PGOPTIONS="-c client_min_messages=warning"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U tally -d postgres)

# --- 3. Tally once, then the load ------------------------------------------------------
# The lines Tally applied: TRADE lines (seq, trade_id, date, security, price, quantity,
# buy_unit, sell_unit), CANCEL lines (date, trade_id), SECURITY and UNIT lines.
split_events() { # events rejections.csv outdir
  LC_ALL=C awk -F, -v rej="$2" -v out="$3" '
    BEGIN { while ((getline line < rej) > 0) { split(line, f, ","); if (f[1] ~ /^[0-9]+$/) bad[f[1]] = 1 } }
    { sub(/\r$/, "") }
    $0 == "" || substr($0, 1, 1) == "#" { next }
    { seq++; if (seq in bad) next }
    $1 == "TRADE"    { print seq "," $2 "," $3 "," $5 "," $6 "," $7 "," $9 "," $11 > (out "/trades.csv"); next }
    $1 == "CANCEL"   { print $2 "," $3 > (out "/cancels.csv"); next }
    $1 == "SECURITY" { print $2 "," $5 > (out "/securities-late.csv"); next }
    $1 == "UNIT"     { print $2 "," $3 > (out "/units-late.csv"); next }
  ' "$1"
  touch "$3/trades.csv" "$3/cancels.csv" "$3/securities-late.csv" "$3/units-late.csv"
}

load_day() { # reference_dir events tally_out
  local ref="$1" events="$2" tout="$3" stage="$WORK/stage"
  rm -rf "$stage"; mkdir -p "$stage"
  split_events "$events" "$tout/rejections.csv" "$stage"
  chmod -R a+rX "$stage"
  local fees_sql="-- no fees.csv"
  if [ -f "$ref/fees.csv" ]; then
    fees_sql="CREATE TEMP TABLE f(kind text, fee text, side text, rate numeric, effective_date int);
\\copy f FROM '$ref/fees.csv' WITH (FORMAT csv, HEADER true)
DELETE FROM fee_rates WHERE kind IN (SELECT kind FROM f);
INSERT INTO fee_rates SELECT * FROM f;"
  fi
  "${PSQL[@]}" <<SQL
DROP TABLE IF EXISTS securities, units, calendar, fee_rates, trades, cancels, clearing_result;
CREATE UNLOGGED TABLE securities(security text PRIMARY KEY, isin text, name text, kind text);
CREATE UNLOGGED TABLE units(unit text PRIMARY KEY, participant text);
CREATE UNLOGGED TABLE calendar(d int PRIMARY KEY);
CREATE UNLOGGED TABLE fee_rates(kind text, fee text, side text, rate numeric, effective_date int);
CREATE UNLOGGED TABLE trades(seq bigint, trade_id text, trade_date int, security text, price numeric,
  quantity bigint, buy_unit text, sell_unit text);
CREATE UNLOGGED TABLE cancels(trade_date int, trade_id text);
\\copy securities FROM '$ref/securities.csv' WITH (FORMAT csv, HEADER true)
\\copy units FROM '$ref/units.csv' WITH (FORMAT csv, HEADER true)
\\copy calendar FROM '$ref/calendar.csv' WITH (FORMAT csv, HEADER true)
CREATE TEMP TABLE late_s(security text, kind text);
\\copy late_s FROM '$stage/securities-late.csv' WITH (FORMAT csv)
INSERT INTO securities SELECT security, '', '', kind FROM late_s;
\\copy units FROM '$stage/units-late.csv' WITH (FORMAT csv)
-- SPEC §2, built-in fee table.
INSERT INTO fee_rates VALUES
  ('STOCK', 'handling', 'both', 0.0000487, 19000101), ('STOCK', 'handling', 'both', 0.0000341, 20230828),
  ('STOCK', 'regulatory', 'both', 0.00002, 19000101),
  ('STOCK', 'transfer', 'both', 0.00002, 19000101), ('STOCK', 'transfer', 'both', 0.00001, 20220429),
  ('STOCK', 'stamp', 'sell', 0.001, 19000101), ('STOCK', 'stamp', 'sell', 0.0005, 20230828),
  ('FUND', 'handling', 'both', 0.00004, 19000101),
  ('BOND', 'handling', 'both', 0.000001, 19000101);
$fees_sql
\\copy trades FROM '$stage/trades.csv' WITH (FORMAT csv)
\\copy cancels FROM '$stage/cancels.csv' WITH (FORMAT csv)
ANALYZE;
SQL
  wc -l <"$stage/trades.csv"
}

# The clearing-only SQL (timed). The rate in force per (trade date, kind, side, fee) is
# looked up once per distinct trade date and kind, not per trade.
cat >"$WORK/clearing.sql" <<'SQL'
DROP TABLE IF EXISTS clearing_result;
CREATE UNLOGGED TABLE clearing_result AS
WITH live AS (
  SELECT t.trade_date, t.security, s.kind, t.quantity, round(t.price * t.quantity, 2) AS amount,
         t.buy_unit, t.sell_unit
  FROM trades t JOIN securities s ON s.security = t.security
  WHERE NOT EXISTS (SELECT 1 FROM cancels c WHERE c.trade_date = t.trade_date AND c.trade_id = t.trade_id)
),
day_kinds AS (SELECT DISTINCT trade_date, kind FROM live),
rates AS (
  SELECT d.trade_date, d.kind, sd.side,
    coalesce((SELECT r.rate FROM fee_rates r WHERE r.kind = d.kind AND r.fee = 'handling'
              AND r.side IN (sd.side, 'both') AND r.effective_date <= d.trade_date
              ORDER BY r.effective_date DESC, (r.side = sd.side) DESC LIMIT 1), 0) AS handling,
    coalesce((SELECT r.rate FROM fee_rates r WHERE r.kind = d.kind AND r.fee = 'regulatory'
              AND r.side IN (sd.side, 'both') AND r.effective_date <= d.trade_date
              ORDER BY r.effective_date DESC, (r.side = sd.side) DESC LIMIT 1), 0) AS regulatory,
    coalesce((SELECT r.rate FROM fee_rates r WHERE r.kind = d.kind AND r.fee = 'transfer'
              AND r.side IN (sd.side, 'both') AND r.effective_date <= d.trade_date
              ORDER BY r.effective_date DESC, (r.side = sd.side) DESC LIMIT 1), 0) AS transfer,
    coalesce((SELECT r.rate FROM fee_rates r WHERE r.kind = d.kind AND r.fee = 'stamp'
              AND r.side IN (sd.side, 'both') AND r.effective_date <= d.trade_date
              ORDER BY r.effective_date DESC, (r.side = sd.side) DESC LIMIT 1), 0) AS stamp
  FROM day_kinds d CROSS JOIN (VALUES ('buy'), ('sell')) AS sd(side)
),
legs AS (
  SELECT l.trade_date, u.participant, l.security,
         l.quantity AS buy_quantity, 0::bigint AS sell_quantity, l.amount AS buy_amount, 0.00 AS sell_amount,
         round(l.amount * r.handling, 2) AS handling, round(l.amount * r.regulatory, 2) AS regulatory,
         round(l.amount * r.transfer, 2) AS transfer, round(l.amount * r.stamp, 2) AS stamp
  FROM live l JOIN units u ON u.unit = l.buy_unit
       JOIN rates r ON r.trade_date = l.trade_date AND r.kind = l.kind AND r.side = 'buy'
  UNION ALL
  SELECT l.trade_date, u.participant, l.security,
         0::bigint, l.quantity, 0.00, l.amount,
         round(l.amount * r.handling, 2), round(l.amount * r.regulatory, 2),
         round(l.amount * r.transfer, 2), round(l.amount * r.stamp, 2)
  FROM live l JOIN units u ON u.unit = l.sell_unit
       JOIN rates r ON r.trade_date = l.trade_date AND r.kind = l.kind AND r.side = 'sell'
),
grouped AS (
  SELECT trade_date, participant, security,
         sum(buy_quantity) AS buy_quantity, sum(sell_quantity) AS sell_quantity,
         sum(buy_amount) AS buy_amount, sum(sell_amount) AS sell_amount,
         sum(handling) AS handling_fee, sum(regulatory) AS regulatory_fee,
         sum(transfer) AS transfer_fee, sum(stamp) AS stamp_duty
  FROM legs GROUP BY trade_date, participant, security
)
SELECT g.trade_date, (SELECT min(c.d) FROM calendar c WHERE c.d > g.trade_date) AS settle_date,
       g.participant, g.security, g.buy_quantity, g.sell_quantity,
       g.buy_amount::numeric(38, 2) AS buy_amount, g.sell_amount::numeric(38, 2) AS sell_amount,
       g.handling_fee::numeric(38, 2) AS handling_fee, g.regulatory_fee::numeric(38, 2) AS regulatory_fee,
       g.transfer_fee::numeric(38, 2) AS transfer_fee, g.stamp_duty::numeric(38, 2) AS stamp_duty
FROM grouped g
WHERE g.buy_quantity + g.sell_quantity > 0;
SQL
chmod a+r "$WORK/clearing.sql"

# Runs the clearing SQL once and compares its rows with Tally's clearing.csv.
compare_with_tally() { # tally_out label
  "${PSQL[@]}" -f "$WORK/clearing.sql"
  "${PSQL[@]}" -c "\\copy (SELECT * FROM clearing_result ORDER BY trade_date, participant COLLATE \"C\", security COLLATE \"C\") TO '$WORK/sql-clearing.csv' WITH (FORMAT csv, HEADER true)"
  local rows
  rows=$(($(wc -l <"$1/clearing.csv") - 1))
  if cmp -s "$WORK/sql-clearing.csv" "$1/clearing.csv"; then
    say "check $2: the SQL's $rows grouped rows equal Tally's clearing.csv byte for byte"
  else
    say "check $2: the SQL's rows DIFFER from Tally's clearing.csv:"
    diff "$1/clearing.csv" "$WORK/sql-clearing.csv" | head -20 >&2
    return 1
  fi
}

run_tally() { # ref events out
  "$TALLY" run --quiet --kernel "$KERNEL" --reference "$1" --out "$3" "$2"
}

if [ "$CHECK" -eq 1 ]; then
  failed=0
  # The worked example: cancels before and after settlement, rejections, three kinds.
  ex="$ROOT/Tests/Fixtures/basic"
  run_tally "$ex/reference" "$ex/events.txt" "$WORK/out-basic"
  load_day "$ex/reference" "$ex/events.txt" "$WORK/out-basic" >/dev/null
  compare_with_tally "$WORK/out-basic" "worked example" || failed=1
  # A small generated market: several days, cancels, bad lines, every kind.
  "$TALLY" generate --out "$WORK/small" --seed 7 --days 3 --trades-per-day 5000 --accounts 2000 \
    --securities 60 --participants 6 2>/dev/null
  run_tally "$WORK/small/reference" "$WORK/small/events.txt" "$WORK/out-small"
  load_day "$WORK/small/reference" "$WORK/small/events.txt" "$WORK/out-small" >/dev/null
  compare_with_tally "$WORK/out-small" "generated 3 days x 5000 trades" || failed=1
  if [ "$failed" -eq 0 ]; then echo "bench-vs-postgres --check: 2 passed, 0 failed"; else
    echo "bench-vs-postgres --check: the SQL and Tally disagree"; fi
  exit "$failed"
fi

# --- the benchmark ------------------------------------------------------------------------
if [ -z "$MARKET" ]; then
  MARKET="$ROOT/.build/bench-market/20260105-1x1000000-a1000000-s1000-p20"
  if [ ! -f "$MARKET/events.txt" ]; then
    say "generating issue 8's day into $MARKET"
    "$TALLY" generate --out "$MARKET.partial" --seed 20260105 --days 1 --trades-per-day 1000000 \
      --accounts 1000000 --securities 1000 --participants 20
    mv "$MARKET.partial" "$MARKET"
  fi
fi
REF="$MARKET/reference"
EVENTS="$MARKET/events.txt"
TRADES=$(grep -c '^TRADE,' "$EVENTS" || true)
say "day: $MARKET ($TRADES TRADE lines)"

say "tally run once (its outputs are the check's reference)"
run_tally "$REF" "$EVENTS" "$WORK/out"
say "loading the day into PostgreSQL (COPY; not timed)"
t0=$(date +%s.%N)
loaded=$(load_day "$REF" "$EVENTS" "$WORK/out" | tail -1)
t1=$(date +%s.%N)
say "loaded $loaded applied trades in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
compare_with_tally "$WORK/out" "issue day"

median_of() { python3 -c "import json,sys,statistics; print(statistics.median(json.load(open(sys.argv[1]))['results'][0]['times']))" "$1"; }

say "timing the clearing SQL ($RUNS runs, hyperfine)"
hyperfine -N --style basic --runs "$RUNS" --export-json "$WORK/pg.json" \
  "${PSQL[*]} -f $WORK/clearing.sql" >&2
say "timing tally run --kernel $KERNEL ($RUNS runs, hyperfine)"
hyperfine -N --style basic --runs "$RUNS" --export-json "$WORK/tally.json" \
  "$TALLY run --quiet --kernel $KERNEL --reference $REF --out $WORK/out-timed $EVENTS" >&2
PG_S=$(median_of "$WORK/pg.json")
TALLY_S=$(median_of "$WORK/tally.json")
python3 - "$TRADES" "$PG_S" "$TALLY_S" "$KERNEL" <<'PY'
import sys
trades, pg, tally, kernel = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
pr, tr = trades / pg, trades / tally
print(f"{'':38} {'median wall':>12} {'trades/s':>12}")
print(f"{'PostgreSQL clearing-only SQL':38} {pg:>10.3f} s {pr:>12,.0f}")
print(f"{'tally run --kernel ' + kernel + ' (whole process)':38} {tally:>10.3f} s {tr:>12,.0f}")
print(f"ratio Tally / PostgreSQL: {tr / pr:.2f}x   (issue 8: must >= 20x, aim >= 50x)")
print(f"RESULT trades={trades} pg_query_s={pg:.4f} pg_trades_per_s={pr:.1f} tally_s={tally:.4f} "
      f"tally_trades_per_s={tr:.1f} ratio={tr / pr:.3f}")
PY
