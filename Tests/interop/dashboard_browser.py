#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (--remote-debugging-pipe, the
standard library only) for the dashboard test: loads the page once, waits until
--ready-js is true and saves the DOM to --before, then waits (the page updating
itself by server-sent events, never reloaded) until --until-js is true and saves
the DOM to --after, and optionally a PNG screenshot. Exits 1 when a wait times out
(the DOM at that moment is saved all the same).
"""
import argparse
import base64
import json
import os
import select
import subprocess
import sys
import time


class Browser:
    def __init__(self, chromium, profile, width, height):
        r_in, self.w = os.pipe()
        self.r, w_out = os.pipe()
        args = [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--hide-scrollbars", "--remote-debugging-pipe",
            f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        ]
        # Chromium reads commands from fd 3 and writes answers to fd 4.
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", f'exec "$0" "$@" 3<&{r_in} 4>&{w_out}', *args],
            pass_fds=(r_in, w_out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_in)
        os.close(w_out)
        self.buf = b""
        self.next_id = 0

    def read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\0", 1)
        return json.loads(line)

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self.read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chromium", required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--profile", required=True)
    p.add_argument("--ready-js", required=True)
    p.add_argument("--before", required=True)
    p.add_argument("--until-js", required=True)
    p.add_argument("--after", required=True)
    p.add_argument("--screenshot")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()

    b = Browser(a.chromium, a.profile, 1280, 900)
    ok = True
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        b.send("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, s)
        b.send("Page.navigate", {"url": a.url}, s)

        def evaluate(expr):
            r = b.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, s)
            return r.get("result", {}).get("value")

        def wait(expr):
            deadline = time.monotonic() + a.timeout
            while time.monotonic() < deadline:
                try:
                    if evaluate(expr) is True:
                        return True
                except RuntimeError:
                    pass  # the page is still loading
                time.sleep(0.1)
            print(f"timed out waiting for: {expr}", file=sys.stderr)
            return False

        def save(path):
            # Written whole, then renamed: the test waits for the file to appear.
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write(evaluate("document.documentElement.outerHTML") or "")
            os.rename(path + ".tmp", path)

        ok = wait(a.ready_js)
        save(a.before)
        if ok:
            ok = wait(a.until_js)
        save(a.after)
        if a.screenshot:
            time.sleep(1)  # one more event: the rates
            png = b.send("Page.captureScreenshot", {"format": "png"}, s)["data"]
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(png))
    finally:
        b.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
