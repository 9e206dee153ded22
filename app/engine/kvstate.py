"""Saved KV state: a conversation reopened after a restart answers as fast as a warm one.

A state is llama.cpp's copy of one sequence's keys and values (``llama_state_seq_get_data``)
together with the exact token list it covers. States are kept in RAM (the most recent,
bounded) and on disk in the data folder's ``kv/`` (atomic writes, capped, least recently used
removed first). Each file has a JSON sidecar naming everything that changes the cache: the
model file's sha256, llama-cpp-python's version, context size, KV types, flash attention and
the sliding-window setting. llama.cpp checks only shapes when loading, so a same-shaped
fine-tune would load silently; the sidecar is checked first. A sidecar or state that does
not match, is truncated or cannot be read is removed with one log line and the cold path runs.

States are found by content, not by conversation: the engine asks for the longest saved token
list that is a prefix of the prompt. So a reopened chat, a chat switched back to, and a new
chat that starts with a frame already seen all find theirs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app.engine.decoding import find_resumed_run, shared_length
from app.paths import leftovers, remove_leftovers, write_atomically

log = logging.getLogger(__name__)
DEFAULT_DISK_CAP = 2 * 1024**3
# The most the newest states take in RAM, on any machine. Small on purpose: a state just written is
# in the OS's page cache anyway (read back in milliseconds, given back under memory pressure, and
# not counted against Basechat); 128 MB here measured 176 MB more RSS for no faster resume.
DEFAULT_RAM_CAP = 32 * 1024**2
DESKTOP_HEADROOM = 1024**3  # what the rest of a desktop needs


def ram_cap_for(model_bytes: int, total_ram: int) -> int:
    """RAM for the newest saved states, sized to the machine and the model: a sixteenth of what
    the weights leave (after the rest of the desktop), at most ``DEFAULT_RAM_CAP``. A state read
    back from disk costs milliseconds, so RAM only spares that for the chats just used; on a
    laptop a 7B model nearly fills, it takes next to nothing."""
    return max(0, min(DEFAULT_RAM_CAP, (total_ram - model_bytes - DESKTOP_HEADROOM) // 16))


@dataclass(frozen=True)
class SavedState:
    tokens: tuple[int, ...]
    blob: bytes


def token_digest(tokens: list[int] | tuple[int, ...]) -> str:
    return hashlib.sha256(struct.pack(f"<{len(tokens)}i", *tokens)).hexdigest()[:32]


def file_identity(path: Path, cache_folder: Path) -> str:
    """The model file's sha256, computed once per (path, size, mtime) and remembered."""
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = cache_folder / "models.json"
    known = _read_json(memo) or {}
    if not _is_sha256(known.get(key)):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 22):
                digest.update(block)
        known[key] = digest.hexdigest()
        cache_folder.mkdir(parents=True, exist_ok=True)
        write_atomically(memo, json.dumps(known).encode())
    return known[key]


class KVStateStore:
    """States of one model and context configuration (``identity``), in RAM and on disk."""

    def __init__(self, folder: Path, identity: dict, disk_cap: int = DEFAULT_DISK_CAP,
                 ram_cap: int = DEFAULT_RAM_CAP, n_vocab: int | None = None) -> None:  # fmt: skip
        """``n_vocab``: token ids in a sidecar must be below it (a state from another vocabulary, or
        a hand-made file, is removed rather than handed to llama.cpp)."""
        self.folder = folder
        self.n_vocab = n_vocab
        self.identity = identity
        self.disk_cap, self.ram_cap = disk_cap, ram_cap
        self._ram: OrderedDict[str, SavedState] = OrderedDict()
        self._index: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="basechat-kv")
        self._pending: list[Future] = []
        folder.mkdir(parents=True, exist_ok=True)
        freed = remove_leftovers(folder)
        if freed:
            log.info("removed %d bytes of KV states cut short by a process that is gone", freed)
        self._load_index()

    # -- finding -------------------------------------------------------------------------

    def best_prefix(self, prompt: list[int], longer_than: int) -> SavedState | None:
        """The longest saved state whose tokens begin ``prompt`` and number more than ``longer_than``."""
        with self._lock:
            candidates = sorted(
                (tokens for tokens in self._index.values() if longer_than < len(tokens) <= len(prompt)),
                key=len, reverse=True,
            )  # fmt: skip
        for tokens in candidates:
            if tuple(prompt[: len(tokens)]) == tokens:
                state = self._load(token_digest(tokens), tokens)
                if state is not None:
                    return state
        return None

    def best_to_shift(self, prompt: list[int], at_least: int, longer_than: int) -> SavedState | None:
        """The saved state (of more than ``longer_than`` tokens, sharing at least its first
        ``at_least`` with ``prompt``) that a context shift turns into the longest cached prefix:
        the state of this chat just before its latest dropped turns, not an older one."""
        head = tuple(prompt[:at_least])
        with self._lock:
            candidates = [t for t in self._index.values() if len(t) > longer_than and t[:at_least] == head]
        ranked = sorted(((_kept_after_shift(t, prompt), t) for t in candidates), reverse=True)
        for kept, tokens in ranked:
            if kept <= at_least:
                return None
            state = self._load(token_digest(tokens), tokens)
            if state is not None:
                return state
        return None

    def has(self, tokens: list[int]) -> bool:
        with self._lock:
            return token_digest(tokens) in self._index

    def _load(self, digest: str, tokens: tuple[int, ...]) -> SavedState | None:
        with self._lock:
            state = self._ram.get(digest)
            if state is not None:
                self._ram.move_to_end(digest)
                return state
        blob = self._read_blob(digest)
        if blob is None:
            return None
        state = SavedState(tokens, blob)
        self._remember(digest, state)
        with contextlib.suppress(OSError):
            os.utime(self.folder / f"{digest}.kv")  # least recently *used* goes first
        return state

    def _read_blob(self, digest: str) -> bytes | None:
        path = self.folder / f"{digest}.kv"
        sidecar = _read_json(self.folder / f"{digest}.json")
        try:
            blob = path.read_bytes()
        except OSError:
            blob = b""
        if not sidecar or sidecar.get("size") != len(blob) or sidecar.get("sha256") != _blob_hash(blob):
            self.discard(digest, "truncated or damaged")
            return None
        return blob

    # -- saving --------------------------------------------------------------------------

    def save(self, tokens: list[int], blob: bytes) -> None:
        """Keep the state in RAM now; write it to disk on the store's own thread."""
        tokens_t = tuple(tokens)
        digest = token_digest(tokens_t)
        self._remember(digest, SavedState(tokens_t, blob))
        with self._lock:
            self._index[digest] = tokens_t
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._writer.submit(self._write, digest, tokens_t, blob))

    def _remember(self, digest: str, state: SavedState) -> None:
        with self._lock:
            self._ram[digest] = state
            self._ram.move_to_end(digest)
            while len(self._ram) > 1 and sum(len(s.blob) for s in self._ram.values()) > self.ram_cap:
                self._ram.popitem(last=False)

    def _write(self, digest: str, tokens: tuple[int, ...], blob: bytes) -> None:
        try:
            sidecar = {**self.identity, "tokens": list(tokens), "size": len(blob), "sha256": _blob_hash(blob),
                       "saved_at": time.time()}  # fmt: skip
            write_atomically(self.folder / f"{digest}.kv", blob)
            write_atomically(self.folder / f"{digest}.json", json.dumps(sidecar).encode())
            self._evict()
        except OSError as exc:
            log.warning("could not save a KV state: %s", exc)
            self.discard(digest, "its save failed", quiet=True)  # no state without its sidecar

    def _evict(self) -> None:
        """Least recently used states go until the folder is under its cap. Saves in progress
        (another process's temporary files) count against it too: they take the disk meanwhile."""
        files = sorted(self.folder.glob("*.kv"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files) + sum(_size(p) for p in leftovers(self.folder))
        for path in files:
            if total <= self.disk_cap:
                break
            total -= path.stat().st_size
            self.discard(path.stem, "over the disk cap", quiet=True)

    def discard(self, digest: str, why: str, quiet: bool = False) -> None:
        with self._lock:
            self._index.pop(digest, None)
            self._ram.pop(digest, None)
        for suffix in (".kv", ".json"):
            with contextlib.suppress(OSError):
                (self.folder / f"{digest}{suffix}").unlink()
        if not quiet:
            log.info("KV state %s removed: %s", digest, why)

    def flush(self) -> None:
        """Wait for the disk writes (before a process exits)."""
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.result()

    def close(self) -> None:
        self.flush()
        self._writer.shutdown(wait=True)

    # -- the index of what is on disk ----------------------------------------------------

    def _load_index(self) -> None:
        """Every sidecar is hostile until checked: a bad one is removed with one log line."""
        for sidecar_path in self.folder.glob("*.json"):
            if sidecar_path.name == "models.json":
                continue
            digest = sidecar_path.stem
            tokens, why = self._checked_tokens(_read_json(sidecar_path))
            if tokens is not None and token_digest(tokens) == digest:
                self._index[digest] = tokens
            elif why != "another model or configuration":
                self.discard(digest, why or "tokens do not match the name")

    def _checked_tokens(self, sidecar: dict | None) -> tuple[tuple[int, ...] | None, str]:
        """The sidecar's token list if every field is what this store writes, else why not."""
        if sidecar is None:
            return None, "unreadable sidecar"
        if not all(sidecar.get(k) == v for k, v in self.identity.items()):
            return None, "another model or configuration"
        tokens, size = sidecar.get("tokens"), sidecar.get("size")
        if not isinstance(tokens, list) or not 0 < len(tokens) <= int(self.identity.get("n_ctx") or 1 << 20):
            return None, "no token list of a possible length"
        limit = self.n_vocab if self.n_vocab is not None else 2**31
        if not all(type(t) is int and 0 <= t < limit for t in tokens):
            return None, "a token id that is not one of the model's"
        if type(size) is not int or size <= 0 or not isinstance(sidecar.get("sha256"), str):
            return None, "no size or checksum"
        return tuple(tokens), ""


def _kept_after_shift(tokens: tuple[int, ...], prompt: list[int]) -> int:
    """How much of ``prompt`` would be cached after restoring ``tokens`` and shifting out what the
    prompt dropped (just the shared prefix if the prompt does not take the tokens up again)."""
    cached = list(tokens)
    shared = shared_length(cached, prompt)
    start = find_resumed_run(cached, prompt, shared)
    return shared if start is None else shared + shared_length(cached[start:], prompt[shared:])


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _blob_hash(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


_MAX_SIDECAR_BYTES = 16 * 1024**2  # a token list for a 1M-token context is about 8 MB of JSON


def _read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None for anything else: missing, too big, not UTF-8, not JSON,
    nested too deeply to parse."""
    try:
        if path.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
