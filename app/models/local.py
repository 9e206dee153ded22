"""Opening a GGUF file the user already has."""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.gguf_header import GGUFInfo, read_gguf_header, require_complete
from app.models.catalog import CatalogEntry, save_local_model
from app.models.probe import probe_in_child

BASE_MODELS_NOTE = (
    "it looks instruction-tuned (a chat template or 'instruct'/'chat' in its name); Basechat "
    "still runs it through the transcript, but it is made for base models"
)


def add_local_model(path: Path) -> tuple[CatalogEntry, GGUFInfo, str | None]:
    """Check the header, test-load in a child process, then remember the file.

    Returns the entry, the header, and a warning for instruction-tuned models.
    A chat template found inside the file is never rendered: Basechat renders
    no Jinja (model-file templates were a code-execution hole, CVE-2024-34359).
    """
    path = path.expanduser().resolve()
    info = read_gguf_header(path)
    require_complete(info)
    probe_in_child(path)
    entry = CatalogEntry(
        id=_local_id(path),
        name=info.name,
        parameters=_parameter_label(info.parameters),
        quantisation=info.quantisation,
        repo="",
        file=path.name,
        size=info.file_size,
        license=str(info.metadata.get("general.license", "unknown")),
        context_length=info.context_length or 0,
        min_ram_gb=round(info.file_size / 1024**3 + 0.5, 1),
        template="chat",
        local_file=str(path),
    )
    save_local_model(entry)
    return entry, info, BASE_MODELS_NOTE if info.looks_instruct else None


def _local_id(path: Path) -> str:
    return "local-" + re.sub(r"[^a-z0-9.]+", "-", path.stem.lower()).strip("-")


def _parameter_label(count: int) -> str:
    return f"{count / 1e9:.1f}B" if count >= 1e9 else f"{count / 1e6:.0f}M"
