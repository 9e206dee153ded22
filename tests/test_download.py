"""Downloads through the real huggingface_hub code against a local stand-in for the Hub."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from dataclasses import replace

import pytest

from app.engine.gguf_header import read_gguf_header
from app.models.catalog import CatalogEntry
from app.models.download import DownloadCancelled, DownloadError, download
from tests.helpers import FILE, REPO
from tests.hub_server import start_hub


@pytest.fixture
def hub(monkeypatch, tiny_gguf, tmp_path):
    server = start_hub()
    server.hub.files[(REPO, FILE)] = tiny_gguf
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path / "data"))
    yield server.hub
    server.shutdown()


@pytest.fixture
def entry(tiny_gguf) -> CatalogEntry:
    return CatalogEntry(
        id="tiny", name="Tiny", parameters="1M", quantisation="F32", repo=REPO, file=FILE,
        size=len(tiny_gguf), license="test", context_length=256, min_ram_gb=1, template="chat",
    )  # fmt: skip


def test_full_download_with_monotone_progress_and_verified_header(hub, entry, tiny_gguf):
    events = []
    path = download(entry, events.append)
    assert path.read_bytes() == tiny_gguf
    assert read_gguf_header(path).name == "Tiny base"
    dones = [e.done for e in events]
    assert dones == sorted(dones) and dones[-1] == len(tiny_gguf) == events[-1].total
    assert all(e.speed_bps > 0 for e in events)
    assert not path.with_name(path.name + ".part").exists()


def test_catalog_sha256_is_used_when_known(hub, entry, tiny_gguf):
    sha = hashlib.sha256(tiny_gguf).hexdigest()
    assert download(replace(entry, sha256=sha)).is_file()
    assert not any(path.startswith("/api/") for _, path, _ in hub.requests)


def test_interrupted_download_resumes_after_a_restart_fetching_only_the_rest(hub, entry, tiny_gguf):
    hub.cut_after, hub.cuts_left = 2_000_000, 3  # every try of the first attempt is cut
    with pytest.raises(DownloadError, match="resume"):
        download(entry)
    part = entry.local_path.with_name(FILE + ".part")
    kept = part.stat().st_size
    assert kept >= 1_500_000
    hub.bytes_sent = 0
    hub.requests.clear()
    path = download(entry)  # a new call, as after restarting the app
    assert path.read_bytes() == tiny_gguf
    ranges = [r for method, _, r in hub.requests if method == "GET" and r]
    assert ranges == [f"bytes={kept}-"]
    assert hub.bytes_sent == len(tiny_gguf) - kept


def test_a_dropped_connection_is_resumed_within_one_call(hub, entry, tiny_gguf):
    hub.cut_after, hub.cuts_left = 1_000_000, 1
    assert download(entry).read_bytes() == tiny_gguf
    gets = [r for method, path, r in hub.requests if method == "GET" and "/resolve/" in path]
    assert len(gets) == 2 and gets[0] == "bytes=0-"
    assert int(gets[1].removeprefix("bytes=").rstrip("-")) >= 500_000


def test_corrupted_body_is_rejected_and_removed(hub, entry):
    hub.corrupt = True
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        download(entry)
    assert not entry.local_path.exists()
    assert not entry.local_path.with_name(FILE + ".part").exists()


def test_missing_file_is_a_404_message(hub, entry):
    with pytest.raises(DownloadError, match="404"):
        download(replace(entry, file="nope.gguf"))


def test_server_down_is_a_clear_message_within_five_seconds(monkeypatch, entry, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(DownloadError, match="Cannot reach"):
        download(entry)
    assert time.monotonic() - started < 5


def test_not_enough_disk_space_is_checked_before_starting(hub, entry):
    hub.claimed_size = 10**16  # 10 PB, more than any disk here
    with pytest.raises(DownloadError, match="Not enough disk space"):
        download(entry)
    assert not any(method == "GET" and "/resolve/" in path for method, path, _ in hub.requests)


def test_cancel_keeps_the_partial_file_for_later(hub, entry, tiny_gguf):
    cancel = threading.Event()
    with pytest.raises(DownloadCancelled):
        download(entry, lambda _progress: cancel.set(), cancel)
    part = entry.local_path.with_name(FILE + ".part")
    assert 0 < part.stat().st_size < len(tiny_gguf)
    assert download(entry).read_bytes() == tiny_gguf


def test_proxies_from_the_environment_are_honoured(monkeypatch, entry, tiny_gguf, tmp_path):
    from huggingface_hub import close_session

    server = start_hub()
    server.hub.files[(REPO, FILE)] = tiny_gguf
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.basechat.invalid")  # reachable only through the proxy
    monkeypatch.setenv("HTTP_PROXY", server.url)
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    close_session()  # the library's shared client reads proxy settings when it is created
    try:
        assert download(entry).read_bytes() == tiny_gguf
        assert server.hub.proxied >= 2  # the metadata request and the file itself
    finally:
        monkeypatch.undo()
        close_session()
        server.shutdown()
