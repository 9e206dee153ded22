"""The server on a thread of its own, for the window: its Settings switch starts and stops it while
the window keeps the model (``basechat serve`` instead runs uvicorn on the main thread)."""

from __future__ import annotations

import threading
import time

import uvicorn

from app.errors import InputError
from app.server.address import base_url, check_address
from app.server.app import create_app
from app.server.hub import Hub

_GRACE_S = 2  # a stream still running when the server stops is ended after this
_START_S = 10


class BackgroundServer:
    def __init__(self, hub: Hub, host: str, port: int) -> None:
        check_address(host, port, hub.api_key)
        self.hub, self.address = hub, base_url(host, port)
        config = uvicorn.Config(create_app(hub), host=host, port=port, log_level="warning",
                                access_log=False, timeout_graceful_shutdown=_GRACE_S)  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="basechat-serve", daemon=True)
        self._thread.start()
        self._wait_listening()

    def _wait_listening(self) -> None:
        """Back once clients can connect (uvicorn's startup takes some milliseconds), or it failed."""
        deadline = time.monotonic() + _START_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise InputError(f"The server did not start at {self.address} (details in Basechat's log).")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop listening, end what runs (its engine stops between tokens), and wait for it."""
        self._server.should_exit = True
        self.hub.abort()
        self._thread.join(_GRACE_S + 5)
