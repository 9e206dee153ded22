"""``basechat models``: the catalog, downloads, checksums, files from disk and the Hub search."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import asdict, replace
from pathlib import Path

from app.cli.common import note
from app.errors import InputError


def cmd_models(args: argparse.Namespace) -> int:
    from app.models import catalog

    action = args.models_command
    if action == "list":
        _list_models(catalog.load_catalog(), args.json)
    elif action == "download":
        _download(catalog.require_entry(args.id))
    elif action == "verify":
        _verify(catalog.require_entry(args.id))
    elif action == "remove":
        _remove(catalog.require_entry(args.id))
    elif action == "add":
        _add(args.path)
    elif action == "search":
        _search(args)
    elif action == "get":
        _get(args.repo, args.file)
    return 0


def _search(args: argparse.Namespace) -> None:
    from app.models.search import search_hub

    results = search_hub(args.query, args.limit)
    if args.json:
        print(json.dumps([asdict(r) for r in results]))
        return
    if not results:
        print(f"No GGUF files found for '{args.query}'.")
    for r in results:
        print(f"{r.kind:<9} {r.size / 1e9:6.2f} GB  {r.repo}  {r.file}")


def _get(repo: str, file: str) -> None:
    """A search result, downloaded like a catalog model and remembered as one of yours."""
    from app.models.catalog import save_local_model
    from app.models.search import search_hub

    match = next((r for r in search_hub(repo, 20) if r.repo == repo and r.file == file), None)
    if match is None:
        raise InputError(f"No file '{file}' in {repo} on the Hub.")
    entry = match.entry()
    _download(entry)
    save_local_model(replace(entry, local_file=str(entry.local_path)))
    if match.kind == "instruct":
        note("note: this model looks instruction-tuned; Basechat is made for base models.")


def _list_models(entries, as_json: bool) -> None:
    from app.models.fit import fits_here
    from app.models.found import find_local_models

    fits = fits_here(entries)
    found = find_local_models()
    if as_json:
        rows = [{**asdict(e), **asdict(fits[e.id]), "installed": e.installed, "path": str(e.local_path)}
                for e in entries]  # fmt: skip
        rows += [{"id": f"found:{m.path}", "name": m.name, "found_by": m.app, "path": str(m.path),
                  "size": m.size, "instruct": m.instruct, "installed": True} for m in found]  # fmt: skip
        print(json.dumps(rows))
        return
    for e in entries:
        state = "installed" if e.installed else "available"
        fit = fits[e.id]
        here = f"{fit.fits}, ~{fit.est_tokens_per_s:g} tok/s"
        print(f"{e.id:<18} {state:<10} {e.size / 1e9:6.2f} GB  {here:<22} {e.name}")
    if found:
        print("\nFound on this computer (use one with 'basechat models add PATH'; it is not copied):")
    for m in found:
        kind = "instruct" if m.instruct else "base"
        print(f"  {m.app:<18} {kind:<8} {m.size / 1e9:6.2f} GB  {m.name}  {m.path}")


def _download(entry) -> None:
    import threading

    from tqdm import tqdm

    from app.models.download import download

    if entry.installed:
        print(f"{entry.id} is already installed at {entry.local_path}")
        return
    cancel = threading.Event()
    bar = tqdm(total=entry.size, unit="B", unit_scale=True, desc=entry.id, disable=not sys.stderr.isatty())

    def on_progress(p) -> None:
        bar.total = p.total
        bar.update(p.done - bar.n)

    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        path = download(entry, on_progress, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    print(f"Downloaded and verified {entry.id}: {path}")


def _verify(entry) -> None:
    from app.models.download import file_sha256

    if not entry.installed:
        raise InputError(f"{entry.id} is not installed.")
    expected = entry.sha256
    if expected is None:
        from app.models.download import hub_sha256

        expected = hub_sha256(entry)
    actual = file_sha256(entry.local_path)
    if actual != expected.lower():
        raise InputError(f"{entry.id}: sha256 mismatch ({actual[:12]}… expected {expected[:12]}…).")
    print(f"{entry.id}: OK (sha256 {actual})")


def _remove(entry) -> None:
    from app.models.catalog import forget_local_model

    if entry.local_file:
        forget_local_model(entry.id)
        print(f"Forgot {entry.id}; the file {entry.local_path} was left where it is.")
        return
    if not entry.installed:
        raise InputError(f"{entry.id} is not installed.")
    entry.local_path.unlink()
    print(f"Removed {entry.local_path}")


def _add(path: Path) -> None:
    from app.models.local import add_local_model

    entry, info, warning = add_local_model(path)
    print(f"Added {entry.id}: {info.name} ({info.architecture}, {entry.parameters}, {info.quantisation})")
    if warning:
        note(f"note: {warning}.")
