"""The conversation tree in real SQLite: branches keep their turns, deletion, the schema upgrade."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.errors import InputError
from app.store import ChatStore
from app.store.export import import_json, to_json, to_markdown

FIXTURE = Path(__file__).parent / "data" / "history-v2.sqlite"


@pytest.fixture
def store(tmp_path):
    opened = ChatStore(tmp_path / "chats.db")
    yield opened
    opened.close()


def four_turns(store) -> int:
    cid = store.create_conversation(model="m")
    for user, reply in (("q1", "a1"), ("q2", "a2")):
        store.add_user_message(cid, user)
        store.finish_reply(store.begin_reply(cid, "m"), reply, raw=" " + reply)
    return cid


def texts(store, cid) -> list[str]:
    return [m.text for m in store.get(cid).messages]


def test_editing_turn_two_of_four_keeps_the_old_branch_with_its_later_turns(store):
    cid = four_turns(store)
    store.edit_user_message(cid, 2, "q2 edited")
    assert texts(store, cid) == ["q1", "a1", "q2 edited"]
    store.finish_reply(store.begin_reply(cid, "m"), "a2 new")
    assert texts(store, cid) == ["q1", "a1", "q2 edited", "a2 new"]
    shown = store.get(cid).messages[2]
    assert (shown.alternative, shown.alternatives) == (1, 2)
    store.choose_alternative(cid, 2, 0)  # back to the old branch: its answer is still there
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    store.choose_alternative(cid, 2, 1)
    assert texts(store, cid) == ["q1", "a1", "q2 edited", "a2 new"]


def test_regenerating_an_earlier_reply_branches_and_switching_restores_the_path_below(store):
    cid = four_turns(store)
    store.finish_reply(store.begin_reply(cid, "m", position=1), "a1 again")
    assert texts(store, cid) == ["q1", "a1 again"]
    store.add_user_message(cid, "q2 on the new branch")
    store.choose_alternative(cid, 1, 0)
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    store.choose_alternative(cid, 1, 1)
    assert texts(store, cid) == ["q1", "a1 again", "q2 on the new branch"]


def test_choosing_a_deep_message_shows_the_whole_path_to_it(store):
    cid = four_turns(store)
    deep = store.get(cid).messages[3].id
    store.finish_reply(store.begin_reply(cid, "m", position=1), "a1 again")
    store.choose(deep)
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]


def test_deleting_a_branch_removes_its_subtree_and_shows_a_sibling(store):
    cid = four_turns(store)
    store.finish_reply(store.begin_reply(cid, "m", position=1), "a1 again")
    old = store.alternatives(cid, 1)[0].id
    store.delete_branch(store.get(cid).messages[1].id)
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    store.delete_branch(old)
    assert texts(store, cid) == ["q1"]
    assert len(store.tree(cid)) == 1
    with pytest.raises(InputError):
        store.delete_branch(old)


def test_the_tree_lists_every_branch_and_marks_the_shown_path(store):
    cid = four_turns(store)
    store.finish_reply(store.begin_reply(cid, "m", position=3), "a2 again")
    nodes = store.tree(cid)
    assert len(nodes) == 5
    assert [n.text for n in nodes if n.on_path] == ["q1", "a1", "q2", "a2 again"]
    parent = {n.id: n.parent_id for n in nodes}
    a2, again = (n for n in nodes if n.text.startswith("a2"))
    assert parent[a2.id] == parent[again.id] is not None


def test_the_old_schema_upgrades_without_loss(tmp_path):
    """A database written by the code before the tree (schema 2): alternatives become siblings,
    the chosen thread becomes the shown path, and nothing is lost."""
    path = tmp_path / "chats.db"
    shutil.copy(FIXTURE, path)
    store = ChatStore(path)
    first, second = sorted(store.list_conversations(), key=lambda c: c.id)
    assert texts(store, first.id) == ["What is the capital of France?", "Paris.", "And of Italy?", "Rome."]
    assert store.get(first.id).messages[1].tokens == (9079, 236761)
    assert [m.text for m in store.alternatives(first.id, 1)] == ["Paris.", "It is Paris."]
    store.choose_alternative(first.id, 1, 1)
    assert texts(store, first.id) == ["What is the capital of France?", "It is Paris."]
    assert [(m.text, m.status) for m in store.get(second.id).messages] == [
        ("hello there", "done"), ("Hi", "interrupted"),
    ]  # fmt: skip
    assert len(store.tree(first.id)) == 5
    store.close()


def test_json_export_keeps_the_whole_tree(store, tmp_path):
    cid = four_turns(store)
    store.edit_user_message(cid, 2, "q2 edited")
    store.finish_reply(store.begin_reply(cid, "m"), "a2 new", probs=[[5, " a", 0.9, [[5, " a", 0.9]]]])
    exported = json.loads(json.dumps(to_json(store, [cid])))
    other = ChatStore(tmp_path / "other.db")
    [new_id] = import_json(other, exported)
    assert texts(other, new_id) == ["q1", "a1", "q2 edited", "a2 new"]
    assert other.token_probs(other.get(new_id).messages[3].id) == [[5, " a", 0.9, [[5, " a", 0.9]]]]
    other.choose_alternative(new_id, 2, 0)
    assert texts(other, new_id) == ["q1", "a1", "q2", "a2"]


def test_a_version_one_export_still_imports(store):
    data = {"format": "basechat.conversations", "version": 1, "conversations": [{
        "title": "t", "created_at": 0, "updated_at": 0, "template": "chat", "messages": [
            {"position": 0, "alternative": 0, "role": "user", "text": "q", "status": "done",
             "created_at": 0, "chosen": True},
            {"position": 1, "alternative": 0, "role": "assistant", "text": "a", "status": "done",
             "created_at": 0, "chosen": False},
            {"position": 1, "alternative": 1, "role": "assistant", "text": "b", "status": "done",
             "created_at": 0, "chosen": True},
        ]}]}  # fmt: skip
    [cid] = import_json(store, data)
    assert texts(store, cid) == ["q", "b"]
    assert [m.text for m in store.alternatives(cid, 1)] == ["a", "b"]


def test_an_export_whose_parent_comes_later_is_refused_and_nothing_is_written(store):
    data = to_json(store, [four_turns(store)])
    data["conversations"][0]["messages"][0]["parent"] = 999
    before = len(store.list_conversations())
    with pytest.raises(InputError, match="hangs from 999, which is not before it"):
        import_json(store, data)
    assert len(store.list_conversations()) == before


def test_markdown_writes_the_shown_path_and_counts_the_other_branches(store):
    cid = four_turns(store)
    store.edit_user_message(cid, 2, "q2 edited")
    text = to_markdown(store.get(cid), branches=store.branch_count(cid))
    assert "q2 edited" in text and "\nq2\n" not in text
    assert "1 other branch" in text


def test_chats_show_json_and_markdown_export_from_the_terminal(tmp_path):
    from app.store.db import DB_NAME
    from tests.helpers import basechat

    store = ChatStore(tmp_path / DB_NAME)
    cid = four_turns(store)
    store.edit_user_message(cid, 2, "q2 edited")
    store.close()
    data = str(tmp_path)
    shown = basechat("--data-dir", data, "chats", "show", str(cid), "--json")
    assert shown.returncode == 0, shown.stderr
    messages = json.loads(shown.stdout)["messages"]
    ids = {m["id"] for m in messages}
    assert len(messages) == 5 and all(m["parent"] is None or m["parent"] in ids for m in messages)
    markdown = basechat("--data-dir", data, "chats", "export", str(cid))
    assert "q2 edited" in markdown.stdout and "1 other branch not shown" in markdown.stdout


def _columns_and_uniques(store) -> tuple[set[str], list[str]]:
    columns = {row[1] for row in store.db.execute("PRAGMA table_info(messages)")}
    uniques = [row[1] for row in store.db.execute("PRAGMA index_list(messages)") if row[2]]
    return columns, uniques


def test_the_list_columns_are_dropped_from_an_old_database(tmp_path):
    """Schema 2 (the fixture) goes through the tree migration and then loses ``alternative`` and
    its UNIQUE constraint; full-text search and the tree still work."""
    path = tmp_path / "chats.db"
    shutil.copy(FIXTURE, path)
    store = ChatStore(path)
    columns, uniques = _columns_and_uniques(store)
    assert "alternative" not in columns and "parent_id" in columns and uniques == []
    first = min(c.id for c in store.list_conversations())
    assert [m.text for m in store.alternatives(first, 1)] == ["Paris.", "It is Paris."]
    assert [hit[0] for hit in store.search("Italy")] == [first]
    store.close()


def test_a_database_of_the_tree_schema_loses_the_list_columns_and_keeps_everything(tmp_path):
    """A database written by the previous code (schema 3): rows, branches, probabilities, search."""
    import sqlite3

    from app.store.migrations import MIGRATIONS

    path = tmp_path / "chats.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:3], start=1):
        db.executescript(f"BEGIN; {step(db)}; PRAGMA user_version = {number}; COMMIT;")
    db.execute(
        "INSERT INTO conversations (title, created_at, updated_at, template) VALUES ('t', 1, 1, 'chat')"
    )
    rows = [(1, None, 0, 0, 1, "user", "hello"), (2, 1, 1, 0, 0, "assistant", "first"),
            (3, 1, 1, 1, 1, "assistant", "second"), (4, 3, 2, 0, 1, "user", "more")]  # fmt: skip
    columns = "id, conversation_id, parent_id, position, alternative, chosen, role, text, created_at, probs"
    db.executemany(f"INSERT INTO messages ({columns}) VALUES (?, 1, ?, ?, ?, ?, ?, ?, 1, x'00')", rows)
    db.close()
    store = ChatStore(path)
    columns, uniques = _columns_and_uniques(store)
    assert "alternative" not in columns and uniques == []
    assert texts(store, 1) == ["hello", "second", "more"]
    assert [m.text for m in store.alternatives(1, 1)] == ["first", "second"]
    assert store.db.execute("SELECT count(*) FROM messages WHERE probs IS NOT NULL").fetchone()[0] == 4
    assert [hit[0] for hit in store.search("second")] == [1]
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    store.close()


def test_choosing_a_deep_message_is_one_statement_and_reading_one_message_reads_no_thread(store):
    cid = four_turns(store)
    old_leaf = store.get(cid).messages[-1].id
    store.edit_user_message(cid, 0, "q1 again")
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    store.choose(old_leaf)
    store.db.set_trace_callback(None)
    writes = [s for s in statements if s.lstrip().upper().startswith(("UPDATE", "WITH"))]
    assert len(writes) == 1
    assert texts(store, cid) == ["q1", "a1", "q2", "a2"]
    statements.clear()
    store.db.set_trace_callback(statements.append)
    message = store.message(old_leaf)
    store.db.set_trace_callback(None)
    assert (message.text, message.alternatives) == ("a2", 1)
    assert not any("RECURSIVE" in s for s in statements)
