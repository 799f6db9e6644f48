#!/usr/bin/env python3
"""The disk's fsync stalls in a folder, as one JSON line.

  python3 scripts/disk-stall-probe.py DIR [--seconds 10] [--mode append|dsync|direct]
                                          [--background-writer]

Appends 64 KiB to a scratch file in DIR and fdatasyncs it, once every 5 ms, for
--seconds; prints the fsync times' p50, p99 and max in ms, the fsyncs over 10 ms and the
share of the probe's wall time spent in them. --mode dsync overwrites a pre-written
64 MiB file through O_DSYNC, --mode direct through O_DIRECT|O_DSYNC (the sync is then
part of the write, which is what is timed; a file system without O_DIRECT, such as
tmpfs, is refused with exit 2): whether writing around the page cache, or with no
file-system journal commit needed, avoids the stalls. --background-writer adds a
thread that appends 1 MiB and fsyncs every 20 ms to a second scratch file, the load
that makes ext4 commit its journal as a cluster does. The cluster acknowledges and votes a
batch only after an fsync (the journal's, then the voter's), so a disk stall holds up
every batch in flight: these stalls are the floor of an ingest->voted p99. `tally cluster
bench` runs the same probe (HostProbe.syncStalls) and prints the same keys.
"""
import argparse
import json
import os
import sys
import time

import mmap
import threading

STALL_MS = 10.0
RING_BYTES = 64 << 20
INTERVAL_S = 0.005
CHUNK = b"x" * 65536
SECONDS_MAX = 600.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="folder on the disk to probe (a scratch file is made and removed)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--mode", choices=["append", "dsync", "direct"], default="append")
    p.add_argument("--background-writer", action="store_true")
    a = p.parse_args()
    if not (0 < a.seconds <= SECONDS_MAX):
        print(f"disk-stall-probe: --seconds must be within (0, {SECONDS_MAX:.0f}], got {a.seconds}", file=sys.stderr)
        return 64
    if not os.path.isdir(a.dir):
        print(f"disk-stall-probe: {a.dir} is not a folder", file=sys.stderr)
        return 2
    path = os.path.join(a.dir, f".tally-stall-probe-{os.getpid()}")
    load_path = path + "-load"
    stop = threading.Event()

    def background_writer():
        with open(load_path, "wb") as f:
            while not stop.is_set():
                f.write(CHUNK * 16)
                f.flush()
                os.fsync(f.fileno())
                if f.tell() > 256 << 20:
                    f.seek(0)
                    f.truncate()
                time.sleep(0.02)

    fd = -1
    loader = None
    times = []
    try:
        if a.mode == "append":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        else:
            # The ring is written and synced first: the timed writes then change no size
            # and allocate no block.
            with open(path, "wb") as f:
                for _ in range(RING_BYTES // len(CHUNK)):
                    f.write(CHUNK)
                f.flush()
                os.fsync(f.fileno())
            flags = os.O_WRONLY | os.O_DSYNC | (os.O_DIRECT if a.mode == "direct" else 0)
            try:
                fd = os.open(path, flags)
            except OSError as e:
                print(f"disk-stall-probe: {a.dir} cannot be written with --mode {a.mode}: {e.strerror}",
                      file=sys.stderr)
                return 2
        # O_DIRECT wants an aligned buffer: an anonymous mapping is page-aligned.
        chunk = mmap.mmap(-1, len(CHUNK))
        chunk.write(CHUNK)
        if a.background_writer:
            loader = threading.Thread(target=background_writer, daemon=True)
            loader.start()
        offset = 0
        start = time.monotonic()
        end = start + a.seconds
        while time.monotonic() < end:
            if a.mode == "append":
                os.write(fd, CHUNK)
                t = time.monotonic()
                os.fdatasync(fd)
            else:
                t = time.monotonic()
                os.pwrite(fd, chunk, offset)
                offset = (offset + len(CHUNK)) % RING_BYTES
            times.append((time.monotonic() - t) * 1000)
            time.sleep(INTERVAL_S)
        wall_ms = (time.monotonic() - start) * 1000
    finally:
        stop.set()
        if loader is not None:
            loader.join()
        if fd >= 0:
            os.close(fd)
        for scratch in (path, load_path):
            if os.path.exists(scratch):
                os.unlink(scratch)
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
