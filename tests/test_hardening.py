"""A hostile world: imported names that try to be paths, several processes on one history, a
database from a newer Basechat. Each test drives the real command or the real SQLite file."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import StoreError, TemplateError
from app.store import ChatStore
from tests.conftest import ROOT
from tests.helpers import assert_one_line_error, basechat

FIXTURE = Path(__file__).parent / "data" / "history-v2.sqlite"


def _frame(tmp_path: Path, name: str) -> Path:
    """A TOML template whose ``name`` is hostile (cards already derive a name from the character)."""
    import tomli_w

    path = tmp_path / "frame.toml"
    path.write_text(tomli_w.dumps({"name": name, "preamble": "A test frame."}))
    return path


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute-escape", "", "..", ".hidden", "a/b\\c"])
def test_a_templates_name_never_becomes_a_path(tmp_path, name):
    data = tmp_path / "deep" / "down" / "data"
    absolute = Path("/tmp/absolute-escape.toml")
    absolute.unlink(missing_ok=True)
    frame = _frame(tmp_path, name)
    result = basechat("--data-dir", str(data), "templates", "import", str(frame))
    assert result.returncode == 0, result.stderr
    saved = list((data / "templates").glob("*.toml"))
    assert len(saved) == 1 and not saved[0].name.startswith(".") and saved[0].stem
    assert set(tmp_path.rglob("*.toml")) == {frame, saved[0]} and not absolute.exists()
    listed = basechat("--data-dir", str(data), "templates", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert saved[0].stem in {row["name"] for row in json.loads(listed.stdout)}


def test_names_that_are_paths_are_refused_by_show_and_delete(tmp_path):
    victim = tmp_path / "victim.toml"
    victim.write_text('preamble = "keep me"\n')
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    relative = "../../victim"
    for command in ("delete", "show"):
        result = basechat("--data-dir", str(data), "templates", command, relative)
        assert_one_line_error(result, "cannot be a path")
    assert victim.read_text() == 'preamble = "keep me"\n'


def test_a_stray_dot_toml_does_not_break_the_template_list(tmp_path):
    data = tmp_path / "data"
    (data / "templates").mkdir(parents=True)
    (data / "templates" / ".toml").write_text('preamble = "x"\n')
    result = basechat("--data-dir", str(data), "templates", "list", "--json")
    assert result.returncode == 0, result.stderr


def test_three_processes_starting_at_once_on_an_old_history_never_lose_it(tmp_path):
    """Twenty rounds of three Basechat processes opening a schema-2 history at the same moment:
    the migration runs once, under a lock, and nothing is taken for corruption."""
    code = "from app.store import ChatStore; s = ChatStore(); print(len(s.list_conversations()))"
    for round_number in range(20):
        data = tmp_path / f"round{round_number}"
        data.mkdir()
        shutil.copy(FIXTURE, data / "basechat.db")
        env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BASECHAT_DATA_DIR": str(data)}
        processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
        outputs = [p.communicate(timeout=120) for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        assert [out.strip() for out, _err in outputs] == ["2", "2", "2"]
        assert not list(data.glob("*.broken-*"))
        store = ChatStore(data / "basechat.db")
        first = min(c.id for c in store.list_conversations())
        assert [m.text for m in store.get(first).messages][:2] == ["What is the capital of France?", "Paris."]
        store.close()


def test_a_history_from_a_newer_basechat_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "basechat.db"
    shutil.copy(FIXTURE, path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer Basechat"):
        ChatStore(path)
    assert path.read_bytes() == before and not list(tmp_path.glob("*.broken-*"))
    result = basechat("--data-dir", str(tmp_path), "chats", "list")
    assert_one_line_error(result, "newer Basechat")


def test_a_busy_history_is_not_taken_for_a_broken_one(tmp_path):
    """A database another connection holds a write lock on: one line, and nothing is moved."""
    path = tmp_path / "basechat.db"
    shutil.copy(FIXTURE, path)
    holder = sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    code = ("import sqlite3, app.store.db as d; d.connect = lambda p: sqlite3.connect(p, timeout=0.2,"
            " isolation_level=None); from app.store import ChatStore; ChatStore()")  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BASECHAT_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    holder.rollback()
    holder.close()
    assert result.returncode != 0 and "StoreError" in result.stderr
    assert not list(tmp_path.glob("*.broken-*"))


def test_saving_a_template_stays_in_its_folder(tmp_path, monkeypatch):
    from app.scaffold import template_from_dict
    from app.scaffold.template import delete_user_template, save_user_template

    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path / "data"))
    path = save_user_template(template_from_dict({"name": "../../../etc/x", "preamble": "p"}))
    assert path.parent == tmp_path / "data" / "templates" and path.name == "etc-x.toml"
    with pytest.raises(TemplateError, match="cannot be a path"):
        delete_user_template("../x")


HANGING_PATTERN = "(a|aa)+$"  # exponential for a backtracking matcher on "aaa…b"


@pytest.mark.model
def test_a_request_note_pattern_built_to_backtrack_cannot_hang_a_prompt(tmp_path):
    import tomli_w

    frame = tmp_path / "frame.toml"
    frame.write_text(tomli_w.dumps({"name": "trap", "preamble": "P.",
                                    "notes": [{"when": HANGING_PATTERN, "note": "(never)"}]}))  # fmt: skip
    result = basechat("--data-dir", str(tmp_path), "prompt", "--template", str(frame), "a" * 80 + "b",
                      timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(never)" not in result.stdout


def test_an_imported_chat_carrying_such_a_pattern_exports_its_prompt(tmp_path):
    frame = {"name": "trap", "preamble": "P.", "user_name": "User", "assistant_name": "Assistant",
             "notes": [{"when": HANGING_PATTERN, "note": "(never)"}]}  # fmt: skip
    message = {"id": 1, "parent": None, "position": 0, "role": "user", "text": "a" * 80 + "b",
               "status": "done", "created_at": 1.0, "chosen": True}  # fmt: skip
    export = {"format": "basechat.conversations", "version": 2, "conversations": [
        {"title": "t", "created_at": 1.0, "updated_at": 1.0, "template": "trap",
         "settings": {"frame": frame}, "model": "", "messages": [message]}]}  # fmt: skip
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    imported = basechat("--data-dir", str(tmp_path), "chats", "import", str(path), timeout=60)
    assert imported.returncode == 0, imported.stderr
    result = basechat("--data-dir", str(tmp_path), "chats", "export", "1", "--format", "prompt", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "User: " + "a" * 80 + "b" in result.stdout and "(never)" not in result.stdout


def test_a_pattern_too_long_or_invalid_is_refused_in_one_line(tmp_path):
    import tomli_w

    for when in ("x" * 400, "(unclosed"):
        frame = tmp_path / "bad.toml"
        frame.write_text(
            tomli_w.dumps({"name": "bad", "preamble": "P.", "notes": [{"when": when, "note": "n"}]})
        )
        result = basechat("--data-dir", str(tmp_path), "templates", "import", str(frame))
        assert_one_line_error(result, "note pattern")


def _deep(kind: str) -> str:
    nest = "[" * 100_000 + "]" * 100_000
    return {"json": nest, "toml": f"a = {nest}", "yaml": f"a: {nest}"}[kind]


@pytest.mark.parametrize("kind", ["json", "toml", "yaml"])
def test_deeply_nested_imports_are_refused_in_one_line(tmp_path, kind):
    path = tmp_path / f"deep.{kind}"
    path.write_text(_deep(kind))
    assert_one_line_error(basechat("--data-dir", str(tmp_path), "templates", "import", str(path)), "nested")
    if kind == "json":
        assert_one_line_error(basechat("--data-dir", str(tmp_path), "chats", "import", str(path)), "nested")


@pytest.mark.parametrize(("args", "fragment"), [
    (["prompt", "--temperature", "nan", "hi"], "--temperature must be a number"),
    (["prompt", "--top-p", "inf", "hi"], "--top-p must be a number"),
    (["ask", "--server", "http://127.0.0.1:9", "--server-timeout", "inf", "hi"], "--server-timeout"),
    (["ask", "--server", "http://[::1", "hi"], "is not a server address"),
])  # fmt: skip
def test_numbers_and_addresses_that_parse_but_mean_nothing_are_refused(tmp_path, args, fragment):
    assert_one_line_error(basechat("--data-dir", str(tmp_path), *args), fragment)


@pytest.mark.parametrize("version", ["-5", "true", "0", '"2"'])
def test_an_export_with_no_valid_version_is_refused(tmp_path, version):
    path = tmp_path / "v.json"
    path.write_text(f'{{"format": "basechat.conversations", "version": {version}, "conversations": []}}')
    assert_one_line_error(basechat("--data-dir", str(tmp_path), "chats", "import", str(path)), "version")


def test_a_data_folder_that_is_a_file_is_named_in_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = basechat("chats", "list", extra_env={"BASECHAT_DATA_DIR": str(afile)})
    assert_one_line_error(result, "is a file, not a folder")


def test_escape_sequences_from_a_stored_chat_never_reach_the_terminal(tmp_path):
    store = ChatStore(tmp_path / "basechat.db")
    cid = store.create_conversation(title="\x1b]0;owned\x07title")
    store.add_user_message(cid, "hi \x1b[2J\x1b[31mred\x9b1m")
    store.finish_reply(store.begin_reply(cid), "reply\x1b[8m hidden\r over")
    store.close()
    outputs = [basechat("--data-dir", str(tmp_path), *args).stdout
               for args in (["chats", "list"], ["chats", "show", str(cid)], ["chats", "search", "hi"],
                            ["chats", "export", str(cid)])]  # fmt: skip
    for output in outputs:
        assert output and not any(c in output for c in "\x1b\x07\x9b\r")
    assert "red" in outputs[1] and "hidden" in outputs[1]


# -- servers that misbehave ---------------------------------------------------------------------


@pytest.fixture
def fault():
    from tests.servers import FaultServer

    server = FaultServer()
    yield server
    server.close()


@pytest.mark.parametrize(("mode", "code", "fragment", "within"), [
    ("drip", 1, "sent nothing new for 5 s", 30),
    ("keepalive", 1, "sent nothing new for 5 s", 30),
    ("huge", 1, "", 30),
    ("cut", 1, "broke off the reply", 30),
    ("endless", 0, "", 60),
])  # fmt: skip
def test_a_misbehaving_server_ends_within_its_deadline(fault, mode, code, fragment, within):
    import time

    fault.mode = mode
    started = time.monotonic()
    result = basechat("ask", "--server", fault.url, "--server-timeout", "5", "--max-tokens", "20", "--json",
                      "What is the capital of France?", timeout=within + 30)  # fmt: skip
    assert time.monotonic() - started < within
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr and fragment in result.stderr
    if mode == "endless":  # held to the limit although the server ignores it
        out = json.loads(result.stdout)
        assert out["finish_reason"] == "length" and out["reply"].count("word") <= 21
    if mode == "cut":
        assert json.loads(result.stdout)["finish_reason"] == "interrupted"


def test_a_reply_cut_mid_way_is_stored_as_interrupted(fault, tmp_path):
    from app.engine.base import SamplingParams
    from app.service import ConversationService
    from app.store.db import DB_NAME

    store = ChatStore(tmp_path / DB_NAME)
    cid = ConversationService(store).start(_plain_template(), SamplingParams())
    store.close()
    fault.mode = "cut"
    result = basechat("--data-dir", str(tmp_path), "ask", "--server", fault.url, "--resume", str(cid), "Hi")
    assert result.returncode == 1 and "broke off" in result.stderr
    reply = ChatStore(tmp_path / DB_NAME).get(cid).messages[-1]
    assert reply.status == "interrupted" and reply.finish_reason == "interrupted" and "capital" in reply.text


def _plain_template():
    from app.scaffold import template_from_dict

    return template_from_dict({"name": "plain", "preamble": "A chat."})


def test_credentials_never_appear_in_messages(fault):
    fault.mode = "echo_key"
    url = fault.url.replace("http://", "http://someone:pass-w0rd-123@")
    alone = basechat("ask", "--server", url, "Hi")  # the password alone goes as basic auth
    assert alone.returncode == 1 and "pass-w0rd-123" not in alone.stderr and "c29tZW9uZ" not in alone.stderr
    result = basechat("ask", "--server", url, "--api-key-env", "THE_KEY", "Hi",
                      extra_env={"THE_KEY": "sk-very-secret-key"})  # fmt: skip
    assert result.returncode == 1
    for secret in ("sk-very-secret-key", "pass-w0rd-123", "someone"):
        assert secret not in result.stderr + result.stdout
    assert "***" in result.stderr


def test_token_ids_a_history_cannot_hold_are_refused():
    from app.engine.remote import _native_event
    from app.errors import RemoteError

    with pytest.raises(RemoteError, match="token ids"):
        _native_event({"content": "x", "tokens": [2**40]})
    with pytest.raises(RemoteError, match="token ids"):
        _native_event({"content": "x", "tokens": ["7"]})
    assert _native_event({"content": "x", "tokens": [7]})[1] == [7]


# -- the Hub probe and local model files ----------------------------------------------------------


@pytest.fixture
def blob_server():
    """Serves GET ``/big`` as 200 with 200 MB, Range ignored, and ``/drip`` a byte every 0.2 s."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(200 * 2**20))
            self.end_headers()
            try:
                if self.path == "/big":
                    for _ in range(200):
                        self.wfile.write(b"\0" * 2**20)
                else:
                    while not stop.wait(0.2):
                        self.wfile.write(b"G")
                        self.wfile.flush()
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    stop.set()
    server.shutdown()
    server.server_close()


def test_the_hub_probe_reads_a_bounded_prefix_within_a_deadline(blob_server):
    import time

    import httpx2

    from app.models.search import _read_prefix

    with httpx2.Client() as client:
        prefix = _read_prefix(client, f"{blob_server}/big", 1 << 20, 20)
        assert prefix is not None and len(prefix) == 1 << 20  # not the 200 MB the server sends
        started = time.monotonic()
        dripped = _read_prefix(client, f"{blob_server}/drip", 1 << 20, 1.5)
        assert time.monotonic() - started < 5 and dripped is not None and 0 < len(dripped) < 20


def _nested_arrays_gguf(path: Path, depth: int) -> Path:
    """A GGUF header whose one metadata value is an array of an array of … ``depth`` deep."""
    import struct

    key = b"evil.nested"
    body = struct.pack("<Q", len(key)) + key + struct.pack("<I", 9)  # type ARRAY
    body += struct.pack("<IQ", 9, 1) * depth + struct.pack("<IQ", 4, 0)  # …, then an empty u32 array
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + body + b"\0" * 64)
    return path


@pytest.mark.parametrize("depth", [5, 100_000])
def test_nested_gguf_arrays_end_in_one_line_not_a_recursion_error(tmp_path, depth):
    from app.engine.gguf_header import has_chat_template, read_gguf_header
    from app.errors import ModelFileError

    path = _nested_arrays_gguf(tmp_path / "nested.gguf", depth)
    with pytest.raises(ModelFileError, match="damaged or truncated"):
        read_gguf_header(path)
    assert has_chat_template(path.read_bytes()) is None
    assert_one_line_error(basechat("--data-dir", str(tmp_path), "models", "add", str(path)), "nested.gguf")
