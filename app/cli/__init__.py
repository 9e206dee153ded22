"""The ``basechat`` command: terminal access to the same services the window uses.

One module per command group (``talk``: prompt, ask, chat; ``chats``; ``models``;
``templates``; ``measure``: eval, bench), the parser in ``parser``, what they
share in ``common``. Every failure a user can cause ends in one line on stderr
and a non-zero exit; tracebacks go to the log file in the data folder, never
the terminal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from app.cli.common import fail, log, note
from app.cli.parser import build_parser
from app.errors import BasechatError

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--probe-model"]:  # the packaged app's child process for test-loading files
        from app.models.probe import probe_main

        return probe_main(argv[1:])
    if argv[:1] == ["--self-test"]:
        from app.measure.selftest import self_test

        return self_test()
    args = build_parser().parse_args(argv)
    if args.data_dir:
        import os

        from app.paths import DATA_DIR_ENV

        os.environ[DATA_DIR_ENV] = str(args.data_dir.expanduser().resolve())
    try:
        _setup_logging()
        from app.paths import sweep_data_folder

        sweep_data_folder()
        return _dispatch(args)
    except BasechatError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a folder or file the person's system will not let us use
        log.exception("file error")
        where = f" {exc.filename}" if exc.filename else ""
        return fail(f"Cannot use{where}: {exc.strerror or exc}.")
    except RecursionError:
        log.exception("nesting too deep")
        return fail("The input is nested too deeply to read.")
    except Exception as exc:  # the last net: a user sees one line, the log keeps the rest
        log.exception("unexpected error")
        return fail(f"unexpected {type(exc).__name__}: {exc} (details in {_log_path()})")


def _log_path() -> Path:
    from app.paths import data_dir

    return data_dir() / "basechat.log"


class _QuietFileHandler(logging.FileHandler):
    """The log file, or nothing: a record that cannot be written (a full disk) is dropped, where
    logging's own handler printed "--- Logging error ---" and two tracebacks to the terminal."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def _setup_logging() -> None:
    try:
        handler: logging.Handler = _QuietFileHandler(_log_path(), encoding="utf-8")
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
        note(f"{reason}; chatting in the terminal instead.")
        args = build_parser().parse_args(["chat"], namespace=args)
    return _handler(command)(args)


def _handler(command: str):
    """The command group's module is imported only when it runs (start-up stays quick)."""
    from app.cli import chats, measure, models, serve, talk, templates

    return {
        "ask": talk.cmd_ask, "prompt": talk.cmd_prompt, "chat": talk.cmd_chat, "eval": measure.cmd_eval,
        "chats": chats.cmd_chats, "models": models.cmd_models, "bench": measure.cmd_bench,
        "templates": templates.cmd_templates, "serve": serve.cmd_serve,
    }[command]  # fmt: skip
