"""Chat history in SQLite: never lost, exportable, importable."""

from app.store.chats import ChatStore, Conversation, StoredMessage
from app.store.recorder import ReplyRecorder

__all__ = ["ChatStore", "Conversation", "ReplyRecorder", "StoredMessage"]
