# ruff: noqa: E501 (the formats' sample files are data, kept one field a line)
"""Imports that never hand the model a raw macro or chat markup, presets for plain-text models, and
cards that come back from an export as they went in. Every file here is built in the test from the
formats' public field names."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import TemplateError
from app.scaffold import Message
from app.scaffold.card_export import template_to_card
from app.scaffold.imports import import_bytes
from app.scaffold.preset_import import combine
from app.scaffold.transcript import render_prompt
from tests import frames

FORBIDDEN = ("{{", "[[", "<|", "<START>", "{{[", "}}")
MACROS = "{{char}} {{user}} {{random:a,b}} {{[INPUT]}} [[DATE_TIME]] {{// note}} <START> {{original}} {{"


def prompt_of(imported, history=(), message="Hello.") -> str:
    return render_prompt(imported.template, list(history), message)


def assert_clean(prompt: str) -> None:
    leaked = [s for s in FORBIDDEN if s.lower() in prompt.lower()]
    assert not leaked, f"{leaked} reached the prompt:\n{prompt}"


OLD_INSTRUCT = {  # an older SillyTavern instruct preset: its system prompt speaks in macros
    "name": "Roleplay (old)",
    "system_prompt": "You're {{char}} in this fictional never-ending uncensored roleplay with {{user}}.",
    "input_sequence": "### Instruction:", "output_sequence": "### Response:", "stop_sequence": "",
    "wrap": True, "macro": True, "names": True,
}  # fmt: skip
KOBOLD_LITE = {  # a Kobold Lite scenario in instruct tags, with example turns in its memory
    "scenarioname": "KoboldGPT", "opmode": 3, "gamestarted": True,
    "memory": "{{char}} is a helpful assistant.\n{{[INPUT]}} Hi, I'm {{user}}.\n{{[OUTPUT]}} Hello {{user}}!",
    "prompt": "\n{{[OUTPUT]}} Hello! How can I help you today?",
    "chatopponent": "KoboldGPT", "chatname": "User",
}  # fmt: skip
KOBOLD_SAVE = {  # a save file: the names are in its saved settings
    "gamestarted": True, "prompt": "KoboldGPT: Hello, I am KoboldGPT.", "memory": "A friendly chat.",
    "authorsnote": "", "anotetemplate": "[Author's note: <|>]", "actions": [], "worldinfo": [],
    "savedsettings": {"chatname": "You", "chatopponent": "KoboldGPT", "opmode": 3},
}  # fmt: skip
CHATML_CONTEXT = {
    "name": "ChatML", "example_separator": "", "chat_start": "",
    "story_string": "<|im_start|>system\n{{#if system}}{{system}}\n{{/if}}{{#if description}}{{description}}\n{{/if}}<|im_end|>",
}  # fmt: skip
LLAMA3_CONTEXT = {
    "name": "Llama 3 Instruct", "example_separator": "", "chat_start": "",
    "story_string": "<|start_header_id|>system<|end_header_id|>\n\n{{#if system}}{{system}}{{/if}}<|eot_id|>",
}  # fmt: skip
STORY_INSTRUCT = {"name": "Story", "input_sequence": "", "output_sequence": "", "system_prompt": "",
                  "stop_sequence": "", "wrap": True, "macro": True}  # fmt: skip
ADVENTURE_INSTRUCT = {"name": "Adventure", "input_sequence": "```\n> ", "output_sequence": "```\n",
                      "system_prompt": "", "stop_sequence": "", "wrap": False}  # fmt: skip
SYSTEM_PROMPT = {"name": "Neutral - Chat", "content": "Write {{char}}'s next reply in a chat with {{user}}."}


def imported(data: dict, name: str = "file.json"):
    return import_bytes(json.dumps(data).encode(), name)


def test_an_old_instruct_presets_macros_are_filled():
    prompt = prompt_of(imported(OLD_INSTRUCT))
    assert prompt.startswith(
        "You're ### Response in this fictional never-ending uncensored roleplay with ###"
    )
    assert_clean(prompt)


def test_a_kobold_scenarios_instruct_tags_become_turns_and_its_examples_leave_the_preamble():
    kobold = imported(KOBOLD_LITE).template
    assert (kobold.user_name, kobold.assistant_name) == ("User", "KoboldGPT")
    assert kobold.preamble == "KoboldGPT is a helpful assistant."
    assert [(e.user, e.assistant) for e in kobold.examples] == [("Hi, I'm User.", "Hello User!")]
    assert kobold.greeting == "Hello! How can I help you today?"
    assert_clean(prompt_of(imported(KOBOLD_LITE)))


def test_a_kobold_save_files_saved_names_are_the_speakers():
    save = imported(KOBOLD_SAVE)
    assert (save.template.user_name, save.template.assistant_name) == ("You", "KoboldGPT")
    assert save.template.greeting == "Hello, I am KoboldGPT."
    assert "KoboldGPT: Hello, I am KoboldGPT.\nYou: Hello." in prompt_of(save)
    assert any("anotetemplate" in note and "actions" not in note for note in save.notes)


@pytest.mark.parametrize("preset", [CHATML_CONTEXT, LLAMA3_CONTEXT])
def test_chat_markup_in_a_context_preset_is_refused_as_in_an_instruct_preset(preset):
    with pytest.raises(TemplateError, match="chat markup") as refused:
        imported(preset)
    assert "\n" not in str(refused.value)


def test_story_and_adventure_presets_use_the_names_as_labels():
    story, adventure = imported(STORY_INSTRUCT), imported(ADVENTURE_INSTRUCT)
    for preset in (story, adventure):
        assert preset.template.speaker_names == ("User", "Assistant")
        assert any("not a speaker label" in note for note in preset.notes)
    with pytest.raises(TemplateError, match="chat markup"):
        imported(STORY_INSTRUCT | {"input_sequence": "<|im_start|>user"})


def test_a_system_prompt_preset_is_a_preamble_alone_or_with_an_instruct_preset():
    alone = imported(SYSTEM_PROMPT)
    assert alone.kind == "SillyTavern system prompt"
    assert prompt_of(alone).startswith("Write Assistant's next reply in a chat with User.\n\n")
    both = combine([imported(frames.INSTRUCT_PRESET | {"system_prompt": ""}), alone])
    assert both.template.speaker_names == ("### Instruction", "### Response")
    assert both.template.preamble == SYSTEM_PROMPT["content"]
    with pytest.raises(TemplateError, match="one file at a time"):
        combine([imported(frames.INSTRUCT_PRESET), imported(frames.CONTEXT_PRESET)])


def test_a_chat_start_line_separates_the_examples_from_the_greeting():
    card = imported(frames.card_v2())
    prompt = prompt_of(card)
    assert "Captain Mira: Not yet, deckhand.\n***\nCaptain Mira: Welcome aboard, User." in prompt
    no_examples = imported(frames.card_v2(mes_example=""))
    assert no_examples.template.chat_start == ""


def test_a_v3_cards_nickname_is_the_characters_name():
    card = imported(frames.card_v3(nickname="Mira"))
    assert card.template.assistant_name == "Mira" and card.template.title == "Captain Mira"
    assert "Mira: Welcome aboard, User." in prompt_of(card)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"instruction_template: |-\n  {%- for m in messages %}{{ m }}{% endfor -%}\n", "instruction template"),
        (b"user: 'USER:'\nbot: 'ASSISTANT:'\nturn_template: '<|user|> <|user-message|>'\n", "instruction template"),
    ],
)  # fmt: skip
def test_what_is_not_a_frame_says_what_it_is(content, message):
    with pytest.raises(TemplateError, match=message) as refused:
        import_bytes(content, "file.yaml")
    assert "\n" not in str(refused.value)


def test_every_field_not_used_is_named():
    card = frames.card_v3(nickname="", extensions={"world": "Kestrel World", "fav": True},
                          group_only_greetings=["Hi all"], assets=[{"type": "icon", "uri": "ccdefault:"}])  # fmt: skip
    notes = " | ".join(imported(card).notes)
    for name in ("tags", "creator", "character_version", "extensions", "group_only_greetings", "assets"):
        assert name in notes
    assert "names a lorebook 'Kestrel World'" in notes


# -- no macro, no markup from any importer reaches the prompt ------------------------------------------


def every_format(text: str) -> list[tuple[str, bytes]]:
    """One file of each supported format with ``text`` in each of its text fields."""
    card = frames.card_v2(**{k: text for k in ("description", "personality", "scenario", "first_mes",
                                                "system_prompt")}, mes_example=f"<START>\n{{{{user}}}}: {text}\n{{{{char}}}}: {text}",
                          alternate_greetings=[text], character_book={"entries": [
                              {"keys": ["Hello"], "content": text, "enabled": True, "insertion_order": 1}]},
                          extensions={"depth_prompt": {"prompt": text, "depth": 0}})  # fmt: skip
    return [
        ("card.json", json.dumps(card).encode()),
        ("card.png", frames.png_with_text({"chara": frames.card_v3(**card["data"])})),
        ("context.json", json.dumps(frames.CONTEXT_PRESET | {"story_string": f"{text}\n{{{{char}}}}"}).encode()),
        ("instruct.json", json.dumps(OLD_INSTRUCT | {"system_prompt": text}).encode()),
        ("system.json", json.dumps({"name": "s", "content": text}).encode()),
        ("kobold.json", json.dumps(KOBOLD_LITE | {"memory": text, "prompt": text, "authorsnote": text,
                                                  "worldinfo": [{"key": "Hello", "content": text}]}).encode()),
        ("char.yaml", json.dumps({"name": "Q", "greeting": text, "context": f"{text}\nUser: hi\nQ: {text}"}).encode()),
        ("chat.txt", f"A chat. {text}\nUser: hi\nBob: {text}\nUser:".encode()),
    ]  # fmt: skip


@pytest.mark.parametrize("filename", [name for name, _ in every_format("x")])
def test_no_importer_hands_the_model_a_macro(filename):
    data = dict(every_format(MACROS + " Hello"))[filename]
    result = import_bytes(data, filename)
    prompt = prompt_of(result, [Message("user", "Hello"), Message("assistant", "Hi")], "Hello")
    assert_clean(prompt)
    assert any("{{random:a,b}}" in note for note in result.notes), result.notes


def test_what_the_user_types_is_theirs():
    result = import_bytes(dict(every_format("Hello"))["card.json"], "card.json")
    assert "{{char}} and [[x]]" in prompt_of(result, message="{{char}} and [[x]]")


FRAGMENTS = ["{{", "}}", "[[", "]]", "<|", "|>", "<START>", "{{[", "]}}", "char", "user", "INPUT", "a", " ", "\n",
             ":", "User:", "/", "#"]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join), st.integers(0, 7))
def test_fuzzed_fields_are_refused_or_reach_the_prompt_clean(text, which):
    filename, data = every_format(text + " Hello")[which]
    try:
        result = import_bytes(data, filename)
    except TemplateError as exc:
        assert "\n" not in str(exc)
        return
    assert_clean(prompt_of(result, [Message("user", "Hello"), Message("assistant", "Hi")], "Hello"))


# -- round trips ---------------------------------------------------------------------------------------

SHAPES = {
    "v2 with everything": frames.card_v2(
        system_prompt="Be {{char}}.", post_history_instructions="{{original}} Stay in character.",
        character_book={"name": "b", "entries": [{"keys": ["k"], "content": "c", "extensions": {"z": 1},
                                                  "enabled": True, "insertion_order": 0}], "extensions": {}},
        extensions={"talkativeness": "0.5", "fav": False, "world": "W", "depth_prompt": {"prompt": "Hm.", "depth": 4}},
    ),
    "v3 with nickname and assets": frames.card_v3(nickname="Mira", assets=[{"type": "icon", "uri": "ccdefault:",
                                                                             "name": "main", "ext": "png"}],
                                                  extensions={"risuai": {"x": 1}}),
    "v2 with a macro left out": frames.card_v2(description="{{char}} is {{random:calm,stern}} today."),
    "v1": {"name": "Bob", "description": "A baker who talks to User.", "personality": "warm",
           "scenario": "A bakery.", "first_mes": "Fresh bread, User!", "mes_example": ""},
}  # fmt: skip


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_card_exported_after_import_is_the_card_it_was(shape, tmp_path):
    card = SHAPES[shape]
    for data, name in (
        (json.dumps(card).encode(), "c.json"),
        (frames.png_with_text({"ccv3": card}), "c.png"),
    ):
        template = import_bytes(data, name).template
        assert template_to_card(template) == card
    words = import_bytes(json.dumps(card).encode(), "c.json").template
    changed = template_to_card(replace(words, greeting="Hello, User. I am here."))
    inner = changed.get("data", changed)
    assert inner["first_mes"] == "Hello, User. I am here."  # the word "User" stays a word
    assert {k: v for k, v in inner.items() if k not in ("first_mes", "alternate_greetings")} == {
        k: v for k, v in card.get("data", card).items() if k not in ("first_mes", "alternate_greetings")
    }


def test_an_edited_name_or_preamble_is_what_the_exported_card_says():
    card = SHAPES["v2 with everything"]
    template = import_bytes(json.dumps(card).encode(), "c.json").template
    out = template_to_card(replace(template, assistant_name="Mira", preamble="A new description."))["data"]
    assert (out["name"], out["description"], out["personality"], out["system_prompt"]) == (
        "Mira", "A new description.", "", "",
    )  # fmt: skip
    assert (
        out["extensions"] == card["data"]["extensions"] and out["mes_example"] == card["data"]["mes_example"]
    )
    v3 = import_bytes(json.dumps(SHAPES["v3 with nickname and assets"]).encode(), "c.json").template
    assert template_to_card(replace(v3, assistant_name="Captain"))["data"]["nickname"] == "Captain"
