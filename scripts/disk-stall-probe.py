#!/usr/bin/env python3
"""The disk's fsync stalls in a folder, as one JSON line.

  python3 scripts/disk-stall-probe.py DIR [--seconds 10]

Appends 64 KiB to a scratch file in DIR and fdatasyncs it, once every 5 ms, for
--seconds; prints the fsync times' p50, p99 and max in ms, the fsyncs over 10 ms and the
share of the probe's wall time spent in them. The cluster acknowledges and votes a
batch only after an fsync (the journal's, then the voter's), so a disk stall holds up
every batch in flight: these stalls are the floor of an ingest->voted p99. `tally cluster
bench` runs the same probe (HostProbe.syncStalls) and prints the same keys.
"""
import argparse
import json
import os
import sys
import time

STALL_MS = 10.0
INTERVAL_S = 0.005
CHUNK = b"x" * 65536
SECONDS_MAX = 600.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder on the disk to probe (a scratch file is made and removed)")
    p.add_argument("--seconds", type=float, default=10.0)
    a = p.parse_args()
    if not (0 < a.seconds <= SECONDS_MAX):
        print(f"disk-stall-probe: --seconds must be within (0, {SECONDS_MAX:.0f}], got {a.seconds}", file=sys.stderr)
        return 64
    if not os.path.isdir(a.dir):
        print(f"disk-stall-probe: {a.dir} is not a folder", file=sys.stderr)
        return 2
    path = os.path.join(a.dir, f".tally-stall-probe-{os.getpid()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    times = []
    try:
        start = time.monotonic()
        end = start + a.seconds
        while time.monotonic() < end:
            os.write(fd, CHUNK)
            t = time.monotonic()
            os.fdatasync(fd)
            times.append((time.monotonic() - t) * 1000)
            time.sleep(INTERVAL_S)
        wall_ms = (time.monotonic() - start) * 1000
    finally:
        os.close(fd)
        os.unlink(path)
    times.sort()
    n = len(times)
    slow = [t for t in times if t > STALL_MS]
    print(json.dumps({
        "host_fsync_samples": n,
        "host_fsync_p50_ms": round(times[n // 2], 3),
        "host_fsync_p99_ms": round(times[min(n - 1, n * 99 // 100)], 3),
        "host_fsync_max_ms": round(times[-1], 3),
        "host_fsync_stalls": len(slow),
        "host_fsync_stalled_share": round(sum(slow) / wall_ms, 5),
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
