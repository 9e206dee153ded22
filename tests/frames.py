"""Frame files built in the tests from the formats' public field lists (no other app's data)."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path


def card_v2(**overrides) -> dict:
    data = {
        "name": "Captain Mira",
        "description": "{{char}} is the captain of the airship Kestrel. She speaks to {{user}} plainly.",
        "personality": "brave, dry humour",
        "scenario": "<USER> has just come aboard as a new deckhand.",
        "first_mes": "Welcome aboard, {{user}}. Stow your bag and grab a rope.",
        "mes_example": (
            "<START>\n{{user}}: Where are we headed?\n{{char}}: North, to the ice fields.\n"
            "It will be cold.\n<START>\n<USER>: Can I steer?\n<BOT>: Not yet, deckhand."
        ),
        "creator_notes": "A <b>test</b> character.",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": ["Ah, {{user}}. You're late.", "Mind the gap in the deck."],
        "character_book": None,
        "tags": ["test"],
        "creator": "tests",
        "character_version": "1",
        "extensions": {},
    }
    data.update(overrides)
    return {"spec": "chara_card_v2", "spec_version": "2.0", "data": data}


def card_v3(**overrides) -> dict:
    card = card_v2(**overrides)
    card["data"] = {"nickname": "", "group_only_greetings": [], "assets": []} | card["data"]
    return {"spec": "chara_card_v3", "spec_version": "3.0", "data": card["data"]}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    )


def png_with_text(chunks: dict[str, dict | bytes]) -> bytes:
    """A real 1×1 PNG with a tEXt chunk per keyword (a card as base64 JSON, as cards carry it)."""
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    for keyword, value in chunks.items():
        text = value if isinstance(value, bytes) else base64.b64encode(json.dumps(value).encode())
        out += _chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text)
    out += _chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + _chunk(b"IEND", b"")
    return out


def write(path: Path, content: dict | bytes | str) -> Path:
    if isinstance(content, dict):
        path.write_text(json.dumps(content), encoding="utf-8")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


CONTEXT_PRESET = {
    "name": "Plain story",
    "story_string": (
        "{{#if system}}{{system}}\n{{/if}}{{#if description}}{{description}}\n{{/if}}"
        "A story between {{user}} and {{char}}.{{trim}}\n\n{{#if scenario}}Scenario: {{scenario}}{{else}}"
        "They talk.{{/if}}"
    ),
    "example_separator": "***",
    "chat_start": "--- new chat ---",
    "use_stop_strings": True,
    "trim_sentences": True,
}

INSTRUCT_PRESET = {
    "name": "Alpaca-like",
    "system_prompt": "Below is an instruction that describes a task.",
    "input_sequence": "### Instruction:",
    "output_sequence": "### Response:",
    "stop_sequence": "### Instruction:",
    "wrap": True,
    "macro": True,
}

TEXTGEN_YAML = """name: Professor Quill
greeting: Good morning, {{user}}. Sit down, please.
context: |
  Professor Quill teaches history at a small college and loves a tangent.

  {{user}}: Who built the pyramids?
  {{char}}: Egyptian workers, well fed and well organised, over decades.
"""

KOBOLD_SCENARIO = {
    "scenarioname": "Lighthouse",
    "memory": "The keeper of a remote lighthouse talks with a visitor during a storm.",
    "prompt": "Keeper: Come in out of the rain, friend!",
    "chatname": "Visitor",
    "chatopponent": "Keeper",
    "opmode": 3,
    "authorsnote": "Keep it cosy.",
}
