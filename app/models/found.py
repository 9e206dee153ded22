"""GGUF files other tools already downloaded: use them where they are, no second copy.

Looks in the Hugging Face cache (``huggingface_hub.scan_cache_dir``), LM Studio's and GPT4All's
model folders, and Ollama's blob store (its manifests name the layer that is the GGUF). Each
file's own header says its name and whether it looks instruction-tuned. Using one goes through
``add_local_model``: the same header checks and child-process test-load as ``models add``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.engine.gguf_header import read_gguf_header
from app.errors import BasechatError

log = logging.getLogger(__name__)
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"


@dataclass(frozen=True)
class FoundModel:
    path: Path
    app: str  # which tool downloaded it
    name: str
    size: int
    instruct: bool


def find_local_models(home: Path | None = None, hf_cache: Path | None = None) -> list[FoundModel]:
    """Every readable GGUF file the known tools keep, once each (by real path)."""
    home = home or Path.home()
    candidates = [*_hf_cache_files(hf_cache), *_folder_files(home), *_ollama_files(home)]
    found: dict[Path, FoundModel] = {}
    for app, path, label in candidates:
        real = _real_file(path)
        if real is None or real in found:
            continue
        try:
            info = read_gguf_header(real)
        except (BasechatError, OSError) as exc:  # a partial download, a file that is not GGUF
            log.info("skipping %s: %s", path, exc)
            continue
        found[real] = FoundModel(real, app, label or info.name, info.file_size, info.looks_instruct)
    return sorted(found.values(), key=lambda m: (m.instruct, m.app, m.name.lower()))


def _real_file(path: Path) -> Path | None:
    """The file a path leads to, or None: one symlink loop or unreadable entry in another tool's
    folder is skipped, never fatal to the whole list."""
    try:
        real = path.resolve()
        return real if real.is_file() else None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python before 3.13)
        log.info("skipping %s: %s", path, exc)
        return None


def _hf_cache_files(cache: Path | None) -> Iterator[tuple[str, Path, str]]:
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache)
    except (CacheNotFound, OSError):
        return
    for repo in info.repos:
        for revision in repo.revisions:
            for file in revision.files:
                if file.file_name.lower().endswith(".gguf"):
                    yield "Hugging Face cache", Path(file.file_path), f"{repo.repo_id}/{file.file_name}"


def _folder_files(home: Path) -> Iterator[tuple[str, Path, str]]:
    """LM Studio (old and new folders) and GPT4All, on Linux, macOS and Windows."""
    local = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local"))
    folders = {
        "LM Studio": [home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"],
        "GPT4All": [
            home / ".local" / "share" / "nomic.ai" / "GPT4All",
            home / "Library" / "Application Support" / "nomic.ai" / "GPT4All",
            local / "nomic.ai" / "GPT4All",
        ],
    }
    for app, roots in folders.items():
        for root in roots:
            if root.is_dir():
                for path in sorted(root.rglob("*.gguf")):
                    yield app, path, ""


def _ollama_files(home: Path) -> Iterator[tuple[str, Path, str]]:
    """Ollama keeps blobs by digest; a manifest per model:tag names the GGUF layer."""
    root = Path(os.environ.get("OLLAMA_MODELS", home / ".ollama" / "models"))
    manifests = root / "manifests"
    if not manifests.is_dir():
        return
    for manifest in sorted(p for p in manifests.rglob("*") if p.is_file()):
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
        except (OSError, ValueError, AttributeError):
            continue
        for layer in layers:
            if isinstance(layer, dict) and layer.get("mediaType") == OLLAMA_MODEL_LAYER:
                digest = str(layer.get("digest", "")).replace(":", "-")
                label = f"{manifest.parent.name}:{manifest.name}"
                yield "Ollama", root / "blobs" / digest, label
