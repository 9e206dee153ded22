"""Importing the frames people own: cards (JSON and PNG, V1–V3), SillyTavern presets, llama.cpp
prompt files, text-generation-webui characters, Kobold Lite scenarios; exporting them again."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from app.errors import TemplateError
from app.scaffold import handlebars, load_template
from app.scaffold.card_export import template_to_card
from app.scaffold.importers import save_imported
from app.scaffold.imports import import_bytes, import_file
from app.scaffold.template import template_from_dict, template_to_dict, template_to_toml
from app.scaffold.transcript import Moment, header_text
from tests import frames
from tests.conftest import ROOT

PROMPTS = ROOT / "tests" / "data" / "llama.cpp-prompts"


@pytest.fixture
def own_templates(tmp_path, monkeypatch):
    """A data folder of its own, so imported templates land there and nowhere else."""
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(tmp_path))
    return tmp_path / "templates"


def test_card_v2_json_becomes_a_character_template():
    imported = import_bytes(json.dumps(frames.card_v2()).encode(), "mira.json")
    t = imported.template
    assert imported.kind == "Character Card V2"
    assert imported.notes == ("kept for export, not used: tags, creator, character_version",)
    assert (t.name, t.user_name, t.assistant_name) == ("captain-mira", "User", "Captain Mira")
    assert t.preamble == (
        "Captain Mira is the captain of the airship Kestrel. She speaks to User plainly.\n"
        "Captain Mira's personality: brave, dry humour\n"
        "Scenario: User has just come aboard as a new deckhand."
    )
    assert [(e.user, e.assistant, e.block) for e in t.examples] == [
        ("Where are we headed?", "North, to the ice fields.\nIt will be cold.", 1),
        ("Can I steer?", "Not yet, deckhand.", 2),
    ]
    assert t.greeting == "Welcome aboard, User. Stow your bag and grab a rope."
    assert t.alternate_greetings == ("Ah, User. You're late.", "Mind the gap in the deck.")
    assert t.description == "A test character."  # creator notes, tags stripped: shown, never rendered


def test_the_greeting_opens_the_conversation_the_model_reads():
    template = import_bytes(json.dumps(frames.card_v2()).encode(), "mira.json").template
    header = header_text(template)
    assert header.endswith("Captain Mira: Welcome aboard, User. Stow your bag and grab a rope.\n")
    assert "User: Where are we headed?\nCaptain Mira: North, to the ice fields.\nIt will be cold.\n" in header


def test_v3_png_card_is_read_from_its_chunk_and_preferred_over_chara():
    png = frames.png_with_text({"chara": frames.card_v2(name="Old"), "ccv3": frames.card_v3(name="New")})
    imported = import_bytes(png, "card.png")
    assert imported.kind == "PNG Character Card V3" and imported.template.assistant_name == "New"
    v2 = import_bytes(frames.png_with_text({"chara": frames.card_v2()}), "card.png")
    assert v2.kind == "PNG Character Card V2" and v2.template.assistant_name == "Captain Mira"


def test_v1_card_and_unused_fields_are_named():
    v1 = {"name": "Bob", "description": "A baker.", "first_mes": "Fresh bread!", "mes_example": ""}
    assert import_bytes(json.dumps(v1).encode(), "bob.json").kind == "Character Card V1"
    book = frames.card_v2(character_book={"entries": [{"keys": ["x"], "content": "y"}]},
                          post_history_instructions="Stay in character.")  # fmt: skip
    notes = import_bytes(json.dumps(book).encode(), "m.json").notes
    assert notes == (
        "kept for export, not used: post_history_instructions, tags, creator, character_version",
    )


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (frames.png_with_text({"Comment": b"just a picture"}), "p.png", "PNG without a character card"),
        (frames.png_with_text({"chara": b"%%%not base64%%%"}), "p.png", "not base64"),
        (b'{"spec": "chara_card_v2", "data": ', "c.json", "not valid JSON"),
        (b"[1, 2, 3]", "c.json", "not an object"),
        (b'{"hello": "world"}', "c.json", "not a character card"),
        (json.dumps({**frames.card_v2(), "spec_version": "4.1"}).encode(), "c.json", "up to V3"),
        (json.dumps(frames.card_v2(description="x" * 40_000)).encode(), "c.json", "'description' is 40,000"),
        (json.dumps(frames.card_v2(name=["a list"])).encode(), "c.json", "should be text"),
        (b"\xff\xfe\x00binary", "c.bin", "neither a PNG card nor UTF-8"),
        (b"just some prose with no speakers at all", "notes.txt", "no 'Name: …' turns"),
        (b"name: [unclosed", "c.yaml", "not valid YAML"),
    ],
)
def test_bad_input_is_one_clear_line(content, name, message):
    with pytest.raises(TemplateError, match=message) as caught:
        import_bytes(content, name)
    assert "\n" not in str(caught.value)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(25 * 1024 * 1024)
    with pytest.raises(TemplateError, match="at most 20 MB"):
        import_file(big)


def test_html_and_script_stay_text():
    card = frames.card_v2(first_mes="<script>alert(1)</script> Hello <img src=x onerror=y>")
    template = import_bytes(json.dumps(card).encode(), "m.json").template
    assert template.greeting == "<script>alert(1)</script> Hello <img src=x onerror=y>"


def test_duplicate_names_get_a_suffix_and_nothing_is_written_on_failure(own_templates):
    first, _path = save_imported(import_bytes(json.dumps(frames.card_v2()).encode(), "m.json"))
    second, _ = save_imported(import_bytes(json.dumps(frames.card_v2()).encode(), "m.json"))
    assert (first.name, second.name) == ("captain-mira", "captain-mira-2")
    assert load_template("captain-mira-2").assistant_name == "Captain Mira"
    before = sorted(p.name for p in own_templates.iterdir())
    with pytest.raises(TemplateError):
        save_imported(import_bytes(b"{broken", "x.json"))
    assert sorted(p.name for p in own_templates.iterdir()) == before


def test_sillytavern_context_preset_gives_the_frame_shape_and_names_what_it_drops():
    imported = import_bytes(json.dumps(frames.CONTEXT_PRESET).encode(), "ctx.json")
    t = imported.template
    assert imported.kind == "SillyTavern context preset"
    assert t.preamble == "A story between User and Assistant.They talk."
    assert (t.example_separator, t.chat_start) == ("***", "--- new chat ---")
    assert imported.notes == ("not used: trim_sentences, use_stop_strings",)


def test_sillytavern_instruct_preset_labels_and_refusal():
    imported = import_bytes(json.dumps(frames.INSTRUCT_PRESET).encode(), "alpaca.json")
    t = imported.template
    assert (t.user_name, t.assistant_name) == ("### Instruction", "### Response")
    assert t.preamble == "Below is an instruction that describes a task."
    assert t.extra_stops == ("### Instruction:",) and imported.notes == ("not used: macro, wrap",)
    chatml = {**frames.INSTRUCT_PRESET, "input_sequence": "<|im_start|>user\n"}
    with pytest.raises(TemplateError, match="not a speaker label"):
        import_bytes(json.dumps(chatml).encode(), "chatml.json")


def test_llama_cpp_prompt_files():
    bob = import_file(PROMPTS / "chat-with-bob.txt").template
    assert (bob.user_name, bob.assistant_name) == ("User", "Bob")
    assert bob.preamble.startswith("Transcript of a dialog") and bob.preamble.endswith("的请求。")
    assert [e.user for e in bob.examples] == ["Hello, Bob.", "Please tell me the largest city in Europe."]
    vicuna = import_file(PROMPTS / "chat-with-vicuna-v1.txt").template
    assert (vicuna.user_name, vicuna.assistant_name) == ("User", "Assistant")
    assert '("User") and an artificial intelligence assistant ("Assistant")' in vicuna.preamble
    chat = import_file(PROMPTS / "chat.txt")
    assert len(chat.template.examples) == 8 and "argv[3]" in chat.template.examples[5].assistant
    assert chat.notes == () and "[[DATE" not in template_to_toml(chat.template)
    assert "{{year}}" in template_to_toml(chat.template)  # filled when a chat opens, not frozen at import
    when = Moment(now=datetime(2031, 5, 6, 7, 8))
    assert "2031" in header_text(chat.template, moment=when) and "{{" not in header_text(
        chat.template, moment=when
    )


def test_textgen_yaml_and_kobold_scenario():
    quill = import_bytes(frames.TEXTGEN_YAML.encode(), "quill.yaml").template
    assert (
        quill.assistant_name == "Professor Quill"
        and quill.greeting == "Good morning, User. Sit down, please."
    )
    assert quill.preamble == "Professor Quill teaches history at a small college and loves a tangent."
    assert [(e.user, e.assistant) for e in quill.examples] == [
        ("Who built the pyramids?", "Egyptian workers, well fed and well organised, over decades.")
    ]
    kobold = import_bytes(json.dumps(frames.KOBOLD_SCENARIO).encode(), "lighthouse.json")
    t = kobold.template
    assert (t.user_name, t.assistant_name, t.greeting) == (
        "Visitor",
        "Keeper",
        "Come in out of the rain, friend!",
    )
    assert kobold.notes == () and t.authors_note


def test_card_round_trip_import_export_import(tmp_path):
    first = import_bytes(json.dumps(frames.card_v2()).encode(), "m.json").template
    exported = frames.write(tmp_path / "again.json", template_to_card(first))
    again = import_file(exported).template
    assert replace(again, preamble=first.preamble) == first
    assert again.preamble == first.preamble


def test_toml_round_trip_keeps_any_text(tmp_path):
    tricky = replace(
        load_template("chat"), name="tricky", preamble='Emoji 🦩, quotes "x", a tab\t, DEL \x7f, 𠮷.',
        greeting="Hi!\nSecond line", alternate_greetings=("Yo 🦩",), chat_start="[chat]",
    )  # fmt: skip
    path = frames.write(tmp_path / "tricky.toml", template_to_toml(tricky))
    assert import_file(path).template == replace(tricky, source=None)
    assert template_from_dict(template_to_dict(tricky)) == replace(tricky, source=None)


def test_handlebars_subset_is_safe_and_says_what_it_skips():
    rendered = handlebars.render(
        "{{#if a}}A{{#if b}}B{{else}}notB{{/if}}{{/if}} {{trim}} x{{c}}{{#each list}}{{/each}}"
        "{{constructor.constructor('alert')()}}{{> partial}}",
        {"a": "yes", "b": "", "c": "!"},
    )
    assert rendered.text == "AnotBx!"
    assert rendered.unsupported == (
        "{{#each list}}", "{{/each}}", "{{constructor.constructor('alert')()}}", "{{> partial}}",
    )  # fmt: skip
    unclosed = handlebars.render("{{#if a}}kept", {"a": "1"})
    assert unclosed.text == "kept" and unclosed.unsupported == ("{{#if}} without {{/if}}",)
    deep = handlebars.render("{{#if a}}" * 500 + "x" + "{{/if}}" * 500, {"a": "1"})
    assert "x" in deep.text


def test_shipped_templates_survive_the_toml_writer():
    for name in ("chat", "forum", "interview", "tutor"):
        template = load_template(name)
        data = template_to_dict(template)
        assert template_from_dict(data, source=Path("x")) == template
