"""A frame's language, as data: the words the message plan's steps read.

What a step needs to know about a language — which words carry no topic, what a question and a
correction look like, how "I" becomes "you", which statements answer a question they share no
word with — lives in ``resources/languages/<code>.toml`` beside the templates, not in Python, so
a language is added by writing a file. Pure Python; patterns run with the ``regex`` module's
time limit, like the templates' own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import regex
import snowballstemmer
import tomllib

from app.errors import TemplateError

MATCH_TIMEOUT_S = 0.05  # a pattern from a file is hostile until checked: none runs longer


@dataclass(frozen=True)
class FollowupWords:
    """A language's follow-up words (``[followup]`` in resources/languages/<code>.toml): how a
    follow-up opens ("And …?", "What about …?"), a bare "Why?", and the verbs, prepositions,
    articles and superlatives the rewrite splices around."""

    lead: regex.Pattern  # with a group ``rest``: what follows the opening
    bare_why: regex.Pattern  # with a group ``wh``
    verbs: frozenset[str]
    prepositions: frozenset[str]
    articles: frozenset[str]
    name_joiners: frozenset[str]  # "and", "of", "the": words inside a name ("Romeo and Juliet")
    definite: frozenset[str]  # "the": an article a name may keep before it ("the Four Seasons")
    superlative: regex.Pattern  # a word that is a superlative ("smallest")

    @property
    def yes_no(self) -> regex.Pattern:
        return regex.compile(rf"^({'|'.join(sorted(self.verbs))})\b", regex.IGNORECASE)


@dataclass(frozen=True)
class Kind:
    """A kind of fact ("name"): a question with one of ``asks`` is answered by a statement that
    ``told`` matches, whatever words the two share."""

    name: str
    asks: frozenset[str]
    told: regex.Pattern
    about: str = "any"  # "self": only a question about the person; "other": about something of theirs


@dataclass(frozen=True)
class Language:
    code: str
    common: frozenset[str]
    first_person: regex.Pattern
    question: regex.Pattern
    correction: regex.Pattern
    second_person: dict[str, str]
    kinds: tuple[Kind, ...]
    stem: Callable[[str], str]
    followup: FollowupWords
    memory_heading: str = "{char} keeps in mind:"


def languages_dir() -> Path:
    from app.paths import resources_dir

    return resources_dir() / "languages"


def known_languages() -> list[str]:
    return sorted(p.stem for p in languages_dir().glob("*.toml"))


@functools.cache
def load_language(code: str) -> Language:
    """The language ``code`` ("en"), read once; an unknown or broken file is one clear line."""
    path = languages_dir() / f"{code}.toml"
    if not code.isalpha() or not path.is_file():
        raise TemplateError(f"No language '{code}' (shipped: {', '.join(known_languages())}).")
    try:
        return _language(code, tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError,
            regex.error) as exc:  # fmt: skip
        raise TemplateError(f"Language file {path.name} cannot be read: {exc}") from None


def _language(code: str, data: dict) -> Language:
    memory = data["memory"]
    stemmer = snowballstemmer.stemmer(str(data["stemmer"]))
    return Language(
        code=code,
        common=frozenset(str(memory["common"]).split()),
        first_person=_pattern(memory["first_person"]),
        question=_pattern(memory["question"]),
        correction=_pattern(memory["correction"]),
        second_person={str(k).lower(): str(v) for k, v in dict(memory["second_person"]).items()},
        kinds=tuple(_kind(k) for k in memory.get("kinds", [])),
        stem=functools.lru_cache(maxsize=65536)(stemmer.stemWord),
        followup=_followup(data["followup"]),
        memory_heading=str(data.get("frame", {}).get("memory_heading", "{char} keeps in mind:")),
    )


def _followup(data: dict) -> FollowupWords:
    def words(key: str) -> frozenset[str]:
        return frozenset(str(data[key]).lower().split())

    return FollowupWords(
        lead=_pattern(data["lead"]), bare_why=_pattern(data["bare_why"]), verbs=words("verbs"),
        prepositions=words("prepositions"), articles=words("articles"), name_joiners=words("name_joiners"),
        definite=words("definite"), superlative=_pattern(data["superlative"]),
    )  # fmt: skip


def _kind(data: dict) -> Kind:
    about = str(data.get("about", "any"))
    if about not in ("any", "self", "other"):
        raise ValueError(f"kind {data.get('name')!r}: about must be any, self or other")
    asks = frozenset(str(a).lower() for a in data["asks"])
    return Kind(str(data["name"]), asks, regex.compile(data["told"]), about)


def _pattern(text: object) -> regex.Pattern:
    if not isinstance(text, str):
        raise TypeError(f"pattern {text!r} must be text")
    return regex.compile(text, regex.IGNORECASE)


def search(pattern: regex.Pattern, text: str) -> regex.Match | None:
    """``pattern.search`` with the time limit (a pathological pattern or text finds nothing)."""
    try:
        return pattern.search(text, timeout=MATCH_TIMEOUT_S)
    except TimeoutError:
        return None
