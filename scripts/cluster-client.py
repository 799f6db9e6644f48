#!/usr/bin/env python3
"""An independent load client for a running Tally cluster (pyzmq; SPEC section 7 for
ingest, the voter's DECIDED publication for decisions). It shares no code with Tally.

It subscribes to the voter's decisions first, then submits an events file in batches
of --batch-lines over a DEALER socket, keeping at most --window batches unanswered
(or pacing them at --rate events/s), and waits until the voter has decided the last
acked seq. It prints one JSON object:

  events, batches, journaled_s (last ack), voted_s (last decision), voted_events_per_s,
  latency_p50_ms / latency_p99_ms / latency_max_ms (a batch's send to the decision of
  its last seq), offered_events_per_s (with --rate).

Start the cluster first, e.g.:
  tally cluster up --config Config/local.toml --reference M/reference --data /tmp/c
  scripts/cluster-client.py --ingest tcp://127.0.0.1:7100 --decided tcp://127.0.0.1:7105 M/events.txt
  tally cluster down --config Config/local.toml --data /tmp/c
Exit status: 0 ok, 1 a batch refused, 2 usage, 3 timed out.
"""
import argparse
import bisect
import itertools
import json
import sys
import time

import zmq

MAGIC = b"TALLY1"


def split_batches(data: bytes, lines_max: int):
    """Whole lines, at most lines_max per batch, each ending in a newline."""
    batches = []
    start = 0
    count = 0
    i = data.find(b"\n")
    while i != -1:
        count += 1
        if count == lines_max:
            batches.append(data[start:i + 1])
            start = i + 1
            count = 0
        i = data.find(b"\n", i + 1)
    if start < len(data):
        rest = data[start:]
        batches.append(rest if rest.endswith(b"\n") else rest + b"\n")
    return batches


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ingest", required=True, help="sequencer ingest endpoint, e.g. tcp://127.0.0.1:7100")
    p.add_argument("--decided", required=True, help="voter publish endpoint, e.g. tcp://127.0.0.1:7105")
    p.add_argument("--client", default="independent-client", help="client id (1-64 of A-Za-z0-9._-)")
    p.add_argument("--batch-lines", type=int, default=10_000)
    p.add_argument("--window", type=int, default=8, help="batches unanswered at most")
    p.add_argument("--rate", type=float, default=0.0, help="pace batches at this many events/s (0: as fast as acks allow)")
    p.add_argument("--timeout-s", type=float, default=600.0)
    p.add_argument("--latencies", help="also write each batch's number, send time (s from the start) and latency (ms) to this file")
    p.add_argument("events")
    a = p.parse_args()
    if not 1 <= a.batch_lines <= 100_000 or a.window < 1:
        p.error("--batch-lines must be 1...100000 and --window at least 1")
    with open(a.events, "rb") as f:
        batches = split_batches(f.read(), a.batch_lines)
    # Events before each batch: a paced batch is due when the rate has offered them.
    lines_before = [0] + list(itertools.accumulate(b.count(b"\n") for b in batches))

    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(a.decided)
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(a.ingest)
    time.sleep(0.3)  # the subscription settles before anything is decided

    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    poller.register(dealer, zmq.POLLIN)
    client = a.client.encode()
    sent_at = {}        # batch number -> send time
    last_of = {}        # batch number -> its last seq (from the ack)
    decided_at = {}     # last seq of a decided journal batch -> time
    decided_through = 0
    acked = 0
    events = 0
    last_seq = 0
    next_batch = 0
    t0 = time.monotonic()
    journaled = None
    deadline = t0 + a.timeout_s

    def take_decisions():
        nonlocal decided_through
        while True:
            try:
                msg = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(msg) >= 3 and msg[0] == b"DECIDED" and len(msg[2]) == 8:
                last = int.from_bytes(msg[2], "little")
                decided_at[last] = time.monotonic()
                decided_through = max(decided_through, last)

    while acked < len(batches) or decided_through < last_seq:
        now = time.monotonic()
        if now > deadline:
            print(f"timed out: acked {acked}/{len(batches)} batches, decided through {decided_through} of {last_seq}",
                  file=sys.stderr)
            sys.exit(3)
        can_send = next_batch < len(batches) and next_batch - acked < a.window
        due = t0 + (lines_before[next_batch] / a.rate if a.rate > 0 else 0)
        if can_send and now >= due:
            number = next_batch + 1
            dealer.send_multipart([MAGIC, client, str(number).encode(), batches[next_batch]])
            sent_at[number] = time.monotonic()
            next_batch += 1
            continue
        wait_ms = 50
        if can_send and a.rate > 0:
            wait_ms = max(0, min(50, int((due - now) * 1000)))
        for sock, _ in poller.poll(wait_ms):
            if sock is sub:
                take_decisions()
            else:
                while True:
                    try:
                        reply = dealer.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(reply) >= 3 and reply[0] == MAGIC and reply[2] == b"ERR":
                        print(f"batch {reply[1].decode()} refused: {reply[3:]!r}", file=sys.stderr)
                        sys.exit(1)
                    if len(reply) != 5 or reply[0] != MAGIC or reply[2] != b"OK":
                        continue
                    number, first, last = int(reply[1]), int(reply[3]), int(reply[4])
                    acked += 1
                    if first > 0:
                        events += last - first + 1
                        last_seq = max(last_seq, last)
                        last_of[number] = last
                    if acked == len(batches):
                        journaled = time.monotonic() - t0
    voted = time.monotonic() - t0
    # A batch's latency: from its send to the decision of the journal batch holding its
    # last seq (the first decided last seq at or after it).
    decided_lasts = sorted(decided_at)
    latencies = []
    per_batch = []
    for number, last in last_of.items():
        k = bisect.bisect_left(decided_lasts, last)
        if k < len(decided_lasts):
            latencies.append((decided_at[decided_lasts[k]] - sent_at[number]) * 1000)
            per_batch.append((number, sent_at[number] - t0, latencies[-1]))
    if a.latencies:
        # Where the slow batches sit in the run (a day boundary, a disk stall), in send order.
        with open(a.latencies, "w") as f:
            for number, sent, ms in sorted(per_batch):
                f.write(f"{number} {sent:.4f} {ms:.2f}\n")
    latencies.sort()
    out = {
        "events": events,
        "batches": len(batches),
        "batch_lines": a.batch_lines,
        "journaled_s": round(journaled or voted, 3),
        "voted_s": round(voted, 3),
        "voted_events_per_s": round(events / voted, 1),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p99_ms": percentile(latencies, 0.99),
        "latency_max_ms": percentile(latencies, 1.0),
    }
    if a.rate > 0:
        out["offered_events_per_s"] = a.rate
    print(json.dumps(out, sort_keys=True))
    dealer.close()
    sub.close()
    ctx.term()


if __name__ == "__main__":
    main()
