#!/usr/bin/env python3
"""Submit an events file to a Tally sequencer per SPEC section 7, with pyzmq.

A DEALER socket connects to the sequencer's ingest endpoint (a ROUTER) and sends
each batch as one multipart message: TALLY1, client id, batch number, events.
The client waits for each batch's answer (TALLY1, batch number, OK, first seq,
last seq) and resends a batch that is not answered in time (a retry is never
journaled twice). With --retry-batch N it sends batch N once more after its OK,
to show the dedupe: the answer must repeat the original seq range.

Prints one line per batch:  batch <n> seq <first> <last>
and at the end:             retry batch <n> seq <first> <last> (same range)
                            total events <count> seq <first> <last>
Exit status: 0 ok, 1 refused/mismatch, 2 usage, 3 no answer.
"""
import argparse
import sys

import zmq

MAGIC = b"TALLY1"


def split_batches(data: bytes, lines_max: int):
    """Whole lines, at most lines_max per batch; the last batch keeps a missing final newline."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
        ends_with_newline = True
    else:
        ends_with_newline = False
    batches = []
    for i in range(0, len(lines), lines_max):
        chunk = lines[i:i + lines_max]
        last_chunk = i + lines_max >= len(lines)
        body = b"\n".join(chunk)
        if not last_chunk or ends_with_newline:
            body += b"\n"
        batches.append(body)
    return batches


def request(sock, client: bytes, number: int, events: bytes, timeout_ms: int, attempts: int):
    """Sends one batch until answered; returns (first, last)."""
    number_bytes = str(number).encode()
    for attempt in range(attempts):
        sock.send_multipart([MAGIC, client, number_bytes, events])
        deadline_polls = timeout_ms // 100
        for _ in range(deadline_polls):
            if not sock.poll(100):
                continue
            reply = sock.recv_multipart()
            if len(reply) < 3 or reply[0] != MAGIC:
                raise SystemExit(f"malformed answer: {reply!r}")
            if reply[1] != number_bytes:
                continue  # a late duplicate answer to an earlier batch's retry
            if reply[2] == b"ERR":
                print(f"batch {number} refused: {reply[3:]!r}", file=sys.stderr)
                sys.exit(1)
            if reply[2] != b"OK" or len(reply) != 5:
                raise SystemExit(f"malformed answer: {reply!r}")
            return int(reply[3]), int(reply[4])
        print(f"batch {number}: no answer yet (attempt {attempt + 1}); sending it again", file=sys.stderr)
    print(f"batch {number}: no answer after {attempts} attempts", file=sys.stderr)
    sys.exit(3)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="ingest endpoint, e.g. tcp://127.0.0.1:7100")
    p.add_argument("--client", default="pyzmq-client", help="client id (1-64 of A-Za-z0-9._-)")
    p.add_argument("--batch-lines", type=int, default=1000)
    p.add_argument("--first-batch", type=int, default=1, help="number of the first batch")
    p.add_argument("--retry-batch", type=int, default=0, help="send this batch again after all are acked")
    p.add_argument("--timeout-ms", type=int, default=5000)
    p.add_argument("--attempts", type=int, default=10)
    p.add_argument("events")
    a = p.parse_args()
    if not 1 <= a.batch_lines <= 100_000:
        p.error("--batch-lines must be 1...100000")
    with open(a.events, "rb") as f:
        batches = split_batches(f.read(), a.batch_lines)

    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(a.endpoint)
    client = a.client.encode()
    ranges = {}
    events = 0
    first_seq, last_seq = 0, 0
    for i, body in enumerate(batches):
        number = a.first_batch + i
        first, last = request(sock, client, number, body, a.timeout_ms, a.attempts)
        ranges[number] = (first, last)
        print(f"batch {number} seq {first} {last}", flush=True)
        if first > 0:
            events += last - first + 1
            first_seq = first_seq or first
            last_seq = max(last_seq, last)
    status = 0
    if a.retry_batch:
        if a.retry_batch not in ranges:
            print(f"--retry-batch {a.retry_batch} was not sent", file=sys.stderr)
            sys.exit(2)
        index = a.retry_batch - a.first_batch
        first, last = request(sock, client, a.retry_batch, batches[index], a.timeout_ms, a.attempts)
        same = (first, last) == ranges[a.retry_batch]
        print(f"retry batch {a.retry_batch} seq {first} {last} ({'same range' if same else 'DIFFERENT RANGE'})")
        if not same:
            status = 1
    print(f"total events {events} seq {first_seq} {last_seq}")
    sock.close()
    ctx.term()
    sys.exit(status)


if __name__ == "__main__":
    main()
