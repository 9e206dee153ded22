"""Writing a streaming reply to the store as it grows.

The text is saved at most once per ``interval`` seconds while tokens arrive,
so a crash or ``kill -9`` loses at most that much of a reply, and the
per-token cost is one clock read.
"""

from __future__ import annotations

import time

from app.store.chats import ChatStore


class ReplyRecorder:
    def __init__(self, store: ChatStore, message_id: int, interval: float = 1.0) -> None:
        self.store = store
        self.message_id = message_id
        self.interval = interval
        self._parts: list[str] = []
        self._saved_at = time.monotonic()

    def add(self, chunk: str) -> None:
        self._parts.append(chunk)
        now = time.monotonic()
        if now - self._saved_at >= self.interval:
            self.store.save_partial(self.message_id, "".join(self._parts).strip())
            self._saved_at = now

    def finish(self, reply) -> None:
        """``reply`` is an ``app.chat.Reply``: its text, raw continuation, tokens and usage."""
        usage = reply.completion.usage
        self.store.finish_reply(
            self.message_id,
            reply.text,
            raw=reply.message.raw,
            tokens=reply.message.tokens,
            finish_reason=reply.completion.finish_reason,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            ttft_s=usage.ttft_s,
            tokens_per_s=usage.tokens_per_s,
            probs=probs_rows(reply.completion.probs),
        )


def probs_rows(probs) -> list | None:
    """Token probabilities as stored: [id, text, p, [[id, text, p], …]] per token (None: not recorded)."""
    if not probs:
        return None
    return [[p.chosen.token, p.chosen.text, round(p.chosen.prob, 5),
             [[c.token, c.text, round(c.prob, 5)] for c in p.top]] for p in probs]  # fmt: skip
