#!/usr/bin/env python3
"""Checks graft serve's try-it page in headless Chromium, as a person would use it.

usage: check_serve.py MODEL.graft PHOTO [--screenshot SHOT.png] [--graft ./graft]

Starts `graft serve MODEL --port P` on loopback, asks POST /predict for PHOTO's label, then loads the page in a fresh
headless Chromium profile, uploads PHOTO through the page's file input and waits until the page shows a result with
that label; then turns on the webcam (Chromium's fake camera) and waits for a live result naming one of the classes. Fails on any script error, on a Content-Security-Policy violation, and on any request the page makes to
another server (it must work offline). Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
NUL-terminated JSON on file descriptors 3 and 4), with the Python standard library only.
"""
import argparse
import base64
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_report import CHROMIUM_FLAGS  # noqa: E402  (one set of flags for both browser checks)


class DevTools:
    """A Chromium browser and one page in it, spoken to over the DevTools pipe."""

    def __init__(self, exe, profile):
        commands_read, self._commands = os.pipe()
        self._events, events_write = os.pipe()

        def descriptors():  # in the child: the pipe ends to 3 and 4 (by way of free numbers: a pipe may already be 3 or 4)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands_read, events_write)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1100,900",
                                         # Chromium's test pattern as the webcam, allowed without asking
                                         "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                         "--remote-debugging-pipe", "about:blank"],
                                        preexec_fn=descriptors, close_fds=False, start_new_session=True, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # close_fds would close 3 and 4 after preexec_fn
        os.close(commands_read)
        os.close(events_write)
        self._buffer = b""
        self._next_id = 0
        self.session = None
        self.events = []
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True, session=False)["sessionId"]

    def _read(self):
        while b"\0" not in self._buffer:
            chunk = os.read(self._events, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=True, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def close(self):
        """Ends the browser and its helper processes (its own process group), so that its profile can be removed."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base, server, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"check_serve: graft serve exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(base + "readyz", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"check_serve: graft serve was not ready after {seconds} s")


def api_label(base, photo):
    with open(photo, "rb") as f:
        request = urllib.request.Request(base + "predict", data=f.read(), headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=60) as r:
        return json.load(r)["predictions"][0]["label"]

def check_page(browser, base, photo, expected, screenshot):
    """Uploads the photo through the page's file input; what went wrong, if anything."""
    for domain in ("Page", "Runtime", "Log", "Network"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=base)
    failures = []
    deadline = time.monotonic() + 30
    while not browser.evaluate("document.getElementById('model') && document.getElementById('model').options.length > 0"):
        if time.monotonic() > deadline:
            return ["the page never listed the model"]
        time.sleep(0.2)
    document = browser.call("DOM.getDocument")["root"]["nodeId"]
    file_input = browser.call("DOM.querySelector", nodeId=document, selector="input[type=file]")["nodeId"]
    browser.call("DOM.setFileInputFiles", nodeId=file_input, files=[os.path.abspath(photo)])
    shown = None
    deadline = time.monotonic() + 60
    while shown is None or not (shown.get("label") or shown.get("error")):
        if time.monotonic() > deadline:
            failures.append("no result appeared in the page within 60 s")
            break
        time.sleep(0.2)
        shown = browser.evaluate("(() => { const r = document.querySelector('#results .result');"
                                 " return r && { label: r.dataset.label, error: r.dataset.error, text: r.innerText }; })()")
    if shown and shown.get("error"):
        failures.append(f"the page shows an error: {shown['error']}")
    elif shown and shown.get("label") != expected:
        failures.append(f"the page shows '{shown.get('label')}', the API answered '{expected}'")
    elif shown and expected not in shown.get("text", ""):
        failures.append(f"the label '{expected}' is not in the page's text")
    # The webcam (Chromium's moving test pattern): the live result shows one of the model's classes.
    classes = browser.evaluate("fetch('models').then(r => r.json()).then(j => j.models[0].classes)")
    browser.evaluate("document.getElementById('camera').click()")
    live, deadline = None, time.monotonic() + 60
    while not live:
        if time.monotonic() > deadline:
            failures.append("the webcam's frames were never predicted")
            break
        time.sleep(0.2)
        live = browser.evaluate("document.getElementById('live').dataset.label")
    if live and live not in classes:
        failures.append(f"the webcam's result '{live}' is not one of the model's classes {classes}")
    if screenshot:
        with open(screenshot, "wb") as f:
            f.write(base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"]))

    for event in browser.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            failures.append(f"script error: {details.get('text', '')} {details.get('exception', {}).get('description', '')}")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            failures.append("console error: " + params["entry"]["text"])
        elif method == "Network.requestWillBeSent":
            url = params["request"]["url"]
            if not url.startswith((base, "blob:", "data:")):
                failures.append(f"the page requested {url}")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("photo")
    parser.add_argument("--screenshot")
    parser.add_argument("--graft", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "graft"))
    args = parser.parse_args()
    exe = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome") if os.path.exists(p)), None)
    if exe is None:
        sys.exit("check_serve: chromium is not installed (apt-get install chromium)")

    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([args.graft, "serve", args.model, "--port", str(port)], stdout=subprocess.DEVNULL)
    try:
        wait_ready(base, server, 300)
        expected = api_label(base, args.photo)
        with tempfile.TemporaryDirectory() as profile:
            browser = DevTools(exe, profile)
            try:
                failures = check_page(browser, base, args.photo, expected, args.screenshot)
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)

    if failures:
        sys.exit("check_serve: " + "; ".join(failures))
    print(f"check_serve: the page showed '{expected}' for {args.photo}, as POST /predict answered, and a class for the "
          "webcam's frames; no script error, no request off the server")


if __name__ == "__main__":
    main()
