"""Taking conversations elsewhere: Markdown to read, JSON to restore exactly."""

from __future__ import annotations

import time
from dataclasses import asdict

from app.errors import BasechatError, InputError
from app.scaffold import DEFAULT_TEMPLATE, Message, Template, load_template, template_from_dict
from app.scaffold.transcript import transcript_text
from app.store.chats import ChatStore, Conversation

FORMAT = "basechat.conversations"
VERSION = 1
_MESSAGE_FIELDS = (
    "position", "alternative", "role", "text", "status", "created_at", "raw", "tokens",
    "finish_reason", "prompt_tokens", "completion_tokens", "ttft_s", "tokens_per_s", "model",
)  # fmt: skip


def to_markdown(conversation: Conversation, user: str = "User", assistant: str = "Assistant") -> str:
    lines = [f"# {conversation.title}", ""]
    lines.append(f"*{_when(conversation.created_at)} · model {conversation.model or 'unknown'} · "
                 f"template {conversation.template}*")  # fmt: skip
    for message in conversation.messages:
        speaker = user if message.role == "user" else assistant
        note = " *(interrupted)*" if message.status == "interrupted" else ""
        lines += ["", f"**{speaker}** · {_when(message.created_at)}{note}", "", message.text]
    return "\n".join(lines) + "\n"


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
    return [Message(m.role, m.text, m.raw, m.tokens) for m in stored if m.text]


def to_prompt(conversation: Conversation) -> str:
    """The exact text the model reads before the next message (unfitted: every turn)."""
    return transcript_text(conversation_template(conversation), as_messages(conversation.messages))


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def to_json(store: ChatStore, conversation_ids: list[int]) -> dict:
    """Everything needed to restore the conversations, every alternative included."""
    return {"format": FORMAT, "version": VERSION,
            "conversations": [_conversation_dict(store, cid) for cid in conversation_ids]}  # fmt: skip


def _conversation_dict(store: ChatStore, conversation_id: int) -> dict:
    conversation = store.get(conversation_id)
    data = asdict(conversation)
    data.pop("id")
    messages = []
    for position in {m.position for m in conversation.messages}:
        for alt in store.alternatives(conversation_id, position):
            entry = {key: getattr(alt, key) for key in _MESSAGE_FIELDS}
            entry["tokens"] = list(alt.tokens) if alt.tokens is not None else None
            entry["chosen"] = any(m.id == alt.id for m in conversation.messages)
            messages.append(entry)
    data["messages"] = sorted(messages, key=lambda m: (m["position"], m["alternative"]))
    return data


def import_json(store: ChatStore, data: object) -> list[int]:
    """Restore exported conversations in one transaction: all of them, or nothing."""
    conversations = _validated(data)
    return store.insert_exported(conversations, _MESSAGE_FIELDS)


def _validated(data: object) -> list[dict]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError("This is not a Basechat conversation export.")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise InputError(f"This export is from a newer Basechat (format version {version}).")
    conversations = data.get("conversations")
    if not isinstance(conversations, list):
        raise InputError("The export has no list of conversations.")
    return conversations
