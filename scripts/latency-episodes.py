#!/usr/bin/env python3
"""Where a paced run's slow batches come from, as one JSON line.

  python3 scripts/latency-episodes.py LATENCIES [--threshold-ms 20] [--gap-s 0.3]

LATENCIES is the file scripts/cluster-client.py writes with --latencies (one line a batch:
its number, its send time in seconds from the start, its ingest->decided latency in ms).
Prints the batches, p50 and p99, how many batches took longer than --threshold-ms, and
those batches grouped into episodes: slow batches sent less than --gap-s apart. A stall
on the path (a disk flush, a day boundary) shows as one episode: its first batch the
latest, each later one less late as the backlog drains. One episode of ~10 batches over
the threshold is enough to miss a p99 over a 1,000-batch run (docs/PERFORMANCE.md,
fifteenth session). Exit status: 0 ok, 2 a file that cannot be read or a malformed line,
64 bad arguments.
"""
import argparse
import json
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("latencies", help="a file from scripts/cluster-client.py --latencies")
    p.add_argument("--threshold-ms", type=float, default=20.0)
    p.add_argument("--gap-s", type=float, default=0.3)
    a = p.parse_args()
    if a.threshold_ms <= 0 or a.gap_s <= 0:
        print("latency-episodes: --threshold-ms and --gap-s must be > 0", file=sys.stderr)
        return 64
    batches = []
    try:
        with open(a.latencies) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                fields = line.split()
                try:
                    if len(fields) != 3:
                        raise ValueError("expected 3 fields (number, send time, latency)")
                    batches.append((int(fields[0]), float(fields[1]), float(fields[2])))
                except ValueError as e:
                    print(f"latency-episodes: {a.latencies}:{n}: {e}: {line.rstrip()!r}", file=sys.stderr)
                    return 2
    except OSError as e:
        print(f"latency-episodes: {a.latencies}: {e.strerror}", file=sys.stderr)
        return 2
    if not batches:
        print(f"latency-episodes: {a.latencies}: no batches", file=sys.stderr)
        return 2
    ordered = sorted(b[2] for b in batches)
    count = len(ordered)
    episodes = []
    for number, sent, latency in sorted(batches, key=lambda b: b[1]):
        if latency <= a.threshold_ms:
            continue
        if episodes and sent - episodes[-1]["last_sent_s"] < a.gap_s:
            e = episodes[-1]
            e["batches"] += 1
            e["last_sent_s"] = sent
            e["worst_ms"] = max(e["worst_ms"], latency)
        else:
            episodes.append({"first_batch": number, "start_s": sent, "last_sent_s": sent, "batches": 1,
                             "worst_ms": latency})
    for e in episodes:
        e["start_s"] = round(e["start_s"], 3)
        e["last_sent_s"] = round(e["last_sent_s"], 3)
        e["worst_ms"] = round(e["worst_ms"], 1)
    print(json.dumps({
        "batches": count,
        "latency_p50_ms": round(ordered[count // 2], 3),
        "latency_p99_ms": round(ordered[min(count - 1, count * 99 // 100)], 3),
        "threshold_ms": a.threshold_ms,
        "over_threshold": sum(e["batches"] for e in episodes),
        "episodes": episodes,
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
