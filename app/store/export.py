"""Taking conversations elsewhere: Markdown to read, JSON to restore exactly."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

from app.errors import BasechatError, InputError
from app.scaffold import DEFAULT_TEMPLATE, Message, Template, load_template, template_from_dict
from app.scaffold.transcript import transcript_text
from app.store.chats import ChatStore, Conversation
from app.store.import_tree import checked_conversation, shown_time

FORMAT = "basechat.conversations"
VERSION = 2  # 2: every message names its parent (the conversation is a tree)
_MESSAGE_FIELDS = (
    "position", "role", "text", "status", "created_at", "raw", "tokens",
    "finish_reason", "prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "model", "speaker",
)  # fmt: skip


def to_markdown(
    conversation: Conversation, user: str = "User", assistant: str = "Assistant", branches: int = 1
) -> str:
    """The shown path; ``branches`` (the store's ``branch_count``) says how many others exist."""
    lines = [f"# {conversation.title}", ""]
    lines.append(f"*{_when(conversation.created_at)} · model {conversation.model or 'unknown'} · "
                 f"template {conversation.template}*")  # fmt: skip
    if branches > 1:
        others = branches - 1
        lines += ["", f"*This is one branch; {others} other branch{'es' if others > 1 else ''} "
                      "not shown (export as JSON to keep them).*"]  # fmt: skip
    for message in conversation.messages:
        speaker = user if message.role == "user" else message.speaker or assistant
        note = " *(interrupted)*" if message.status == "interrupted" else ""
        lines += ["", f"**{speaker}** · {_when(message.created_at)}{note}", "", message.text]
    return "\n".join(lines) + "\n"


def markdown_of(store: ChatStore, conversation_id: int) -> str:
    """The shown branch as Markdown, saying how many other branches the conversation has."""
    return to_markdown(store.get(conversation_id), branches=store.branch_count(conversation_id))


TEMPLATE_KEY = "frame"  # the conversation's own frame, in its settings, when it was edited


def conversation_template(conversation: Conversation) -> Template:
    """The frame the conversation was held in: its own edited copy, else its template by name,
    else the default when that template is gone."""
    data = conversation.settings.get(TEMPLATE_KEY)
    try:
        return template_from_dict(data) if data else load_template(conversation.template)
    except BasechatError:
        return load_template(DEFAULT_TEMPLATE)


def as_messages(stored: list) -> list[Message]:
    """Stored turns as the scaffold's messages; a reply with no text (stopped before its first
    token) is left out, so no empty turn is shown to the model."""
    return [Message(m.role, m.text, m.raw, m.tokens, m.speaker) for m in stored if m.text]


def to_prompt(conversation: Conversation) -> str:
    """The exact text the model reads before the next message (unfitted: every turn)."""
    return transcript_text(conversation_template(conversation), as_messages(conversation.messages))


def _when(timestamp: float) -> str:
    return shown_time(timestamp)


def to_json(store: ChatStore, conversation_ids: list[int]) -> dict:
    """Everything needed to restore the conversations, every alternative included."""
    return {"format": FORMAT, "version": VERSION,
            "conversations": [_conversation_dict(store, cid) for cid in conversation_ids]}  # fmt: skip


def chain_export(history: list[Message], title: str, when: float = 1_700_000_000.0) -> dict:
    """``history`` as an export of one conversation, a chain of messages a second apart (a chat
    made for a bench or a test, imported as the person's would be)."""
    messages = [{"id": i + 1, "parent": i or None, "chosen": True, "position": i, "role": m.role,
                 "text": m.text, "status": "done", "created_at": when + i}
                for i, m in enumerate(history)]  # fmt: skip
    conversation = {"title": title, "template": DEFAULT_TEMPLATE, "created_at": when, "settings": {},
                    "updated_at": when + len(history), "model": "", "messages": messages}  # fmt: skip
    return {"format": FORMAT, "version": VERSION, "conversations": [conversation]}


def _conversation_dict(store: ChatStore, conversation_id: int) -> dict:
    conversation = store.get(conversation_id)
    data = asdict(conversation)
    data.pop("id")
    data["messages"] = [_message_dict(store, message) for message in store.all_messages(conversation_id)]
    return data


def _message_dict(store: ChatStore, message) -> dict:
    """``id`` and ``parent`` are only meaningful inside the export: they say how the tree hangs."""
    entry: dict = {"id": message.id, "parent": message.parent_id}
    entry |= {key: getattr(message, key) for key in _MESSAGE_FIELDS}
    entry["tokens"] = list(message.tokens) if message.tokens is not None else None
    entry["chosen"] = message.chosen
    entry["probs"] = store.token_probs(message.id)
    return entry


def import_json(store: ChatStore, data: object, told: Callable[[str], None] | None = None) -> list[int]:
    """Restore exported conversations in one transaction: all of them, or nothing. Each is checked
    as a tree first (``import_tree``); ``told`` hears each repair made on the way in."""
    conversations = _validated(data)
    if data["version"] == 1:  # type: ignore[index]
        for conversation in conversations:
            _hang_version_one(conversation)
    repairs = [line for n, c in enumerate(conversations, 1) for line in checked_conversation(c, n)]
    ids = store.insert_exported(conversations, _MESSAGE_FIELDS)
    for line in repairs if told else ():
        told(line)  # type: ignore[misc]
    return ids


def _hang_version_one(conversation: dict) -> None:
    """A version-1 export is a list of positions: each message hangs from the chosen one above,
    as the schema migration hangs them."""
    chosen: dict = {}
    messages = conversation.get("messages") if isinstance(conversation, dict) else None
    for number, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            continue
        message["id"] = number
        message["parent"] = chosen.get(message.get("position", 0) - 1) if message.get("position") else None
        if message.get("chosen"):
            chosen[message.get("position")] = number


def _validated(data: object) -> list[dict]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError("This is not a Basechat conversation export.")
    version = data.get("version")
    if type(version) is not int or version < 1:
        raise InputError(f"This export has no valid format version ({str(version)[:20]}).")
    if version > VERSION:
        raise InputError(f"This export is from a newer Basechat (format version {version}).")
    conversations = data.get("conversations")
    if not isinstance(conversations, list):
        raise InputError("The export has no list of conversations.")
    return conversations
