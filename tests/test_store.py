"""Chat history in real SQLite files: durability, alternatives, export and import."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from app.errors import InputError
from app.store import ChatStore, ReplyRecorder
from app.store.export import import_json, to_json, to_markdown
from app.store.migrations import MIGRATIONS, SCHEMA_VERSION


@pytest.fixture
def store(tmp_path):
    opened = ChatStore(tmp_path / "chats.db")
    yield opened
    opened.close()


def chat_with(store, *turns: str) -> int:
    cid = store.create_conversation(template="chat", settings={"temperature": 0.5}, model="m")
    for i, text in enumerate(turns):
        if i % 2 == 0:
            store.add_user_message(cid, text)
        else:
            store.finish_reply(store.begin_reply(cid, "m"), text, raw=" " + text, tokens=[5, 6, 7])
    return cid


def test_pragmas_and_schema_version(store):
    db = store.db
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_forward_migration_from_the_first_schema(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(f"BEGIN; {MIGRATIONS[0](db)}; PRAGMA user_version = 1; COMMIT;")
    db.execute(
        "INSERT INTO conversations (title, created_at, updated_at, template) VALUES ('t', 0, 0, 'chat')"
    )
    db.execute(
        "INSERT INTO messages (conversation_id, position, role, text, created_at)"
        " VALUES (1, 0, 'user', 'an aardvark appears', 0)"
    )
    db.close()
    store = ChatStore(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert [hit[0] for hit in store.search("aardvark")] == [1]


def test_title_comes_from_the_first_message_and_can_be_renamed(store):
    cid = chat_with(store, "What is the tallest mountain in the world, and how tall is it exactly?")
    assert store.get(cid).title.startswith("What is the tallest mountain")
    assert len(store.get(cid).title) <= 60
    store.rename(cid, "Mountains")
    assert store.get(cid).title == "Mountains"
    with pytest.raises(InputError):
        store.rename(cid, "  ")


def test_conversations_list_newest_first_and_delete_cascades(store):
    first = chat_with(store, "one", "reply")
    time.sleep(0.01)
    second = chat_with(store, "two")
    assert [c.id for c in store.list_conversations()] == [second, first]
    time.sleep(0.01)
    store.add_user_message(first, "the older chat goes on")  # used last: listed first
    assert [c.id for c in store.list_conversations()] == [first, second]
    store.delete(first)
    assert [c.id for c in store.list_conversations()] == [second]
    assert (
        store.db.execute("SELECT count(*) FROM messages WHERE conversation_id = ?", (first,)).fetchone()[0]
        == 0
    )
    with pytest.raises(InputError, match="No conversation"):
        store.get(first)


def test_messages_keep_metadata_and_token_ids(store):
    cid = store.create_conversation()
    store.add_user_message(cid, "hi")
    mid = store.begin_reply(cid, "gemma3-270m")
    store.finish_reply(mid, "Hello!", raw=" Hello!", tokens=[1, 2, 300000], finish_reason="stop",
                       prompt_tokens=140, completion_tokens=3, ttft_s=0.2, tokens_per_s=70.0)  # fmt: skip
    reply = store.get(cid).messages[1]
    assert (reply.role, reply.text, reply.raw, reply.tokens) == (
        "assistant",
        "Hello!",
        " Hello!",
        (1, 2, 300000),
    )
    assert (reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == ("stop", 140, 3)
    assert (reply.model, reply.status) == ("gemma3-270m", "done")


def test_regenerated_alternatives_are_kept_and_one_is_chosen(store):
    cid = chat_with(store, "Tell me a joke", "first joke")
    second = store.begin_reply(cid, "m", position=1)
    store.finish_reply(second, "second joke")
    thread = store.get(cid).messages
    assert [m.text for m in thread] == ["Tell me a joke", "second joke"]
    assert thread[1].alternatives == 2 and thread[1].alternative == 1
    store.choose_alternative(cid, 1, 0)
    assert store.get(cid).messages[1].text == "first joke"
    assert [m.text for m in store.alternatives(cid, 1)] == ["first joke", "second joke"]
    with pytest.raises(InputError):
        store.choose_alternative(cid, 1, 5)


def test_editing_a_user_message_shows_the_new_version_and_keeps_the_old_branch(store):
    cid = chat_with(store, "q1", "a1", "q2", "a2", "q3", "a3")
    store.edit_user_message(cid, 2, "q2 edited")
    assert [m.text for m in store.get(cid).messages] == ["q1", "a1", "q2 edited"]
    store.choose_alternative(cid, 2, 0)
    assert [m.text for m in store.get(cid).messages] == ["q1", "a1", "q2", "a2", "q3", "a3"]
    with pytest.raises(InputError, match="user message"):
        store.edit_user_message(cid, 1, "not a user turn")


def test_search_finds_words_across_conversations(store):
    chat_with(store, "Tell me about penguins", "Penguins live in the south.")
    chat_with(store, "And giraffes?")
    assert store.fts
    hits = store.search("penguins")
    assert len(hits) == 2 and {h[0] for h in hits} == {1}
    assert [hit[0] for hit in store.search("giraffes")] == [2]
    assert [hit[0] for hit in store.search('giraffes?"')] == [2]  # quotes and marks are plain text
    assert store.search("") == []


def test_each_thread_gets_its_own_connection(store):
    cid = chat_with(store, "from the main thread")
    seen = {}

    def worker():
        seen["db"] = store.db
        store.add_user_message(cid, "from a worker")

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["db"] is not store.db
    assert [m.text for m in store.get(cid).messages] == ["from the main thread", "from a worker"]


def test_recorder_saves_a_growing_reply_at_least_once_a_second(store, tmp_path):
    cid = chat_with(store, "Write a long story")
    mid = store.begin_reply(cid, "m")
    recorder = ReplyRecorder(store, mid, interval=0.1)  # the app uses 1 s; the rule is the same
    reader = sqlite3.connect(tmp_path / "chats.db")
    seen = []
    started = time.monotonic()
    while time.monotonic() - started < 0.26:
        recorder.add(" word")
        seen.append(reader.execute("SELECT text FROM messages WHERE id = ?", (mid,)).fetchone()[0])
        time.sleep(0.005)
    # Another connection saw the partial text grow twice while streaming went on.
    assert len({s for s in seen if s}) >= 2
    assert reader.execute("SELECT status FROM messages WHERE id = ?", (mid,)).fetchone()[0] == "streaming"


def test_reopening_marks_unfinished_replies_interrupted(tmp_path):
    store = ChatStore(tmp_path / "c.db")
    cid = chat_with(store, "hello")
    mid = store.begin_reply(cid, "m")
    store.save_partial(mid, "Half a rep")
    store.close()
    reopened = ChatStore(tmp_path / "c.db")
    reply = reopened.get(cid).messages[1]
    assert (reply.text, reply.status) == ("Half a rep", "interrupted")
    assert "*(interrupted)*" in to_markdown(reopened.get(cid))


def test_markdown_export_is_readable(store):
    cid = chat_with(store, "What is 2+2?", "4.")
    text = to_markdown(store.get(cid))
    assert text.startswith("# What is 2+2?")
    assert "**User** · " in text and "**Assistant** · " in text and "\n4.\n" in text


def _comparable(data: dict) -> list[dict]:
    return data["conversations"]


def test_json_export_imports_into_an_identical_conversation(store, tmp_path):
    cid = chat_with(store, "q1", "a1", "q2", "a2")
    store.finish_reply(store.begin_reply(cid, "m", position=3), "a2 again", tokens=[9])
    exported = to_json(store, [cid])
    other = ChatStore(tmp_path / "other.db")
    [new_id] = import_json(other, json.loads(json.dumps(exported)))
    assert _comparable(to_json(other, [new_id])) == _comparable(exported)
    assert other.get(new_id).messages[3].tokens == (9,)


@pytest.mark.parametrize(
    "data, fragment",
    [
        ([1, 2], "not a Basechat"),
        ({"format": "basechat.conversations", "version": 99, "conversations": []}, "newer"),
        ({"format": "basechat.conversations", "version": 1}, "no list"),
    ],
)
def test_malformed_imports_are_refused(store, data, fragment):
    with pytest.raises(InputError, match=fragment):
        import_json(store, data)


def test_a_bad_conversation_imports_nothing_at_all(store):
    good = to_json(store, [chat_with(store, "kept", "yes")])
    before = len(store.list_conversations())
    broken = json.loads(json.dumps(good))
    bad_copy = json.loads(json.dumps(good["conversations"][0]))
    bad_copy["messages"][1]["role"] = "narrator"
    broken["conversations"].append(bad_copy)
    with pytest.raises(InputError, match=r"conversation 2, message .* needs a role"):
        import_json(store, broken)
    assert len(store.list_conversations()) == before


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b""])
def test_a_corrupt_database_is_set_aside_and_a_new_one_opened(tmp_path, content):
    path = tmp_path / "basechat.db"
    path.write_bytes(content or b"SQLite format 3\x00" + b"\xff" * 4000)
    store = ChatStore(path)
    assert store.notice and "kept as basechat.db.broken-" in store.notice
    assert "\n" not in store.notice
    aside = list(tmp_path.glob("basechat.db.broken-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0
    chat_with(store, "a fresh start")
    assert len(store.list_conversations()) == 1


def test_another_programs_database_is_not_touched(tmp_path):
    path = tmp_path / "basechat.db"
    foreign = sqlite3.connect(path)
    foreign.execute("CREATE TABLE recipes (name TEXT)")
    foreign.commit()
    foreign.close()
    store = ChatStore(path)
    assert "other program" in store.notice
    kept = sqlite3.connect(next(tmp_path.glob("basechat.db.broken-*")))
    assert kept.execute("SELECT count(*) FROM recipes").fetchone()[0] == 0


@pytest.mark.model
def test_kill_9_mid_reply_loses_at_most_the_last_second(data_dir, endless_book):
    from tests.conftest import LONG_REPLY_ARGS, ROOT

    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BASECHAT_DATA_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "chat", "--template", str(endless_book), *LONG_REPLY_ARGS],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        text=True, cwd=ROOT,
    )  # fmt: skip
    process.stdin.write("Tell me a long story.\n")
    process.stdin.flush()
    db_path = data_dir / "basechat.db"
    # A deadline, not a wait: on a busy machine loading the model alone took most of 60 s.
    partial = _wait_for_partial(db_path, deadline=time.monotonic() + 240)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert partial, "the reply was never saved while streaming"
    check = sqlite3.connect(db_path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    store = ChatStore(db_path)
    [conversation] = store.list_conversations()
    messages = store.get(conversation.id).messages
    assert messages[0].text == "Tell me a long story."
    assert messages[1].status == "interrupted"
    assert len(messages[1].text) >= len(partial)


def _wait_for_partial(db_path, deadline: float) -> str:
    """Poll the real file until a second partial save shows the reply growing."""
    texts = []
    while time.monotonic() < deadline:
        if db_path.exists():
            try:
                db = sqlite3.connect(db_path)
                row = db.execute("SELECT text FROM messages WHERE role = 'assistant'").fetchone()
                db.close()
            except sqlite3.Error:
                row = None
            if row and row[0] and (not texts or row[0] != texts[-1]):
                texts.append(row[0])
                if len(texts) >= 2:
                    return texts[-1]
        time.sleep(0.1)
    return ""


def test_merging_settings_keeps_the_other_keys(store):
    cid = chat_with(store, "hi")
    store.merge_settings(cid, {"frame": {"name": "tutor"}}, template="tutor")
    assert store.settings(cid) == {"temperature": 0.5, "frame": {"name": "tutor"}}
    assert store.get(cid).template == "tutor"
    with pytest.raises(InputError):
        store.settings(999)
