"""Memory: what the person said earlier in this chat, found again for the question asked now.

A small base model told "My name is Priya." and asked for it later often answers as itself ("My
name is Sarah."), and once the statement has left the context it cannot know it at all. The
message plan's recall step (scaffold/plan.py) quotes the person's own earlier statements under
the question, where request notes go, so the cached prefix stays and the fact sits next to the
reply, however long ago it was said.

The index holds every sentence the person wrote on the chat's *shown path* — not only what fits
in the prompt, and never a sibling branch: it follows the path it is given, re-reading only what
changed. Sentences are ranked by BM25 over Snowball stems (the frame's language), plus the
language file's *kinds*: "What's my name?" shares no word with "I'm Henrik." but asks for what an
introduction tells. A statement the person took back ("Actually no, it's orange these days.") is
quoted after the one it corrects, and is the one the reply is nudged toward. Static embeddings
(wordllama, which ships its weights) were measured and ranked no better than shared stems on the
questions that share no word with their statement, so none are used. Pure Python.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import regex

from app.scaffold.language import Language, load_language, search

RECALL_QUOTES = 2  # statements quoted at most (and the correction of one, when there is one)
_QUOTE_CHARS = 200
_K1, _B = 1.2, 0.75  # BM25's usual constants
_KIND_SCORE = 2.0  # a one-word statement of the kind asked for: as much as a rare shared word
# A word said thousands of times carries little (BM25's idf), and the person's latest statements
# of a kind matter most: the newest this many of each are scored, so a lookup stays a few
# milliseconds in any chat.
_MOST_READ = 2048
_SECOND_BEST = 0.5  # a second statement is quoted only when it answers at least half as well
_SENTENCE = regex.compile(r"[^.!?\n]+[.!?]*")
_WORD = regex.compile(r"\w+(?:'\w+)?")
_DIGIT = regex.compile(r"\d")


class Said(Protocol):
    """A message as memory reads it (scaffold's ``Message``)."""

    @property
    def role(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class Found:
    """A statement found again: its words, its message's place in the path, and why."""

    text: str
    turn: int
    why: tuple[str, ...]  # the question's words it shares (stemmed), or the kind of fact it tells
    score: float
    corrects: bool = False  # the person took back what they said before it
    order: int = 0  # where it was said: sentences in the order the person wrote them


@dataclass(frozen=True)
class Recalled:
    quotes: tuple[Found, ...]  # in the order they were said
    answer: Found  # the one the reply is nudged toward: the best, or the correction of it


@dataclass(frozen=True)
class _Sentence:
    turn: int
    terms: Counter[str]
    kinds: frozenset[int]  # the language's kinds of fact it tells, by index
    length: int


class MemoryIndex:
    """Every statement of the person's on one path, searchable in a few milliseconds however long
    the chat is (an inverted index; only the changed end of the path is re-read)."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self._path: list[Said] = []
        self._sentences: list[_Sentence] = []
        self._texts: list[str] = []
        self._postings: dict[str, list[int]] = defaultdict(list)
        self._kind_postings: dict[int, list[int]] = defaultdict(list)
        self._user_turns: list[int] = []
        # user turn → its text and where its sentences begin (for quoting a correction in its place)
        self._messages: dict[int, tuple[str, int]] = {}
        self._length = 0

    def __len__(self) -> int:
        return len(self._sentences)

    def follow(self, path: Sequence[Said]) -> None:
        """Index ``path`` (the chat's shown messages, oldest first), keeping what it shares with
        the path indexed last: an edit, a regenerate or another branch re-reads from there on."""
        same = _shared_prefix(self._path, path)
        self._forget_from(same)
        for turn in range(same, len(path)):
            if path[turn].role == "user":
                self._add(turn, path[turn].text)
        self._path = list(path)

    def recall(self, question: str, limit: int = RECALL_QUOTES) -> Recalled | None:
        """The person's statements that answer ``question``, or None when it is not a question
        about them (or about someone they named) or nothing they said answers it."""
        ranked = self._ranked(question)
        hits = [f for f in ranked[:limit] if f.score >= ranked[0].score * _SECOND_BEST]
        if not hits:
            return None
        answer = self._correction_of(hits[0]) or hits[0]
        fixes = [fixed for found in hits if (fixed := self._correction_of(found)) is not None]
        quotes = {f.order: f for f in [*hits, *fixes]}
        return Recalled(tuple(quotes[key] for key in sorted(quotes)), answer)

    # -- indexing ----------------------------------------------------------------------------

    def _add(self, turn: int, text: str) -> None:
        self._user_turns.append(turn)
        self._messages[turn] = (text, len(self._sentences))
        for part in _SENTENCE.findall(text):
            if _asks(part):
                continue  # a question is not a statement: never quoted ("Remember, I'm Ana." is one)
            terms = Counter(self._terms(part))
            kinds = frozenset(i for i, k in enumerate(self.language.kinds) if search(k.told, part))
            if terms or kinds:
                self._index(_Sentence(turn, terms, kinds, sum(terms.values()) or 1), part)

    def _index(self, sentence: _Sentence, text: str) -> None:
        sid = len(self._sentences)
        self._sentences.append(sentence)
        self._texts.append(text.strip())
        self._length += sentence.length
        for term in sentence.terms:
            self._postings[term].append(sid)
        for kind in sentence.kinds:
            self._kind_postings[kind].append(sid)

    def _forget_from(self, turn: int) -> None:
        """Drop what was indexed from ``turn`` on (postings are in order: the last ones go)."""
        while self._sentences and self._sentences[-1].turn >= turn:
            sentence = self._sentences.pop()
            self._texts.pop()
            self._length -= sentence.length
            for term in sentence.terms:
                _pop(self._postings, term)
            for kind in sentence.kinds:
                _pop(self._kind_postings, kind)
        while self._user_turns and self._user_turns[-1] >= turn:
            self._messages.pop(self._user_turns.pop(), None)

    def _terms(self, text: str) -> list[str]:
        """The words that say what ``text`` is about, stemmed ("teaches" → "teach"); a word with a
        digit in it is a number or a code, kept as it is."""
        words = (w.lower() for w in _WORD.findall(text))
        common, stem = self.language.common, self.language.stem
        return [
            w if _DIGIT.search(w) else stem(w)
            for w in words
            if w not in common and (len(w) > 1 or w.isdigit())
        ]

    # -- searching ---------------------------------------------------------------------------

    def _ranked(self, question: str) -> list[Found]:
        language = self.language
        if not self._sentences or not search(language.question, question):
            return []
        kinds, subject = asked_kinds(question, language, set(self._terms(question)))
        scores, why = self._scores(subject, kinds)
        tells = self._answers(question, subject, kinds)
        best = sorted(
            (sid for sid in scores if tells(self._sentences[sid])), key=lambda sid: (-scores[sid], -sid)
        )
        return [Found(_quoted(self._texts[sid]), self._sentences[sid].turn, tuple(why[sid]), scores[sid],
                      order=sid) for sid in best]  # fmt: skip

    def _answers(self, question: str, subject: set[str], kinds: set[int]) -> Callable[[_Sentence], bool]:
        """What a statement must say to answer ``question``: about the person, one word of what
        it asks, or only its kind when the person never used those words ("What's my name?";
        "What's my dog called?" after "I adopted a beagle and named him Pepper."); about anyone
        or anything else, all of it, and a name or two words at least ("What does Marco teach?",
        "Who is retiring next month?") — so "What is the capital of Chile?" is not answered by
        "I visited Chile."."""
        if search(self.language.first_person, question):
            never_said = not any(term in self._postings for term in subject)
            return lambda s: (
                not subject or bool(subject & s.terms.keys()) or (never_said and bool(kinds & s.kinds))
            )
        enough = bool(self._names(question)) or len(subject) > 1
        return lambda s: enough and subject <= s.terms.keys()

    def _idf(self, term: str) -> float:
        count, having = len(self._sentences), len(self._postings.get(term, ()))
        return math.log(1 + (count - having + 0.5) / (having + 0.5))

    def _scores(self, terms: set[str], kinds: set[int]) -> tuple[dict[int, float], dict[int, list[str]]]:
        """BM25 of each sentence sharing a term with the question, plus the kinds it tells (the
        fewer other words beside the fact, the more: "I'm Henrik." before "My dog is called Rex.")."""
        scores: dict[int, float] = defaultdict(float)
        why: dict[int, list[str]] = defaultdict(list)
        mean = self._length / len(self._sentences)
        for term in terms:
            idf = self._idf(term)
            for sid in self._postings.get(term, [])[-_MOST_READ:]:
                sentence = self._sentences[sid]
                tf = sentence.terms[term]
                scores[sid] += idf * tf * (_K1 + 1) / (tf + _K1 * (1 - _B + _B * sentence.length / mean))
                why[sid].append(term)
        for kind in kinds:
            for sid in self._kind_postings.get(kind, [])[-_MOST_READ // 8 :]:
                scores[sid] += _KIND_SCORE / self._sentences[sid].length
                why[sid].append(f"tells a {self.language.kinds[kind].name}")
        return scores, why

    def _names(self, question: str) -> set[str]:
        """The question's capitalised words after its first (a person or place it asks about)."""
        words = _WORD.findall(question)[1:]
        common = self.language.common
        return {self.language.stem(w.lower()) for w in words if w[:1].isupper() and w.lower() not in common}

    def _correction_of(self, found: Found) -> Found | None:
        """The person's next message, when it takes back what ``found`` said."""
        at = bisect.bisect_right(self._user_turns, found.turn)
        if at >= len(self._user_turns):
            return None
        turn = self._user_turns[at]
        if not search(self.language.correction, self._messages[turn][0]):
            return None
        text, said_at = self._messages[turn]
        return Found(
            _quoted(text), turn, ("takes back the one before",), found.score, corrects=True, order=said_at
        )


def asked_kinds(question: str, language: Language, terms: set[str]) -> tuple[set[int], set[str]]:
    """The kinds of fact ``question`` asks for (by index) and what it is about besides them
    (``terms``, its stemmed words, less the kinds' own): "What's my dog called?" asks a name of
    something ("dog"); "What's my name?" the person's own."""
    words = {w.lower() for w in _WORD.findall(question)}
    kinds = [(i, k) for i, k in enumerate(language.kinds) if k.asks & words]
    subject = terms - {language.stem(w) for _, k in kinds for w in k.asks}
    about = "other" if subject else "self"
    return {i for i, k in kinds if k.about in ("any", about)}, subject


def _asks(sentence: str) -> bool:
    stripped = sentence.strip()
    return stripped.endswith("?") or stripped.startswith("¿")


def _shared_prefix(old: Sequence[Said], new: Sequence[Said]) -> int:
    for index, (was, now) in enumerate(zip(old, new, strict=False)):
        if was is not now and (was.role, was.text) != (now.role, now.text):
            return index
    return min(len(old), len(new))


def _pop(postings: dict, key: object) -> None:
    posting = postings[key]
    posting.pop()
    if not posting:
        del postings[key]


def _quoted(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _QUOTE_CHARS else one_line[: _QUOTE_CHARS - 1] + "…"


@dataclass(frozen=True)
class _Typed:
    role: str
    text: str


def index_of(earlier: Sequence[str], language: str = "en") -> MemoryIndex:
    """An index of the person's messages ``earlier`` alone (a turn planned without a chat's own
    index: the frame's example turns, a test)."""
    index = MemoryIndex(load_language(language))
    index.follow([_Typed("user", text) for text in earlier])
    return index


def recall_quotes(question: str, earlier: Sequence[str], language: str = "en") -> list[str]:
    """The statements of ``earlier`` (the person's messages, oldest first) a recall note quotes."""
    recalled = index_of(earlier, language).recall(question)
    return [f.text for f in recalled.quotes] if recalled else []


# -- saying it back ------------------------------------------------------------------------------


def as_told(statement: str, language: Language) -> str:
    """The person's words as the assistant would say them back ("I live in Lisbon." → "You live in
    Lisbon."), so the quote is already the answer's point of view; a statement that says "you"
    itself is left as it is (swapping both ways would need a parser)."""
    table = language.second_person
    said_to, said_by = _person_patterns(language.code)
    if said_to.search(statement):
        return statement
    swapped = said_by.sub(lambda m: table[m.group(0).lower()], statement)
    return regex.sub(r"(^|[.!?]\s+)(\w)", lambda m: m.group(1) + m.group(2).upper(), swapped)


@functools.cache
def _person_patterns(code: str) -> tuple[regex.Pattern, regex.Pattern]:
    """The words a statement says to the listener ("you", "your"), and those it says of the
    speaker ("I", "my"), for ``as_told``."""
    table = load_language(code).second_person
    return _any_of(table.values()), _any_of(table)


def _any_of(words: Iterable[str]) -> regex.Pattern:
    ordered = sorted(set(words), key=len, reverse=True)  # "i am" before "i"
    return regex.compile(r"\b(" + "|".join(regex.escape(w) for w in ordered) + r")\b", regex.IGNORECASE)


def told_words(question: str, quotes: Sequence[str], language: Language) -> tuple[str, ...]:
    """The words of ``quotes`` that tell what ``question`` asks: those it does not itself say
    ("Biscuit" of "Your dog is called Biscuit.", asked "What is my dog's name?"), which the reply
    is then nudged toward (engine/minlength.py). When the question asks a kind of fact and a
    quote tells it, only the words of that telling ("60" of "who is 60 years old", asked "How
    old is my tortoise?"; not "Sheldon")."""
    said = {w.lower() for w in _WORD.findall(question)}
    indexes, _ = asked_kinds(question, language, {language.stem(w) for w in said})
    kinds = [language.kinds[i] for i in indexes]
    asked = {language.stem(w) for w in said.union(*(k.asks for k in kinds))}  # "name" also asks "called"
    common = language.common | set(language.second_person.values())
    told = [m.group(0) for k in kinds for q in quotes if (m := search(k.told, q))]

    def new_words(texts: Sequence[str]) -> list[str]:
        words: list[str] = []
        for word in (w for text in texts for w in _WORD.findall(text)):
            low = word.lower()
            wanted = (len(word) > 2 or word.isdigit()) and low not in common and "'" not in word
            if wanted and language.stem(low) not in asked and word not in words:
                words.append(word)
        return words

    return tuple(new_words(told) or new_words(quotes))
