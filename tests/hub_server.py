"""A small stand-in for the Hugging Face Hub on 127.0.0.1, for download tests.

It answers the two endpoints huggingface_hub uses here — ``/{repo}/resolve/{rev}/{file}``
(HEAD and ranged GET) and ``/api/models/{repo}`` with ``blobs=true`` — and can
misbehave on purpose: cut a transfer, corrupt a body, claim a huge size.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class HubBehaviour:
    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)  # repo → its tags (for search)
    cut_after: int | None = None  # drop the connection after this many body bytes
    cuts_left: int = 0
    corrupt: bool = False
    claimed_size: int | None = None
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    bytes_sent: int = 0
    proxied: int = 0  # requests that came as a proxy's absolute URI


class _Handler(BaseHTTPRequestHandler):
    server: _HubServer

    def log_message(self, *_args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._as_proxy()
        self._resolve(head=True)

    def do_GET(self) -> None:
        self._as_proxy()
        if self.path.startswith("/api/models/"):
            self._model_info()
        elif self.path.startswith("/api/models?"):
            self._list_models()
        else:
            self._resolve(head=False)

    def _as_proxy(self) -> None:
        """Acting as an HTTP proxy: the request line carries the whole URL."""
        match = re.match(r"^https?://[^/]+(/.*)$", self.path)
        if match:
            self.server.hub.proxied += 1
            self.path = match.group(1)

    def _lookup(self) -> tuple[str, str] | None:
        match = re.match(r"^/(.+?/.+?)/resolve/[^/]+/(.+?)(\?.*)?$", self.path)
        return (match.group(1), match.group(2)) if match else None

    def _resolve(self, head: bool) -> None:
        hub = self.server.hub
        hub.requests.append((self.command, self.path, self.headers.get("Range")))
        key = self._lookup()
        if key not in hub.files:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = hub.files[key]
        if hub.corrupt:
            data = data[:-64] + bytes(64)
        start = _range_start(self.headers.get("Range"))
        self.send_response(206 if start else 200)
        self.send_header("ETag", f'"{hashlib.sha256(hub.files[key]).hexdigest()}"')
        self.send_header("X-Repo-Commit", "a" * 40)
        self.send_header("Accept-Ranges", "bytes")
        length = hub.claimed_size if head and hub.claimed_size else len(data) - start
        self.send_header("Content-Length", str(length))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if not head:
            self._send_body(data[start:])

    def _send_body(self, body: bytes) -> None:
        hub = self.server.hub
        if hub.cut_after is not None and hub.cuts_left > 0:
            hub.cuts_left -= 1
            self.wfile.write(body[: hub.cut_after])
            hub.bytes_sent += min(hub.cut_after, len(body))
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        for offset in range(0, len(body), 65536):
            self.wfile.write(body[offset : offset + 65536])
        hub.bytes_sent += len(body)

    def _model_info(self) -> None:
        hub = self.server.hub
        repo = self.path.split("?")[0].removeprefix("/api/models/").split("/revision/")[0]
        siblings = [
            {"rfilename": name, "size": len(data),
             "lfs": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "pointerSize": 134}}
            for (r, name), data in hub.files.items() if r == repo
        ]  # fmt: skip
        body = json.dumps({"id": repo, "siblings": siblings}).encode()
        self.send_response(200 if siblings else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _list_models(self) -> None:
        """``GET /api/models?search=…&filter=gguf``: repos whose id contains the search words."""
        from urllib.parse import parse_qs, urlsplit

        query = parse_qs(urlsplit(self.path).query)
        words = query.get("search", [""])[0].lower()
        repos = sorted({repo for repo, _name in self.server.hub.files if words in repo.lower()})
        rows = [{"id": repo, "modelId": repo, "tags": ["gguf", *self.server.hub.tags.get(repo, [])]}
                for repo in repos]  # fmt: skip
        body = json.dumps(rows).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _range_start(header: str | None) -> int:
    match = re.match(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else 0


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hub = HubBehaviour()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def start_hub() -> _HubServer:
    server = _HubServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
