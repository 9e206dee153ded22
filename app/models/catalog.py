"""The model catalog: curated base models from ``models/catalog.toml``, plus the user's own.

A ``catalog.toml`` in the data folder may add entries; files added from disk
with ``basechat models add`` are recorded in ``models/local.json`` there.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from app.errors import InputError
from app.paths import catalog_dir, data_dir, is_plain_name, models_dir, write_atomically

log = logging.getLogger(__name__)

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
    license: str
    context_length: int
    min_ram_gb: float
    template: str
    sha256: str | None = None
    embedded: bool = False
    verified: bool = False
    kv_bytes_per_token: int = 0  # f16 K+V for one context position (0: unknown)
    source: str = ""  # where the entry was checked (a stored Hub page), if it was
    checked: str = ""  # what that page confirmed
    local_file: str | None = None  # set for files added from disk
    vocabulary: str = ""  # the tokenizer family: models that share one can draft for each other

    @property
    def local_path(self) -> Path:
        return Path(self.local_file) if self.local_file else models_dir() / self.file

    @property
    def installed(self) -> bool:
        return self.local_path.is_file()


def _entries_from(path: Path) -> list[CatalogEntry]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(CatalogEntry)}
        entries = [CatalogEntry(**{k: v for k, v in e.items() if k in known}) for e in data.get("model", [])]
        return _in_models_folder(entries, path)
    except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
        raise InputError(f"The model catalog {path} cannot be read: {exc}") from None


def load_catalog() -> list[CatalogEntry]:
    """Shipped entries, then the user's catalog and local files (a repeated id replaces the earlier)."""
    entries = {e.id: e for e in _entries_from(catalog_dir() / "catalog.toml")}
    user = data_dir() / "catalog.toml"
    if user.is_file():
        entries.update({e.id: e for e in _entries_from(user)})
    entries.update({e.id: e for e in load_local_models()})
    return list(entries.values())


def _in_models_folder(entries: list[CatalogEntry], source: Path) -> list[CatalogEntry]:
    """Entries whose ``file`` is a plain name in the models folder: a data file naming
    "../../x.gguf" would otherwise have ``models remove`` delete a file anywhere. Dropped, logged."""
    kept = [e for e in entries if isinstance(e.file, str) and is_plain_name(e.file)]
    for entry in entries:
        if entry not in kept:
            log.warning("%s: model %r names a file outside the models folder; left out", source, entry.id)
    return kept


def _local_registry() -> Path:
    return models_dir() / "local.json"


def load_local_models() -> list[CatalogEntry]:
    try:
        records = json.loads(_local_registry().read_text(encoding="utf-8"))
        return _in_models_folder([CatalogEntry(**record) for record in records], _local_registry())
    except FileNotFoundError:
        return []
    except (OSError, ValueError, TypeError):
        return []  # a damaged registry only forgets added files; the files themselves stay


def save_local_model(entry: CatalogEntry) -> None:
    _write_local([e for e in load_local_models() if e.id != entry.id] + [entry])


def forget_local_model(model_id: str) -> None:
    _write_local([e for e in load_local_models() if e.id != model_id])


def _write_local(entries: list[CatalogEntry]) -> None:
    """Write then rename, so a crash never leaves half a registry."""
    write_atomically(_local_registry(), json.dumps([asdict(e) for e in entries], indent=1))


def find_entry(model_id: str) -> CatalogEntry | None:
    return next((e for e in load_catalog() if e.id == model_id), None)


def require_entry(model_id: str) -> CatalogEntry:
    entry = find_entry(model_id)
    if entry is None:
        known = ", ".join(e.id for e in load_catalog())
        raise InputError(f"Unknown model '{model_id}' (known: {known}).")
    return entry


def resolve_model(spec: str | None) -> tuple[str, Path]:
    """A model named on the command line: a catalog id, or a path to a .gguf file."""
    from app.models.default import DEFAULT_MODEL_ID, ensure_default_model

    if spec is None or spec == DEFAULT_MODEL_ID:
        return DEFAULT_MODEL_ID, ensure_default_model()
    entry = find_entry(spec)
    if entry is not None:
        if not entry.installed:
            raise InputError(f"Model '{spec}' is not downloaded yet: run 'basechat models download {spec}'.")
        return entry.id, entry.local_path
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        return path.name, path
    known = ", ".join(e.id for e in load_catalog())
    raise InputError(f"Unknown model '{spec}': give a .gguf path or one of: {known}.")
