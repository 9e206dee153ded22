"""The engine's own thread: loading models and generating replies, off the GUI thread.

One ``EngineWorker`` is moved onto a ``QThread`` and owns the model (as in
gpt4all's ChatLLM). The window reaches it only through queued signals; it
answers only through signals, so no widget is ever touched from here. Stop
is the one direct call: it sets the generation's cancel flag, which the
engine checks before every token.

Signals:
    model_loading(str): a model is being opened (its id).
    model_ready(dict): id and the fields of ``EngineInfo`` (kind, name, device, n_ctx, location, …).
    model_failed(str): one-line reason; the previous model, if any, stays loaded.
    token(int, str): request id and the next chunk of reply text.
    alternative_token(int, int, str): request id, which alternative, and its next chunk.
    reply_done(int, object): request id and a ``ReplyOutcome``.
    reply_failed(int, str): request id and a one-line reason.
    inspected(int, str, int, int, int): request id, prompt text (or why it does not fit), its
        tokens, the room kept for the reply, context size — from the same ``plan`` a send uses.
    lore_inspected(int, object): request id and the lorebook entries that prompt fires, and why.
    plan_inspected(int, object): request id and each step of that message's plan that acted, and why.
    waiting(int, str): request id and who has the model (a request to the window's server): the
        reply starts when it is done, or is given up by Stop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.chat import (
    AlternativesStream,
    ChatSession,
    ReplyStart,
    ReplyStream,
    raw_alternatives,
    raw_generation,
    reply_budget,
)
from app.engine.base import Backend, SamplingParams, ServerConfig, Usage
from app.engine.factory import open_backend
from app.engine.turns import Turns
from app.errors import BasechatError, ContextOverflow
from app.models.drafts import DEFAULT_DRAFT, apply_draft
from app.scaffold import Message, Template
from app.scaffold.group import Choice, as_speaker
from app.scaffold.language import load_language
from app.scaffold.memory import MemoryIndex
from app.service import ConversationService

log = logging.getLogger(__name__)

_RELEASE_WAIT_S = 10  # how long freeing the model waits for a generation still ending
DEFAULT_KV_CAP_MB = 2048
SERVER_ID = "server"  # the model id the window uses for "the model of the configured server"


@dataclass(frozen=True)
class EngineSettings:
    n_ctx: int | None = None
    n_threads: int | None = None
    n_gpu_layers: int | None = None
    server: ServerConfig | None = None  # set: the model lives on this inference server
    kv_cap_mb: int = 2048  # disk for saved KV states (instant resume); 0 turns them off
    draft: str = DEFAULT_DRAFT  # speculative decoding: "off", "lookup" or a draft model's id


@dataclass(frozen=True)
class ReplyRequest:
    """What to generate. ``mode``: 'send' (user message already stored), 'regenerate'
    (a new alternative at ``position``), 'continue' (extend the reply at ``position``) or 'branch'
    (a new version at ``position`` going on from ``start``) or 'notebook' (``user_text`` is a
    document, continued as it is, no transcript). ``n`` > 1: that many alternatives at once."""

    request_id: int
    conversation_id: int
    history: list[Message]
    template: Template
    params: SamplingParams
    mode: str = "send"
    user_text: str = ""
    position: int | None = None
    message_id: int | None = None
    n: int = 1
    start: ReplyStart | None = None
    skipped_turns: int = 0  # older turns not read at all: more than the context could hold
    # A group chat: who speaks ("": chosen by ``next_speaker``'s rule); mode 'scene' is a member's
    # turn with no message from the person (let them talk, or a member picked to speak).
    speaker: str = ""
    next_speaker: str = "model"
    muted: frozenset[str] = frozenset()  # members who stay silent unless picked


@dataclass(frozen=True)
class ReplyOutcome:
    text: str
    finish_reason: str
    usage: Usage
    dropped_turns: int
    n_ctx: int
    error: str = ""  # why an "interrupted" reply ended
    together: int = 1  # replies decoded side by side (best_of draws, the loom's alternatives)


class EngineWorker(QObject):
    model_loading = Signal(str)
    model_ready = Signal(dict)
    model_failed = Signal(str)
    token = Signal(int, str)
    drawing = Signal(int, int)  # request id, draws: what they agree on streams, then the likeliest
    alternative_token = Signal(int, int, str)
    reply_done = Signal(int, object)
    reply_failed = Signal(int, str)
    inspected = Signal(int, str, int, int, int)
    lore_inspected = Signal(int, object)  # request id, the lorebook entries that prompt fires
    waiting = Signal(int, str)  # request id, who has the model now
    plan_inspected = Signal(int, object)  # request id, what each step of the message plan did, why
    speaker_chosen = Signal(int, str, object)  # request id, the group member who speaks, each one's share

    def __init__(self, service: ConversationService) -> None:
        super().__init__()
        self.service = service
        self.engine: Backend | None = None
        self.model_id = ""
        self._current: ReplyStream | AlternativesStream | None = None
        self._current_lock = threading.Lock()
        self.turns = Turns()  # shared with the window's server, when it serves
        self._stop_asked = threading.Event()
        # Type-ahead: the composer's keystrokes (counted on the GUI thread; an int is read whole),
        # and the tokens evaluated ahead of Send so far.
        self.keystrokes = 0
        self.prefilled = 0

    # -- model -----------------------------------------------------------------

    @Slot(str, str, object)
    def load_model(self, model_id: str, path: str, settings: EngineSettings) -> None:
        """Open ``path`` with llama.cpp, or the server in ``settings`` (``path`` then unused)."""
        self.model_loading.emit(model_id)
        try:
            engine = open_backend(
                Path(path) if path else None, settings.server, n_ctx=settings.n_ctx,
                n_threads=settings.n_threads, n_gpu_layers=settings.n_gpu_layers,
                keep_states=settings.kv_cap_mb > 0, kv_disk_cap=settings.kv_cap_mb * 1024**2,
            )  # fmt: skip
        except BasechatError as exc:
            self.model_failed.emit(str(exc))
            return
        except Exception as exc:  # never let the thread die with the window waiting
            log.exception("model load failed")
            self.model_failed.emit(f"Could not load the model: {exc}")
            return
        self.release_model()
        self.engine, self.model_id = engine, model_id
        draft_note = self._draft(engine, settings.draft)
        self.model_ready.emit({"id": model_id, **asdict(engine.describe()), "draft_note": draft_note})

    @staticmethod
    def _draft(engine: Backend, choice: str) -> str:
        """Drafting as Settings say; a draft model that cannot be used leaves drafting off, and
        the reason (one line) is what the window shows."""
        try:
            return apply_draft(engine, choice)
        except BasechatError as exc:
            return f"{exc} Replies are not drafted."

    def release_model(self) -> None:
        """Free the model, once nobody holds it: the window's server or this worker may still be
        ending a generation, and freeing a model under it crashes or hangs in llama.cpp. A model
        still held after the wait is left for the process's exit to free."""
        if self.engine is None:
            return
        with self.turns.if_free("closing", _RELEASE_WAIT_S) as free:
            if not free:
                log.warning("the model is still in use (%s); not freed", self.turns.holder)
                return
            self.engine.close()
            self.engine = None

    # -- replies ---------------------------------------------------------------

    def stop(self) -> None:
        """Called from the GUI thread: cancel the running generation within one token, and any
        type-ahead within one batch (the window closing frees the model right after)."""
        self.keystrokes += 1
        self._stop_asked.set()
        with self._current_lock:
            if self._current is not None:
                self._current.cancel()

    @Slot(object)
    def generate(self, request: ReplyRequest) -> None:
        if self.engine is None:
            self.reply_failed.emit(request.request_id, "No model is loaded yet.")
            return
        self._stop_asked.clear()
        try:
            with self.turns.taken("the window", lambda who: self.waiting.emit(request.request_id, who),
                                  self._stop_asked):  # fmt: skip
                self._generate(request)
        except BasechatError as exc:
            self.reply_failed.emit(request.request_id, str(exc))
        except Exception as exc:
            log.exception("generation failed")
            self.reply_failed.emit(request.request_id, f"The reply failed: {exc}")
        finally:
            with self._current_lock:
                self._current = None

    def _generate(self, request: ReplyRequest) -> None:
        engine = self.engine
        assert engine is not None  # generate() checked
        memory = self._memory(
            request.conversation_id, request.template, request.skipped_turns + len(request.history)
        )
        session = ChatSession(engine, request.template, request.params, request.history, memory)
        if request.template.members and request.mode != "notebook":
            self._cast(session, request)
        if request.n > 1:
            self._generate_many(self._alternatives(session, request), request)
            return
        stream = self._stream(session, request)
        with self._current_lock:
            self._current = stream
        if stream.draws > 1:
            self.drawing.emit(request.request_id, stream.draws)
        extends = request.message_id if request.mode == "continue" else None
        chunks = self.service.record_reply(stream, request.conversation_id, self.model_id,
                                           request.position, extends, _already_written(request))  # fmt: skip
        for chunk in chunks:
            self.token.emit(request.request_id, chunk)
        outcome = _outcome(stream.reply, engine.n_ctx, request.skipped_turns, stream.draws)
        self.reply_done.emit(request.request_id, outcome)

    def _cast(self, session: ChatSession, request: ReplyRequest) -> None:
        """A group chat's reply: its speaker — the one continued, the one picked, or the one its
        rule chooses (the model's odds by default) — is cued, and the window told who it is."""
        if request.mode == "continue":
            last = session.history[-1] if session.history else None
            choice = Choice(
                last.speaker if last and last.speaker else session.template.assistant_name, "continued"
            )
        elif request.speaker:
            choice = Choice(request.speaker, "chosen by the person")
        else:
            text = None if request.mode == "scene" else request.user_text
            choice = session.choose_speaker(text, request.next_speaker, request.muted)  # type: ignore[arg-type]
        session.template = as_speaker(session.template, choice.speaker)
        self.speaker_chosen.emit(request.request_id, choice.speaker, list(choice.shares))

    @staticmethod
    def _stream(session: ChatSession, request: ReplyRequest) -> ReplyStream:
        """The one reply the request asks for, by its mode."""
        if request.mode == "scene":
            return session.speak(session.template.assistant_name)
        if request.mode == "notebook":
            return raw_generation(session.engine, request.user_text, request.params)
        if request.mode == "branch":
            assert request.start is not None
            return session.send_from(request.user_text, request.start)
        if request.mode == "continue":
            return session.continue_last()
        return session.send(request.user_text)

    def _alternatives(self, session: ChatSession, request: ReplyRequest) -> AlternativesStream:
        if request.mode == "notebook":
            return raw_alternatives(session.engine, request.user_text, request.params, request.n)
        return session.send_many(request.user_text, request.n)

    def _generate_many(self, stream: AlternativesStream, request: ReplyRequest) -> None:
        """Every alternative is stored as a version of one reply as it streams; the first is shown."""
        assert self.engine is not None
        with self._current_lock:
            self._current = stream
        chunks = self.service.record_alternatives(stream, request.conversation_id, request.n,
                                                  self.model_id, request.position)  # fmt: skip
        for index, chunk in chunks:
            self.alternative_token.emit(request.request_id, index, chunk)
        outcome = _outcome(stream.replies[0], self.engine.n_ctx, request.skipped_turns, request.n)
        self.reply_done.emit(request.request_id, outcome)

    def _memory(self, conversation_id: int, template: Template, end: int | None) -> MemoryIndex | None:
        """The chat's whole path, indexed, up to the message being answered (None: no such chat)."""
        try:
            return self.service.memory(conversation_id, load_language(template.language), end)
        except BasechatError:
            return None

    @Slot(int, object, object, str, object, object)
    def prefill(self, typed_at: int, template: Template, history: list, text: str, params, where) -> None:
        """Evaluate the prompt the composer's text would send, while the person types (``typed_at``:
        the keystroke count it was asked at; a later keystroke or Send makes it stale)."""
        if self.engine is None or typed_at != self.keystrokes:
            return
        memory = self._memory(where[0], template, where[1] + len(history)) if where else None
        session = ChatSession(self.engine, template, params, history, memory)
        with self.turns.if_free("type-ahead") as free:
            try:
                self.prefilled += session.prefill(text, _Typed(self, typed_at)) if free else 0
            except BasechatError:
                return  # too long for the context, or the like: Send will say so

    @Slot(int, object)
    def warm_memory(self, conversation_id: int, template: Template) -> None:
        """A chat just opened: its memory index is built now, on this thread, not at the first send."""
        self._memory(conversation_id, template, None)

    @Slot(int, object, object, str, object, object)
    def inspect(
        self, request_id: int, template: Template, history: list, user_text: str, params, where
    ) -> None:
        """The exact prompt the next message would send with these settings, and its size
        (``where``: the chat and its tail's first position, for its memory; None: no chat yet)."""
        if self.engine is None:
            return
        memory = self._memory(where[0], template, where[1] + len(history)) if where else None
        session = ChatSession(self.engine, template, params, history, memory)
        room = reply_budget(params.max_tokens, self.engine.n_ctx)
        try:
            plan = session.plan(user_text or "…")
        except ContextOverflow as exc:
            self.inspected.emit(request_id, str(exc), exc.needed, room, self.engine.n_ctx)
            return
        except BasechatError as exc:
            self.inspected.emit(request_id, str(exc), 0, room, self.engine.n_ctx)
            return
        self.inspected.emit(request_id, plan.text, len(plan.tokens), plan.reply_room, plan.n_ctx)
        self.lore_inspected.emit(request_id, session.lore_fired(user_text or "…"))
        self.plan_inspected.emit(request_id, [str(acted) for acted in plan.message.acted])


class _Typed:
    """Stale once the person has typed again (or sent) since the type-ahead was asked for, or as
    soon as someone else waits for the model."""

    def __init__(self, worker: EngineWorker, typed_at: int) -> None:
        self.worker, self.typed_at = worker, typed_at

    def is_set(self) -> bool:
        """Typed on or sent, or a request to the window's server waits for the model."""
        return self.worker.keystrokes != self.typed_at or self.worker.turns.waiting > 0


def _already_written(request: ReplyRequest) -> str:
    """What the stored reply starts with before new text streams in: the reply being continued,
    or the kept part of a branched one."""
    if request.mode == "continue":
        return request.history[-1].continuation
    return request.start.text if request.start is not None else ""


def _outcome(reply, n_ctx: int, skipped_turns: int, together: int = 1) -> ReplyOutcome:
    completion = reply.completion
    dropped = reply.dropped_turns + skipped_turns
    reason, usage = completion.finish_reason, completion.usage
    return ReplyOutcome(reply.text, reason, usage, dropped, n_ctx, completion.error, together)
