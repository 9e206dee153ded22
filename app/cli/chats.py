"""``basechat chats``: list, show, export, import, delete and search stored conversations."""

from __future__ import annotations

import argparse
import json

from app.cli.common import note, open_store, terminal_safe, write_out
from app.errors import InputError
from app.store.import_tree import shown_time


def cmd_chats(args: argparse.Namespace) -> int:

    store = open_store()
    action = args.chats_command
    if action == "list":
        _print_list(store.list_conversations(), args.json)
    elif action == "show":
        _print_conversation(store, args.id, args.json)
    elif action == "export":
        _export(store, args)
    elif action == "import":
        from app.store.chat_files import import_chat_file

        ids = import_chat_file(store, args.file, told=note)
        print(f"Imported {len(ids)} conversation(s): {', '.join(map(str, ids))}")
    elif action == "delete":
        store.delete(args.id)
        print(f"Deleted conversation {args.id}.")
    elif action == "search":
        for cid, title, text in store.search(args.query):
            print(terminal_safe(f"{cid:>5}  {title}: {' '.join(text.split())[:80]}"))
    return 0


def _print_list(conversations, as_json: bool) -> None:
    if as_json:
        rows = [{"id": c.id, "title": c.title, "created_at": c.created_at,
                 "updated_at": c.updated_at, "model": c.model, "template": c.template}
                for c in conversations]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False))
        return
    for c in conversations:
        print(terminal_safe(f"{c.id:>5}  {shown_time(c.updated_at)}  {c.title}"))


def _print_conversation(store, conversation_id: int, as_json: bool) -> None:
    from app.store import export

    if as_json:
        data = export.to_json(store, [conversation_id])["conversations"][0]
        print(json.dumps({"id": conversation_id, **data}, ensure_ascii=False))
    else:
        print(terminal_safe(export.markdown_of(store, conversation_id)), end="")


def _export(store, args: argparse.Namespace) -> None:
    from app.store import export

    if args.all:
        ids = [c.id for c in store.list_conversations()]
        text = json.dumps(export.to_json(store, ids), ensure_ascii=False, indent=1)
    elif args.id is None:
        raise InputError("Name a conversation ID, or use --all.")
    elif args.format == "json":
        text = json.dumps(export.to_json(store, [args.id]), ensure_ascii=False, indent=1)
    elif args.format == "prompt":
        text = export.to_prompt(store.get(args.id))
    elif args.format == "sillytavern":
        from app.store.sillytavern import to_chat_log

        text = to_chat_log(store, args.id)
    else:
        text = export.markdown_of(store, args.id)
    write_out(text, args.output)
