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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
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
    parser.add_argument("--temperature", type=float, help="0 = greedy (default 0.7)")
    parser.add_argument("--seed", type=int, help="random seed for sampling")
    parser.add_argument("--ctx", type=int, help="context size in tokens (default 4096)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    parser.add_argument("--gpu-layers", type=int, help="layers to offload (default: all on Metal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="basechat", description="Offline chat with base language models.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    ask = sub.add_parser("ask", help="one reply to MESSAGE")
    _model_options(ask)
    ask.add_argument("message")
    prompt = sub.add_parser("prompt", help="print the exact text that would be sent")
    _model_options(prompt)
    prompt.add_argument("message")
    chat = sub.add_parser("chat", help="a conversation in the terminal")
    _model_options(chat)
    _eval_options(sub.add_parser("eval", help="measure how well the scaffold makes the model chat"))
    return parser


def _eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, help="JSONL question files")
    parser.add_argument("--model", help="catalog id or path to a .gguf file")
    parser.add_argument("--template", help="template name or .toml path (default: chat)")
    parser.add_argument("--raw", action="store_true", help="ask the bare model, no transcript")
    parser.add_argument("--all-templates", action="store_true", help="every template and raw")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _version() -> str:
    from app import __version__

    return f"basechat {__version__}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    command = args.command or "chat"
    if command == "chat" and not hasattr(args, "model"):
        args = build_parser().parse_args(["chat"])
    handlers = {"ask": cmd_ask, "prompt": cmd_prompt, "chat": cmd_chat, "eval": cmd_eval}
    return handlers[command](args)


# -- shared set-up -------------------------------------------------------------


def _load(args: argparse.Namespace):
    """Engine, template and session for the options given."""
    from app.chat import ChatSession
    from app.engine.base import SamplingParams
    from app.engine.llama import LlamaEngine
    from app.models.catalog import resolve_model
    from app.scaffold import DEFAULT_TEMPLATE, load_template

    _check_numbers(args)
    template = load_template(args.template or DEFAULT_TEMPLATE)
    history = _read_history(args.history) if args.history else []
    model_id, path = resolve_model(args.model)
    engine = LlamaEngine(path, n_ctx=args.ctx, n_threads=args.threads, n_gpu_layers=args.gpu_layers)
    params = SamplingParams(max_tokens=args.max_tokens, seed=args.seed)
    if args.temperature is not None:
        params = SamplingParams(
            temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
        )
    return model_id, ChatSession(engine, template, params, history)


def _check_numbers(args: argparse.Namespace) -> None:
    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1.")
    if args.temperature is not None and args.temperature < 0:
        raise InputError("--temperature cannot be negative.")
    if args.ctx is not None and args.ctx < 256:
        raise InputError("--ctx must be at least 256 tokens.")
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads must be at least 1.")


def _read_history(path: Path):
    from app.scaffold import Message

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}.") from None
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

    model_id, session = _load(args)
    if args.raw:
        stream = raw_generation(session.engine, args.message, session.params)
        dropped = 0
    else:
        stream = session.send(args.message)
    with _cancel_on_interrupt(stream):
        if args.json:
            stream.run()
        else:
            _echo(stream)
            print()
    completion = stream.result if args.raw else stream.reply.completion
    if not args.raw:
        dropped = stream.reply.dropped_turns
    if args.json:
        text = completion.text if args.raw else stream.reply.text
        template = "raw" if args.raw else session.template.name
        print(json.dumps(_ask_json(text, completion, model_id, template, dropped)))
    return 0


def _ask_json(text, completion, model_id: str, template: str, dropped: int) -> dict:
    usage = asdict(completion.usage)
    return {
        "reply": text,
        "finish_reason": completion.finish_reason,
        **{k: usage[k] for k in ("prompt_tokens", "cached_tokens", "completion_tokens")},
        "ttft_s": round(usage["ttft_s"], 4),
        "tokens_per_s": round(usage["tokens_per_s"], 2),
        "model": model_id,
        "template": template,
        "dropped_turns": dropped,
    }


def cmd_chat(args: argparse.Namespace) -> int:
    model_id, session = _load(args)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Basechat on {model_id} ({session.engine.device}). /reset clears, /quit leaves.")
    for line in _read_messages(interactive):
        if line == "/quit":
            break
        if line == "/reset":
            session.reset()
            print("(conversation cleared)")
            continue
        _chat_turn(session, line, interactive)
    return 0


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


def _chat_turn(session, text: str, interactive: bool) -> None:
    try:
        stream = session.send(text)
    except BasechatError as exc:
        sys.stderr.write(f"basechat: {exc}\n")
        return
    if interactive:
        sys.stdout.write("Assistant: ")
    with _cancel_on_interrupt(stream):
        _echo(stream)
    if stream.reply and stream.reply.completion.finish_reason == "cancelled" and interactive:
        sys.stdout.write(" [stopped]")
    print()


def cmd_eval(args: argparse.Namespace) -> int:
    from app.engine.llama import LlamaEngine
    from app.evaluate import load_items, markdown_table, run_eval
    from app.models.catalog import resolve_model
    from app.scaffold import DEFAULT_TEMPLATE, available_templates, load_template

    if args.max_tokens < 1:
        raise InputError("--max-tokens must be at least 1.")
    items = load_items(args.files)
    if args.all_templates:
        modes = [*available_templates(), None]
    else:
        modes = [None] if args.raw else [args.template or DEFAULT_TEMPLATE]
    templates = [load_template(m) if m else None for m in modes]
    _, path = resolve_model(args.model)
    summaries = []
    with LlamaEngine(path) as engine:
        for template in templates:
            label = template.name if template else "raw"
            with _progress(len(items), label) as tick:
                report = run_eval(engine, template, items, args.max_tokens, tick)
            summaries.append(report.summary())
    if args.json:
        print(json.dumps(summaries if args.all_templates else summaries[0]))
    elif args.all_templates:
        print(markdown_table(summaries))
    else:
        for key, value in summaries[0].items():
            print(f"{key:>24}: {value}")
    return 0


@contextmanager
def _progress(total: int, label: str) -> Iterator:
    """A progress bar on a terminal's stderr; silent when stderr is not a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="q", disable=not sys.stderr.isatty()) as bar:
        yield lambda: bar.update(1)
