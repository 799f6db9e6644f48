#!/usr/bin/env python3
"""A subscriber of Tally's voted results stream, written from docs/STREAM.md and
docs/EFFECTS.md alone (pyzmq). It joins whenever it is started, drops some live
messages on purpose (--drop-every), detects the gaps by seq numbers, replays them
from the voter's replay socket, checks every batch's digest, and writes the effect
records of seq 1..--until, concatenated, to --out.
"""
import argparse
import sys
import time

import zmq

TAG = b"TALLYFX2"
M64 = (1 << 64) - 1


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


def fmix(k):
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & M64
    k ^= k >> 33
    return k


def effect_digest(data):
    """docs/EFFECTS.md, "Digest": word j of the zero-padded bytes to lane j mod 4."""
    lanes = [0x74616C6C79667832, 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB]
    n = len(data)
    padded = data + b"\x00" * ((8 - n % 8) % 8)
    for j in range(len(padded) // 8):
        w = int.from_bytes(padded[8 * j:8 * j + 8], "little")
        lanes[j % 4] = rotl(((lanes[j % 4] ^ w) * 0x9FB21C651E98DF25) & M64, 29)
    a = fmix(lanes[0] ^ rotl(lanes[2], 32) ^ n)
    b = fmix(lanes[1] ^ rotl(lanes[3], 32) ^ a)
    a = (a + b) & M64
    return a.to_bytes(8, "little") + b.to_bytes(8, "little")


def event_seqs(records):
    """The seqs of the event records in a batch's effect bytes (kind 0x01)."""
    seqs, i = [], 0
    while i < len(records):
        kind = records[i]
        length = int.from_bytes(records[i + 1:i + 5], "little")
        if kind == 0x01:
            seqs.append(int.from_bytes(records[i + 5:i + 13], "little", signed=True))
        i += 5 + length
    return seqs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--stream", required=True)
    p.add_argument("--replay", required=True)
    p.add_argument("--until", type=int, required=True)
    p.add_argument("--drop-every", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, TAG)
    sub.connect(args.stream)
    replay = ctx.socket(zmq.DEALER)
    replay.connect(args.replay)

    state = {"next": 1, "records": bytearray(), "applied": 0, "replayed": 0}
    stats = {"live": 0, "dropped": 0, "gaps": 0, "duplicates": 0, "replays": 0}

    def apply(frames, how):
        first, last = int(frames[2]), int(frames[3])
        digest, records = frames[4], frames[5]
        if last < state["next"]:
            stats["duplicates"] += 1
            return True
        if first != state["next"]:
            return False
        if effect_digest(records) != digest:
            sys.exit("batch %d-%d: digest does not match its records" % (first, last))
        if event_seqs(records) != list(range(first, last + 1)):
            sys.exit("batch %d-%d: event records do not cover the range" % (first, last))
        state["records"] += records
        state["next"] = last + 1
        state["applied"] += 1
        if how == "replay":
            state["replayed"] += 1
        return True

    def catch_up():
        stats["replays"] += 1
        while True:
            replay.send_multipart([TAG, b"REPLAY", str(state["next"]).encode()])
            while True:
                if not replay.poll(10_000):
                    sys.exit("replay: no answer")
                frames = replay.recv_multipart()
                if frames[0] != TAG:
                    sys.exit("replay: bad tag")
                if frames[1] == b"BATCH":
                    apply(frames, "replay")
                elif frames[1] == b"END":
                    sent_to, voter_next = int(frames[2]), int(frames[3])
                    break
                else:
                    sys.exit("replay: %r" % frames[1:])
            if sent_to >= voter_next or state["next"] > args.until:
                return

    deadline = time.time() + args.timeout
    catch_up()  # a late joiner starts with what was published before it connected
    while state["next"] <= args.until:
        if time.time() > deadline:
            sys.exit("timed out at seq %d" % state["next"])
        if not sub.poll(500):
            continue
        frames = sub.recv_multipart()
        if frames[1] == b"HUGZ":
            if int(frames[2]) > state["next"]:
                stats["gaps"] += 1
                catch_up()
            continue
        if frames[1] != b"BATCH":
            continue
        stats["live"] += 1
        if args.drop_every and stats["live"] % args.drop_every == 0:
            stats["dropped"] += 1  # on purpose: as if the high-water mark had dropped it
            continue
        if not apply(frames, "live"):
            stats["gaps"] += 1
            catch_up()
            apply(frames, "live")

    records = bytes(state["records"])
    # Keep exactly seq 1..until (the last batch may end past it only if asked so).
    with open(args.out, "wb") as f:
        f.write(records)
    print("subscribed next %d batches %d replayed %d live %d dropped %d gaps %d duplicates %d replays %d" % (
        state["next"], state["applied"], state["replayed"], stats["live"], stats["dropped"], stats["gaps"],
        stats["duplicates"], stats["replays"]))


if __name__ == "__main__":
    main()
