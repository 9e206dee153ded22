"""SillyTavern chat logs in and out (app/store/sillytavern.py): real logs from SillyTavern's own
repository and two in its current save shape (tests/data/sillytavern/SOURCES.md), imported into
the real SQLite history as a tree — swipes as versions — and exported back to lines that read
back to the same messages."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import InputError
from app.store.chat_files import import_chat_file
from app.store.chats import ChatStore
from app.store.sillytavern import from_chat_log, looks_like_chat_log, to_chat_log
from tests.conftest import ROOT
from tests.helpers import basechat

LOGS = ROOT / "tests" / "data" / "sillytavern"


@pytest.fixture
def store(tmp_path):
    store = ChatStore(tmp_path / "history.db")
    yield store
    store.close()


def _said(path) -> list[tuple[bool, str]]:
    """(is_user, shown text) of every message a log shows, system notices left out."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["is_user"], r["mes"]) for r in rows if "mes" in r and not r.get("is_system")]


@pytest.mark.parametrize("name", ["aqua", "darkness", "megumin", "seraphina-swipes", "group-river"])
def test_a_log_comes_in_as_its_messages_and_goes_back_out_the_same(store, name):
    path = LOGS / f"{name}.jsonl"
    told: list[str] = []
    (cid,) = import_chat_file(store, path, told.append)
    shown = store.path_slice(cid, 0)
    assert [(m.role == "user", m.text) for m in shown] == [(u, t.strip()) for u, t in _said(path)]
    out = to_chat_log(store, cid)
    back = [json.loads(line) for line in out.splitlines()]
    assert "character_name" in back[0] and all("mes" in row for row in back[1:])
    assert [(r["is_user"], r["mes"]) for r in back[1:]] == [(m.role == "user", m.text) for m in shown]
    assert told and told[-1].startswith(f"{name}.jsonl: {len(store.all_messages(cid))} messages")


def test_swipes_become_versions_with_the_shown_one_chosen_and_go_back_as_swipes(store):
    (cid,) = import_chat_file(store, LOGS / "seraphina-swipes.jsonl", lambda _: None)
    versions = store.alternatives(cid, 2)
    assert len(versions) == 3 and [v.chosen for v in versions] == [False, True, False]
    assert store.path_slice(cid, 0)[2].text.startswith("You're in my glade")
    assert len(store.alternatives(cid, 4)) == 2
    conversation = store.get(cid)
    assert store.settings(cid)["frame"]["user_name"] == "Mara" and "Seraphina" in conversation.title
    lines = [json.loads(line) for line in to_chat_log(store, cid).splitlines()]
    assert lines[3]["swipe_id"] == 1 and len(lines[3]["swipes"]) == 3
    assert lines[0]["user_name"] == "Mara" and lines[0]["character_name"] == "Seraphina"


def test_a_group_log_becomes_a_group_whose_replies_keep_their_speakers(store):
    told: list[str] = []
    (cid,) = import_chat_file(store, LOGS / "group-river.jsonl", told.append)
    assert "a group chat of Mira, Tomas" in told[-1] and "1 swipes kept as versions" in told[-1]
    rows = [json.loads(line) for line in (LOGS / "group-river.jsonl").read_text().splitlines()]
    said = [r["name"] for r in rows if "mes" in r and not r.get("is_system") and not r["is_user"]]
    replies = [m for m in store.path_slice(cid, 0) if m.role == "assistant"]
    assert [m.speaker for m in replies] == said and set(said) == {"Mira", "Tomas"}
    assert store.settings(cid)["frame"]["members"] == ["Mira", "Tomas"]
    back = [json.loads(line) for line in to_chat_log(store, cid).splitlines()]
    assert back[0]["character_name"] == "unused" and [r["name"] for r in back[1:] if not r["is_user"]] == said
    told.clear()
    import_chat_file(store, LOGS / "seraphina-swipes.jsonl", told.append)
    assert "left out 1 system or hidden message(s)" in told[-1]


def test_a_file_that_is_not_a_chat_log_says_what_it_looks_like(store, tmp_path):
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"spec": "chara_card_v2", "data": {"name": "X", "first_mes": "Hi"}}))
    with pytest.raises(InputError, match="looks like a character card"):
        import_chat_file(store, card, lambda _: None)
    png = tmp_path / "card.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(InputError, match="PNG image"):
        import_chat_file(store, png, lambda _: None)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        '{"user_name":"You","character_name":"A"}\n{"name":"A","is_user":false,"mes":"Hi"}\nnot json\n'
    )
    with pytest.raises(InputError, match="line 3: not a JSON object"):
        import_chat_file(store, broken, lambda _: None)
    assert store.list_conversations() == []  # nothing of a refused file is stored


def test_the_cli_imports_a_log_and_exports_it_back(tmp_path):
    def run(*args: str):
        return basechat("--data-dir", str(tmp_path / "data"), "chats", *args)

    result = run("import", str(LOGS / "seraphina-swipes.jsonl"))
    assert result.returncode == 0, result.stderr
    assert "8 messages, 3 swipes kept as versions" in result.stderr
    cid = result.stdout.split(":")[-1].strip()
    out = tmp_path / "back.jsonl"
    exported = run("export", cid, "--format", "sillytavern", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert looks_like_chat_log(out.read_text(encoding="utf-8"))
    refused = run("import", str(ROOT / "README.md"))
    assert refused.returncode == 1 and "looks like plain text" in refused.stderr
    assert "Traceback" not in refused.stderr


line = st.dictionaries(
    st.sampled_from(["name", "is_user", "is_system", "mes", "swipes", "swipe_id", "send_date", "extra"]),
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.lists(st.text(max_size=10) | st.integers(), max_size=4),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(line, min_size=1, max_size=8))
def test_any_json_lines_import_or_fail_with_one_line(rows):
    text = "\n".join(json.dumps(row) for row in [{"character_name": "A"}, *rows])
    try:
        imported = from_chat_log(text, "fuzz.jsonl")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    messages = imported.export["conversations"][0]["messages"]
    assert messages and all(isinstance(m["text"], str) and m["created_at"] >= 0 for m in messages)
    from app.store.import_tree import checked_conversation

    checked_conversation(imported.export["conversations"][0], 1)  # the tree the store would take


@pytest.mark.model
def test_the_window_imports_a_log_and_opens_it(qtbot, window):
    window.chats.import_chats(str(LOGS / "seraphina-swipes.jsonl"))
    assert "3 swipes kept as versions" in window.statusBar().currentMessage()
    assert "Seraphina" in window.store.get(window.conversation_id).title
    assert window.template.assistant_name == "Seraphina" and window.template.user_name == "Mara"
    window.chats.import_chats(str(ROOT / "README.md"))
    assert "looks like plain text" in window.statusBar().currentMessage()
