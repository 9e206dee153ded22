"""The model catalog: curated base models, read from ``models/catalog.toml`` at start."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from app.errors import InputError
from app.paths import catalog_dir, models_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    parameters: str
    quantisation: str
    repo: str
    file: str
    size: int
    sha256: str | None
    license: str
    context_length: int
    min_ram_gb: float
    template: str
    embedded: bool = False

    @property
    def local_path(self) -> Path:
        return models_dir() / self.file


def load_catalog(path: Path | None = None) -> list[CatalogEntry]:
    path = path or catalog_dir() / "catalog.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [CatalogEntry(**entry) for entry in data.get("model", [])]


def find_entry(model_id: str) -> CatalogEntry | None:
    return next((e for e in load_catalog() if e.id == model_id), None)


def resolve_model(spec: str | None) -> tuple[str, Path]:
    """A model named on the command line: a catalog id, or a path to a .gguf file."""
    from app.models.default import DEFAULT_MODEL_ID, ensure_default_model

    if spec is None or spec == DEFAULT_MODEL_ID:
        return DEFAULT_MODEL_ID, ensure_default_model()
    entry = find_entry(spec)
    if entry is not None:
        if not entry.local_path.is_file():
            raise InputError(f"Model '{spec}' is not downloaded yet.")
        return entry.id, entry.local_path
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        return path.name, path
    known = ", ".join(e.id for e in load_catalog())
    raise InputError(f"Unknown model '{spec}': give a .gguf path or one of: {known}.")
