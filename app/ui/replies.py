"""The reply controller: every reply the window asks the engine for, from request to stored turn.

It owns the worker's reply signals, the request ids, Stop and abandoning a reply
(switching chats while it streams), and the actions that start one: send,
regenerate, continue, edit, versions and branches. Its state is one value
(``ReplyState``) replaced as a whole, never a set of loose flags. The loom, the
notebook and the window talk to it through its public methods only.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QPixmap

from app.engine.base import Usage
from app.scaffold import Message
from app.scaffold.template import avatars_dir
from app.service import PathTail, as_messages, sampling_overrides
from app.store.chats import StoredMessage
from app.ui.messages import MessageWidget, avatar_picture, copy_to_clipboard
from app.ui.settings import load_sampling
from app.ui.worker import ReplyOutcome, ReplyRequest

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

PAGE = 30  # turns drawn when a chat opens, and per "Show earlier messages"
MIN_TOKENS_FOR_SPEED = 16  # a speed measured over fewer tokens is noise
CONTINUABLE = ("length", "cancelled")  # a reply cut by the limit or by Stop can be continued
_NOTES = {"cancelled": "stopped", "length": "length limit"}
_PLACEHOLDER = "Message the model — Enter sends, Shift+Enter for a new line"


class Phase(Enum):
    IDLE = "idle"
    STREAMING = "streaming"
    STOPPED = "stopped"  # Stop was pressed: text still queued from the engine is not drawn


@dataclass(frozen=True)
class ReplyState:
    """The reply in progress. ``abandoned``: a request left by switching away (its end frees the
    composer); ``sent_text``: what a send typed, given back if no reply comes."""

    phase: Phase = Phase.IDLE
    request_id: int = 0
    mode: str = "send"
    turn: MessageWidget | None = None
    sent_text: str = ""
    shown_at_stop: str = ""
    abandoned: int = 0


class ReplyController(QObject):
    """A QObject on the GUI thread, so the worker's signals reach it queued."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.state = ReplyState()
        self.waiting: list[str] = []  # messages sent while a reply streamed or the model loaded
        self._ids = itertools.count(1)
        worker = window.worker
        worker.token.connect(self.on_token)
        worker.drawing.connect(self.on_drawing)
        worker.waiting.connect(self.on_waiting)
        worker.reply_done.connect(self.on_done)
        worker.reply_failed.connect(self.on_failed)
        window.view.earlier_requested.connect(self.show_earlier)

    # -- state ---------------------------------------------------------------------------

    @property
    def streaming(self) -> MessageWidget | None:
        """The turn a reply is streaming into (None when no reply runs)."""
        return self.state.turn if self.state.phase is not Phase.IDLE else None

    @property
    def busy(self) -> bool:
        return self.state.phase is not Phase.IDLE

    def is_drawn(self, request_id: int) -> bool:
        """Whether text for ``request_id`` is shown: the current reply, and Stop not pressed."""
        return request_id == self.state.request_id and self.state.phase is Phase.STREAMING

    def next_request_id(self) -> int:
        return next(self._ids)

    def can_act(self) -> bool:
        """An action on the chat may start: a conversation is open and no reply runs."""
        return not self.busy and self.w.conversation_id is not None

    # -- reading the conversation ------------------------------------------------------------

    def tail(self, end: int | None = None) -> PathTail:
        """The turns before ``end`` (the whole shown path when None) a prompt could hold."""
        cid = self.w.conversation_id
        if cid is None:
            return PathTail(0, [])
        return self.w.service.tail(cid, end, int((self.w.model_info or {}).get("n_ctx") or 0))

    def history(self) -> list[Message]:
        return as_messages(self.tail().messages)

    def params(self):
        """The app's sampling with the open conversation's own on top."""
        cid, w = self.w.conversation_id, self.w
        overrides = sampling_overrides(w.store.settings(cid)) if cid is not None else {}
        return load_sampling(w.settings, overrides)

    # -- starting replies --------------------------------------------------------------------

    def send(self, text: str) -> None:
        """The person's message is stored at once and the reply follows; while a reply streams or
        the model loads, it waits its turn in a queue, and the status line says so."""
        w = self.w
        if self.busy or not w.model_info:
            self.waiting.append(text)
            self._say_waiting()
            return
        tail = self.tail()
        if w.conversation_id is None:
            w.conversation_id = w.service.start(
                w.template, load_sampling(w.settings), w.model_info.get("id", "")
            )
            w.settings.setValue("last_conversation", w.conversation_id)
        w.service.add_user(w.conversation_id, text)
        self.show_user_turn(tail.end, text)
        w.sidebar.refresh(select=w.conversation_id)
        request = self._request(tail, tail.end, user_text=text, n=w.loom.alternatives_per_reply())
        self.state = replace(self.state, sent_text=text)
        self.start_some(request, tail.end + 1)

    def _request(self, tail: PathTail, end: int, **fields) -> ReplyRequest:
        """A request whose history is the turns of ``tail`` before ``end``."""
        assert self.w.conversation_id is not None
        history = as_messages(tail.before(end))
        muted = frozenset(self.w.groups.muted)
        return ReplyRequest(0, self.w.conversation_id, history, self.w.template, self.params(),
                            skipped_turns=tail.start, muted=muted, **fields)  # fmt: skip

    def start_some(self, request: ReplyRequest, position: int) -> None:
        """One reply, or several at once when the request asks for alternatives."""
        if request.n > 1:
            self.w.loom.start_alternatives(request, position)
        else:
            self.start(request, position)

    def start(self, request: ReplyRequest, position: int, start: str = "") -> None:
        """Stream the reply ``request`` asks for into a new turn at ``position``."""
        turn = self.new_turn("assistant", position)
        turn.begin_stream(start)
        request_id = self.next_request_id()
        self.state = replace(
            self.state, phase=Phase.STREAMING, request_id=request_id, mode=request.mode, turn=turn
        )
        self.w.busy.show()
        self.w.composer.set_busy(True)
        self.w.request_generate.emit(replace(request, request_id=request_id))

    def regenerate(self, position: int, n: int = 1) -> None:
        if not self.can_act() or position < 1:
            return
        tail = self.tail(position)
        self.w.view.remove_from(position)
        if self.w.template.members and tail.at(position - 1).role == "assistant":  # after another member
            request = self._request(tail, position, mode="scene", position=position)
        else:
            request = self._request(tail, position - 1, mode="regenerate",
                                    user_text=tail.at(position - 1).text, position=position, n=n)  # fmt: skip
        self.start_some(request, position)

    def start_scene(self, speaker: str = "") -> None:
        """A group member's turn with no message from the person: ``speaker``, or whoever the
        model chooses (let them talk)."""
        if not self.can_act() or not self.w.model_info:
            return
        tail = self.tail()
        self.start(self._request(tail, tail.end, mode="scene", speaker=speaker), tail.end)

    def regenerate_last(self) -> None:
        turns = self.w.view.turns
        if turns and turns[-1].role == "assistant":
            self.regenerate(turns[-1].position)

    def continue_reply(self, position: int) -> None:
        if not self.can_act():
            return
        tail = self.tail(position + 1)
        stored = tail.at(position)
        self.w.view.remove_from(position)
        request = self._request(tail, position + 1, mode="continue", position=position,
                                message_id=stored.id)  # fmt: skip
        self.start(request, position, start=stored.text)

    def branch(self, position: int, start) -> None:
        """A new version of the reply at ``position`` going on from ``start`` (a ``ReplyStart``)."""
        tail = self.tail(position)
        self.w.view.remove_from(position)
        user, speaker = tail.at(position - 1).text, self.stored_at(position).speaker  # a group's goes on
        request = self._request(tail, position - 1, mode="branch", user_text=user,
                                position=position, start=start, speaker=speaker)  # fmt: skip
        self.start(request, position, start=start.text.strip())

    # -- editing and versions ------------------------------------------------------------------

    def edit_message(self, position: int) -> None:
        """Open the message's inline editor; Save comes back through ``apply_edit``."""
        if self.can_act():
            turn = self.turn_at(position)
            if turn is not None:
                turn.start_edit()

    def apply_edit(self, position: int, text: str) -> None:
        """Either becomes a new version: a user message is resent on a new branch (the old one keeps
        its later turns), a reply edited by hand is shown in place."""
        if not self.can_act():
            return
        w, tail = self.w, self.tail(position + 1)
        assert w.conversation_id is not None
        if tail.at(position).role == "assistant":
            w.service.edit_reply(w.conversation_id, position, text)
            w.frames.follow_stored_frame()
            self.show_path_from(position)
            return
        w.service.edit_user(w.conversation_id, position, text)
        w.frames.follow_stored_frame()
        w.view.remove_from(position)
        self.show_message(self.stored_at(position), last=False)
        self.start(self._request(tail, position, user_text=text), position + 1)

    def stored_at(self, position: int) -> StoredMessage:
        """The shown path's turn at ``position``, read alone."""
        assert self.w.conversation_id is not None
        return self.w.store.path_slice(self.w.conversation_id, position, position + 1)[0]

    def choose_version(self, position: int, version: int) -> None:
        if self.can_act():
            assert self.w.conversation_id is not None
            self.w.service.choose_version(self.w.conversation_id, position, version)
            self.show_path_from(position)

    def show_path_from(self, position: int) -> None:
        """The turn at ``position`` changes in place (the view stays put); the turns below it are
        the chosen branch's."""
        cid, turn = self.w.conversation_id, self.turn_at(position)
        assert turn is not None and cid is not None
        shown = self.w.store.path_slice(cid, position, position + PAGE + 1)
        if len(shown) > PAGE:  # a long branch below: its newest page, not all of it
            self.w.view.remove_from(0)
            self.show_newest()
            self.w.statusBar().showMessage("This branch is long: its newest messages are shown.", 8000)
        else:
            self.finish_turn(turn, shown[0], last=len(shown) == 1)
            self.w.view.remove_from(position + 1)
            for message in shown[1:]:
                self.show_message(message, last=message is shown[-1])
        self.w.loom.refresh_tree()
        self.w.frames.inspect_prompt()

    def copy_last_reply(self) -> None:
        replies = [t for t in self.w.view.turns if t.role == "assistant" and t is not self.streaming]
        if replies:
            copy_to_clipboard(replies[-1].text)

    def _say_waiting(self) -> None:
        count = len(self.waiting)
        why = "the model is loading" if not self.w.model_info else "a reply is being written"
        message = f"{count} message{'s' if count > 1 else ''} waiting: {why}; sent when it is done."
        self.w.statusBar().showMessage(message if count else "", 0 if count else 1)
        editor = self.w.composer.editor
        editor.setPlaceholderText(message if count else _PLACEHOLDER)
        editor.viewport().update()  # Qt repaints an empty editor's placeholder only when asked

    def send_waiting(self) -> None:
        """The next queued message, now that the model is free (after a reply, or once loaded)."""
        if self.waiting and not self.busy and self.w.model_info:
            text = self.waiting.pop(0)
            self._say_waiting()
            self.send(text)

    # -- stopping ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop shows at once: tokens still queued from the engine's thread are not drawn."""
        self.w.worker.stop()
        turn = self.streaming
        if turn is not None:
            turn.status.setText("stopped")
            self.state = replace(self.state, phase=Phase.STOPPED, shown_at_stop=turn.streamed_text)

    def abandon(self) -> None:
        """Switching away while a reply streams stops it; what was written is kept in the store."""
        if self.busy:
            self.w.worker.stop()
            self.state = ReplyState(abandoned=self.state.request_id)

    # -- the worker's answers -------------------------------------------------------------------

    def on_token(self, request_id: int, chunk: str) -> None:
        turn = self.state.turn
        if self.is_drawn(request_id) and turn is not None:
            self.w.busy.hide()
            turn.append(chunk)

    def on_drawing(self, request_id: int, draws: int) -> None:
        """A short answer drawn several times shows what the draws agree on as it comes, and the
        rest when the likeliest is known: say so, since the text may pause meanwhile."""
        turn = self.state.turn
        if self.is_drawn(request_id) and turn is not None:
            turn.status.setText(f"writing {draws} answers, keeping the likeliest…")

    def on_waiting(self, request_id: int, who: str) -> None:
        """The window's server is answering someone: the reply starts when it is done."""
        turn = self.state.turn
        if request_id == self.state.request_id and turn is not None:
            turn.status.setText(f"waiting for {who} to finish…")
            self.w.statusBar().showMessage(f"Waiting for {who} to finish; Stop gives up.", 10000)

    def _ended(self, request_id: int) -> bool:
        """Whether the end of ``request_id`` is the current reply's; an abandoned one frees the composer."""
        if request_id == self.state.abandoned:
            self.w.composer.set_busy(False)
            self.w.sidebar.refresh(select=self.w.conversation_id)
        if request_id != self.state.request_id or not self.busy:
            return False
        self.w.busy.hide()
        self.w.composer.set_busy(False)
        return True

    def on_done(self, request_id: int, outcome: ReplyOutcome) -> None:
        if not self._ended(request_id):
            return
        w, ended = self.w, self.state
        self.state = ReplyState()
        if ended.phase is Phase.STOPPED and w.conversation_id is not None:
            w.service.keep_shown(w.conversation_id, ended.shown_at_stop.strip())
        self._mark_older_turns()
        last = w.store.last_message(w.conversation_id) if w.conversation_id is not None else None
        if last is not None:
            self.finish_turn(w.view.turns[-1], last)
        w.loom.alternatives_done()
        w.loom.refresh_tree()
        self._show_outcome(outcome)
        w.sidebar.refresh(select=w.conversation_id)
        w.frames.inspect_prompt()
        self.send_waiting()

    def show_speed(self, usage: Usage, together: int = 1) -> None:
        """The status line's tokens used and the speed of the last generation (a chat reply or a
        notebook's continuation), with the share of drafted tokens kept, as LM Studio shows it.
        ``together``: replies decoded side by side, each at this speed, which does not time the
        machine the way one reply does (the better-model suggestion is calibrated from one)."""
        speed = f"{usage.tokens_per_s:.0f} tok/s" if usage.completion_tokens >= MIN_TOKENS_FOR_SPEED else ""
        if speed and together > 1:
            speed += f" × {together} at once"
        if speed and usage.acceptance is not None:
            speed += f" · {usage.acceptance:.0%} of drafted tokens accepted"
        self.w.models.show_usage(usage.prompt_tokens + usage.completion_tokens, speed)
        if together == 1:
            self.w.models.calibrate_from(usage.completion_tokens, usage.tokens_per_s)

    def _show_outcome(self, outcome: ReplyOutcome) -> None:
        w = self.w
        self.show_speed(outcome.usage, outcome.together)
        if outcome.dropped_turns:
            w.statusBar().showMessage(f"{outcome.dropped_turns} old turns were left out to fit.", 8000)
        if outcome.error:
            w.statusBar().showMessage(outcome.error, 15000)

    def on_failed(self, request_id: int, message: str) -> None:
        if not self._ended(request_id):
            return
        ended = self.state
        self.state = ReplyState()
        self.w.statusBar().showMessage(message, 15000)
        self.w.loom.drop_box()
        self._give_back_failed_send(ended)
        self.send_waiting()

    def _give_back_failed_send(self, ended: ReplyState) -> None:
        """A send that got no reply is undone: the text goes back into the composer."""
        w, turns = self.w, self.w.view.turns
        fresh_send = ended.mode == "send" and len(turns) >= 2 and turns[-2].role == "user"
        if fresh_send and not turns[-1].streamed_text.strip() and w.conversation_id is not None:
            w.service.undo_send(w.conversation_id, turns[-2].position)
            w.view.remove_from(turns[-2].position)
            if not w.composer.editor.toPlainText().strip():
                w.composer.editor.setPlainText(ended.sent_text)
            w.sidebar.refresh(select=w.conversation_id)
        elif turns:
            turns[-1].set_final(turns[-1].streamed_text, "failed")

    # -- drawing turns ---------------------------------------------------------------------------

    def show_newest(self) -> None:
        """The newest page of the shown path: opening a chat costs a page, however long it is."""
        cid, view = self.w.conversation_id, self.w.view
        assert cid is not None
        start = max(0, self.w.store.path_length(cid) - PAGE)
        view.set_first_shown(start)
        messages = self.w.store.path_slice(cid, start)
        for message in messages:
            self.show_message(message, last=message is messages[-1])

    def show_earlier(self) -> None:
        """The page above the earliest turn drawn, put in above it with the view kept in place."""
        cid, view = self.w.conversation_id, self.w.view
        if cid is None or view.first_shown == 0:
            return
        start = max(0, view.first_shown - PAGE)
        view.keep_place()
        for message in self.w.store.path_slice(cid, start, view.first_shown):
            self.show_message(message, last=False)
        view.set_first_shown(start)

    def turn_at(self, position: int) -> MessageWidget | None:
        return next((t for t in self.w.view.turns if t.position == position), None)

    def show_message(self, message: StoredMessage, last: bool) -> MessageWidget:
        turn = self.new_turn(message.role, message.position, message.speaker)
        self.finish_turn(turn, message, last)
        return turn

    def finish_turn(self, turn: MessageWidget, message: StoredMessage, last: bool = True) -> None:
        """A stored turn as shown: its text, a note, and the buttons that fit it."""
        interrupted = message.status == "interrupted"
        turn.set_final(
            message.text, "interrupted" if interrupted else _NOTES.get(message.finish_reason or "", "")
        )
        can_continue = message.finish_reason in CONTINUABLE or interrupted
        turn.add_actions(message.alternative, message.alternatives, can_continue, last, message.has_probs)
        turn.set_time(message.created_at)

    def show_user_turn(self, position: int, text: str) -> None:
        """A message the person sends has its Copy and Edit at once, as after a reload."""
        turn = self.new_turn("user", position)
        turn.set_final(text)
        turn.add_actions()
        turn.set_time(time.time())

    def _mark_older_turns(self) -> None:
        """The reply before this one is no longer the newest: it loses Regenerate and Continue."""
        older = [t for t in self.w.view.turns[:-1] if t.role == "assistant"]
        if older:
            older[-1].add_actions(*older[-1].versions, can_continue=False, last=False)

    def character_picture(self) -> QPixmap | None:
        """The frame's card picture, beside each of the character's turns (None: no picture)."""
        avatar = self.w.template.avatar
        return avatar_picture(str(avatars_dir() / avatar)) if avatar else None

    def new_turn(self, role: str, position: int, speaker: str = "") -> MessageWidget:
        """``speaker``: a group member's name (a group's new reply shows "…" until one is chosen)."""
        template = self.w.template
        if role == "user":
            speaker = template.user_name
        elif not speaker:
            speaker = "…" if template.members else template.assistant_name
        turn = self.w.view.add_turn(role, position, speaker)
        if role == "assistant":
            turn.set_avatar(self.character_picture())
        turn.copy_requested.connect(copy_to_clipboard)
        turn.regenerate.connect(self.regenerate)
        turn.continue_.connect(self.continue_reply)
        turn.edit.connect(self.edit_message)
        turn.edited.connect(self.apply_edit)
        turn.alternative.connect(self.choose_version)
        turn.tokens.connect(self.w.loom.toggle_tokens)
        turn.remember.connect(self.w.frames.remember)
        return turn
