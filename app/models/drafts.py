"""Speculative decoding as a person chooses it: off, from the text itself, or with a draft model.

A draft model must share the target's vocabulary (the catalog names each entry's tokenizer
family); the engine checks the files themselves before it drafts, so a local file of another
family is still refused in one line.
"""

from __future__ import annotations

from app.engine.base import Backend
from app.models.catalog import CatalogEntry, find_entry, load_catalog, resolve_model

DRAFT_OFF, DRAFT_LOOKUP = "off", "lookup"
DEFAULT_DRAFT = DRAFT_LOOKUP  # prompt lookup never cost more than 2 % on chat questions (docs/speed.md)


def draft_partners(target_id: str) -> list[CatalogEntry]:
    """Installed models that can draft for ``target_id``: the same vocabulary, smallest first
    (an unknown family: every installed model, and the engine checks)."""
    target = find_entry(target_id)
    family = target.vocabulary if target else ""
    fits = [e for e in load_catalog() if e.installed and (not family or e.vocabulary in ("", family))]
    return sorted(fits, key=lambda e: e.size)


def suggested_draft(target: CatalogEntry, catalog: list[CatalogEntry]) -> CatalogEntry | None:
    """The catalog's best draft for ``target``: the smallest model of its vocabulary, if it is at
    most a quarter of the target's size (a draft costs a step of its own for every token)."""
    family = [e for e in catalog if e.vocabulary and e.vocabulary == target.vocabulary and e.id != target.id]
    smallest = min(family, key=lambda e: e.size, default=None)
    return smallest if smallest is not None and smallest.size * 4 <= target.size else None


def draft_target(choice: str) -> str:
    """What the engine is given: "off", "lookup", or the draft model file's path."""
    if choice in (DRAFT_OFF, DRAFT_LOOKUP):
        return choice
    return str(resolve_model(choice)[1])


def draft_label(choice: str) -> str:
    """How Settings and the status line name a choice."""
    if choice == DRAFT_OFF:
        return "Off"
    if choice == DRAFT_LOOKUP:
        return "From the text (prompt lookup)"
    entry = find_entry(choice)
    return f"Draft model: {entry.name if entry else choice}"


def apply_draft(engine: Backend, choice: str) -> str:
    """Set how ``engine`` drafts ("off", "lookup" or a model id or path): a caveat to show where
    it cannot follow (a remote server), else "". A draft model that cannot be used raises a
    BasechatError in one line (the engine keeps drafting off)."""
    return engine.use_draft(draft_target(choice))
