"""Headless Chromium driven through the DevTools protocol (CDP) over a websocket: enough to open a
page, watch every request it makes and every script it runs, read its DOM and take a screenshot.
Needs the Debian package `chromium` (/usr/bin/chromium) and the `websockets` package; nothing is
downloaded at run time."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
]


class Chromium:
    """One headless Chromium with a fresh profile; `page()` opens a tab."""

    def __init__(self, width: int = 1280, height: int = 1600):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", f"--window-size={width},{height}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start (exit status {self.process.poll()})")
            time.sleep(0.1)
        self.port = int(port_file.read_text().split()[0])

    def page(self) -> Page:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            return Page(json.load(response)["webSocketDebuggerUrl"])

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    def __init__(self, url: str):
        self.ws = connect(url, max_size=None, open_timeout=30, ping_interval=None)  # Chromium does not answer pings while a page loads
        self.next_id = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, timeout: float = 60, **params) -> dict:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Collect events for `seconds` (timers, image errors and requests a page starts late)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                return

    def open(self, url: str, settle: float = 4.0) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while not any(event.get("method") == "Page.loadEventFired" for event in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            self.pump(0.2)
        self.pump(settle)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requests(self) -> list[str]:
        return [event["params"]["request"]["url"] for event in self.events if event.get("method") == "Network.requestWillBeSent"]

    def console(self) -> list[str]:
        lines = [event["params"]["entry"]["text"] for event in self.events if event.get("method") == "Log.entryAdded"]
        lines += [
            " ".join(str(a.get("value", a.get("description", ""))) for a in event["params"]["args"])
            for event in self.events
            if event.get("method") == "Runtime.consoleAPICalled"
        ]
        return lines

    def screenshot(self, path: Path) -> Path:
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or 1600
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=min(int(height), 6000), deviceScaleFactor=1, mobile=False)
        clip = {"x": 0, "y": 0, "width": 1280, "height": min(int(height), 6000), "scale": 1}  # the page's width, even where a line overflows it
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()
