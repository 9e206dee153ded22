"""Searching the Hugging Face Hub for GGUF files, base models first.

``HfApi.list_models`` finds GGUF repositories; ``model_info(files_metadata=True)`` gives each
file's exact size and LFS hash. A result is flagged instruction-tuned from the repository's
tags and the file's name (Instruct, Chat, -it, …) and base from tags such as "base" or
"pretrained"; neither means "unknown" and sorts between them. Any result downloads through the
catalog's own resumable, sha256-checked download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.models.catalog import CatalogEntry
from app.models.download import DownloadError, hub_endpoint

Kind = Literal["base", "instruct", "unknown"]
_INSTRUCT = re.compile(r"(instruct|chat|[-_.]it\b|[-_.]it[-_.]|rlhf|sft|dpo)", re.IGNORECASE)
_BASE_TAGS = {"base", "pretrained", "base_model", "foundation"}
_ORDER = {"base": 0, "unknown": 1, "instruct": 2}


@dataclass(frozen=True)
class HubFile:
    repo: str
    file: str
    size: int
    kind: Kind
    sha256: str | None = None

    def entry(self) -> CatalogEntry:
        """A catalog entry for the download (and, once there, the model picker)."""
        stem = re.sub(r"[^a-z0-9.]+", "-", self.file.lower().removesuffix(".gguf")).strip("-")
        return CatalogEntry(
            id=f"hub-{stem}", name=self.file.removesuffix(".gguf"), parameters="?", quantisation="?",
            repo=self.repo, file=self.file, size=self.size, license="see the model's page",
            context_length=0, min_ram_gb=round(self.size / 1024**3 + 0.5, 1), template="chat",
            sha256=self.sha256,
        )  # fmt: skip


def classify(repo: str, file: str, tags: list[str]) -> Kind:
    if _INSTRUCT.search(repo) or _INSTRUCT.search(file) or any(_INSTRUCT.search(t) for t in tags):
        return "instruct"
    return "base" if {t.lower() for t in tags} & _BASE_TAGS else "unknown"


def search_hub(query: str, limit: int = 10) -> list[HubFile]:
    """GGUF files of repositories matching ``query``: base first, then unknown, then instruct."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=hub_endpoint())
    try:
        repos = list(api.list_models(search=query, filter="gguf", limit=limit))
        found = [file for repo in repos for file in _gguf_files(api, repo.id, list(repo.tags or []))]
    except (HfHubHTTPError, OSError) as exc:
        raise DownloadError(f"Searching the Hub failed: {str(exc).splitlines()[0]}") from None
    return sorted(found, key=lambda f: (_ORDER[f.kind], f.repo.lower(), f.size))


HEADER_BYTES = 8 * 1024 * 1024  # enough for the metadata of most models (a 262k vocabulary included)


def _gguf_files(api, repo: str, tags: list[str]) -> list[HubFile]:
    info = api.model_info(repo, files_metadata=True)
    files = []
    for sibling in info.siblings or []:
        if sibling.rfilename.lower().endswith(".gguf"):
            sha = sibling.lfs.sha256 if sibling.lfs else None
            kind = classify(repo, sibling.rfilename, tags)
            if kind == "unknown":
                kind = _kind_from_header(repo, sibling.rfilename)
            files.append(HubFile(repo, sibling.rfilename, int(sibling.size or 0), kind, sha))
    return files


PROBE_DEADLINE_S = 20.0  # one file's header probe, however slowly a server sends it


def _read_prefix(session, url: str, limit: int, deadline_s: float) -> bytes | None:
    """At most ``limit`` bytes from the start of ``url``, within ``deadline_s`` (plus one read
    timeout): a server that ignores Range, or sends a byte at a time, is cut off, not buffered."""
    import time

    started, data = time.monotonic(), bytearray()
    headers = {"Range": f"bytes=0-{limit - 1}"}
    with session.stream("GET", url, headers=headers, follow_redirects=True, timeout=10) as response:
        if response.status_code not in (200, 206):
            return None
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= limit or time.monotonic() - started > deadline_s:
                break
    return bytes(data[:limit])


def _kind_from_header(repo: str, file: str) -> Kind:
    """Neither tags nor names tell: read the start of the file itself (one ranged request) and
    look for a chat template in its metadata."""
    import httpx2
    from huggingface_hub import get_session, hf_hub_url

    from app.engine.gguf_header import has_chat_template

    url = hf_hub_url(repo, file, endpoint=hub_endpoint())
    try:
        prefix = _read_prefix(get_session(), url, HEADER_BYTES, PROBE_DEADLINE_S)
        found = has_chat_template(prefix) if prefix is not None else None
    except (OSError, httpx2.HTTPError):  # unreachable, refused, too slow: the kind stays unknown
        found = None
    if found is None:
        return "unknown"
    return "instruct" if found else "base"
