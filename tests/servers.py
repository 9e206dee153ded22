"""Real inference servers on 127.0.0.1 for the remote engine's tests, and a scripted one for faults.

``llama-server`` and ``rpc-server`` are llama.cpp's own, built by ``make servers`` from the
source the pinned llama-cpp-python vendors; ``python -m llama_cpp.server`` is
llama-cpp-python's. The scripted server (``FaultServer``) is a real HTTP server too: it plays
the failures a real one is hard to make do on cue (a stall, a malformed event, an HTTP 500).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import pytest

from tests.conftest import ROOT

BIN = ROOT / ".bench" / "bin"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server child process; ``url`` once it answers ``ready_path`` with 200."""

    def __init__(
        self, args: list[str], port: int, ready_path: str, log: Path, env: dict | None = None,
        headers: dict | None = None,
    ) -> None:  # fmt: skip
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.headers = headers or {}
        self.process = subprocess.Popen(
            args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=ROOT
        )
        self._wait_ready(ready_path)

    def _wait_ready(self, path: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text(errors='replace')[-2000:]}")
            try:
                if httpx2.get(self.url + path, headers=self.headers, timeout=2).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout} s: {self.log}")

    def kill(self) -> None:
        """Gone at once, as a crashed or unplugged server is."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _model_allowed() -> None:
    """A server that loads a model is for tests marked ``model`` (conftest's honest-mark check)."""
    if os.environ.get("BASECHAT_LOAD_NO_MODEL"):
        pytest.fail("this test starts a server that loads a model but is not marked 'model'", pytrace=False)


def start_llama_server(model: Path, log: Path, *extra: str, n_ctx: int = 4096) -> ServerProcess:
    _model_allowed()
    """``--swa-full`` keeps Gemma's sliding-window layers whole, so prompt prefixes are reused."""
    port = free_port()
    args = [str(BIN / "llama-server"), "-m", str(model), "--host", "127.0.0.1", "--port", str(port),
            "-c", str(n_ctx), "-np", "1", "-t", "2", "--swa-full", "--no-webui", *extra]  # fmt: skip
    return ServerProcess(args, port, "/health", log)


def start_rpc_server(log: Path) -> ServerProcess:
    """llama.cpp's RPC backend: holds the layers that a llama-server started with --rpc sends it."""
    port = free_port()
    args = [str(BIN / "rpc-server"), "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    server = ServerProcess.__new__(ServerProcess)
    server.port, server.url, server.log, server.process = port, f"127.0.0.1:{port}", log, process
    return server


def start_basechat_server(data_dir: Path, *args: str, key: str | None = None) -> ServerProcess:
    """``basechat serve`` on a free port, with ``data_dir`` as its data folder and, given ``key``,
    that API key asked of every client (``server.headers`` carries it)."""
    _model_allowed()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BASECHAT_DATA_DIR": str(data_dir)}
    env |= {"SERVE_KEY": key} if key else {}
    flags = ["--api-key-env", "SERVE_KEY"] if key else []
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), *flags, *args]
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return ServerProcess(command, port, "/v1/models", data_dir / "serve.log", env, headers)


def start_python_server(model: Path, log: Path) -> ServerProcess:
    _model_allowed()
    port = free_port()
    args = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"]  # fmt: skip
    return ServerProcess(args, port, "/v1/models", log)


class FaultServer:
    """An OpenAI-style server that answers ``/v1/models`` and plays ``mode`` on completions:
    ``stall`` (headers, then silence), ``malformed`` (an event that is not JSON), ``error500``,
    ``unknown_model`` (404 as vLLM words it), ``unauthorised`` (401 everywhere), ``hostile500``
    (an error message of escape sequences and 300 KB), ``props_*`` (a malformed ``/props``),
    ``ok`` (a short streamed reply). Every request's path is recorded in ``seen``."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.seen: list[str] = []
        self.release = threading.Event()
        handler = _fault_handler(self)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def _drip(handler, server) -> None:
    """An event, one byte a second, never finished."""
    for byte in b'data: {"choices": [{"text": " Paris", "finish_reason": null}]}' * 100:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        if server.release.wait(1):
            return


def _keep_alive(handler, server) -> None:
    """Comment lines (SSE keep-alives) for ever, no event."""
    while not server.release.wait(0.3):
        handler.wfile.write(b": keep-alive\n\n")
        handler.wfile.flush()


def _endless(handler, server) -> None:
    """Text for ever, ignoring the limit it was sent."""
    while not server.release.wait(0.01):
        handler._event({"choices": [{"text": " word", "finish_reason": None}]})


def _cut(handler, server) -> None:
    """Two pieces of a reply, then the connection closes with no finish."""
    for text in (" The", " capital"):
        handler._event({"choices": [{"text": text, "finish_reason": None}]})
    handler.close_connection = True


def _huge_line(handler, server) -> None:
    """One line of 50 MB that never ends."""
    chunk = b"data: " + b"x" * (1 << 20)
    for _ in range(50):
        handler.wfile.write(chunk)
        if server.release.is_set():
            return


# An error message that would retitle and recolour a terminal, 300 KB long.
HOSTILE_ERROR = "\x1b]0;pwned\x07\x1b[31mred alert\x1b[0m " + "A" * 300_000
# /props as no llama-server sends it: settings that are not an object, a context of -50 tokens.
_PROPS = {
    "props_not_object": {"default_generation_settings": "n_ctx=4096"},
    "props_negative_ctx": {"default_generation_settings": {"n_ctx": -50}, "model_path": "/m/x.gguf"},
}
_HOSTILE = {"drip": _drip, "keepalive": _keep_alive, "endless": _endless, "cut": _cut, "huge": _huge_line}
UNAUTHORISED = {"error": {"message": "Invalid API Key", "type": "authentication_error"}}


def _fault_handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:
            server.seen.append(self.path)
            if server.mode == "unauthorised":
                return self._json(
                    401, {"error": {"message": "Invalid API Key", "type": "authentication_error"}}
                )
            if self.path == "/props" and server.mode in _PROPS:
                return self._json(200, _PROPS[server.mode])
            if self.path == "/v1/models":
                return self._json(200, {"data": [{"id": "stub-model", "max_model_len": 2048}]})
            self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            server.seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if server.mode == "unauthorised":
                return self._json(
                    401, {"error": {"message": "Invalid API Key", "type": "authentication_error"}}
                )
            if server.mode == "echo_key":  # a server that repeats the credentials it was sent
                said = f"{self.headers.get('Authorization')} {self.headers.get('Authorization', '')}"
                return self._json(400, {"error": {"message": f"bad credentials: {said}", "type": "auth"}})
            if self.path != "/v1/completions":
                return self._json(404, {"error": "not found"})
            if server.mode == "error500":
                return self._json(500, {"error": {"message": "CUDA out of memory", "type": "server_error"}})
            if server.mode == "hostile500":
                return self._json(500, {"error": {"message": HOSTILE_ERROR, "type": "server_error"}})
            if server.mode == "unknown_model":
                return self._json(404, {"error": {"message": "The model `stub` does not exist."}})
            self._stream()

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            if server.mode == "stall":
                self._event({"choices": [{"text": " Par", "finish_reason": None}]})
                server.release.wait(60)
                return
            if server.mode == "malformed":
                self.wfile.write(b"data: {not json\n\n")
                self.wfile.flush()
                return
            if server.mode in _HOSTILE:
                with contextlib.suppress(OSError):  # the client left, as it should
                    _HOSTILE[server.mode](self, server)
                return
            for text, reason in ((" Paris", None), (".", None), ("", "stop")):
                self._event({"choices": [{"text": text, "finish_reason": reason}]})
            self.wfile.write(b"data: [DONE]\n\n")

        def _event(self, data: dict) -> None:
            self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
            self.wfile.flush()

        def _json(self, code: int, data: dict) -> None:
            body = json.dumps(data).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
