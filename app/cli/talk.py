"""Talking to the model from a terminal: ``prompt`` (the exact text), ``ask`` (one reply) and
``chat`` (a conversation). With ``--resume`` and in ``chat`` every turn is recorded through the
conversation service, in the same shape the window reads."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict

from app.cli.common import (
    cancel_on_interrupt,
    echo,
    frame_from,
    load_session,
    note,
    open_store,
    terminal_safe,
)
from app.engine.base import SamplingParams
from app.errors import BasechatError, InputError
from app.service import ConversationService


def cmd_prompt(args: argparse.Namespace) -> int:
    _, session = load_session(args)
    acted: list[str] = []
    if args.raw:
        text, tokens, dropped = args.message, session.engine.tokenize(args.message), 0
        tokens = session.engine.start_tokens() + tokens
    else:
        plan = session.plan(args.message)
        text, tokens, dropped = plan.text, plan.tokens, plan.dropped_turns
        acted = [str(a) for a in plan.message.acted]
    fired = [] if args.raw else session.lore_fired(args.message)
    if args.json:
        out = {"prompt": text, "tokens": len(tokens), "n_ctx": session.engine.n_ctx, "lore": fired}
        print(json.dumps({**out, "dropped_turns": dropped, "plan": acted}, ensure_ascii=False))
    else:
        print(terminal_safe(text))
        for line in fired:
            note(f"lorebook: {line['name']} ({line['why']})")
        for line in acted:
            note(f"plan: {line}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from app.chat import raw_generation

    model_id, session, record = _conversation(args)
    if session.template.members and not args.raw:
        return _ask_group(args, session, model_id, record)
    if args.n > 1:
        return _ask_many(args, session, model_id, record)
    if args.raw:
        stream = raw_generation(session.engine, args.message, session.params)
    else:
        stream = session.send(args.message)
    chunks = record.reply(stream, args.message) if record is not None else stream
    with cancel_on_interrupt(stream):
        if args.json:
            for _ in chunks:
                pass
        else:
            echo(chunks)
            print()
    assert stream.reply is not None
    if args.json:
        template = "raw" if args.raw else session.template.name
        out = _ask_json(stream.reply, model_id, template) | _tokens_json(stream.reply.completion)
        print(
            json.dumps({**out, "engine": session.engine.describe().kind, "sampling": asdict(session.params)})
        )
    _raise_if_interrupted(stream.reply)
    return 0


def _ask_group(args: argparse.Namespace, session, model_id: str, record: _Record | None) -> int:
    """A group's answer to the message (``--as`` or chosen), and ``--turns`` more by themselves."""
    from app.cli.scene import print_scene_json, run_scene

    if args.n > 1:
        raise InputError("--n draws one speaker's alternatives; in a group, use --as NAME with it.")
    keep = record.member if record is not None else (lambda stream, _text: stream)
    said = run_scene(session, args, args.message, keep)
    if args.json:
        print_scene_json(said, model_id)
    return 0


def _conversation(args: argparse.Namespace):
    """(model id, session, record): with ``--resume ID`` the stored turns, frame and sampling (flags
    given now win), and the record that stores this turn; without it no record (``ask``)."""
    if getattr(args, "resume", None) is None:
        model_id, session = load_session(args)
        return model_id, session, None
    if args.raw:
        raise InputError("--resume continues a conversation; it cannot be combined with --raw.")
    service = ConversationService(open_store())
    opened = service.open(args.resume)
    model_id, session = load_session(args, opened.params(SamplingParams()))
    session.history = opened.history
    if not args.template:
        session.template = frame_from(args, opened.template)
    return model_id, session, _Record(service, session, model_id, args.resume)


def _raise_if_interrupted(reply) -> None:
    """The engine failed mid-reply (a server died): what came is shown and kept; say why."""
    if reply.completion.finish_reason == "interrupted":
        raise BasechatError(reply.completion.error or "The reply was interrupted.")


def _ask_many(args: argparse.Namespace, session, model_id: str, record: _Record | None) -> int:
    """``ask --n N``: the alternatives side by side (stored as versions of one reply with --resume)."""
    if args.raw:
        raise InputError("--n needs the transcript; it cannot be combined with --raw.")
    stream = session.send_many(args.message, args.n)
    chunks = record.alternatives(stream, args.message, args.n) if record is not None else stream
    with cancel_on_interrupt(stream):
        for index, chunk in chunks:
            if not args.json and index == 0:
                print(terminal_safe(chunk), end="", flush=True)
    replies = stream.replies
    if args.json:
        out = _ask_json(replies[0], model_id, session.template.name) | _tokens_json(replies[0].completion)
        out["alternatives"] = [_alternative_json(r) for r in replies]
        print(json.dumps({**out, "engine": session.engine.describe().kind}))
    else:
        print()
        for number, reply in enumerate(replies[1:], 2):
            print(f"--- alternative {number} ---\n{terminal_safe(reply.text)}")
    return 0


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
        "drafted_tokens": usage["drafted_tokens"],
        "accepted_tokens": usage["accepted_tokens"],
        "model": model_id,
        "template": template,
        "dropped_turns": reply.dropped_turns,
    }


def cmd_chat(args: argparse.Namespace) -> int:
    model_id, session, record = _conversation(args)
    if record is None:
        record = _Record(ConversationService(open_store()), session, model_id, None)
    interactive = sys.stdin.isatty()
    if interactive:
        device = session.engine.describe().device
        print(f"Basechat on {model_id} ({device}). /reset starts over, /quit leaves.")
    for line in _read_messages(interactive):
        if line == "/quit":
            break
        if line == "/reset":
            session.reset()
            record.id = None
            print("(new conversation)")
            continue
        _chat_turn(session, record, line, interactive, args)
    record.service.store.close()
    return 0


class _Record:
    """The stored conversation a terminal command writes to, through the conversation service;
    a new one is started (with the session's frame and sampling) by its first message."""

    def __init__(self, service: ConversationService, session, model_id: str, conversation_id: int | None):
        self.service, self.session, self.model_id, self.id = service, session, model_id, conversation_id

    def _user_turn(self, text: str) -> int:
        if self.id is None:
            self.id = self.service.start(self.session.template, self.session.params, self.model_id)
        self.service.add_user(self.id, text)
        return self.id

    def reply(self, stream, text: str) -> Iterator[str]:
        """The user turn is stored now; the reply as it streams."""
        return self.service.record_reply(stream, self._user_turn(text), self.model_id)

    def member(self, stream, text: str | None) -> Iterator[str]:
        """A group member's turn: after the person's ``text``, or (None) the scene going on."""
        if text is not None:
            return self.reply(stream, text)
        if self.id is None:
            self.id = self.service.start(self.session.template, self.session.params, self.model_id)
        return self.service.record_reply(stream, self.id, self.model_id)

    def alternatives(self, stream, text: str, n: int) -> Iterator[tuple[int, str]]:
        return self.service.record_alternatives(stream, self._user_turn(text), n, self.model_id)


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


def _chat_turn(session, record: _Record, text: str, interactive: bool, options: argparse.Namespace) -> None:
    if session.template.members:
        _group_turn(session, record, text, options)
        return
    try:
        stream = session.send(text)
    except BasechatError as exc:
        note(str(exc))
        return
    if interactive:
        sys.stdout.write("Assistant: ")
    with cancel_on_interrupt(stream):
        echo(record.reply(stream, text))
    if stream.reply.completion.finish_reason == "cancelled" and interactive:
        sys.stdout.write(" [stopped]")
    print()
    if stream.reply.completion.finish_reason == "interrupted":
        note(stream.reply.completion.error)


def _group_turn(session, record: _Record, text: str, options: argparse.Namespace) -> None:
    """A message to the group (answered as ``--as``/``--turns`` say), or ``/as NAME`` (that member
    speaks now) or ``/talk N`` (the members go on N turns by themselves)."""
    from app.cli.scene import run_scene

    command, _, rest = text.partition(" ")
    args = argparse.Namespace(speaker=options.speaker, turns=options.turns, json=False,
                              next_speaker=options.next_speaker)  # fmt: skip
    message: str | None = text
    if command == "/as":
        args.speaker, message = rest.strip(), None
    elif command == "/talk":
        args.turns, message = (int(rest) - 1 if rest.strip().isdigit() and int(rest) > 0 else 0), None
    try:
        run_scene(session, args, message, record.member)
    except BasechatError as exc:
        note(str(exc))
