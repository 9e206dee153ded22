"""One way to open an engine: a model file on this computer, or a server's URL.

Callers above the engine layer never name ``LlamaEngine`` or ``RemoteEngine``;
they say where the model is and get a ``Backend``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from app.engine.base import Backend, ServerConfig


def open_backend(
    path: Path | str | None = None,
    server: ServerConfig | None = None,
    *,
    n_ctx: int | None = None,
    n_threads: int | None = None,
    n_gpu_layers: int | None = None,
    keep_states: bool = False,
    kv_disk_cap: int | None = None,
    state_dir: Path | None = None,
) -> Backend:
    """A remote engine when ``server`` is given, else llama.cpp on ``path``. ``keep_states``:
    save KV states in the data folder's ``kv/`` so conversations resume warm (chat, not eval);
    ``state_dir``: save them in this folder instead (the bench's own)."""
    if server is not None:
        from app.engine.remote import RemoteEngine

        return RemoteEngine(replace(server, n_ctx=n_ctx) if n_ctx else server)
    if path is None:
        raise ValueError("open_backend needs a model path or a server")
    from app.engine.llama import LlamaEngine

    states = state_dir or (_state_folder() if keep_states else None)
    return LlamaEngine(
        path, n_ctx=n_ctx, n_threads=n_threads, n_gpu_layers=n_gpu_layers, state_dir=states,
        kv_disk_cap=kv_disk_cap or _disk_cap(),
    )  # fmt: skip


def _state_folder() -> Path:
    from app.paths import data_dir

    return data_dir() / "kv"


def _disk_cap() -> int | None:
    """``BASECHAT_KV_CAP_MB``: how much disk saved KV states may take (default 2 GB)."""
    value = os.environ.get("BASECHAT_KV_CAP_MB", "")
    return int(value) * 1024**2 if value.isdigit() else None
