"""`basechat chat` stores what it says; `basechat chats …` lists, shows, exports and imports it."""

from __future__ import annotations

import json

import pytest

from tests.helpers import assert_one_line_error, basechat

pytestmark = pytest.mark.model


def run(data_dir, *args, stdin=None):
    return basechat("--data-dir", str(data_dir), *args, stdin=stdin)


def test_terminal_chats_are_stored_listed_shown_and_resumed(data_dir):
    result = run(data_dir, "chat", "--temperature", "0", stdin="My name is Ann.\nWhat is 2+2?\n")
    assert result.returncode == 0, result.stderr
    [listed] = json.loads(run(data_dir, "chats", "list", "--json").stdout)
    assert listed["title"] == "My name is Ann." and listed["model"] == "gemma3-270m"
    shown = json.loads(run(data_dir, "chats", "show", str(listed["id"]), "--json").stdout)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    assert all(m["status"] == "done" for m in shown["messages"])
    assert shown["settings"]["sampling"]["temperature"] == 0.0

    resumed = run(data_dir, "chat", "--resume", str(listed["id"]), stdin="Thanks!\n")
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(run(data_dir, "chats", "show", str(listed["id"]), "--json").stdout)
    assert len(again["messages"]) == 6 and again["messages"][4]["text"] == "Thanks!"


def test_export_import_delete_and_search(data_dir, tmp_path):
    run(data_dir, "chat", "--temperature", "0", stdin="Tell me about penguins.\n")
    cid = json.loads(run(data_dir, "chats", "list", "--json").stdout)[0]["id"]
    markdown = tmp_path / "chat.md"
    assert run(data_dir, "chats", "export", str(cid), "-o", str(markdown)).returncode == 0
    assert markdown.read_text().startswith("# Tell me about penguins.")
    exported = tmp_path / "chat.json"
    run(data_dir, "chats", "export", str(cid), "--format", "json", "-o", str(exported))
    imported = run(data_dir, "chats", "import", str(exported))
    assert imported.returncode == 0 and "Imported 1" in imported.stdout
    assert len(json.loads(run(data_dir, "chats", "list", "--json").stdout)) == 2
    hits = run(data_dir, "chats", "search", "penguins").stdout.splitlines()
    assert {line.split()[0] for line in hits} == {str(cid), str(cid + 1)}
    everything = json.loads(run(data_dir, "chats", "export", "--all", "--format", "json").stdout)
    assert len(everything["conversations"]) == 2
    assert run(data_dir, "chats", "delete", str(cid)).returncode == 0
    assert len(json.loads(run(data_dir, "chats", "list", "--json").stdout)) == 1


def test_bad_chat_inputs_are_one_line(data_dir, tmp_path):
    assert_one_line_error(run(data_dir, "chats", "show", "999"), "No conversation 999")
    assert_one_line_error(run(data_dir, "chat", "--resume", "999"), "No conversation 999")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert_one_line_error(run(data_dir, "chats", "import", str(broken)), "not valid JSON")
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({"format": "basechat.conversations", "version": 7, "conversations": []}))
    assert_one_line_error(run(data_dir, "chats", "import", str(newer)), "newer Basechat")


def test_a_corrupt_history_file_is_reported_and_set_aside(data_dir):
    (data_dir / "basechat.db").write_bytes(b"garbage" * 1000)
    result = run(data_dir, "chats", "list")
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1 and "kept as basechat.db.broken-" in result.stderr
    assert list(data_dir.glob("basechat.db.broken-*"))
