"""`RemoteMonitor`: POSTs each epoch's logs to an HTTP server (coordinator only)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import warnings
from typing import Any

import numpy as np

from distkeras.callbacks.callback import Callback


def _plain(value: Any) -> Any:
    """Array scalars and 0-d/1-element arrays as Python numbers; other arrays as lists."""
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "item"):
        try:
            return value.item()
        except (ValueError, TypeError):
            return value.tolist()
    return value


class RemoteMonitor(Callback):
    """Streams epoch results to a server, as `keras.callbacks.RemoteMonitor`.

    At the end of every epoch the dict `{"epoch": epoch, **logs}` is sent by
    HTTP POST to `root + path`: as a form field `field` holding the JSON text
    (the default), or as a JSON body with `send_as_json=True`. Uses only the
    standard library. An unreachable server gives a warning, not an error. In
    a distributed run only the coordinator sends.

    Args:
        root: Root URL of the target server.
        path: Path relative to `root` the events are sent to.
        field: Name of the form field holding the JSON data.
        headers: Optional dict of extra HTTP headers.
        send_as_json: Send the request body as `application/json`.
        timeout: Seconds to wait for the server before giving up with a warning.
    """

    batch_decisions = False  # its batch hooks never stop training or change the rate

    def __init__(
        self,
        root: str = "http://localhost:9000",
        path: str = "/publish/epoch/end/",
        field: str = "data",
        headers: dict | None = None,
        send_as_json: bool = False,
        timeout: float = 10.0,
    ):
        super().__init__()
        self.root = root
        self.path = path
        self.field = field
        self.headers = headers
        self.send_as_json = send_as_json
        self.timeout = timeout

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not self.is_coordinator:
            return
        send: dict[str, Any] = {"epoch": epoch}
        for key, value in (logs or {}).items():
            send[key] = _plain(value)
        headers = dict(self.headers or {})
        if self.send_as_json:
            body = json.dumps(send).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            body = urllib.parse.urlencode({self.field: json.dumps(send)}).encode("ascii")
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(
            self.root + self.path, data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError):
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}", stacklevel=2)
