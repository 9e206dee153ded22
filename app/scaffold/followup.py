"""Follow-ups: an elliptical question ("And of Spain?") spelled out from the one before it.

Asked "What is the capital of Germany?" and then "And of Spain?", a small base model answers
"Spain is the capital of Spain.": the question it should answer is split over two turns and it
reads only the last. Spelling the follow-up out ("What is the capital of Spain?") in a note under
it, like the request and recall notes, gives the model the whole question in one place. This is
the "condense the question" step of retrieval chat systems, done here by rewriting the earlier
question's words rather than by asking the model, which at this size cannot do it reliably.

Only short follow-ups that lean on the question before them are rewritten: "And …?", "What
about …?", "How about …?", or a bare "Why?". Pure Python; a pure function of the two questions.
"""

from __future__ import annotations

import re

import regex

from app.scaffold.language import FollowupWords, load_language

FOLLOW_UP_WORDS = 6  # a follow-up longer than this is a question of its own
FOLLOW_UP_DEPTH = 3  # follow-ups of follow-ups spelled out at most this far back

_WORD = re.compile(r"[\w'-]+")


def english() -> FollowupWords:
    return load_language("en").followup


def spelled_out(
    follow_up: str, earlier: list[str], depth: int = FOLLOW_UP_DEPTH, words: FollowupWords | None = None
) -> str | None:
    """``follow_up`` as the whole question it stands for, from the user's ``earlier`` messages
    (oldest first), or None when it is not a follow-up or its question cannot be worked out. A
    follow-up of a follow-up is spelled out from the last whole question, ``depth`` back at most.
    ``words``: the frame's language's (English when None)."""
    w = words or english()
    shape = _shape(follow_up, w)
    if not earlier or shape is None:
        return None
    previous: str | None = earlier[-1].strip()
    if previous and _shape(previous, w) is not None:
        previous = spelled_out(previous, earlier[:-1], depth - 1, w) if depth > 0 else None
    if not previous or not _is_question(previous):
        return None
    return _rewritten(shape, previous, w)


def _shape(text: str, w: FollowupWords) -> tuple[str, str] | None:
    """("why", "Why") for a bare "Why?"; ("rest", "of Spain") for "And …?" / "What about …?" with
    a few words and no verb of its own; None for anything else."""
    why = _match(w.bare_why, text)
    if why:
        return "why", why["wh"]
    lead = _match(w.lead, text)
    words = lead["rest"].split() if lead else []
    if lead and 0 < len(words) <= FOLLOW_UP_WORDS and not w.verbs & {word.lower() for word in words}:
        return "rest", lead["rest"].strip()
    return None


def _match(pattern: regex.Pattern, text: str) -> regex.Match | None:
    try:
        return pattern.match(text, timeout=0.05)
    except TimeoutError:
        return None


def _is_question(text: str) -> bool:
    return text.endswith("?") and "\n" not in text and len(text) <= 300


def _rewritten(shape: tuple[str, str], previous: str, w: FollowupWords) -> str | None:
    """The rewrite that fits the follow-up's shape: "Why?" asks why of a yes/no question; "And of
    Spain?" replaces a prepositional phrase, "And the smallest?" a noun phrase, "And China?" a name."""
    kind, rest = shape
    if kind == "why":
        return _asked_why(rest, previous, w)
    first = rest.split()[0].lower()
    if first in w.prepositions:
        return _with_phrase(previous, rest, w)
    if first in w.articles:
        return _with_noun_phrase(previous, rest, w)
    return _with_name(previous, rest, w)


def _asked_why(wh: str, previous: str, w: FollowupWords) -> str | None:
    """ "Is it cold in Antarctica?" + "Why?" → "Why is it cold in Antarctica?"."""
    if not _match(w.yes_no, previous):
        return None
    return f"{wh.capitalize()} {previous[0].lower()}{previous[1:]}"


def _with_phrase(previous: str, phrase: str, w: FollowupWords) -> str | None:
    """The previous question with its last prepositional phrase (the same preposition's if it has
    one) replaced: "… the capital of Germany?" + "of Spain" → "… the capital of Spain?"."""
    body, spans = _body_and_words(previous)
    preposition = phrase.split()[0].lower()
    starts = [m.start() for m in spans if m.group(0).lower() == preposition and m.start() > 0]
    starts = starts or [m.start() for m in spans if m.group(0).lower() in w.prepositions and m.start() > 0]
    if not starts:
        return None
    return f"{body[: starts[-1]]}{phrase}?"


def _with_noun_phrase(previous: str, phrase: str, w: FollowupWords) -> str | None:
    """The previous question with a noun phrase replaced: the one with the same last word ("the
    boiling point" → "the freezing point"), else a superlative ("the largest planet" + "the
    smallest" → "the smallest planet"), else the last one ("a spider" → "an insect")."""
    body, spans = _body_and_words(previous)
    words = [m.group(0).lower() for m in spans]
    new = phrase.split()
    head = new[-1].lower()
    if len(new) > 1 and head in words[1:]:
        end = max(i for i, w in enumerate(words) if w == head)
        start = _phrase_start(words, end, w)
        return _spliced(body, spans, start, end, phrase)
    if len(new) == 2 and _is_superlative(head, w):
        found = [i for i, word in enumerate(words) if _is_superlative(word, w)]
        if found:
            return _spliced(body, spans, found[-1], found[-1], new[1])
    articles = [i for i, word in enumerate(words) if word in w.articles and i > 0]
    if not articles:
        return None
    start = articles[-1]
    end = start
    while end + 1 < len(words) and words[end + 1] not in w.verbs | w.prepositions:
        end += 1
    return _spliced(body, spans, start, end, phrase)


def _with_name(previous: str, name: str, w: FollowupWords) -> str | None:
    """The previous question's last name (capitalised words, "Romeo and Juliet" as one) replaced by
    ``name``, when ``name`` is a name too: "… the capital of Japan?" + "China" → "… of China?"."""
    if not name[0].isupper():
        return None
    body, spans = _body_and_words(previous)
    words = [m.group(0) for m in spans]
    capitalised = [i for i, word in enumerate(words) if i > 0 and word[0].isupper()]
    if not capitalised:
        return None
    end = start = capitalised[-1]
    while start >= 2 and words[start - 1].lower() in w.name_joiners and words[start - 2][0].isupper():
        start -= 2
    while start >= 1 and start - 1 in capitalised:
        start -= 1
    if start >= 1 and words[start - 1].lower() in w.definite:
        start -= 1  # "the Four Seasons" → "Carmen"
    return _spliced(body, spans, start, end, name)


def _phrase_start(words: list[str], end: int, w: FollowupWords) -> int:
    """Where the noun phrase ending at ``end`` begins: at its article, or at the word itself."""
    for i in range(end, max(end - 4, 0), -1):
        if words[i] in w.articles:
            return i
        if words[i] in w.verbs | w.prepositions:
            return i + 1
    return end


def _is_superlative(word: str, w: FollowupWords) -> bool:
    return bool(_match(w.superlative, word))


def _body_and_words(question: str) -> tuple[str, list[re.Match[str]]]:
    body = question.rstrip(" ?!.")
    return body, list(_WORD.finditer(body))


def _spliced(body: str, spans: list[re.Match[str]], start: int, end: int, phrase: str) -> str:
    return f"{body[: spans[start].start()]}{phrase}{body[spans[end].end() :]}?"
