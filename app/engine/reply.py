"""What one generation has produced so far, shared by the local and the remote engine.

Both engines feed text (with the token ids behind it) through the same stop
hold-back and turn it into the same ``Completion``: the shown text and token
ids that spell exactly that text, so the next prompt can reuse them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from app.engine.base import Completion, FinishReason, TokenChoice, TokenProb, Usage
from app.engine.stops import StopScanner


class ReplyState:
    """Tokens, where their text ends, and what was shown; ``finish`` says why it ended."""

    def __init__(self, stop: list[str]) -> None:
        self.scanner = StopScanner(stop)
        self.started = time.perf_counter()
        self.prompt_done: float | None = None
        self.first_token_at: float | None = None
        self.tokens: list[int] = []
        self.ends: list[int] = []
        self.clean: list[bool] = []
        self.generated = 0
        self.drafted = 0  # tokens proposed by a drafter, and how many of them the model kept
        self.accepted = 0
        self._unplaced: list[int] = []  # tokens whose text has not arrived yet
        self.candidates: list[tuple[float, tuple[TokenChoice, ...]]] = []  # per token, with n_probs
        self.logprobs: list[float] = []  # per token, when alternatives are ranked (best_of)
        self.said_favoured = False  # a favoured word's token is in the reply (engine/minlength.py)
        self.length = 0
        self.shown: list[str] = []
        self.finish: FinishReason = "length"
        self.error = ""

    def add(
        self, tokens: Sequence[int], text: str, clean: bool = True, count: int | None = None,
        candidates: Sequence[tuple[float, tuple[TokenChoice, ...]]] = (),
    ) -> str:  # fmt: skip
        """``tokens`` produced ``text``; ``clean``: no bytes of a split character wait after them.
        ``count``: tokens generated, where the server streams text without ids. ``candidates``:
        for each token, its probability and the top candidates (when probabilities are recorded)."""
        self.candidates.extend(candidates)
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.generated += len(tokens) if count is None else count
        if not text:  # text still to come (a split character, a server holding back a stop)
            self._unplaced.extend(tokens)
            return ""
        tokens, self._unplaced = [*self._unplaced, *tokens], []
        self.length += len(text)
        for token in tokens:
            self.tokens.append(token)
            self.ends.append(self.length)
            self.clean.append(clean)
        return self.show(self.scanner.feed(text))

    @property
    def all_tokens(self) -> list[int]:
        """Every token produced so far, with those whose text has not arrived yet."""
        return [*self.tokens, *self._unplaced]

    def show(self, text: str) -> str:
        if text:
            self.shown.append(text)
        return text

    def flush(self) -> str:
        """Text held back as a possible stop that turned out not to be one."""
        return self.show(self.scanner.flush())

    def completion(self, n_prompt: int, reused: int, tokenize: Callable[[str], list[int]]) -> Completion:
        ended = time.perf_counter()
        prompt_done = self.prompt_done or ended
        first = self.first_token_at or ended
        n = self.generated
        gen_time = ended - prompt_done
        usage = Usage(
            prompt_tokens=n_prompt,
            cached_tokens=reused,
            completion_tokens=n,
            ttft_s=first - self.started,
            tokens_per_s=n / gen_time if n and gen_time > 0 else 0.0,
            prompt_eval_s=prompt_done - self.started,
            total_s=ended - self.started,
            drafted_tokens=self.drafted,
            accepted_tokens=self.accepted,
        )
        text = "".join(self.shown)
        tokens = tuple(self._reply_tokens(text, tokenize))
        probs = self._probs(text, tokens)
        return Completion(text, tokens, self.finish, usage, self.error, probs, self._logprob(tokens))

    def _logprob(self, tokens: tuple[int, ...]) -> float | None:
        """The shown tokens' summed log-probability (a stop's held-back tokens do not count)."""
        return sum(self.logprobs[: len(tokens)]) if self.logprobs else None

    def _probs(self, text: str, tokens: tuple[int, ...]) -> tuple[TokenProb, ...]:
        """Each kept token with the piece of ``text`` it spells; a remainder the model's tokeniser
        re-spelled (after a stop cut a token) has no probabilities: one entry of probability 1."""
        if not self.candidates:
            return ()
        probs, start = [], 0
        for index, token in enumerate(tokens):
            if index < len(self.ends) and index < len(self.candidates) and token == self.tokens[index]:
                end = min(self.ends[index], len(text))
                prob, top = self.candidates[index]
            else:
                end, prob, top = len(text), 1.0, ()
            probs.append(TokenProb(TokenChoice(token, text[start:end], prob), top))
            start = end
        return tuple(probs)

    def _reply_tokens(self, text: str, tokenize: Callable[[str], list[int]]) -> list[int]:
        """Token ids that spell exactly the shown text: the generated ones that lie wholly
        inside it, then the model's tokenisation of any remainder."""
        kept = 0
        while kept < len(self.tokens) and self.ends[kept] <= len(text):
            kept += 1
        while kept and not self.clean[kept - 1]:  # a character still split across tokens
            kept -= 1
        start = self.ends[kept - 1] if kept else 0
        rest = text[start:]
        return self.tokens[:kept] + (tokenize(rest) if rest else [])
