#!/usr/bin/env python3
"""Send raw multipart messages to a Tally ingest endpoint and print the answers.

Used by the Swift cluster tests (TallyClusterTests) to put bytes on the wire that
`tally submit` never sends. Each argument is one message; its frames are
separated by '|' and written with backslash escapes (\\n, \\xff, ...), e.g.
    'TALLY1|c1|1|OPEN,2026-01-05\\n'
A frame written as @BIG:<n> is n bytes of 'A'. A frame written as @FILE:<path> is
the file's bytes. Prints one JSON line per message: the answer's frames as text,
or null when no answer came within --timeout-ms (frames cut at 200 characters).
"""
import argparse
import codecs
import json
import socket
import sys

import zmq


def frame(text: str) -> bytes:
    if text.startswith("@BIG:"):
        return b"A" * int(text[5:])
    if text.startswith("@FILE:"):
        with open(text[6:], "rb") as f:
            return f.read()
    return codecs.escape_decode(text.encode("utf-8"))[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--timeout-ms", type=int, default=5000)
    p.add_argument("--socket", choices=["dealer", "push"], default="dealer",
                   help="push: send only (e.g. to the voter's PULL), print nothing per message")
    p.add_argument("--tcp-junk", action="store_true",
                   help="first write junk bytes (not ZMTP) to the endpoint over a plain TCP connection")
    p.add_argument("messages", nargs="*")
    a = p.parse_args()
    if a.tcp_junk:
        host, port = a.endpoint.removeprefix("tcp://").rsplit(":", 1)
        for junk in [b"GET / HTTP/1.0\r\n\r\n", b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03" * 60, b"\x00" * 4096]:
            with socket.create_connection((host, int(port)), timeout=2) as s:
                s.sendall(junk)
                s.settimeout(0.5)
                try:
                    s.recv(1024)
                except OSError:
                    pass
        print("junk sent", flush=True)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH if a.socket == "push" else zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(a.endpoint)
    for m in a.messages:
        frames = [frame(f) for f in m.split("|")] if m != "" else [b""]
        sock.send_multipart(frames)
        if a.socket == "push":
            continue
        if sock.poll(a.timeout_ms):
            reply = sock.recv_multipart()
            print(json.dumps([f.decode("utf-8", "replace")[:200] for f in reply]), flush=True)
        else:
            print("null", flush=True)
    sock.close()
    ctx.term()


if __name__ == "__main__":
    sys.exit(main())
