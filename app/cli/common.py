"""What the terminal commands share: opening an engine and a session from the options, the
store, one-line failures, reading and writing files, Ctrl+C during a reply."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from app.engine.base import SamplingParams
from app.engine.presets import preset_params
from app.errors import InputError
from app.paths import write_atomically

log = logging.getLogger("basechat")


def fail(message: str) -> int:
    """The one line a failure gets; its message may quote a server or a file, so it is made safe."""
    sys.stderr.write(f"basechat: error: {terminal_safe(message)}\n")
    return 1


def note(message: str) -> None:
    """A line on stderr that is not a failure (a warning, a model's kind)."""
    sys.stderr.write(f"basechat: {terminal_safe(message)}\n")


def load_session(args: argparse.Namespace, base: SamplingParams | None = None):
    """(model id, session) for the options given; ``base``: the sampling the flags go on top of
    (a resumed conversation's own)."""
    from app.chat import ChatSession
    from app.scaffold import DEFAULT_TEMPLATE, load_template

    check_numbers(args)
    template = frame_from(args, with_group(args, load_template(args.template or DEFAULT_TEMPLATE)))
    history = read_history(args.history) if args.history else []
    model_id, engine = open_engine(args, keep_states=args.command in ("ask", "chat"))
    params = sampling_from(args, base)
    caveat = engine.sampling_caveat(params)
    if caveat:
        print(caveat, file=sys.stderr)
    return model_id, ChatSession(engine, template, params, history)


def with_group(args: argparse.Namespace, template):
    """``--group A,B,…``: a group frame of those members on top of ``template``."""
    from app.scaffold.group import group_template, members_from

    spec = getattr(args, "group", None)
    return group_template(members_from(spec), template) if spec else template


def frame_from(args: argparse.Namespace, template):
    """The template with this run's persona, speaker name, author's note and lorebook choice."""
    from app.scaffold.template import template_from_dict, template_to_dict

    flags = {"persona": "persona", "user_name": "user_name", "authors_note": "authors_note",
             "authors_note_depth": "note_depth"}  # fmt: skip
    changes = {key: getattr(args, flag, None) for key, flag in flags.items()}
    changes["memory"] = memory_from(getattr(args, "memory", None))
    data = template_to_dict(template) | {k: v for k, v in changes.items() if v is not None}
    if getattr(args, "no_lorebook", False):
        data.pop("lorebook", None)
    return template_from_dict(data, template.name, template.source)


MEMORY_FILE_LIMIT = 64 * 1024


def memory_from(value: str | None) -> str | None:
    """``--memory``: the text itself, or a file of it (a text file up to 64 KB; one clear line else)."""
    if value is None or "\n" in value or not Path(value).is_file():
        return value
    path = Path(value)
    if path.stat().st_size > MEMORY_FILE_LIMIT:
        raise InputError(
            f"{path.name} is over {MEMORY_FILE_LIMIT // 1024} KB: memory is a few facts, not a document."
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {path.name} as text: {exc}") from None


_ENGINE_FLAGS = {"ctx": "n_ctx", "threads": "n_threads", "gpu_layers": "n_gpu_layers"}


def open_engine(args: argparse.Namespace, **settings):
    """(model id, Backend): the server's model with --server, else a local model file.
    ``settings``: extra engine options (``keep_states`` for conversations)."""
    from app.engine.factory import open_backend
    from app.models.catalog import resolve_model

    server = server_config(args)
    settings |= {
        key: value for flag, key in _ENGINE_FLAGS.items() if (value := getattr(args, flag, None)) is not None
    }
    if server is not None:
        engine = open_backend(server=server, n_ctx=settings.get("n_ctx"))
        return engine.describe().name, with_draft(engine, args)
    model_id, path = resolve_model(getattr(args, "model", None))
    return model_id, with_draft(open_backend(path, **settings), args)


def with_draft(engine, args: argparse.Namespace):
    """The engine drafting as ``--draft`` says (default: from the text); a caveat the engine
    gives for a choice made on the command line goes to stderr. A refused draft model closes
    the engine and ends the command with its one-line reason."""
    from app.models.drafts import DEFAULT_DRAFT, apply_draft

    choice = getattr(args, "draft", None)
    try:
        note = apply_draft(engine, choice or DEFAULT_DRAFT)
    except BaseException:
        engine.close()
        raise
    if note and choice:
        print(note, file=sys.stderr)
    return engine


def server_config(args: argparse.Namespace):
    import os

    from app.engine.base import ServerConfig

    url = getattr(args, "server", None) or os.environ.get("BASECHAT_SERVER")
    if not url:
        return None
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            raise InputError(f"--api-key-env names {args.api_key_env}, which is not set.")
    check_finite(args)
    if args.server_timeout <= 0:
        raise InputError("--server-timeout must be more than 0 seconds.")
    return ServerConfig(url, key, args.server_kind, args.server_timeout)


def sampling_from(args: argparse.Namespace, base: SamplingParams | None = None) -> SamplingParams:
    """The sampling flags given, on top of ``base`` (the defaults, or a resumed conversation's)."""
    given = {name: getattr(args, name, None) for name in _SAMPLING_FLAGS}
    given["ignore_eos"] = getattr(args, "ignore_eos", False) or None
    scope = getattr(args, "penalty_scope", None)
    given["penalize_prompt"] = None if scope is None else scope == "prompt"
    base = replace(base or SamplingParams(), n_probs=getattr(args, "logprobs", 0))
    preset = getattr(args, "preset", None)
    if preset:
        base = preset_params(preset, base)
    return replace(base, **{k: v for k, v in given.items() if v is not None})


_SAMPLING_FLAGS = (
    "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "seed", "max_tokens",
    "dry_multiplier", "dry_base", "dry_allowed_length", "dry_last_n", "xtc_probability", "xtc_threshold",
    "best_of",
)  # fmt: skip


def check_finite(args: argparse.Namespace) -> None:
    """nan and inf parse as floats; no setting means either."""
    import math

    floats = ("temperature", "top_p", "min_p", "repeat_penalty", "server_timeout", "dry_multiplier",
              "dry_base", "xtc_probability", "xtc_threshold")  # fmt: skip
    for name in floats:
        value = getattr(args, name, None)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"--{name.replace('_', '-')} must be a number, not {value}.")


def check_numbers(args: argparse.Namespace) -> None:
    check_finite(args)
    if not 1 <= getattr(args, "n", 1) <= 8:
        raise InputError("--n must be between 1 and 8.")
    best_of = getattr(args, "best_of", None)
    if best_of is not None and not 1 <= best_of <= 8:
        raise InputError("--best-of must be between 1 and 8.")
    if not 0 <= getattr(args, "turns", 0) <= 100:
        raise InputError("--turns must be between 0 and 100.")
    if not 0 <= getattr(args, "logprobs", 0) <= 20:
        raise InputError("--logprobs must be between 0 and 20.")
    if args.max_tokens is not None and args.max_tokens < 1:
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


def read_history(path: Path):
    from app.scaffold import Message

    data = read_json(path)
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
def cancel_on_interrupt(stream) -> Iterator[None]:
    """Ctrl+C stops the reply (within one token) instead of the program."""
    previous = signal.signal(signal.SIGINT, lambda *_: stream.cancel())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_CONTROL = dict.fromkeys([*range(0, 9), *range(11, 32), 127, *range(128, 160)])


def terminal_safe(text: str) -> str:
    """Text from a model, a server or a stored chat, without the control characters that would
    let it drive the terminal (escape sequences start with one); new lines and tabs stay."""
    return text.translate(_CONTROL)


def echo(chunks: Iterable[str]) -> None:
    """Print a reply as it streams, without the leading space the model writes."""
    started = False
    for chunk in chunks:
        if not started:
            chunk = chunk.lstrip()
            started = bool(chunk)
        sys.stdout.write(terminal_safe(chunk))
        sys.stdout.flush()


def open_store():
    from app.store import ChatStore

    store = ChatStore()
    if store.notice:
        sys.stderr.write(f"basechat: {store.notice}\n")
    return store


@contextmanager
def progress(total: int, label: str) -> Iterator:
    """A progress bar on a terminal's stderr; silent when stderr is not a terminal."""
    from tqdm import tqdm

    with tqdm(total=total, desc=label, unit="q", disable=not sys.stderr.isatty()) as bar:
        yield lambda: bar.update(1)


def write_out(text: str, output: Path | None) -> None:
    """To the file named, or to stdout."""
    if output:
        try:
            write_atomically(output, text)
        except OSError as exc:
            raise InputError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    else:
        text = terminal_safe(text)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InputError(f"{path} is nested too deeply to read.") from None
