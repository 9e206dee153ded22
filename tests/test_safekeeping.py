"""Never lose what the person made: a full disk, a killed save, a long chat, a malformed export, a
hostile data file or server. Each test drives the real command, the real SQLite file or the real
HTTP server, and each was seen failing on the code before its fix."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from app.errors import InputError
from app.store import ChatStore
from app.store.db import DB_NAME
from app.store.export import import_json, markdown_of, to_json
from tests.conftest import ROOT
from tests.helpers import assert_one_line_error, basechat

# -- a full disk ---------------------------------------------------------------------------------

FULL_AT = 4096  # bytes: a file may not grow past this in the child process (RLIMIT_FSIZE)


def basechat_on_a_full_disk(*args: str, limit: int = FULL_AT) -> subprocess.CompletedProcess:
    """The real command in a child process whose files cannot grow past ``limit`` bytes: each write
    past it fails with EFBIG, as on a full disk, and no root or tmpfs is needed. (Python ignores
    SIGXFSZ, so the write fails instead of the process being killed.)"""

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT, preexec_fn=limited)  # fmt: skip


def _character(data: Path) -> Path:
    """A person's own 5.5 KB character, and a log already past the limit (so logging fails too)."""
    folder = data / "templates"
    folder.mkdir(parents=True)
    preamble = "Mira keeps the lighthouse at Saltmere. " * 140
    path = folder / "mira.toml"
    path.write_text(tomli_w.dumps({"name": "mira", "preamble": preamble, "assistant_name": "Mira"}))
    (data / "basechat.log").write_text("x" * (FULL_AT + 10))
    return path


def _book(tmp_path: Path) -> Path:
    entries = {
        str(i): {"key": [f"place{i}"], "content": f"Place {i} is a harbour town. " * 4} for i in range(20)
    }
    path = tmp_path / "book.json"
    path.write_text(json.dumps({"entries": entries}))
    return path


def test_a_full_disk_leaves_a_character_whole_when_its_lorebook_is_added(tmp_path):
    data = tmp_path / "data"
    character = _character(data)
    before = character.read_bytes()
    result = basechat_on_a_full_disk(
        "--data-dir", str(data), "templates", "lore", "mira", str(_book(tmp_path))
    )
    assert_one_line_error(result, "Cannot save the template")
    assert "Logging error" not in result.stderr
    assert character.read_bytes() == before
    assert sorted(p.name for p in (data / "templates").iterdir()) == ["mira.toml"]  # no temporary left
    listed = basechat("--data-dir", str(data), "templates", "list", "--json")
    assert listed.returncode == 0 and "mira" in {row["name"] for row in json.loads(listed.stdout)}


def test_a_full_disk_during_an_import_leaves_no_empty_template(tmp_path):
    data = tmp_path / "data"
    _character(data)
    card = tmp_path / "chat.json"
    card.write_text(
        json.dumps({"name": "Chat", "description": "A long description. " * 400, "first_mes": "Hi"})
    )
    result = basechat_on_a_full_disk("--data-dir", str(data), "templates", "import", str(card))
    assert_one_line_error(result, "Cannot save the template")
    assert sorted(p.name for p in (data / "templates").iterdir()) == ["mira.toml"]
    shown = basechat("--data-dir", str(data), "templates", "show", "mira")
    assert shown.returncode == 0 and "lighthouse" in shown.stdout, shown.stderr


def test_a_full_disk_keeps_an_export_file_as_it_was(tmp_path):
    data = tmp_path / "data"
    _character(data)
    out = tmp_path / "mira-export.toml"
    out.write_text("an earlier export\n")
    result = basechat_on_a_full_disk("--data-dir", str(data), "templates", "export", "mira", "-o", str(out))
    assert_one_line_error(result, "Cannot write")
    assert out.read_text() == "an earlier export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "mira-export.toml"]


# -- KV states cut short -------------------------------------------------------------------------


def _kv_store(folder: Path, cap: int = 1 << 30):
    from app.engine.kvstate import KVStateStore

    return KVStateStore(folder, {"model": "m", "n_ctx": 512}, disk_cap=cap)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_save_cut_short_by_a_killed_process_is_removed_at_start(tmp_path):
    tmp_path.joinpath("kv").mkdir()
    dead = tmp_path / "kv" / f".{'a' * 32}.kv.{_dead_pid()}.1.tmp"
    dead.write_bytes(b"\0" * 100_000)
    live = tmp_path / "kv" / f".{'b' * 32}.kv.{os.getpid()}.1.tmp"  # a save in progress: it stays
    live.write_bytes(b"\0" * 10)
    _kv_store(tmp_path / "kv").close()
    assert not dead.exists() and live.exists()


def test_saves_in_progress_count_against_the_disk_cap(tmp_path):
    folder = tmp_path / "kv"
    folder.mkdir()
    (folder / f".{'b' * 32}.kv.{os.getpid()}.1.tmp").write_bytes(b"\0" * 5000)
    states = _kv_store(folder, cap=6000)
    states.save([1, 2, 3], b"\1" * 2000)
    states.flush()
    states.close()
    assert list(folder.glob("*.kv")) == []  # 2,000 + the 5,000 being written elsewhere > 6,000


def test_a_kv_save_that_fails_leaves_no_file_behind(tmp_path):
    """In a child process with a 4 KB file limit a 20 KB state cannot be written."""
    script = (
        "import sys, resource; from pathlib import Path; from app.engine.kvstate import KVStateStore\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "s = KVStateStore(Path(sys.argv[1]), {'model': 'm', 'n_ctx': 512})\n"
        "s.save([1, 2, 3], b'x' * 20000); s.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "kv")], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "kv").iterdir()) == []


# -- long histories ------------------------------------------------------------------------------


def _long_chat(store: ChatStore, turns: int) -> int:
    """A chat of ``turns`` messages, one chain, stored as an import stores it (fast)."""
    now = time.time()
    messages = [{"id": i, "parent": i - 1 if i else None, "position": i, "role": ("user", "assistant")[i % 2],
                 "text": f"turn {i}", "status": "done", "created_at": now, "chosen": True}
                for i in range(turns)]  # fmt: skip
    export = {
        "format": "basechat.conversations",
        "version": 2,
        "conversations": [
            {"title": "Long", "created_at": now, "updated_at": now, "template": "chat", "messages": messages}
        ],
    }
    [cid] = import_json(store, export)
    return cid


def test_a_chat_of_5000_turns_deletes(tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    keep = _long_chat(store, 3)
    cid = _long_chat(store, 5000)
    store.delete(cid)
    assert [c.id for c in store.list_conversations()] == [keep]
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3
    assert store.search("turn") and all(found[0] == keep for found in store.search("turn"))


def test_a_branch_near_the_root_of_a_long_chat_deletes(tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    cid = _long_chat(store, 3000)
    second = store.get(cid).messages[1]
    store.delete_branch(second.id)
    assert [m.text for m in store.get(cid).messages] == ["turn 0"]
    assert store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1


def test_a_chat_is_deleted_through_the_cli_in_one_line(tmp_path):
    store = ChatStore(tmp_path / DB_NAME)
    cid = _long_chat(store, 2400)
    store.close()
    result = basechat("--data-dir", str(tmp_path), "chats", "delete", str(cid))
    assert result.returncode == 0 and result.stdout.strip() == f"Deleted conversation {cid}.", result.stderr


def _full_scans(store: ChatStore, work) -> list[str]:
    """Every statement ``work`` runs on the store whose plan reads the messages table whole: a
    scan of it or of one of its indexes ("SCAN c USING COVERING INDEX" reads every entry), or a
    temporary index built over all of it first (SQLite's "automatic index")."""
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    try:
        work()
    finally:
        store.db.set_trace_callback(None)
    found = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH", "DELETE", "UPDATE")):
            continue
        plan = [row[-1] for row in store.db.execute(f"EXPLAIN QUERY PLAN {sql}")]
        whole = [line for line in plan if re.match(r"SCAN (m|c|s|messages)\b", line) or "AUTOMATIC" in line]
        found += [f"{line}  <- {sql[:80]}" for line in whole]
    return found


def test_showing_and_deleting_read_by_index_never_the_whole_history(tmp_path):
    """Counting branches asked, for every message, whether any stored message hangs from it: a
    scan of the whole history each time (10 s for a 2,000-turn chat among 100k messages)."""
    store = ChatStore(tmp_path / "chats.db")
    _long_chat(store, 30)
    cid = _long_chat(store, 20)
    assert _full_scans(store, lambda: markdown_of(store, cid)) == []
    assert _full_scans(store, lambda: store.delete_branch(store.get(cid).messages[5].id)) == []
    assert _full_scans(store, lambda: store.delete(cid)) == []


def test_an_older_history_gets_the_parent_index(tmp_path):
    from app.store.migrations import MIGRATIONS

    shutil.copy(ROOT / "tests" / "data" / "history-v2.sqlite", tmp_path / "chats.db")
    store = ChatStore(tmp_path / "chats.db")
    indexes = {row[1] for row in store.db.execute("PRAGMA index_list(messages)")}
    assert "messages_by_parent_id" in indexes
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


# -- exports checked as trees ----------------------------------------------------------------------


def _export(messages: list[dict], **conversation) -> dict:
    now = time.time()
    base = {"title": "T", "created_at": now, "updated_at": now, "template": "chat", "messages": messages}
    return {"format": "basechat.conversations", "version": 2, "conversations": [base | conversation]}


def _m(mid, parent, position, chosen=True, role=None, **extra) -> dict:
    role = role or ("user", "assistant")[position % 2]
    return {"id": mid, "parent": parent, "position": position, "role": role, "text": f"m{mid}",
            "status": "done", "created_at": time.time(), "chosen": chosen} | extra  # fmt: skip


MALFORMED = {
    "two chosen siblings": (
        [_m(1, None, 0), _m(2, 1, 1), _m(3, 1, 1)],
        {},
        "2 chosen messages under message 1",
    ),
    "two chosen roots": ([_m(1, None, 0), _m(2, None, 0)], {}, "2 chosen messages under the top"),
    "a duplicate id": ([_m(1, None, 0), _m(2, 1, 1), _m(2, 1, 1, chosen=False)], {}, "the id of an earlier"),
    "a missing parent": ([_m(1, None, 0), _m(2, 7, 1)], {}, "hangs from 7"),
    "a parent after its child": ([_m(2, 1, 1), _m(1, None, 0)], {}, "hangs from 1"),
    "a cycle": ([_m(1, 2, 0), _m(2, 1, 1)], {}, "hangs from 2"),
    "settings that are text": ([_m(1, None, 0)], {"settings": "temperature=2"}, "settings that are not"),
    "a time past the calendar": ([_m(1, None, 0)], {"created_at": 1e300}, "between 1970 and 9999"),
    "a message time past it": ([_m(1, None, 0, created_at=1e300)], {}, "between 1970 and 9999"),
    "a not-a-number time": ([_m(1, None, 0, created_at=float("nan"))], {}, "between 1970 and 9999"),
    "tokens that are text": ([_m(1, None, 0, tokens="1 2 3")], {}, "malformed tokens"),
    "a role no one plays": ([_m(1, None, 0, role="system")], {}, "needs a role"),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_an_export_that_is_not_a_tree_is_refused_and_nothing_is_stored(tmp_path, case):
    messages, conversation, fragment = MALFORMED[case]
    store = ChatStore(tmp_path / "chats.db")
    with pytest.raises(InputError, match="conversation 1") as raised:
        import_json(store, json.loads(json.dumps(_export(messages, **conversation), allow_nan=True)))
    assert fragment in str(raised.value) and "\n" not in str(raised.value)
    assert (
        store.list_conversations() == []
        and store.db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0
    )


def test_a_branch_with_none_chosen_shows_its_newest_and_says_so(tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    told: list[str] = []
    messages = [_m(1, None, 0), _m(2, 1, 1, chosen=False), _m(3, 1, 1, chosen=False)]
    [cid] = import_json(store, _export(messages), told=told.append)
    assert [m.text for m in store.get(cid).messages] == ["m1", "m3"]
    assert told == ["conversation 1: no message under message 1 was chosen; showing the newest."]


def test_the_cli_refuses_a_malformed_export_in_one_line(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(_export([_m(1, None, 0), _m(2, 1, 1), _m(3, 1, 1)])))
    result = basechat("--data-dir", str(tmp_path / "data"), "chats", "import", str(path))
    assert_one_line_error(result, "2 chosen messages under message 1")
    listed = basechat("--data-dir", str(tmp_path / "data"), "chats", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_times_and_settings_stored_by_an_older_import_still_show(tmp_path):
    """A history that took ``created_at: 1e300`` or text settings before these checks still shows."""
    store = ChatStore(tmp_path / DB_NAME)
    cid = _long_chat(store, 2)
    store.db.execute("UPDATE conversations SET created_at = 1e300, updated_at = 1e300, settings = '\"x\"'")
    store.db.execute("UPDATE messages SET created_at = 1e300")
    store.close()
    for command in (["chats", "show", str(cid)], ["chats", "list"]):
        result = basechat("--data-dir", str(tmp_path), *command)
        assert result.returncode == 0 and "unknown time" in result.stdout, result.stderr
    assert ChatStore(tmp_path / DB_NAME).settings(cid) == {}


def test_a_real_export_round_trips_through_the_checks(tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    cid = _long_chat(store, 6)
    store.edit_user_message(cid, 2, "an edit")  # a second branch
    store.edit_user_message(cid, 0, "a new start")  # a second root
    exported = to_json(store, [cid])
    [again] = import_json(store, json.loads(json.dumps(exported)))
    assert [m.text for m in store.get(again).messages] == [m.text for m in store.get(cid).messages]
    assert store.branch_count(again) == store.branch_count(cid) == 3


# -- lorebook patterns ---------------------------------------------------------------------------


def test_pattern_keys_past_the_messages_budget_are_skipped(monkeypatch, caplog):
    from app.scaffold import lorebook

    slow = r"/(a|aa)+$x/"
    entries = [lorebook.LoreEntry(f"slow {i}", keys=(slow,)) for i in range(200)]
    book = lorebook.Lorebook((*entries, lorebook.LoreEntry("Found.", keys=("/drag+on/",))))
    text = "a" * 5000 + " dragon"
    monkeypatch.setattr(lorebook, "PATTERN_BUDGET_SECONDS", 0.0)
    assert lorebook.scan(book, [text]).fired == ()
    assert "201 pattern keys skipped" in caplog.text
    monkeypatch.setattr(lorebook, "PATTERN_BUDGET_SECONDS", 30.0)
    fast = lorebook.Lorebook((lorebook.LoreEntry("Found.", keys=("/drag+on/",)),))
    assert [f.entry.content for f in lorebook.scan(fast, [text]).fired] == ["Found."]


# -- paths named by data files ---------------------------------------------------------------------


def test_a_registry_entry_naming_a_file_outside_cannot_delete_it(tmp_path):
    victim = tmp_path / "victim.gguf"
    victim.write_bytes(b"GGUF keep me")
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    entry = {"id": "evil", "name": "Evil", "parameters": "1B", "quantisation": "Q4", "repo": "x/y",
             "file": "../../victim.gguf", "size": 12, "license": "mit", "context_length": 2048,
             "min_ram_gb": 1, "template": "chat"}  # fmt: skip
    (data / "models" / "local.json").write_text(json.dumps([entry]))
    result = basechat("--data-dir", str(data), "models", "remove", "evil")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert victim.read_bytes() == b"GGUF keep me"


def test_one_symlink_loop_in_another_tools_folder_is_skipped(tmp_path, tiny_gguf):
    from app.models.found import find_local_models

    folder = tmp_path / ".lmstudio" / "models" / "someone"
    folder.mkdir(parents=True)
    (folder / "loop.gguf").symlink_to(folder / "loop.gguf")
    (folder / "tiny.gguf").write_bytes(tiny_gguf)
    found = find_local_models(home=tmp_path, hf_cache=tmp_path / "no-cache")
    assert [m.path.name for m in found] == ["tiny.gguf"]


# -- what servers send ---------------------------------------------------------------------------


@pytest.fixture
def fault():
    from tests.servers import FaultServer

    server = FaultServer()
    yield server
    server.close()


def test_a_servers_error_reaches_the_terminal_short_and_without_escapes(fault):
    fault.mode = "hostile500"
    result = basechat("ask", "--server", fault.url, "Hi")
    error = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and error.startswith("basechat: error:") and "HTTP 500" in error
    assert "red alert" in error and len(error) < 500
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", ["props_not_object", "props_negative_ctx"])
def test_a_malformed_props_is_not_taken_as_it_is(fault, mode):
    from app.engine.base import ServerConfig
    from app.engine.remote import RemoteEngine

    fault.mode = mode
    engine = RemoteEngine(ServerConfig(fault.url))
    assert engine.n_ctx == 2048  # unknown: assumed, never -50


# -- files that keep their meaning -------------------------------------------------------------------


def _fires(book, text: str) -> list[str]:
    from app.scaffold.lorebook import scan

    return [fired.entry.content for fired in scan(book, [text]).fired]


def test_a_list_shaped_book_keeps_its_keys_and_fires():
    """A card's ``character_book`` shared on its own: entries are a list with ``keys``."""
    from app.scaffold.import_check import import_lorebook

    book = {"name": "Saltmere", "entries": [
        {"keys": ["lighthouse", "灯台"], "content": "The lighthouse is red.", "enabled": True,
         "insertion_order": 10, "extensions": {}},
        {"keys": ["harbour"], "content": "The harbour freezes.", "enabled": True, "insertion_order": 20},
    ]}  # fmt: skip
    imported, _notes = import_lorebook(json.dumps(book, ensure_ascii=False).encode(), "book.json")
    assert [e.keys for e in imported.entries] == [("lighthouse", "灯台"), ("harbour",)]
    assert _fires(imported, "Is the 灯台 far?") == ["The lighthouse is red."]


def test_basechats_own_exported_book_imports_on_its_own_and_fires(tmp_path):
    from app.scaffold.card_export import template_to_card
    from app.scaffold.import_check import import_lorebook
    from app.scaffold.lorebook import Lorebook, LoreEntry
    from app.scaffold.template import Template

    book = Lorebook((LoreEntry("Vex is a red dragon.", keys=("dragon", "wyrm"), secondary_keys=("red",)),))
    card = template_to_card(Template("t", "A frame.", lorebook=book))
    exported = json.dumps(card["data"]["character_book"]).encode()
    again, _notes = import_lorebook(exported, "exported-book.json")
    assert again.entries[0].keys == ("dragon", "wyrm") and again.entries[0].secondary_keys == ("red",)
    assert _fires(again, "a red wyrm") == ["Vex is a red dragon."] and _fires(again, "a blue wyrm") == []


def test_a_png_card_exports_as_a_png_with_its_picture(tmp_path):
    from app.scaffold.card_export import card_png
    from app.scaffold.importers import card_from_png

    picture = card_png({"name": "placeholder"})  # a real PNG with a card of its own inside
    data = tmp_path / "data"
    png = tmp_path / "mira.png"
    png.write_bytes(card_png({"spec": "chara_card_v2", "spec_version": "2.0", "data": {
        "name": "Mira", "description": "Mira keeps the lighthouse.", "first_mes": "Hello.",
        "mes_example": ""}}, picture))  # fmt: skip
    assert basechat("--data-dir", str(data), "templates", "import", str(png)).returncode == 0
    out = tmp_path / "out.png"
    result = basechat(
        "--data-dir", str(data), "templates", "export", "mira", "--format", "card", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    written = out.read_bytes()
    assert written.startswith(b"\x89PNG\r\n\x1a\n")
    assert card_from_png(written, "out.png")["data"]["name"] == "Mira"
    assert _image_chunks(written) == _image_chunks(picture)  # the same picture
    assert written.count(b"tEXtchara") == 1


def _image_chunks(png: bytes) -> list[bytes]:
    """Every chunk of a PNG but its text chunks."""
    import struct

    chunks, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        chunk = png[offset : offset + 12 + length]
        chunks += [chunk] if chunk[4:8] != b"tEXt" else []
        offset += 12 + length
    return chunks


def test_a_card_without_spec_imports_as_v1(tmp_path):
    card = tmp_path / "ranger.json"
    card.write_text(json.dumps({"name": "Ranger", "description": "A ranger of the north.",
                                "personality": "quiet", "scenario": "A camp at night."}))  # fmt: skip
    result = basechat("--data-dir", str(tmp_path / "data"), "templates", "import", str(card))
    assert result.returncode == 0, result.stderr
    assert "ranger" in result.stdout


def test_a_name_in_another_script_keeps_its_letters(tmp_path):
    data = tmp_path / "data"
    for name in ("Гермиона", "Гарри"):
        card = tmp_path / "card.json"
        card.write_text(json.dumps({"name": name, "description": "Волшебница.", "first_mes": "Привет."}))
        result = basechat("--data-dir", str(data), "templates", "import", str(card))
        assert result.returncode == 0, result.stderr
    assert sorted(p.stem for p in (data / "templates").glob("*.toml")) == ["гарри", "гермиона"]


def test_a_kobold_placeholder_never_reaches_the_model():
    from app.scaffold.imports import import_bytes

    scenario = {"scenarioname": "Tavern", "memory": "You meet ${Name of your rival} in a tavern.",
                "prompt": "The door opens.", "chatname": "You", "chatopponent": "Barkeep"}  # fmt: skip
    imported = import_bytes(json.dumps(scenario).encode(), "tavern.json")
    assert "${" not in imported.template.preamble and "tavern" in imported.template.preamble
    assert any("${Name of your rival}" in note for note in imported.notes)


def test_an_instruct_preset_with_one_label_names_both_speakers():
    """SillyTavern's WizardLM preset: no input sequence, "### Response:" for the output."""
    from app.scaffold.imports import import_bytes

    preset = {"name": "WizardLM", "input_sequence": "", "output_sequence": "### Response:",
              "system_sequence": "", "stop_sequence": "", "wrap": True}  # fmt: skip
    imported = import_bytes(json.dumps(preset).encode(), "WizardLM.json")
    assert (imported.template.user_name, imported.template.assistant_name) == ("User", "Assistant")
    alpaca = preset | {"input_sequence": "### Instruction:", "output_sequence": "### Response:"}
    both = import_bytes(json.dumps(alpaca).encode(), "Alpaca.json").template
    assert (both.user_name, both.assistant_name) == ("### Instruction", "### Response")


@pytest.mark.model
def test_a_long_persona_is_named_as_the_frame_not_the_message(tmp_path, model_path):
    result = basechat("--data-dir", str(tmp_path), "prompt", "--persona", "I keep bees. " * 10_000, "Hello")
    assert_one_line_error(result, "The frame is too long")


def test_a_template_save_cut_short_is_swept_at_the_next_start(tmp_path):
    data = tmp_path / "data"
    character = _character(data)
    cut = data / "templates" / f".mira.toml.{_dead_pid()}.1.tmp"
    cut.write_text("half a templ")
    result = basechat("--data-dir", str(data), "templates", "list")
    assert result.returncode == 0 and not cut.exists() and character.exists()


def test_a_file_written_through_a_link_replaces_the_file_not_the_link(tmp_path):
    from app.paths import write_atomically

    target = tmp_path / "shared" / "machine.json"
    target.parent.mkdir()
    target.write_text("{}")
    link = tmp_path / "machine.json"
    link.symlink_to(target)
    write_atomically(link, '{"speed": 1}')
    assert link.is_symlink() and target.read_text() == '{"speed": 1}'
