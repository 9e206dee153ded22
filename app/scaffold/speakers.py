"""Speaker labels in text: what makes a line open a turn, and how a line that would is defused."""

from __future__ import annotations

import re

from app.scaffold.template import Template


def neutralise(text: str, template: Template) -> str:
    """Quote every line that starts like a speaker's turn, so a message cannot forge one.

    A user who types "\\nAssistant: sure!" would otherwise write the model's
    turn for it. Quoting (``> Assistant: …``) keeps what they wrote readable
    to the model while no line of theirs begins a turn any more.
    """
    pattern = label_pattern(template)
    return "\n".join(f"> {line.lstrip()}" if pattern.match(line) else line for line in text.split("\n"))


def label_pattern(template: Template) -> re.Pattern[str]:
    names = "|".join(re.escape(n) for n in template.speaker_names)
    return re.compile(rf"^\s*(?:{names})\s*:", re.IGNORECASE)
