"""How well a group chat chooses who speaks and keeps each voice, on scripted scenes
(``tests/data/group/scenes.jsonl``; ``basechat eval`` runs a file of scenes through here).

Per scene with a member named in the message: whether that member is chosen (the app's rule, and
the model's odds alone), whether the reply stays in its speaker's voice (no other label in it),
and what choosing cost. Per scene naming nobody: the members talk on by themselves for
``TALK_TURNS`` turns; the figure is the largest share of them any one member took.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, median

from app.chat import ChatSession
from app.engine.base import Backend, SamplingParams
from app.errors import InputError
from app.scaffold import DEFAULT_TEMPLATE, Message, load_template
from app.scaffold.group import Member, group_template

TALK_TURNS = 12


@dataclass(frozen=True)
class Scene:
    members: tuple[Member, ...]
    history: tuple[Message, ...]
    message: str
    addressed: str
    half: str


def looks_like_scenes(path: Path) -> bool:
    """A file of scenes: its first line is an object with ``members``."""
    try:
        with path.open(encoding="utf-8") as file:
            first = json.loads(file.readline() or "{}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(first, dict) and "members" in first


def load_scenes(paths: list[Path]) -> list[Scene]:
    scenes = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                scenes.append(_scene(line, f"{path.name}:{number}"))
    return scenes


def _scene(line: str, where: str) -> Scene:
    try:
        data = json.loads(line)
        members = tuple(Member(m["name"], m.get("description", "")) for m in data["members"])
        history = tuple(_turn(turn) for turn in data.get("history", []))
        return Scene(members, history, str(data["message"]), str(data.get("addressed", "")),
                     str(data.get("half", "tune")))  # fmt: skip
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{where}: not a scene ({type(exc).__name__}: {exc}).") from None


def _turn(turn: dict) -> Message:
    speaker = str(turn.get("speaker", ""))
    return Message("assistant" if speaker else "user", str(turn["text"]), speaker=speaker)


def run_group_eval(
    engine: Backend, scenes: list[Scene], params: SamplingParams, tick: Callable[[], None] = lambda: None
) -> dict:
    """The figures over ``scenes`` (see the module's docstring), one run with ``params``."""
    named, talks = [s for s in scenes if s.addressed], [s for s in scenes if not s.addressed]
    answered = [_answer(engine, scene, params, tick) for scene in named]
    talked = [_talk(engine, scene, params, tick) for scene in talks]
    choose_ms = [a["choose_ms"] for a in answered]
    return {
        "scenes_addressed": len(answered),
        "addressed_rate": _rate(a["chosen"] for a in answered),
        "addressed_rate_model_only": _rate(a["model_only"] for a in answered),
        "leak_rate": _rate([a["leaks"] for a in answered] + [t["leaks"] for t in talked]),
        "scenes_talked": len(talked),
        "talk_max_share": round(max((t["max_share"] for t in talked), default=0.0), 3),
        "talk_max_share_mean": round(mean(t["max_share"] for t in talked), 3) if talked else 0.0,
        "talk_within_half_rate": _rate(t["max_share"] <= 0.5 for t in talked),
        "talk_everyone_spoke_rate": _rate(t["everyone"] for t in talked),
        "choose_ms_median": round(median(choose_ms), 1) if choose_ms else 0.0,
    }


def _session(engine: Backend, scene: Scene, params: SamplingParams) -> ChatSession:
    template = group_template(list(scene.members), load_template(DEFAULT_TEMPLATE))
    return ChatSession(engine, template, params, list(scene.history))


def _answer(engine: Backend, scene: Scene, params: SamplingParams, tick: Callable[[], None]) -> dict:
    session = _session(engine, scene, params)
    started = time.perf_counter()
    choice = session.choose_speaker(scene.message)
    choose_ms = (time.perf_counter() - started) * 1000
    reply = session.speak(choice.speaker, scene.message).run()
    tick()
    likeliest = max(choice.shares, key=lambda pair: pair[1])[0] if choice.shares else choice.speaker
    return {"chosen": choice.speaker == scene.addressed, "model_only": likeliest == scene.addressed,
            "leaks": _leaks(reply.message.raw or reply.text, session), "choose_ms": choose_ms}  # fmt: skip


def _talk(engine: Backend, scene: Scene, params: SamplingParams, tick: Callable[[], None]) -> dict:
    """The person's message answered, then ``TALK_TURNS`` turns with nobody asked."""
    session = _session(engine, scene, params)
    first = session.choose_speaker(scene.message)
    leaks = _leaks(session.speak(first.speaker, scene.message).run().text, session)
    speakers = []
    for _ in range(TALK_TURNS):
        choice = session.choose_speaker(None)
        reply = session.speak(choice.speaker).run()
        speakers.append(choice.speaker)
        leaks = leaks or _leaks(reply.text, session)
    tick()
    most = max(speakers.count(name) for name in set(speakers))
    everyone = set(speakers) == {m.name for m in scene.members}
    return {"max_share": most / TALK_TURNS, "everyone": everyone, "leaks": leaks}


def _leaks(text: str, session: ChatSession) -> bool:
    """Another speaker's label in a reply: a member writing in another's voice (or the person's)."""
    own = session.template.assistant_name
    return any(f"{name}:" in text for name in session.template.speaker_names if name != own)


def _rate(flags) -> float:
    values = list(flags)
    return round(sum(values) / len(values), 3) if values else 0.0
