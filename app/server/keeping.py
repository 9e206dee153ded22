"""``--keep-chats``: conversations held through ``/v1/chat/completions`` kept in Basechat's history,
so one started in another client can be opened and carried on in the window.

A chat client sends the whole conversation with every request. The stored conversation it goes
on with is found by what it holds so far — its system text and turns, as a digest — which this
server remembered when it answered the turn before (a server started again begins a new stored
chat at a client's next turn; nothing is merged by guesswork)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from app.chat import Reply
from app.engine.base import SamplingParams
from app.scaffold import Message, Template
from app.service import ConversationService

_REMEMBERED = 4096  # conversations a server goes on with, the most recent kept


def digest(system: str, turns: list[Message]) -> str:
    """What a client's conversation holds so far, as it sends it back (texts as shown)."""
    said = [system.strip(), *[[m.role, m.text.strip()] for m in turns]]
    return hashlib.sha256(json.dumps(said, ensure_ascii=False).encode()).hexdigest()


class ChatKeeper:
    def __init__(self, service: ConversationService, model_id: str) -> None:
        self.service, self.model_id = service, model_id
        self._known: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def keep(
        self, template: Template, params: SamplingParams, history: list[Message], question: str, reply: Reply
    ) -> int:
        """Store the question and the reply in the conversation ``history`` continues (a new one
        holding ``history`` when none does); returns its id."""
        with self._lock:
            conversation = self._known.pop(digest(template.preamble, history), None)
            if conversation is None:
                conversation = self._start(template, params, history)
            self.service.add_user(conversation, question)
            self._add_reply(conversation, reply.text, reply)
            said = [*history, Message("user", question), Message("assistant", reply.text)]
            self._known[digest(template.preamble, said)] = conversation
            while len(self._known) > _REMEMBERED:
                self._known.popitem(last=False)
        return conversation

    def _start(self, template: Template, params: SamplingParams, history: list[Message]) -> int:
        conversation = self.service.start(template, params, self.model_id)
        for message in history:
            if message.role == "user":
                self.service.add_user(conversation, message.text)
            else:
                self._add_reply(conversation, message.text)
        return conversation

    def _add_reply(self, conversation: int, text: str, reply: Reply | None = None) -> None:
        store = self.service.store
        message_id = store.begin_reply(conversation, self.model_id)
        if reply is None:
            store.finish_reply(message_id, text)
            return
        completion = reply.completion
        store.finish_reply(message_id, text, raw=reply.message.raw, tokens=completion.tokens,
                           finish_reason=completion.finish_reason,
                           prompt_tokens=completion.usage.prompt_tokens,
                           completion_tokens=len(completion.tokens))  # fmt: skip
