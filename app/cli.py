"""The ``basechat`` command: terminal access to the same services the window uses.

Every failure a user can cause ends in one line on stderr and a non-zero
exit; tracebacks go to the log file in the data folder, never the terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from app.errors import BasechatError, InputError

log = logging.getLogger("basechat")


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line, not a usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"basechat: error: {message} (see 'basechat --help')\n")
        raise SystemExit(2)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="catalog id or path to a .gguf file (default: gemma3-270m)")
    parser.add_argument("--template", help="template name or .toml path (default: chat)")
    parser.add_argument("--history", type=Path, help='JSON list of {"role", "text"} turns')
    parser.add_argument("--raw", action="store_true", help="send the text with no transcript")
    parser.add_argument("--max-tokens", type=int, default=256, help="reply length limit")
    _sampling_options(parser)
    parser.add_argument("--ctx", type=int, help="context size in tokens (default 4096)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--gpu-layers", type=int, help="layers to offload (default: all on Metal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _server_options(parser)


def _sampling_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--temperature", type=float, help="0 = greedy (default 0.7)")
    parser.add_argument("--top-k", type=int, help="keep the K likeliest tokens (default 40; 0 = all)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling (default 0.95)")
    parser.add_argument(
        "--min-p", type=float, help="drop tokens below this share of the top one (default 0.05)"
    )
    parser.add_argument(
        "--repeat-penalty", type=float, help="penalise repeated tokens (default 1.1; 1 = off)"
    )
    parser.add_argument("--seed", type=int, help="random seed for sampling")


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", metavar="URL", help="use the model of an inference server (env BASECHAT_SERVER)"
    )
    kinds = "llama = llama-server's API, openai = /v1/completions (default: detect)"
    parser.add_argument("--server-kind", choices=["auto", "llama", "openai"], default="auto", help=kinds)
    parser.add_argument("--api-key-env", metavar="NAME", help="read the server's API key from this variable")
    wait = "seconds a silent server is waited for (default 60)"
    parser.add_argument("--server-timeout", type=float, default=60.0, help=wait)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="basechat", description="Offline chat with base language models.")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--data-dir", type=Path, help="Basechat's data folder (chats, models)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    ask = sub.add_parser("ask", help="one reply to MESSAGE")
    _model_options(ask)
    ask.add_argument(
        "--resume", type=int, metavar="ID", help="continue a stored conversation (and store this turn)"
    )
    ask.add_argument("--n", type=int, default=1, metavar="N",
                     help="N alternative replies decoded together (1-8; needs temperature > 0)")  # fmt: skip
    ask.add_argument("--logprobs", type=int, default=0, metavar="K",
                     help="record each token's K likeliest candidates (shown with --json)")  # fmt: skip
    ask.add_argument("message")
    prompt = sub.add_parser("prompt", help="print the exact text that would be sent")
    _model_options(prompt)
    prompt.add_argument("message")
    chat = sub.add_parser("chat", help="a conversation in the terminal")
    _model_options(chat)
    chat.add_argument("--resume", type=int, metavar="ID", help="continue a stored conversation")
    gui = sub.add_parser("gui", help="open the Basechat window (the default with a display)")
    gui.add_argument("--model", help="catalog id or .gguf path to load first")
    _chats_options(sub.add_parser("chats", help="stored conversations"))
    _models_options(sub.add_parser("models", help="the model catalog and downloads"))
    _templates_options(sub.add_parser("templates", help="conversation frames: list, import, export"))
    bench = sub.add_parser("bench", help="measure speed and responsiveness against llama.cpp itself")
    bench.add_argument("--model", help="catalog id or .gguf path (default: gemma3-270m)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    _server_options(bench)
    bench.add_argument("--quick", action="store_true", help="figures 1, 3, 4 and 5, reduced (under a minute)")
    bench.add_argument(
        "--smoke", action="store_true", help="tiny inputs: checks every figure is made (seconds)"
    )
    bench.add_argument(
        "--plot", type=Path, help="also draw TTFT and tokens/s per turn (PNG; needs matplotlib)"
    )
    _eval_options(sub.add_parser("eval", help="measure how well the scaffold makes the model chat"))
    return parser


def _chats_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="chats_command", required=True, parser_class=_Parser)
    listing = sub.add_parser("list", help="conversations, newest first")
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one conversation")
    show.add_argument("id", type=int)
    show.add_argument("--json", action="store_true")
    export = sub.add_parser("export", help="to Markdown or JSON")
    export.add_argument("id", nargs="?", type=int, help="omit with --all")
    export.add_argument("--all", action="store_true", help="every conversation (JSON)")
    export.add_argument("--format", choices=["md", "json", "prompt"], default="md",
                        help="prompt: the exact text the model reads before the next message")  # fmt: skip
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    sub.add_parser("import", help="restore a JSON export").add_argument("file", type=Path)
    sub.add_parser("delete", help="delete a conversation").add_argument("id", type=int)
    sub.add_parser("search", help="find conversations by text").add_argument("query")


def _models_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="installed and available models").add_argument("--json", action="store_true")
    sub.add_parser("download", help="download a catalog model").add_argument("id")
    sub.add_parser("verify", help="check a model file's sha256").add_argument("id")
    sub.add_parser("remove", help="delete a downloaded model").add_argument("id")
    sub.add_parser("add", help="use a .gguf file from disk").add_argument("path", type=Path)
    search = sub.add_parser("search", help="GGUF files on the Hugging Face Hub, base models first")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=10, help="repositories to look at (default 10)")
    search.add_argument("--json", action="store_true")
    get = sub.add_parser("get", help="download one file found by 'models search'")
    get.add_argument("repo", help="owner/name")
    get.add_argument("file", help="the .gguf file's name")


def _templates_options(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="templates_command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="shipped and your own templates").add_argument("--json", action="store_true")
    sub.add_parser("show", help="a template as TOML").add_argument("name")
    importing = sub.add_parser("import", help="a character card (JSON/PNG), preset, prompt file, YAML, TOML")
    importing.add_argument("file", type=Path)
    export = sub.add_parser("export", help="a template as TOML or as a Character Card V2")
    export.add_argument("name")
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    export.add_argument("--format", choices=["toml", "card"], default="toml")
    sub.add_parser("delete", help="delete one of your own templates").add_argument("name")


def _eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="JSONL question files")
    parser.add_argument("--model", help="catalog id or path to a .gguf file")
    parser.add_argument("--template", help="template name or .toml path (default: chat)")
    parser.add_argument("--raw", action="store_true", help="ask the bare model, no transcript")
    parser.add_argument("--all-templates", action="store_true", help="every template and raw")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--half", choices=["tune", "held"], help="only the items of one half")
    parser.add_argument("--replies", type=Path, help="write every question and reply to this JSONL file")
    _sampling_options(parser)  # eval is greedy unless these say otherwise
    _server_options(parser)


def _version() -> str:
    from app import __version__

    return f"basechat {__version__}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe-model"]:  # the packaged app's child process for test-loading files
        from app.models.probe import _main

        return _main(argv[1:])
    if argv[:1] == ["--self-test"]:
        from app.measure.selftest import self_test

        return self_test()
    args = build_parser().parse_args(argv)
    if args.data_dir:
        import os

        from app.paths import DATA_DIR_ENV

        os.environ[DATA_DIR_ENV] = str(args.data_dir.expanduser().resolve())
    _setup_logging()
    try:
        return _dispatch(args)
    except BasechatError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last net: a user sees one line, the log keeps the rest
        log.exception("unexpected error")
        return _fail(f"unexpected {type(exc).__name__}: {exc} (details in {_log_path()})")


def _fail(message: str) -> int:
    sys.stderr.write(f"basechat: error: {message}\n")
    return 1


def _log_path() -> Path:
    from app.paths import data_dir

    return data_dir() / "basechat.log"


def _setup_logging() -> None:
    try:
        handler: logging.Handler = logging.FileHandler(_log_path(), encoding="utf-8")
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def _dispatch(args: argparse.Namespace) -> int:
    from app.ui.app import gui_unavailable_reason

    reason = gui_unavailable_reason() if args.command in (None, "gui") else None
    if args.command == "gui" and reason:
        raise BasechatError(f"Cannot open the window: {reason}.")
    command = args.command or ("chat" if reason else "gui")
    if command == "gui":
        from app.ui.app import run_gui

        return run_gui(getattr(args, "model", None))
    if command == "chat" and not hasattr(args, "model"):
        sys.stderr.write(f"basechat: {reason}; chatting in the terminal instead.\n")
        args = build_parser().parse_args(["chat"], namespace=args)
    handlers = {
        "ask": cmd_ask, "prompt": cmd_prompt, "chat": cmd_chat, "eval": cmd_eval,
        "chats": cmd_chats, "models": cmd_models, "bench": cmd_bench, "templates": cmd_templates,
    }  # fmt: skip
    return handlers[command](args)


# -- shared set-up -------------------------------------------------------------


def _load(args: argparse.Namespace):
    """Engine, template and session for the options given."""
    from app.chat import ChatSession
    from app.scaffold import DEFAULT_TEMPLATE, load_template

    _check_numbers(args)
    template = load_template(args.template or DEFAULT_TEMPLATE)
    history = _read_history(args.history) if args.history else []
    model_id, engine = _open_engine(args, keep_states=args.command in ("ask", "chat"))
    return model_id, ChatSession(engine, template, _sampling(args), history)


_ENGINE_FLAGS = {"ctx": "n_ctx", "threads": "n_threads", "gpu_layers": "n_gpu_layers"}


def _open_engine(args: argparse.Namespace, **settings):
    """(model id, Backend): the server's model with --server, else a local model file.
    ``settings``: extra engine options (``keep_states`` for conversations)."""
    from app.engine.factory import open_backend
    from app.models.catalog import resolve_model

    server = _server_config(args)
    settings |= {
        key: value for flag, key in _ENGINE_FLAGS.items() if (value := getattr(args, flag, None)) is not None
    }
    if server is not None:
        engine = open_backend(server=server, n_ctx=settings.get("n_ctx"))
        return engine.describe().name, engine
    model_id, path = resolve_model(getattr(args, "model", None))
    return model_id, open_backend(path, **settings)


def _server_config(args: argparse.Namespace):
    import os

    from app.engine.remote import ServerConfig

    url = getattr(args, "server", None) or os.environ.get("BASECHAT_SERVER")
    if not url:
        return None
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise InputError(f"--api-key-env names {args.api_key_env}, which is not set.")
    if args.server_timeout <= 0:
        raise InputError("--server-timeout must be more than 0 seconds.")
    return ServerConfig(url, key, args.server_kind, args.server_timeout)


def _sampling(args: argparse.Namespace):
    from app.engine.base import SamplingParams

    given = {
        "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
        "min_p": args.min_p, "repeat_penalty": args.repeat_penalty, "seed": args.seed,
    }  # fmt: skip
    base = SamplingParams(max_tokens=args.max_tokens, n_probs=getattr(args, "logprobs", 0))
    return replace(base, **{k: v for k, v in given.items() if v is not None})


def _check_numbers(args: argparse.Namespace) -> None:
    if not 1 <= getattr(args, "n", 1) <= 8:
        raise InputError("--n must be between 1 and 8.")
    if not 0 <= getattr(args, "logprobs", 0) <= 20:
        raise InputError("--logprobs must be between 0 and 20.")
    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1.")
    if args.temperature is not None and args.temperature < 0:
        raise InputError("--temperature cannot be negative.")
    if args.ctx is not None and args.ctx < 256:
        raise InputError("--ctx must be at least 256 tokens.")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")
    if args.top_k is not None and args.top_k < 0:
        raise InputError("--top-k cannot be negative.")
    for name in ("top_p", "min_p"):
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 1:
            raise InputError(f"--{name.replace('_', '-')} must be between 0 and 1.")
    if args.repeat_penalty is not None and args.repeat_penalty <= 0:
        raise InputError("--repeat-penalty must be more than 0.")


def _read_history(path: Path):
    from app.scaffold import Message

    data = _read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a JSON list of turns.")
    history = []
    for number, turn in enumerate(data, 1):
        if not (isinstance(turn, dict) and turn.get("role") in ("user", "assistant")):
            raise InputError(f'{path}: turn {number} needs "role": "user" or "assistant".')
        if not isinstance(turn.get("text"), str):
            raise InputError(f'{path}: turn {number} needs a "text" string.')
        history.append(Message(turn["role"], turn["text"]))
    return history


@contextmanager
def _cancel_on_interrupt(stream) -> Iterator[None]:
    """Ctrl+C stops the reply (within one token) instead of the program."""
    previous = signal.signal(signal.SIGINT, lambda *_: stream.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _echo(chunks: Iterable[str]) -> None:
    """Print a reply as it streams, without the leading space the model writes."""
    started = False
    for chunk in chunks:
        if not started:
            chunk = chunk.lstrip()
            started = bool(chunk)
        sys.stdout.write(chunk)
        sys.stdout.flush()


# -- commands ------------------------------------------------------------------


def cmd_prompt(args: argparse.Namespace) -> int:
    _, session = _load(args)
    if args.raw:
        text, tokens, dropped = args.message, session.engine.tokenize(args.message), 0
        tokens = session.engine.start_tokens() + tokens
    else:
        plan = session.plan(args.message)
        text, tokens, dropped = plan.text, plan.tokens, plan.dropped_turns
    if args.json:
        out = {"prompt": text, "tokens": len(tokens), "n_ctx": session.engine.n_ctx}
        print(json.dumps({**out, "dropped_turns": dropped}, ensure_ascii=False))
    else:
        print(text)
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from app.chat import raw_generation

    store, stored = _resumed(args)
    model_id, session = _load(args)
    _continue_stored(session, stored, args)
    if args.n > 1:
        return _ask_many(args, session, model_id, store, stored)
    if args.raw:
        stream = raw_generation(session.engine, args.message, session.params)
    else:
        stream = session.send(args.message)
    record = _ChatRecord(store, session, model_id, stored.id) if stored is not None else None
    recorder = _recorder(record, args.message)
    with _cancel_on_interrupt(stream):
        chunks = _recording(stream, recorder) if recorder else stream
        if args.json:
            for _ in chunks:
                pass
        else:
            _echo(chunks)
            print()
    if recorder:
        recorder.finish(stream.reply)
    assert stream.reply is not None
    if args.json:
        template = "raw" if args.raw else session.template.name
        out = _ask_json(stream.reply, model_id, template) | _tokens_json(stream.reply.completion)
        print(json.dumps({**out, "engine": session.engine.describe().kind}))
    _raise_if_interrupted(stream.reply)
    return 0


def _resumed(args: argparse.Namespace):
    """(store, stored conversation) for ``--resume ID``, else (None, None)."""
    if getattr(args, "resume", None) is None:
        return None, None
    if args.raw:
        raise InputError("--resume continues a conversation; it cannot be combined with --raw.")
    store = _open_store()
    return store, store.get(args.resume)


def _continue_stored(session, stored, args: argparse.Namespace) -> None:
    """The stored turns and the frame the conversation was held in (unless --template)."""
    from app.store import export

    if stored is None:
        return
    session.history = export.as_messages(stored.messages)
    if not args.template:
        session.template = export.conversation_template(stored)


def _recorder(record, text: str):
    from app.store import ReplyRecorder

    return ReplyRecorder(record.store, record.user_turn(text)) if record is not None else None


def _raise_if_interrupted(reply) -> None:
    """The engine failed mid-reply (a server died): what came is shown and kept; say why."""
    if reply.completion.finish_reason == "interrupted":
        raise BasechatError(reply.completion.error or "The reply was interrupted.")


def _ask_many(args: argparse.Namespace, session, model_id: str, store, stored) -> int:
    """``ask --n N``: the alternatives side by side (stored as versions of one reply with --resume)."""
    if args.raw:
        raise InputError("--n needs the transcript; it cannot be combined with --raw.")
    stream = session.send_many(args.message, args.n)
    with _cancel_on_interrupt(stream):
        for index, chunk in stream:
            if not args.json and index == 0:
                print(chunk, end="", flush=True)
    replies = stream.replies
    if stored is not None:
        _store_alternatives(store, stored.id, model_id, args.message, replies)
    if args.json:
        out = _ask_json(replies[0], model_id, session.template.name) | _tokens_json(replies[0].completion)
        out["alternatives"] = [_alternative_json(r) for r in replies]
        print(json.dumps({**out, "engine": session.engine.describe().kind}))
    else:
        print()
        for number, reply in enumerate(replies[1:], 2):
            print(f"--- alternative {number} ---\n{reply.text}")
    return 0


def _store_alternatives(store, conversation_id: int, model_id: str, text: str, replies) -> None:
    """The user turn, then every alternative as a version of the reply; the first one shown."""
    from app.store import ReplyRecorder

    store.add_user_message(conversation_id, text)
    first = store.begin_reply(conversation_id, model_id)
    position = len(store.get(conversation_id).messages) - 1
    ids = [first] + [store.begin_reply(conversation_id, model_id, position) for _ in replies[1:]]
    for message_id, reply in zip(ids, replies, strict=True):
        ReplyRecorder(store, message_id).finish(reply)
    store.choose(first)


def _alternative_json(reply) -> dict:
    completion = reply.completion
    return {"reply": reply.text, "finish_reason": completion.finish_reason,
            "completion_tokens": completion.usage.completion_tokens,
            "cached_tokens": completion.usage.cached_tokens} | _tokens_json(completion)  # fmt: skip


def _tokens_json(completion) -> dict:
    """With --logprobs: each token's text (they spell the reply), probability and top candidates."""
    if not completion.probs:
        return {}
    rows = [{"text": p.chosen.text, "token": p.chosen.token, "prob": round(p.chosen.prob, 6),
             "top": [{"text": c.text, "token": c.token, "prob": round(c.prob, 6)} for c in p.top]}
            for p in completion.probs]  # fmt: skip
    return {"tokens": rows}


def _ask_json(reply, model_id: str, template: str) -> dict:
    usage = asdict(reply.completion.usage)
    return {
        "reply": reply.text,
        "finish_reason": reply.completion.finish_reason,
        **{k: usage[k] for k in ("prompt_tokens", "cached_tokens", "completion_tokens")},
        "ttft_s": round(usage["ttft_s"], 4),
        "tokens_per_s": round(usage["tokens_per_s"], 2),
        "model": model_id,
        "template": template,
        "dropped_turns": reply.dropped_turns,
    }


def cmd_chat(args: argparse.Namespace) -> int:
    store, stored = _resumed(args)
    store = store or _open_store()
    model_id, session = _load(args)
    _continue_stored(session, stored, args)
    conversation = _ChatRecord(store, session, model_id, args.resume)
    interactive = sys.stdin.isatty()
    if interactive:
        device = session.engine.describe().device
        print(f"Basechat on {model_id} ({device}). /reset starts over, /quit leaves.")
    for line in _read_messages(interactive):
        if line == "/quit":
            break
        if line == "/reset":
            session.reset()
            conversation.id = None
            print("(new conversation)")
            continue
        _chat_turn(session, conversation, line, interactive)
    store.close()
    return 0


def _open_store():
    from app.store import ChatStore

    store = ChatStore()
    if store.notice:
        sys.stderr.write(f"basechat: {store.notice}\n")
    return store


class _ChatRecord:
    """The stored conversation a terminal chat writes to; created with its first message."""

    def __init__(self, store, session, model_id: str, conversation_id: int | None) -> None:
        self.store, self.session, self.model_id, self.id = store, session, model_id, conversation_id

    def user_turn(self, text: str) -> int:
        if self.id is None:
            params = asdict(self.session.params)
            self.id = self.store.create_conversation(
                template=self.session.template.name, settings=params, model=self.model_id
            )
        self.store.add_user_message(self.id, text)
        return self.store.begin_reply(self.id, self.model_id)


def _read_messages(interactive: bool) -> Iterator[str]:
    while True:
        try:
            line = input("You: ") if interactive else sys.stdin.readline()
        except (EOFError, KeyboardInterrupt):
            if interactive:
                print()
            return
        if not interactive and not line:
            return
        if line.strip():
            yield line.strip()


def _chat_turn(session, conversation: _ChatRecord, text: str, interactive: bool) -> None:
    from app.store import ReplyRecorder

    try:
        stream = session.send(text)
    except BasechatError as exc:
        sys.stderr.write(f"basechat: {exc}\n")
        return
    recorder = ReplyRecorder(conversation.store, conversation.user_turn(text))
    if interactive:
        sys.stdout.write("Assistant: ")
    with _cancel_on_interrupt(stream):
        _echo(_recording(stream, recorder))
    recorder.finish(stream.reply)
    if stream.reply.completion.finish_reason == "cancelled" and interactive:
        sys.stdout.write(" [stopped]")
    print()
    if stream.reply.completion.finish_reason == "interrupted":
        sys.stderr.write(f"basechat: {stream.reply.completion.error}\n")


def _recording(chunks: Iterable[str], recorder) -> Iterator[str]:
    for chunk in chunks:
        recorder.add(chunk)
        yield chunk


def cmd_eval(args: argparse.Namespace) -> int:
    from app.measure.evaluate import load_items, markdown_table, run_eval
    from app.scaffold import DEFAULT_TEMPLATE, available_templates, load_template

    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1.")
    items = [i for i in load_items(args.files) if args.half in (None, i.half)]
    if args.all_templates:
        modes = [*available_templates(), None]
    else:
        modes = [None] if args.raw else [args.template or DEFAULT_TEMPLATE]
    templates = [load_template(m) if m else None for m in modes]
    _, engine = _open_engine(args)
    summaries = []
    with closing(engine):
        for template in templates:
            label = template.name if template else "raw"
            with _progress(len(items), label) as tick:
                report = run_eval(engine, template, items, args.max_tokens, tick, _eval_sampling(args))
            summaries.append(report.summary())
            if args.replies:
                report.write_replies(args.replies)
    if args.json:
        print(json.dumps(summaries if args.all_templates else summaries[0]))
    elif args.all_templates:
        print(markdown_table(summaries))
    else:
        for key, value in summaries[0].items():
            print(f"{key:>24}: {value}")
    return 0


def _eval_sampling(args: argparse.Namespace):
    """Greedy, no penalty (runs repeat), unless a sampling flag says otherwise."""
    from app.measure.evaluate import GREEDY

    given = {
        "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
        "min_p": args.min_p, "repeat_penalty": args.repeat_penalty, "seed": args.seed,
    }  # fmt: skip
    return replace(GREEDY, **{k: v for k, v in given.items() if v is not None})


@contextmanager
def _progress(total: int, label: str) -> Iterator:
    """A progress bar on a terminal's stderr; silent when stderr is not a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="q", disable=not sys.stderr.isatty()) as bar:
        yield lambda: bar.update(1)


def cmd_chats(args: argparse.Namespace) -> int:
    from app.store import export

    store = _open_store()
    action = args.chats_command
    if action == "list":
        _print_list(store.list_conversations(), args.json)
    elif action == "show":
        _print_conversation(store, args.id, args.json)
    elif action == "export":
        _export(store, args)
    elif action == "import":
        ids = export.import_json(store, _read_json(args.file))
        print(f"Imported {len(ids)} conversation(s): {', '.join(map(str, ids))}")
    elif action == "delete":
        store.delete(args.id)
        print(f"Deleted conversation {args.id}.")
    elif action == "search":
        for cid, title, text in store.search(args.query):
            print(f"{cid:>5}  {title}: {' '.join(text.split())[:80]}")
    return 0


def _print_list(conversations, as_json: bool) -> None:
    if as_json:
        rows = [{"id": c.id, "title": c.title, "created_at": c.created_at,
                 "updated_at": c.updated_at, "model": c.model, "template": c.template}
                for c in conversations]  # fmt: skip
        print(json.dumps(rows, ensure_ascii=False))
        return
    for c in conversations:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated_at))
        print(f"{c.id:>5}  {when}  {c.title}")


def _print_conversation(store, conversation_id: int, as_json: bool) -> None:
    from app.store import export

    if as_json:
        data = export.to_json(store, [conversation_id])["conversations"][0]
        print(json.dumps({"id": conversation_id, **data}, ensure_ascii=False))
    else:
        print(export.markdown_of(store, conversation_id), end="")


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
    else:
        text = export.markdown_of(store, args.id)
    _write_out(text, args.output)


def _write_out(text: str, output: Path | None) -> None:
    """To the file named, or to stdout."""
    if output:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}.") from None


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
        sys.stderr.write(
            "basechat: note: this model looks instruction-tuned; Basechat is made for base models.\n"
        )


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
        from app.models.download import _hub_sha256

        expected = _hub_sha256(entry)
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
        sys.stderr.write(f"basechat: note: {warning}.\n")


def cmd_templates(args: argparse.Namespace) -> int:
    from app.scaffold import template as templates

    action = args.templates_command
    if action == "list":
        _list_templates(args.json)
    elif action == "show":
        sys.stdout.write(templates.template_to_toml(templates.load_template(args.name)))
    elif action == "import":
        _import_template(args.file)
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


def _import_template(path: Path) -> None:
    from app.scaffold.importers import import_file, save_imported

    imported = import_file(path)
    template, saved = save_imported(imported)
    renamed = (
        f" (renamed: '{imported.template.name}' was taken)" if template.name != imported.template.name else ""
    )
    print(f"Imported {imported.kind} as template '{template.name}'{renamed}: {saved}")
    for note in imported.notes:
        sys.stderr.write(f"basechat: note: {note}.\n")


def _export_template(args: argparse.Namespace) -> None:
    from app.scaffold.importers import template_to_card
    from app.scaffold.template import load_template, template_to_toml

    template = load_template(args.name)
    if args.format == "card":
        text = json.dumps(template_to_card(template), ensure_ascii=False, indent=1)
    else:
        text = template_to_toml(template)
    _write_out(text, args.output)


def cmd_bench(args: argparse.Namespace) -> int:
    from app.measure.bench import run_bench
    from app.models.catalog import resolve_model

    server = _server_config(args)
    if server is not None:
        from app.measure.bench import run_remote_bench

        return _print_figures(run_remote_bench(server, args.quick, _bench_progress), args.json)
    model_id, path = resolve_model(args.model)
    if args.plot:
        try:
            from app.measure.plot import plot
        except ImportError:
            raise InputError("--plot needs matplotlib: pip install -e '.[bench]'") from None
        plot(path, args.plot)
    return _print_figures(run_bench(path, model_id, args.quick, _bench_progress, args.smoke), args.json)


def _bench_progress(step: str) -> None:
    sys.stderr.write(f"bench: {step}…\n")


def _print_figures(figures: dict, as_json: bool) -> int:
    if as_json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:>28}: {value}")
    return 0
