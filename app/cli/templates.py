"""``basechat templates``: list, show, import (cards, presets, prompt files), export and delete."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from app.cli.common import note, write_out


def cmd_templates(args: argparse.Namespace) -> int:
    from app.scaffold import template as templates

    action = args.templates_command
    if action == "list":
        _list_templates(args.json)
    elif action == "show":
        sys.stdout.write(templates.template_to_toml(templates.load_template(args.name)))
    elif action == "import":
        _import_template(args.file)
    elif action == "lore":
        _add_lorebook(args.name, args.file)
    elif action == "export":
        _export_template(args)
    elif action == "delete":
        path = templates.delete_user_template(args.name)
        print(f"Deleted template '{args.name}' ({path}).")
    return 0


def _list_templates(as_json: bool) -> None:
    from app.scaffold.template import available_templates, load_template, user_templates_dir

    rows: list[dict] = []
    for name in available_templates():
        template = load_template(name)
        own = template.source is not None and template.source.parent == user_templates_dir()
        rows.append({
            "name": name, "title": template.title or name, "description": template.description,
            "speakers": list(template.speaker_names), "own": own, "path": str(template.source),
        })  # fmt: skip
    if as_json:
        print(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        mark = "yours" if row["own"] else "shipped"
        print(f"{row['name']:<20} {mark:<8} {' / '.join(row['speakers']):<24} {row['description'][:60]}")


def _import_template(paths: list[Path]) -> None:
    from app.scaffold.importers import save_imported
    from app.scaffold.imports import import_file
    from app.scaffold.preset_import import combine

    imported = combine([import_file(path) for path in paths])
    template, saved = save_imported(imported)
    renamed = (
        f" (renamed: '{imported.template.name}' was taken)" if template.name != imported.template.name else ""
    )
    print(f"Imported {imported.kind} as template '{template.name}'{renamed}: {saved}")
    for line in imported.notes:
        note(f"note: {line}.")


def _add_lorebook(name: str, path: Path) -> None:
    """The file's lorebook becomes the template's (saved among the person's own templates)."""
    from dataclasses import replace

    from app.errors import TemplateError
    from app.scaffold.import_check import import_lorebook
    from app.scaffold.lorebook import add_entries, entry_summary
    from app.scaffold.template import load_template, save_user_template

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TemplateError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    book, notes = import_lorebook(data, path.name)
    template = load_template(name)
    saved = save_user_template(replace(template, lorebook=add_entries(template.lorebook, book)))
    print(f"Added {len(book.entries)} lorebook entries to '{name}': {saved}")
    for entry in book.entries:
        print(f"  {entry_summary(entry)}")
    for line in notes:
        note(f"note: {line}.")


def _export_template(args: argparse.Namespace) -> None:
    from app.scaffold.card_export import template_to_card
    from app.scaffold.template import load_template, template_to_toml

    template = load_template(args.name)
    if args.format == "card" and args.output and args.output.suffix.lower() == ".png":
        _write_png_card(template, args.output)
        return
    if args.format == "card":
        text = json.dumps(template_to_card(template), ensure_ascii=False, indent=1)
    else:
        text = template_to_toml(template)
    write_out(text, args.output)


def _write_png_card(template, output: Path) -> None:
    """A ``.png`` output is a PNG card: the character's picture with the card inside."""
    from app.errors import InputError
    from app.paths import write_atomically
    from app.scaffold.card_export import card_png, template_to_card
    from app.scaffold.template import avatars_dir

    picture = b""
    if template.avatar:
        with contextlib.suppress(OSError):
            picture = (avatars_dir() / template.avatar).read_bytes()
    try:
        write_atomically(output, card_png(template_to_card(template), picture))
    except OSError as exc:
        raise InputError(f"Cannot write {output}: {exc.strerror or exc}.") from None
