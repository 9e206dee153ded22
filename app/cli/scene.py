"""Group chats in the terminal: who speaks, each member's turn as it streams, and the members
going on by themselves (``--turns N``, ``/talk N``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable

from app.chat import ChatSession, ReplyStream
from app.cli.common import cancel_on_interrupt, echo
from app.scaffold.group import Choice, NextSpeaker

# What stores a member's turn as it streams (``text``: the person's message before it, or None).
Keep = Callable[[ReplyStream, "str | None"], Iterable[str]]


def member_turn(session: ChatSession, text: str | None, rule: NextSpeaker, speaker: str | None = None):
    """(stream, choice): the reply of ``speaker``, or of whoever the rule chooses, to ``text``."""
    choice = Choice(speaker, "chosen by the person") if speaker else session.choose_speaker(text, rule)
    return session.speak(choice.speaker, text), choice


def run_scene(session: ChatSession, args: argparse.Namespace, first: str | None, keep: Keep) -> list[dict]:
    """The member who answers ``first`` (``--as`` or chosen), then ``--turns`` more by themselves;
    each turn printed as it streams (unless ``--json``) and kept by ``keep``. One dict a turn."""
    said: list[dict] = []
    speaker = getattr(args, "speaker", None)
    for turn in range(1 + getattr(args, "turns", 0)):
        stream, choice = member_turn(session, first if turn == 0 else None, args.next_speaker, speaker)
        speaker = None
        _stream_turn(stream, choice, keep(stream, first if turn == 0 else None), args.json)
        assert stream.reply is not None
        said.append(turn_json(stream, choice))
        if stream.reply.completion.finish_reason == "cancelled":
            break
    return said


def _stream_turn(stream: ReplyStream, choice: Choice, chunks: Iterable[str], quiet: bool) -> None:
    with cancel_on_interrupt(stream):
        if quiet:
            for _ in chunks:
                pass
            return
        sys.stdout.write(f"{choice.speaker}: ")
        echo(chunks)
        print()


def turn_json(stream: ReplyStream, choice: Choice) -> dict:
    assert stream.reply is not None
    shares = {name: round(share, 4) for name, share in choice.shares}
    return {"speaker": choice.speaker, "reply": stream.reply.text, "why": choice.why, "shares": shares,
            "finish_reason": stream.reply.completion.finish_reason,
            "cached_tokens": stream.reply.completion.usage.cached_tokens,
            "prompt_tokens": stream.reply.completion.usage.prompt_tokens}  # fmt: skip


def print_scene_json(said: list[dict], model_id: str) -> None:
    first = said[0]
    print(json.dumps({**first, "model": model_id, "template": "group", "scene": said}, ensure_ascii=False))
