"""Headless Chromium against `gauntlet serve`, driven over the DevTools protocol.

Run by `.ci/browser-test`: argv is the chromium binary, the gateway URL, a valid token, a
forged token and a ticket. Serves `browser.html` from a loopback HTTP server, starts
Chromium with `--remote-debugging-port`, navigates a page to it over CDP (python
`websockets` as the CDP client), polls `window.done` with `Runtime.evaluate`, and checks the
page's results: `jwt` selected, `connection_established` first, the run's events in order with
increasing `seq`, a forged token never opens, a ticket opens once and only once. Every wait
is bounded; Chromium is stopped on every path.
"""

import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = {"agent_completed", "agent_failed", "agent_cancelled"}


def tools_paired(kinds):
    """Every tool_completed follows a tool_executing not yet completed (a run may use none)."""
    open_tools = 0
    for k in kinds:
        if k == "tool_executing":
            open_tools += 1
        elif k == "tool_completed":
            if open_tools == 0:
                return False
            open_tools -= 1
    return True


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def page_target(port, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                for t in json.load(r):
                    if t.get("type") == "page":
                        return t["webSocketDebuggerUrl"]
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("chromium did not open its DevTools endpoint")


def main():
    chromium, url, token, forged, ticket = sys.argv[1:6]
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=HERE)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    query = urllib.parse.urlencode(
        {"url": url, "token": token, "forged": forged, "ticket": ticket})
    page = f"http://127.0.0.1:{httpd.server_port}/browser.html?{query}"

    port = free_port()
    profile = tempfile.mkdtemp(prefix="gauntlet-chromium-")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--remote-debugging-port={port}",
         "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        ws_url = page_target(port, deadline)
        with connect(ws_url, max_size=None, open_timeout=10) as cdp:
            ids = iter(range(1, 1_000_000))

            def call(method, **params):
                i = next(ids)
                cdp.send(json.dumps({"id": i, "method": method, "params": params}))
                while True:
                    m = json.loads(cdp.recv(timeout=10))
                    if m.get("id") == i:
                        return m

            call("Page.navigate", url=page)
            results = None
            while time.time() < deadline:
                r = call("Runtime.evaluate",
                         expression="window.done ? JSON.stringify(window.results) : null",
                         returnByValue=True)
                value = r.get("result", {}).get("result", {}).get("value")
                if value:
                    results = json.loads(value)
                    break
                time.sleep(0.3)
        if results is None:
            raise SystemExit("the page did not finish in time")
        print(f"chromium: {json.dumps(results)}")
        kinds, seqs = results["kinds"], results["seqs"]
        checks = {
            "jwt selected": results["subprotocol"] == "jwt",
            "connection_established first": results["first"] == "connection_established",
            "five events in order": bool(kinds) and kinds[0] == "agent_started"
            and kinds[-1] in TERMINAL and sum(k in TERMINAL for k in kinds) == 1
            and tools_paired(kinds),
            "seq increasing": bool(seqs) and all(b > a for a, b in zip(seqs, seqs[1:])),
            "forged token never opens": results["forged_opened"] is False,
            "ticket opens once": results["ticket_first_opened"] is True
            and results["ticket_first_frame"] == "connection_established",
            "ticket only once": results["ticket_second_opened"] is False,
        }
        for name, ok in checks.items():
            print(f"chromium: {'pass' if ok else 'FAIL'}  {name}")
        if not all(checks.values()):
            raise SystemExit(1)
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        httpd.shutdown()


if __name__ == "__main__":
    main()
