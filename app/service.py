"""The conversation service: every turn the window or the terminal records goes through here.

It sits between a conversation (``app.chat``) and the history (``app.store``)
on one side and the two surfaces (``app.ui``, ``app.cli``) on the other. Both
surfaces used to write the store's turn methods themselves and disagreed on
what a conversation's settings look like; now one class writes the turns and
one shape holds the settings::

    {"sampling": {<SamplingParams fields the person chose>}, "frame": {<the template as a dict>}}

Databases written before this shape (the terminal wrote the sampling fields
flat at the top level) are read through ``sampling_overrides``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace

from app.chat import AlternativesStream, ReplyStream
from app.engine.base import SET_PER_TURN, SamplingParams
from app.errors import InputError
from app.scaffold import Message, Template
from app.scaffold.language import Language
from app.scaffold.memory import MemoryIndex
from app.scaffold.template import template_to_dict
from app.scaffold.transcript import remembered_line
from app.store.chats import ChatStore, Conversation, StoredMessage
from app.store.export import TEMPLATE_KEY, as_messages, conversation_template
from app.store.recorder import ReplyRecorder

SAMPLING_KEY = "sampling"
PINS_KEY = "memory_pins"  # message id → the line of the frame's memory it was pinned as
FRAME_KEY = TEMPLATE_KEY  # the frame stays where exports and prompts read it
MAX_BYTES_PER_TOKEN = 8  # English averages about 4 bytes a token; whitespace runs can be more
DEFAULT_CTX_GUESS = 8192  # before a model has said its context size
TAIL_STEP = 64
_SAMPLING_FIELDS = {f.name for f in fields(SamplingParams)}
# Chosen per request, never a conversation's setting (a long bench reply, a token-probability count).
_NOT_KEPT = {"ignore_eos", "n_probs", *SET_PER_TURN}


def settings_shape(params: SamplingParams, template: Template) -> dict:
    """A conversation's settings as stored: its sampling and the frame it is held in."""
    return {SAMPLING_KEY: kept_sampling(params), FRAME_KEY: template_to_dict(template)}


def kept_sampling(params: SamplingParams) -> dict:
    """The sampling fields a conversation keeps (not the per-request ones)."""
    return {k: v for k, v in asdict(params).items() if k not in _NOT_KEPT}


def sampling_overrides(settings: dict) -> dict:
    """The sampling fields a conversation chose, from the current shape or the old flat one."""
    nested = settings.get(SAMPLING_KEY)
    source = nested if isinstance(nested, dict) else settings
    return {k: v for k, v in source.items() if k in _SAMPLING_FIELDS and k not in _NOT_KEPT}


def conversation_params(settings: dict, base: SamplingParams) -> SamplingParams:
    """``base`` with the conversation's own sampling on top (a value that is no number is skipped)."""
    chosen: dict = {}
    for key, value in sampling_overrides(settings).items():
        try:
            chosen[key] = sampling_value(key, value)
        except (TypeError, ValueError):
            continue
    return replace(base, **chosen)


_KINDS = {f.name: str(f.type).split(" |")[0] for f in fields(SamplingParams)}  # "float", "int", "bool"


def sampling_value(name: str, value) -> bool | int | float | None:
    """A stored sampling setting as its field's type: INI files give strings, old JSON any number;
    a seed of -1 (or none) means a new one each time."""
    kind = _KINDS[name]
    if kind == "bool":
        return str(value).lower() in ("1", "true")
    if name == "seed" and value in (None, -1, "-1", ""):
        return None
    return int(value) if kind == "int" else float(value)


@dataclass(frozen=True)
class OpenedChat:
    """What a surface needs to go on with a stored conversation."""

    conversation: Conversation
    template: Template
    history: list[Message]

    def params(self, base: SamplingParams) -> SamplingParams:
        return conversation_params(self.conversation.settings, base)


@dataclass(frozen=True)
class PathTail:
    """Turns ``start`` onwards of the shown path, as read for one action."""

    start: int
    messages: list[StoredMessage]

    @property
    def end(self) -> int:
        return self.start + len(self.messages)

    def at(self, position: int) -> StoredMessage:
        return self.messages[position - self.start]

    def before(self, position: int) -> list[StoredMessage]:
        return self.messages[: max(position - self.start, 0)]


@dataclass
class _Followed:
    """A chat's memory index and the path it last read (ids, and the messages they are)."""

    index: MemoryIndex
    ids: list[int]
    path: list[StoredMessage]


MEMORIES_KEPT = 4  # chats whose memory index stays built between messages


class ConversationService:
    """Records turns and settings in the history; the one writer of the store's turn methods."""

    def __init__(self, store: ChatStore) -> None:
        self.store = store
        self._memories: dict[int, _Followed] = {}

    def memory(self, conversation_id: int, language: Language, end: int | None = None) -> MemoryIndex:
        """What the person said on the chat's whole shown path (before position ``end``), indexed
        (scaffold/memory.py) — not only the turns a prompt holds. Kept between messages: each
        message walks the path's ids and reads the texts of its changed end only."""
        ids = self.store.path_ids(conversation_id)[:end]
        kept = self._memories.pop(conversation_id, None)
        if kept is None or kept.index.language is not language:
            kept = _Followed(MemoryIndex(language), [], [])
        same = next(
            (i for i, (a, b) in enumerate(zip(kept.ids, ids, strict=False)) if a != b),
            min(len(kept.ids), len(ids)),
        )
        fresh = self.store.path_slice(conversation_id, same, len(ids)) if same < len(ids) else []
        kept.ids, kept.path = ids, kept.path[:same] + fresh
        kept.index.follow(kept.path)
        self._memories[conversation_id] = kept  # the newest last; the oldest is let go
        while len(self._memories) > MEMORIES_KEPT:
            self._memories.pop(next(iter(self._memories)))
        return kept.index

    # -- conversations and their settings ------------------------------------------------

    def start(self, template: Template, params: SamplingParams, model: str = "", kind: str = "chat") -> int:
        """A new conversation holding these settings, in the one shape both surfaces read."""
        title = "New notebook" if kind == "notebook" else "New chat"
        settings = settings_shape(params, template)
        return self.store.create_conversation(title, template.name, settings, model, kind)

    def open(self, conversation_id: int, with_history: bool = True) -> OpenedChat:
        """``with_history=False``: the window, which reads a page of the path at a time."""
        store = self.store
        conversation = store.get(conversation_id) if with_history else store.header(conversation_id)
        return OpenedChat(
            conversation, conversation_template(conversation), as_messages(conversation.messages)
        )

    def tail(self, conversation_id: int, end: int | None, n_ctx: int) -> PathTail:
        """The turns before ``end`` (the whole path when None) that a prompt of ``n_ctx`` tokens
        could hold: read back until they hold more text than that context could, so a prompt costs
        what fits the context, however long the chat, and fitting it gives the prompt the whole path
        would (when text averages more than ``MAX_BYTES_PER_TOKEN`` bytes a token, which is rare,
        the prompt keeps a little less history than would fit). Its first turn moves in steps of
        ``TAIL_STEP``, so an engine that drops history on a grid keeps its cached prefix."""
        budget = (n_ctx or DEFAULT_CTX_GUESS) * MAX_BYTES_PER_TOKEN
        messages = self.store.path_tail(conversation_id, end, budget, TAIL_STEP)
        return PathTail(messages[0].position if messages else 0, messages)

    def params(self, conversation_id: int | None, base: SamplingParams) -> SamplingParams:
        """The sampling a conversation replies with: ``base`` (the app's settings) with its own on top."""
        if conversation_id is None:
            return base
        return conversation_params(self.store.settings(conversation_id), base)

    def keep_sampling(self, conversation_id: int, params: SamplingParams) -> None:
        self.store.merge_settings(conversation_id, {SAMPLING_KEY: kept_sampling(params)})

    def keep_frame(self, conversation_id: int, template: Template) -> None:
        items = {FRAME_KEY: template_to_dict(template)}
        self.store.merge_settings(conversation_id, items, template=template.name)

    # -- pinned memory -------------------------------------------------------------------

    def pin(self, conversation_id: int, message_id: int, template: Template) -> Template:
        """Pin a message in the chat's memory (its frame's ``memory``, a line each), remembering
        which message the line came from so an edit or a deletion of it is followed."""
        message = self.store.message(message_id)
        line = remembered_line(message.role, message.text)
        if line in template.memory.splitlines():
            return template
        pinned = replace(template, memory="\n".join(filter(None, [template.memory.strip(), line])))
        pins = {**self.store.settings(conversation_id).get(PINS_KEY, {}), str(message_id): line}
        self.store.merge_settings(conversation_id, {FRAME_KEY: template_to_dict(pinned), PINS_KEY: pins})
        return pinned

    def _follow_pins(self, conversation_id: int, old_id: int, new_id: int | None) -> None:
        """A pinned message edited (``new_id``: its new version) or deleted (None): its line in the
        memory is rewritten to the new words, or dropped."""
        settings = self.store.settings(conversation_id)
        pins = dict(settings.get(PINS_KEY, {}))
        line = pins.pop(str(old_id), None)
        frame = settings.get(FRAME_KEY)
        if line is None or not isinstance(frame, dict):
            return
        lines = [entry for entry in str(frame.get("memory", "")).splitlines() if entry != line]
        if new_id is not None:
            new = self.store.message(new_id)
            pins[str(new_id)] = remembered_line(new.role, new.text)
            lines.append(pins[str(new_id)])
        memory = "\n".join(lines)
        self.store.merge_settings(conversation_id, {FRAME_KEY: {**frame, "memory": memory}, PINS_KEY: pins})

    def _pinned_gone(self, conversation_id: int) -> None:
        """After a branch is deleted: the pins whose message went with it are dropped."""
        for message_id in list(self.store.settings(conversation_id).get(PINS_KEY, {})):
            try:
                self.store.message(int(message_id))
            except InputError:
                self._follow_pins(conversation_id, int(message_id), None)

    # -- the person's turns --------------------------------------------------------------

    def add_user(self, conversation_id: int, text: str) -> int:
        """Committed before generation starts, so a crash never loses what was typed."""
        return self.store.add_user_message(conversation_id, text)

    def edit_user(self, conversation_id: int, position: int, text: str) -> int:
        """A new version of a user turn; the old one keeps its branch (a pin follows the new one)."""
        old = self.store.path_slice(conversation_id, position, position + 1)
        new_id = self.store.edit_user_message(conversation_id, position, text)
        if old:
            self._follow_pins(conversation_id, old[0].id, new_id)
        return new_id

    def edit_reply(self, conversation_id: int, position: int, text: str) -> int:
        old = self.store.path_slice(conversation_id, position, position + 1)
        new_id = self.store.add_edited_reply(conversation_id, position, text)
        if old:
            self._follow_pins(conversation_id, old[0].id, new_id)
        return new_id

    def undo_send(self, conversation_id: int, position: int) -> None:
        """A send that got no reply: its user turn goes (the text is given back to the person)."""
        self.store.truncate(conversation_id, position)

    def keep_shown(self, conversation_id: int, shown: str) -> None:
        """Stop keeps what the person saw of the last reply."""
        self.store.trim_last_reply(conversation_id, shown)

    # -- the model's turns ---------------------------------------------------------------

    def record_reply(
        self, stream: ReplyStream, conversation_id: int, model: str = "", position: int | None = None,
        extends: int | None = None, already: str = "",
    ) -> Iterator[str]:  # fmt: skip
        """Pass the stream's chunks on while the reply is saved as it grows and finished at the end.
        ``position``: a new version of the reply there; ``extends``: the id of a reply being
        continued; ``already``: the text the stored reply starts with (continued or branched)."""
        speaker = stream.speaker
        message_id = extends or self.store.begin_reply(conversation_id, model, position, speaker)
        recorder = ReplyRecorder(self.store, message_id)
        recorder.add(already)
        for chunk in stream:
            recorder.add(chunk)
            yield chunk
        recorder.finish(stream.reply)

    def record_alternatives(
        self, stream: AlternativesStream, conversation_id: int, n: int, model: str = "",
        position: int | None = None,
    ) -> Iterator[tuple[int, str]]:  # fmt: skip
        """Every alternative stored as a version of one reply as it streams; the first is shown."""
        ids = self._begin_versions(conversation_id, n, model, position, stream.speaker)
        recorders = [ReplyRecorder(self.store, message_id) for message_id in ids]
        for index, chunk in stream:
            recorders[index].add(chunk)
            yield index, chunk
        for recorder, reply in zip(recorders, stream.replies, strict=False):
            recorder.finish(reply)
        for message_id in ids[len(stream.replies) :]:  # a server's alternatives never started
            self.store.delete_branch(message_id)
        self.store.choose(ids[0])

    def _begin_versions(
        self, conversation_id: int, n: int, model: str, position: int | None, speaker: str = ""
    ) -> list[int]:
        first = self.store.begin_reply(conversation_id, model, position, speaker)
        where = self.store.position_of(first)
        more = (self.store.begin_reply(conversation_id, model, where, speaker) for _ in range(n - 1))
        return [first, *more]

    # -- the tree ------------------------------------------------------------------------

    def choose(self, message_id: int) -> None:
        self.store.choose(message_id)

    def choose_version(self, conversation_id: int, position: int, version: int) -> None:
        self.store.choose_alternative(conversation_id, position, version)

    def end_path_at(self, message_id: int) -> None:
        self.store.end_path_at(message_id)

    def delete_branch(self, message_id: int, conversation_id: int) -> None:
        self.store.delete_branch(message_id)
        self._pinned_gone(conversation_id)
