"""Recall: under a question the user asks about themselves, what they said about it earlier.

A small base model told "My name is Priya." two turns ago and then asked "What is my name?"
often answers as itself ("My name is Sarah.", "I'm Daniel."): the fact is in the transcript
but not where its attention goes. Quoting the user's own earlier words under the question, in a
note like the request notes, puts the fact next to the reply. Only the user's statements about
themselves ("my…", "I'm…", "I have…") that share a word with the question are quoted, so a
question about anything else is left alone. Pure Python; only the newest question gets the note
(transcript.py), so a held-open reply cannot copy old notes, and only the last exchange is read
again when it moves on.
"""

from __future__ import annotations

import re

RECALL_LOOKBACK = 50  # earlier user messages searched: rendering a turn stays bounded in a long chat
RECALL_QUOTES = 2  # statements quoted at most, the most recent first
_QUOTE_CHARS = 200

_FIRST_PERSON = re.compile(r"\b(my|mine|me|i|i'm|im|i've|i'd|am i|do i|did i)\b", re.IGNORECASE)
_QUESTION = re.compile(r"\?|^\s*(what|who|where|when|which|how|do|did|can|remember|tell me)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+", re.IGNORECASE)
# Words that do not make two sentences about the same thing.
_COMMON_WORDS = (
    "a an the is are was were be been am i me my mine you your yours do does did what which who whom "
    "how many much when where why of to in on at for and or but it its it's that this these those with "
    "from about again remember know tell can could would will please say said told hi hello hey so as "
    "have has had im ive"
)
_COMMON = frozenset(_COMMON_WORDS.split())
# A question and a statement about the same thing in other words.
_SAME = {
    "name": ("name", "called", "call"),
    "called": ("name", "called", "call"),
    "job": ("job", "work", "works", "working", "profession"),
    "work": ("job", "work", "works", "working"),
    "old": ("old", "age", "years"),
    "age": ("old", "age", "years"),
    "live": ("live", "lives", "living", "from", "home"),
}


def asks_about_user(question: str) -> bool:
    """A question with "my", "I", "me" in it: the only kind the recall note is for (a cheap test
    made before the user's earlier messages are gathered)."""
    return bool(_FIRST_PERSON.search(question) and _QUESTION.search(question))


def recall_quotes(question: str, earlier: list[str]) -> list[str]:
    """The user's earlier statements about themselves (``earlier``: their messages, oldest first)
    that share the most words with ``question``, the more recent first of equals; none when it is
    not a question about the user."""
    if not asks_about_user(question):
        return []
    asked, wanted = _topics(question), _topics(question, expand=True)
    if not wanted:
        return []
    scored = []
    for age, text in enumerate(reversed(earlier[-RECALL_LOOKBACK:])):
        if _FIRST_PERSON.search(text) and not _QUESTION.search(text):
            said = _topics(text)
            shared = len(asked & said) + len(wanted & said)  # a word of the question's own counts twice
            if shared:
                scored.append((-shared, age, text))
    return [_quoted(text) for _, _, text in sorted(scored)[:RECALL_QUOTES]]


def told_words(question: str, quotes: list[str]) -> tuple[str, ...]:
    """The words of ``quotes`` that tell what ``question`` asks: those it does not itself say
    ("Biscuit" of "My dog is called Biscuit.", asked "What is my dog's name?"), which the reply
    is then nudged toward (engine/minlength.py)."""
    asked = _topics(question, expand=True)
    words: list[str] = []
    for quote in quotes:
        for word in _WORD.findall(quote):
            low = word.lower()
            wanted = len(word) > 2 or word.isdigit()  # not the "re" of "you're"
            if wanted and low not in _COMMON and _singular(low) not in asked and word not in words:
                words.append(word)
    return tuple(words)


def _topics(text: str, expand: bool = False) -> set[str]:
    """The words that say what ``text`` is about, singular; with ``expand`` (a question), its
    "name", "job", "old" also stand for the words a statement would use ("called", "work", "years")."""
    topics = {_singular(w.lower()) for w in _WORD.findall(text) if len(w) > 1 or w.isdigit()} - _COMMON
    if expand:
        for word in topics & _SAME.keys():
            topics |= set(_SAME[word])
    return topics


_SECOND_PERSON = {
    "i am": "you are", "i'm": "you're", "im": "you're", "i was": "you were", "i've": "you've",
    "i'd": "you'd", "i'll": "you'll", "i": "you", "me": "you", "my": "your", "mine": "yours",
    "myself": "yourself", "am i": "are you",
}  # fmt: skip
_PERSON_WORDS = re.compile(
    r"\b(" + "|".join(sorted((re.escape(k) for k in _SECOND_PERSON), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)
_YOU = re.compile(r"\b(you|your|yours|you're|yourself)\b", re.IGNORECASE)


def as_told(statement: str) -> str:
    """The user's words as the assistant would say them back ("I live in Lisbon." → "You live in
    Lisbon."), so the quote is already the answer's point of view; a statement that says "you"
    itself is left as it is (swapping both ways would need a parser)."""
    if _YOU.search(statement):
        return statement
    swapped = _PERSON_WORDS.sub(lambda m: _SECOND_PERSON[m.group(0).lower()], statement)
    return re.sub(r"(^|[.!?]\s+)(\w)", lambda m: m.group(1) + m.group(2).upper(), swapped)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _quoted(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _QUOTE_CHARS else one_line[: _QUOTE_CHARS - 1] + "…"
