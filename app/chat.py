"""A conversation with a base model: the service the CLI and the window share.

It joins the scaffold (what the transcript says) to the engine (what the
model continues). Prompts are built as token lists piece by piece, reusing
the exact ids the model generated for its earlier replies, so a follow-up
turn shares its whole prefix with the KV cache and only new tokens are
evaluated.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from app.engine.base import (
    Alternatives,
    Backend,
    Completion,
    Generation,
    SamplingParams,
    Stale,
    TokenChoice,
    TokenProb,
    likeliest,
)
from app.errors import InputError
from app.scaffold import Message, Piece, Template, fit_pieces, render_pieces
from app.scaffold.group import Choice, NextSpeaker, as_speaker, choose
from app.scaffold.language import load_language
from app.scaffold.memory import MemoryIndex
from app.scaffold.plan import Asked, MessagePlan, echo_lines, fit_draws, plain, plan_message
from app.scaffold.transcript import Moment, cue_text, lore_scan, said_before, speaker_label

_TOKEN_CACHE_LIMIT = 1024
# An engine that cannot shift its cache drops old turns a quarter of the context at a time. One
# that can still drops an eighth at a time: each shift re-rotates every key it moves on the next
# decode, so shifting once every few turns, not on every one, keeps turns after an overflow as
# fast as before it (llama.cpp's server discards half the context at once).
DROP_CHUNK_DIVISOR = 4
SHIFT_CHUNK_DIVISOR = 8
# best_of draws a short answer's alternatives side by side in the context: each needs room for a
# short answer, so a full context draws fewer (two at the end of a long chat), never more than 8.
SHORT_ANSWER_ROOM = 128
_SCENE_LOOKBACK = 8  # turns of a group scene a member's next line is compared with


def reply_budget(max_tokens: int, n_ctx: int) -> int:
    """Tokens a reply may use: what was asked, but never more than half the context."""
    return min(max_tokens, n_ctx // 2)


@dataclass(frozen=True)
class PromptPlan:
    """The exact prompt for the next reply, and what fitting it cost."""

    text: str
    tokens: list[int]
    dropped_turns: int
    n_ctx: int
    reply_room: int  # tokens kept free for the reply: what the send and the inspector both show
    message: MessagePlan = field(default_factory=MessagePlan)  # what the steps do (scaffold/plan.py)

    @property
    def min_tokens(self) -> int:
        return min(self.message.min_tokens, self.reply_room)

    @property
    def favour(self) -> tuple[str, ...]:
        return self.message.favour

    @property
    def stops(self) -> list[str]:
        return list(self.message.stops)


@dataclass(frozen=True)
class Reply:
    message: Message
    completion: Completion
    dropped_turns: int

    @property
    def text(self) -> str:
        return self.message.text


class ReplyStream:
    """Iterate for text chunks as they come; ``reply`` is set when the stream ends. ``draws``:
    how many times the reply is drawn (more than one: it arrives whole, the likeliest of them)."""

    def __init__(
        self, generation: Generation, finish: Callable[[Completion], Reply], draws: int = 1, speaker: str = ""
    ) -> None:
        self.generation = generation
        self.draws = draws
        self.speaker = speaker  # a group chat's: the member who speaks
        self.reply: Reply | None = None
        self._chunks = self._then(finish)

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def cancel(self) -> None:
        self.generation.cancel()

    def run(self) -> Reply:
        for _ in self._chunks:
            pass
        assert self.reply is not None
        return self.reply

    def _then(self, finish: Callable[[Completion], Reply]) -> Iterator[str]:
        """Pass the chunks on; when the generation ends, record its reply."""
        yield from self.generation
        assert self.generation.result is not None
        self.reply = finish(self.generation.result)


class AlternativesStream:
    """Iterate for ``(index, chunk)`` pairs as the alternatives grow; ``replies`` is set at the end."""

    def __init__(
        self, alternatives: Alternatives, finish: Callable[[list[Completion]], list[Reply]], speaker: str = ""
    ) -> None:
        self.speaker = speaker
        self.alternatives = alternatives
        self.replies: list[Reply] = []
        self._chunks = self._then(finish)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return self._chunks

    def cancel(self) -> None:
        self.alternatives.cancel()

    def run(self) -> list[Reply]:
        for _ in self._chunks:
            pass
        return self.replies

    def _then(self, finish: Callable[[list[Completion]], list[Reply]]) -> Iterator[tuple[int, str]]:
        yield from self.alternatives
        self.replies = finish(self.alternatives.results)


@dataclass(frozen=True)
class ReplyStart:
    """The beginning of a reply the model is to go on from: a branch taken at one of its tokens."""

    text: str  # as after the speaker label (with its leading space)
    tokens: tuple[int, ...]
    probs: tuple[TokenProb, ...] = ()


def probs_from_rows(rows: list) -> tuple[TokenProb, ...]:
    """Stored token probabilities ([id, text, p, [[id, text, p], …]] per token) as the engine's."""
    return tuple(
        TokenProb(TokenChoice(int(r[0]), str(r[1]), float(r[2])),
                  tuple(TokenChoice(int(c[0]), str(c[1]), float(c[2])) for c in r[3]))
        for r in rows
    )  # fmt: skip


def branch_start(rows: list, index: int, token: int) -> ReplyStart:
    """A reply kept up to token ``index``, with ``token`` (one of the candidates there) in its place."""
    probs = probs_from_rows(rows)
    if not 0 <= index < len(probs):
        raise InputError("That token is not part of the reply.")
    place = probs[index]
    chosen = next((c for c in place.top if c.token == token), None)
    if chosen is None:
        raise InputError("That token was not one of the candidates at this place.")
    kept = (*probs[:index], TokenProb(chosen, place.top))
    return ReplyStart("".join(p.chosen.text for p in kept), tuple(p.chosen.token for p in kept), kept)


class ChatSession:
    """History plus template plus engine. Not thread-safe: one caller drives it."""

    def __init__(
        self,
        engine: Backend,
        template: Template,
        params: SamplingParams | None = None,
        history: list[Message] | None = None,
        memory: MemoryIndex | None = None,
    ) -> None:
        self.engine = engine
        self.template = template
        self.params = params or SamplingParams()
        self.history: list[Message] = list(history or [])
        self._token_cache: dict[str, tuple[int, ...]] = {}
        # Fixed while the chat is open, so a frame's date macros keep its prompt prefix cached;
        # the lorebook's budget counts the model's own tokens.
        self.moment = Moment(count=lambda text: len(self._tokens(text)))
        # Given: the chat's whole path, indexed by its keeper (the window's history holds only the
        # turns a prompt can); else built here from ``history``.
        self._given_memory = memory
        self._memory: MemoryIndex | None = None

    def reset(self) -> None:
        self.history.clear()

    # -- prompts -------------------------------------------------------------

    def plan(self, user_text: str | None) -> PromptPlan:
        """Render, tokenise and fit the prompt that ``user_text`` would send (None: no message, a
        group's members going on with the scene)."""
        if user_text is not None and not user_text.strip():
            raise InputError("The message is empty.")
        if user_text is None:
            message = MessagePlan(stops=tuple(self.template.frame_stops()))
        else:
            message = plan_message(self._asked(user_text))
        pieces = render_pieces(self.template, self.history, user_text, self.moment, message.notes_text)
        sizes = [len(self._piece_tokens(p)) for p in pieces]
        divisor = SHIFT_CHUNK_DIVISOR if self.engine.can_shift_context else DROP_CHUNK_DIVISOR
        chunk = self.engine.n_ctx // divisor
        room = self._reply_budget()
        fitted = fit_pieces(pieces, sizes, self.engine.n_ctx - room, chunk)
        tokens = self._prompt_tokens(fitted.pieces)
        message = fit_draws(message, (self.engine.n_ctx - len(tokens)) // min(room, SHORT_ANSWER_ROOM))
        text = "".join(p.text for p in fitted.pieces)
        return PromptPlan(text, tokens, fitted.dropped_turns, self.engine.n_ctx, room, message)

    def _asked(self, user_text: str) -> Asked:
        """The message and what the plan's steps read: the person's earlier messages, the sampling,
        whether this engine can rank replies."""
        turns = [*self.history, Message("user", user_text)]
        params = self.params
        return Asked(self.template, user_text, tuple(said_before(turns, len(turns) - 1)), params.best_of,
                     params.temperature > 0, self.engine.can_rank_replies, params.ignore_eos,
                     self.memory())  # fmt: skip

    def memory(self) -> MemoryIndex:
        """What the person said on this chat's path, indexed: only what changed since the last
        message is read again (an edit, a regenerate, another branch)."""
        if self._given_memory is not None:
            return self._given_memory
        language = load_language(self.template.language)
        if self._memory is None or self._memory.language is not language:
            self._memory = MemoryIndex(language)
        self._memory.follow(self.history)
        return self._memory

    def lore_fired(self, user_text: str) -> list[dict]:
        """The lorebook entries ``user_text`` would put in the prompt, and why (inspector, CLI)."""
        messages = [m.text for m in self.history] + [user_text]
        lore = lore_scan(self.template, messages, self.moment)
        return [{"name": f.entry.name or ", ".join(f.entry.keys) or f.entry.content[:40], "why": f.reason,
                 "position": f.position, "depth": f.depth} for f in lore.fired]  # fmt: skip

    def _prompt_tokens(self, pieces: list[Piece]) -> list[int]:
        tokens = list(self.engine.start_tokens())
        for piece in pieces:
            tokens.extend(self._piece_tokens(piece))
        return tokens

    def _reply_budget(self) -> int:
        return reply_budget(self.params.max_tokens, self.engine.n_ctx)

    def _piece_tokens(self, piece: Piece) -> tuple[int, ...]:
        index = piece.message_index
        message = self.history[index] if piece.kind == "assistant" and index is not None else None
        if message is not None and message.tokens is not None:
            label = speaker_label(self.template, message)
            if piece.text == f"{label}{message.raw}\n":
                return self._tokens(label) + message.tokens + self._tokens("\n")
        return self._tokens(piece.text)

    def _tokens(self, text: str) -> tuple[int, ...]:
        cached = self._token_cache.get(text)
        if cached is None:
            if len(self._token_cache) >= _TOKEN_CACHE_LIMIT:
                self._token_cache.clear()
            cached = self._token_cache[text] = tuple(self.engine.tokenize(text))
        return cached

    def prefill(self, typed: str, stale: Stale) -> int:
        """Evaluate the prompt ``typed`` would send, while the person is still typing: when they
        send, only what they typed since (and what it changes) is evaluated. How many tokens
        were evaluated now (0: nothing typed, or the model is busy)."""
        if not typed.strip():
            return 0
        return self.engine.prefill(self._typed_so_far(self.plan(typed)), stale)

    def _typed_so_far(self, plan: PromptPlan) -> list[int]:
        """The prompt up to the typed words' end: without the cue (a piece of its own) and the
        line break and notes after the words, which the next keystrokes would make stale (they
        were 3 tokens a pause, 42 of a 60-token message typed with a pause every three words)."""
        tokens = plan.tokens[: len(plan.tokens) - len(self._tokens(cue_text(self.template)))]
        notes = self._tokens(plan.message.notes_text) if plan.message.notes else ()
        if notes and tuple(tokens[-len(notes) :]) == notes:
            tokens = tokens[: -len(notes)]
        while tokens and not self.engine.detokenize(tokens[-1:]).strip():
            tokens.pop()
        return tokens

    # -- replies -------------------------------------------------------------

    def send(self, user_text: str) -> ReplyStream:
        """Start the reply to ``user_text``; history gains both turns when the stream ends."""
        plan = self.plan(user_text)
        user = Message("user", user_text.strip())

        def finish(completion: Completion) -> Reply:
            message = self._said(completion.text, completion.tokens)
            self.history += [user, message]
            return Reply(message, completion, plan.dropped_turns)

        return self._stream(plan.tokens, finish, plan.min_tokens, plan.favour, plan.message.draws, plan.stops,
                            plan.message.avoid)  # fmt: skip

    def ask(self, user_text: str) -> Reply:
        return self.send(user_text).run()

    def send_many(self, user_text: str, n: int) -> AlternativesStream:
        """``n`` replies to ``user_text`` at once; history gains the user turn and the first reply."""
        if n > 1 and self.params.temperature <= 0:
            raise InputError(
                "With temperature 0 every alternative is the same reply; raise the temperature for several."
            )
        plan = self.plan(user_text)
        user = Message("user", user_text.strip())

        def finish(completions: list[Completion]) -> list[Reply]:
            replies = [Reply(self._said(c.text, c.tokens), c, plan.dropped_turns) for c in completions]
            if replies:
                self.history += [user, replies[0].message]
            return replies

        params = replace(  # best_of 1: the person chooses among these, so none is ranked or scored
            self.params, max_tokens=self._reply_budget(), min_tokens=plan.min_tokens, favour=plan.favour,
            best_of=1,
        )  # fmt: skip
        alternatives = self.engine.generate_many(plan.tokens, params, plan.stops, n)
        return AlternativesStream(alternatives, finish, self._speaker())

    def send_from(self, user_text: str, start: ReplyStart) -> ReplyStream:
        """Reply to ``user_text`` going on from ``start`` (a reply cut at a token, with another token
        chosen there): the model continues after it, and the reply is the two joined."""
        plan = self.plan(user_text)
        user = Message("user", user_text.strip())
        tokens = plan.tokens + list(start.tokens)
        if len(tokens) + self._reply_budget() > self.engine.n_ctx:
            raise InputError("The conversation is too long to branch this reply; start a new one.")

        def finish(completion: Completion) -> Reply:
            joined, ids = start.text + completion.text, start.tokens + completion.tokens
            probs = start.probs + completion.probs
            self.history += [user, self._said(joined, ids)]
            return Reply(self.history[-1], replace(completion, text=joined, tokens=ids, probs=probs), 0)

        least = max(plan.min_tokens - len(start.tokens), 0)
        return self._stream(tokens, finish, least, plan.favour, stops=plan.stops)

    def continue_last(self) -> ReplyStream:
        """Extend the last assistant reply (one that hit the length limit) where it stopped."""
        if len(self.history) < 2 or self.history[-1].role != "assistant":
            raise InputError("There is no reply to continue.")
        last = self.history[-1]
        raw = last.continuation
        before = last.tokens if last.tokens is not None else self._tokens(raw)
        pieces = render_pieces(self.template, self.history[:-2], self.history[-2].text, self.moment)
        tokens = self._prompt_tokens(pieces) + list(before)
        if len(tokens) + self._reply_budget() > self.engine.n_ctx:
            raise InputError("The conversation is too long to continue this reply; start a new one.")

        def finish(completion: Completion) -> Reply:
            joined, ids = raw + completion.text, before + completion.tokens
            message = Message("assistant", joined.strip(), raw=joined, tokens=ids, speaker=last.speaker)
            self.history[-1] = message
            return Reply(message, replace(completion, text=joined, tokens=ids), 0)

        return self._stream(tokens, finish)

    def _stream(
        self,
        tokens: list[int],
        finish: Callable[[Completion], Reply],
        min_tokens: int = 0,
        favour: tuple[str, ...] = (),
        draws: int = 1,
        stops: list[str] | None = None,
        avoid: frozenset[str] = frozenset(),
        penalize_prompt: bool = False,
    ) -> ReplyStream:
        """``draws``: alternatives to draw, keeping the likeliest (the plan's ``best_of`` step);
        ``stops``: the plan's (the frame's own when none: a reply continued); ``penalize_prompt``:
        the repetition penalties look back over the prompt too (a scene going on, which a small
        model otherwise turns into its last lines again)."""
        params = replace(self.params, max_tokens=self._reply_budget(), min_tokens=min_tokens, favour=favour,
                         penalize_prompt=self.params.penalize_prompt or penalize_prompt)  # fmt: skip
        if not self.history:  # a new chat: its frame is what every chat in it starts with
            self.engine.remember(self._prompt_tokens(render_pieces(self.template, [], "", self.moment)[:1]))

        def finish_and_keep(completion: Completion) -> Reply:
            reply = finish(completion)
            self.engine.save_state()
            return reply

        stop = stops if stops is not None else self.template.stop_strings()
        if draws > 1:
            unwanted = (lambda text: plain(text) in avoid) if avoid else None
            generation = likeliest(self.engine.generate_many(tokens, params, stop, draws), unwanted)
        else:
            generation = self.engine.generate(tokens, params, stop)
        return ReplyStream(generation, finish_and_keep, draws, self._speaker())

    def _said(self, raw: str, tokens: tuple[int, ...]) -> Message:
        """The reply as a turn of the history, naming its speaker in a group chat."""
        return Message("assistant", raw.strip(), raw=raw, tokens=tokens, speaker=self._speaker())

    def _speaker(self) -> str:
        return self.template.assistant_name if self.template.members else ""

    # -- group chats ---------------------------------------------------------

    def choose_speaker(
        self, user_text: str | None, rule: NextSpeaker = "model", muted: frozenset[str] = frozenset()
    ) -> Choice:
        """Who in the group speaks next, after ``user_text`` (None: after the last turn, the scene
        going on): by ``rule``, the model's judgement by default (scaffold/group.py); ``muted``
        members stay silent (unless every member is)."""
        names = tuple(n for n in self.template.members if n not in muted) or self.template.members
        turns = self.history[-_SCENE_LOOKBACK:]
        recent = [m.speaker if m.role == "assistant" else "" for m in turns]
        if user_text is not None:
            recent.append("")
        said = user_text if user_text is not None else turns[-1].text if turns else ""
        logprobs = self._label_logprobs(user_text, names) if rule != "in_turn" else None
        return choose(names, rule, said, recent, logprobs, self._speaker_draw())

    def _speaker_draw(self) -> float | None:
        """The number the next speaker is drawn with: none when greedy (the likeliest speaks); from
        the seed and the turn when seeded, so a seeded scene repeats."""
        if self.params.temperature <= 0:
            return None
        seed = self.params.seed
        return random.Random(seed + len(self.history)).random() if seed is not None else random.random()

    def _label_logprobs(self, user_text: str | None, names: tuple[str, ...]) -> list[float] | None:
        """How likely the model finds each of ``names``' labels next: the prompt as the reply would
        see it, without the cue, scored once (it stays cached for the reply)."""
        tokens = self.plan(user_text).tokens
        prompt = tokens[: len(tokens) - len(self._tokens(cue_text(self.template)))]
        options = [self._name_tokens(name) for name in names]
        if len({option[0] for option in options}) == len(options):
            options = [option[:1] for option in options]  # see _name_tokens
        try:
            return self.engine.continuation_logprobs(prompt, options)
        except InputError:
            return None

    def _name_tokens(self, name: str) -> list[int]:
        """A member's label as the cue spells it, without a colon token of its own at the end: in a
        transcript a colon after a speaker's name is all but certain, so scoring it costs a model
        evaluation and tells nothing. When every name starts with a token of its own, only that
        first token is scored: a line of a transcript starts with a speaker's name, so "In" at a
        line's start is Ines, and each further token would cost an evaluation (choosing cost 0.17
        of a short answer with them)."""
        tokens = list(self._tokens(f"{name}:"))
        if len(tokens) > 1 and self.engine.detokenize(tokens[-1:]) == ":":
            tokens.pop()
        return tokens

    def speak(self, speaker: str, user_text: str | None = None) -> ReplyStream:
        """``speaker``'s reply to ``user_text``, or (None) their turn in the scene going on."""
        self.template = as_speaker(self.template, speaker)
        if user_text is not None:
            return self.send(user_text)
        plan = self.plan(None)

        def finish(completion: Completion) -> Reply:
            message = self._said(completion.text, completion.tokens)
            self.history.append(message)
            return Reply(message, completion, plan.dropped_turns)

        return self._stream(plan.tokens, finish, draws=self._scene_draws(), stops=plan.stops,
                            avoid=self._scene_echoes(), penalize_prompt=True)  # fmt: skip

    def _scene_draws(self) -> int:
        """A scene going on is drawn like a short answer (best of N, when the engine ranks draws),
        so a draw that only repeats a line already said can rank last."""
        params = self.params
        ranked = params.temperature > 0 and self.engine.can_rank_replies and not params.ignore_eos
        return max(params.best_of, 1) if ranked else 1

    def _scene_echoes(self) -> frozenset[str]:
        """The lines a member's turn must not merely say again: the scene's recent turns and the
        frame's example lines (a small model otherwise has every member repeat the last line)."""
        recent = [m.text for m in self.history[-_SCENE_LOOKBACK:]]
        return echo_lines(self.template, "") | frozenset(filter(None, map(plain, recent)))


def raw_generation(engine: Backend, text: str, params: SamplingParams) -> ReplyStream:
    """No scaffold at all: the bare text, continued (a notebook; the eval's comparison)."""
    prompt, budget = _raw_prompt(engine, text, params)

    def finish(completion: Completion) -> Reply:
        return _raw_reply(completion)

    return ReplyStream(engine.generate(prompt, replace(params, max_tokens=budget), []), finish)


def raw_alternatives(engine: Backend, text: str, params: SamplingParams, n: int) -> AlternativesStream:
    """``n`` continuations of the bare text at once (a notebook's alternatives)."""
    if n > 1 and params.temperature <= 0:
        raise InputError("With temperature 0 every alternative is the same text; raise the temperature.")
    prompt, budget = _raw_prompt(engine, text, params)
    alternatives = engine.generate_many(prompt, replace(params, max_tokens=budget), [], n)
    return AlternativesStream(alternatives, lambda completions: [_raw_reply(c) for c in completions])


def _raw_prompt(engine: Backend, text: str, params: SamplingParams) -> tuple[list[int], int]:
    if not text.strip():
        raise InputError("The message is empty.")
    budget = reply_budget(params.max_tokens, engine.n_ctx)
    prompt = list(engine.start_tokens()) + engine.tokenize(text)
    if len(prompt) + budget > engine.n_ctx:
        raise InputError(f"The text is {len(prompt)} tokens; the context holds {engine.n_ctx}.")
    return prompt, budget


def _raw_reply(completion: Completion) -> Reply:
    return Reply(Message("assistant", completion.text, raw=completion.text), completion, 0)
