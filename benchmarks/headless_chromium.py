# Copyright 2026 The diffusers-joint authors. Licensed under the Apache License, Version 2.0.
"""
A minimal headless Chromium driver for the documentation's screenshots, on the Chrome DevTools Protocol over
`--remote-debugging-pipe` (the standard library only: no websocket client, no browser download). It runs Debian's
`chromium` package; [`find_chromium`] returns `None` where there is none.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """The path of a Chromium or Chrome executable on PATH, or `None`."""
    return next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)


class HeadlessChromium:
    """
    One headless browser page. Use as a context manager:

        with HeadlessChromium(width=1280, height=900) as page:
            page.navigate("http://127.0.0.1:7860")
            page.wait_for("document.querySelector('button') !== null")
            page.screenshot("page.png")
    """

    def __init__(self, executable: str | None = None, width: int = 1280, height: int = 900, timeout: float = 60):
        self.executable = executable or find_chromium()
        if self.executable is None:
            raise FileNotFoundError("No Chromium found: on Debian, `apt-get install chromium`.")
        self.width, self.height, self.timeout = width, height, timeout
        self._next_id = 0
        self._buffer = b""

    def __enter__(self) -> HeadlessChromium:
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-profile-")
        # Chromium reads commands from fd 3 and writes replies to fd 4.
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--remote-debugging-pipe",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
            "--disable-sync", "--metrics-recording-only", "--mute-audio", f"--user-data-dir={self._profile.name}",
            f"--window-size={self.width},{self.height}", "about:blank",
        ]  # fmt: skip
        # bash moves the pipes to fds 3 and 4 before exec (no preexec_fn, which is unsafe beside threads; dash takes
        # only one-digit fd numbers).
        remap = f'exec "$0" "$@" 3<&{to_browser_read} 4>&{from_browser_write}'
        self._process = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-c", remap, self.executable, *arguments],
            pass_fds=(to_browser_read, from_browser_write),
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ.get("CHROMIUM_LOG", os.devnull), "w"),
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc) -> None:
        try:
            self._send("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    # ------------------------------------------------------------------------------------------- protocol

    def _read_message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe.")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read_message()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def send(self, method: str, params: dict | None = None) -> dict:
        """A DevTools command to the page."""
        return self._send(method, params, self._session)

    # ------------------------------------------------------------------------------------------- page actions

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error in {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, condition: str, timeout: float | None = None) -> None:
        """Poll a JavaScript condition until it is true; `TimeoutError` after `timeout` seconds."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.evaluate(f"Boolean({condition})"):
            if time.monotonic() > deadline:
                text = self.evaluate("document.body ? document.body.innerText : ''") or ""
                raise TimeoutError(f"Timed out waiting for {condition!r}; the page ends with: {text[-500:]!r}")
            time.sleep(0.2)

    def set_file_input(self, selector: str, path: str | Path) -> None:
        """Choose a file in the first `<input type=file>` matching `selector`, as a user picking it would."""
        root = self.send("DOM.getDocument", {"depth": -1, "pierce": True})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise RuntimeError(f"No element matches {selector!r}.")
        self.send("DOM.setFileInputFiles", {"files": [str(Path(path).resolve())], "nodeId": node})

    def screenshot(self, path: str | Path, ready: str = "true") -> None:
        """
        Save the whole page (beyond the viewport if it is taller) as a PNG, once the JavaScript condition `ready` holds
        on the full-height page (lazily loaded images only load once they are in view).
        """
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": max(height, 100), "deviceScaleFactor": 1, "mobile": False},
        )
        self.wait_for(ready)
        time.sleep(0.5)  # let the page paint what just loaded
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
