"""Long chats: a window and a prompt that cost what is shown or what fits, not what was chatted."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QAbstractSlider, QApplication

from app.chat import ChatSession
from app.engine.base import SamplingParams
from app.scaffold import load_template
from app.service import TAIL_STEP, ConversationService, as_messages
from app.store import ChatStore
from app.store.export import import_json
from app.ui.messages import MessageWidget
from app.ui.probes import long_chat_export
from app.ui.replies import PAGE
from tests.helpers import LONG, settled


def imported(store: ChatStore, n_messages: int) -> int:
    """A chat of ``n_messages`` stored through the same import ``basechat chats import`` uses."""
    [conversation_id] = import_json(store, long_chat_export(n_messages))
    return conversation_id


def drawn_turns(window) -> list[MessageWidget]:
    """The turn widgets that exist (deleted ones gone first), not just the ones listed."""
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return [t for t in window.view.findChildren(MessageWidget) if t.position >= 0]


def test_a_2000_message_chat_opens_at_its_newest_page_with_a_widget_per_shown_turn(unloaded_window):
    """Opening drew a frame, a browser and its buttons for every stored message (68 s for 2,000)."""
    window = unloaded_window
    long_id = imported(window.store, 2000)
    for _ in range(2):  # the second open as the first: nothing left over
        window.chats.open(long_id)
        assert [t.position for t in window.view.turns] == list(range(2000 - PAGE, 2000))
        assert len(drawn_turns(window)) == PAGE
    assert window.view.earlier.isVisible() and "1,970 more" in window.view.earlier.text()
    assert window.view.turns[-1].text == window.store.get(long_id).messages[-1].text


def test_scrolling_to_the_top_draws_the_page_before_and_keeps_the_place(qtbot, unloaded_window):
    window = unloaded_window
    window.chats.open(imported(window.store, 100))
    qtbot.waitUntil(lambda: window.view.verticalScrollBar().value() > 0)  # opened at the newest
    bar, first = window.view.verticalScrollBar(), window.view.turns[0]

    def top() -> int:
        return first.mapTo(window.view.viewport(), first.rect().topLeft()).y()

    bar.triggerAction(QAbstractSlider.SliderAction.SliderToMinimum)  # as the wheel or a drag does
    top_before = top()
    qtbot.waitUntil(lambda: window.view.first_shown == 100 - 2 * PAGE)
    assert [t.position for t in window.view.turns] == list(range(100 - 2 * PAGE, 100))
    above = window.view.turns[PAGE - 1]  # the last of the new page

    def laid_out_in_place() -> bool:
        """The new page is laid out above the turn that was first, and that turn is where it was."""
        return above.geometry().bottom() < first.geometry().top() and abs(top() - top_before) < 30

    qtbot.waitUntil(laid_out_in_place)
    QApplication.processEvents()  # later layout passes (heights settling) keep it there
    assert abs(top() - top_before) < 30  # what was on screen stays on screen


@pytest.mark.model
def test_actions_far_up_a_long_chat_work(qtbot, window):
    """Edit, regenerate and versions on the first turns of a 100-message chat, reached by paging up."""
    long_id = imported(window.store, 100)
    window.chats.open(long_id)
    window.settings.setValue("sampling/max_tokens", 6)
    while window.view.first_shown:
        window.view.earlier.click()
    assert [t.position for t in window.view.turns] == list(range(100))
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.regenerate(1)  # the first reply, 98 turns up
    settled(qtbot, window)
    assert window.view.turns[1].versions == (1, 2) and len(window.view.turns) == 2
    window.replies.choose_version(1, 0)  # back to the old version and its 98 later turns
    assert window.store.path_length(long_id) == 100
    assert [t.position for t in window.view.turns] == list(range(100 - PAGE, 100))
    window.replies.edit_message(70)
    turn = window.replies.turn_at(70)
    turn.editor.setPlainText("A new question, far up.")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        turn._save_edit()
    settled(qtbot, window)
    path = window.store.get(long_id).messages
    assert len(path) == 72 and path[70].text == "A new question, far up." and path[71].role == "assistant"


@pytest.mark.model
def test_the_prompt_of_a_long_chat_reads_only_a_tail_and_is_the_prompt_of_the_whole(
    engine, template, tmp_path
):
    """A send read all 2,000 turns (and the worker tokenised them all) for a prompt that holds
    a few dozen; the tail read is bounded by the context and fits to the same prompt."""
    store = ChatStore(tmp_path / "chats.db")
    long_id = imported(store, 2000)
    tail = ConversationService(store).tail(long_id, None, engine.n_ctx)
    assert tail.start > 0 and tail.start % TAIL_STEP == 0 and tail.end == 2000
    assert len(tail.messages) < 2000 // 2
    whole = as_messages(store.get(long_id).messages)

    def prompt(history) -> str:
        return ChatSession(engine, template, SamplingParams(), history).plan("And then?").text

    assert prompt(as_messages(tail.messages)) == prompt(whole)


@pytest.mark.model
def test_a_short_chat_is_read_whole(engine, tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    short_id = imported(store, 6)
    tail = ConversationService(store).tail(short_id, None, engine.n_ctx)
    assert (tail.start, [m.position for m in tail.messages]) == (0, list(range(6)))
    assert [m.position for m in ConversationService(store).tail(short_id, 4, engine.n_ctx).messages] == [
        0,
        1,
        2,
        3,
    ]


@pytest.mark.parametrize("start,end", [(0, 3), (5, 9), (9, None)])
def test_a_slice_of_the_path_is_the_same_turns_as_the_whole_path(start, end, tmp_path):
    store = ChatStore(tmp_path / "chats.db")
    conversation_id = imported(store, 10)
    whole = store.get(conversation_id).messages
    assert store.path_slice(conversation_id, start, end) == whole[start:end]
    assert store.path_length(conversation_id) == 10


def test_scrolling_up_stops_following_and_offers_a_jump_to_the_latest(qtbot, unloaded_window):
    window = unloaded_window
    window.chats.open(imported(window.store, 60))
    bar, view = window.view.verticalScrollBar(), window.view
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0)
    assert not view.latest.isVisible()
    bar.setValue(bar.maximum() - 2 * view.viewport().height())
    assert view.latest.isVisible()
    view.latest.click()
    assert bar.value() == bar.maximum() and not view.latest.isVisible()


def test_code_in_a_reply_is_coloured_and_prose_is_not(unloaded_window):
    from PySide6.QtGui import QTextFormat

    window = unloaded_window
    window.chats.open(imported(window.store, 2))  # the reply holds a Python block
    reply = window.view.turns[1]
    blocks, block = [], reply.body.document().begin()
    while block.isValid():
        blocks.append(block)
        block = block.next()
    code = [b for b in blocks if b.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence)]
    prose = [b for b in blocks if b not in code and b.text()]
    assert code and prose
    assert all(b.layout().formats() for b in code)  # Pygments' colours, token by token
    assert not any(b.layout().formats() for b in prose)


@pytest.mark.model
def test_a_fresh_install_times_the_machine_from_the_first_reply_not_a_second_model(
    qtbot, tmp_path, model_path, monkeypatch, endless_book
):
    """The calibration ran the embedded model a second time beside the first reply, on the same
    cores, as soon as the model was ready: the first reply sat at "writing…" for seconds."""
    import json

    from PySide6.QtCore import QSettings

    import app.models.fit
    from app.ui.main_window import MainWindow

    measured: list = []  # a second run of the model beside the reply: what the old code did
    measure = app.models.fit.measure_generation
    monkeypatch.setattr(
        app.models.fit, "measure_generation", lambda path: measured.append(path) or measure(path)
    )
    data = tmp_path / "data"
    (data / "models").mkdir(parents=True)
    (data / "models" / model_path.name).symlink_to(model_path)
    monkeypatch.setenv("BASECHAT_DATA_DIR", str(data))
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    # The penalty over the prompt keeps greedy from copying the book's speaker label (a stop).
    for key, value in {
        "temperature": 0.0,
        "ignore_eos": True,
        "max_tokens": 40,
        "penalize_prompt": True,
    }.items():
        settings.setValue(f"sampling/{key}", value)
    window = MainWindow(ChatStore(tmp_path / "chats.db"), settings)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.worker.model_ready, timeout=LONG):
        window.load_model("gemma3-270m")
    assert not (data / "machine.json").exists()
    window.frames.set_template(load_template(endless_book))  # the reply runs to its 40 tokens
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.send("Count to fifty.")
    settled(qtbot, window)
    reply = window.store.get(window.conversation_id).messages[-1]
    assert measured == []
    [calibration] = json.loads((data / "machine.json").read_text()).values()
    assert calibration["tokens_per_s"] == reply.tokens_per_s and reply.completion_tokens >= 32
    window.close()


def test_a_png_cards_picture_is_the_characters_avatar(qtbot, unloaded_window, data_dir):
    """SillyTavern and KoboldCpp show a card's picture beside the character; so does the window."""
    from tests import frames

    window = unloaded_window
    card = frames.write(data_dir / "mira.png", frames.png_with_text({"chara": frames.card_v2()}))
    window.frames.import_frame(str(card))
    assert window.template.avatar and (data_dir / "avatars" / window.template.avatar).is_file()
    greeting = window.view.greeting
    assert greeting is not None and greeting.avatar.isVisible()
    assert not greeting.avatar.pixmap().isNull()
    reply, question = window.replies.new_turn("assistant", 0), window.replies.new_turn("user", 1)
    assert reply.avatar.isVisibleTo(reply) and not question.avatar.isVisibleTo(question)


def test_a_card_whose_picture_is_not_an_image_still_imports_without_one(unloaded_window, data_dir):
    from tests import frames

    window = unloaded_window
    broken = frames.png_with_text({"chara": frames.card_v2()}).replace(b"IDAT", b"IDAX")
    window.frames.import_frame(str(frames.write(data_dir / "broken.png", broken)))
    assert window.template.assistant_name == "Captain Mira"
    assert window.view.greeting is not None and not window.view.greeting.avatar.isVisible()


@pytest.mark.parametrize("value", ["../../etc/passwd.png", "/tmp/x.png", "0123456789abcdef.png/..", 7, ["a"]])
def test_a_template_cannot_point_its_avatar_anywhere_but_its_own_folder(value):
    from app.scaffold.template import template_from_dict, template_to_dict

    assert template_from_dict({"preamble": "p", "avatar": value}).avatar == ""
    kept = template_from_dict({"preamble": "p", "avatar": "0123456789abcdef.png"})
    assert template_from_dict(template_to_dict(kept)).avatar == "0123456789abcdef.png"


def test_code_is_coloured_again_when_the_palette_turns_dark(qtbot, unloaded_window):
    from PySide6.QtGui import QColor, QGuiApplication, QPalette, QTextFormat

    window = unloaded_window
    window.chats.open(imported(window.store, 2))
    reply = window.view.turns[1]

    def code_colours() -> list[str]:
        block = reply.body.document().begin()
        while not block.blockFormat().hasProperty(QTextFormat.Property.BlockCodeFence):
            block = block.next()
        return [r.format.foreground().color().name() for r in block.layout().formats()]

    light, dark = QGuiApplication.palette(), QPalette(QGuiApplication.palette())
    before = code_colours()
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    QApplication.setPalette(dark)
    try:
        # Pygments' dark style, not the light one on a dark bubble (the palette reaches it queued)
        qtbot.waitUntil(lambda: code_colours() != before, timeout=5000)
    finally:
        QApplication.setPalette(light)


def test_a_burst_of_wheel_steps_at_the_top_draws_one_page_not_one_per_step(qtbot, unloaded_window):
    window = unloaded_window
    window.chats.open(imported(window.store, 200))
    bar = window.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.value() > 0)
    bar.setValue(0)
    for _ in range(5):  # a flick of the wheel: several steps before the event loop runs
        bar.triggerAction(QAbstractSlider.SliderAction.SliderSingleStepSub)
    qtbot.waitUntil(lambda: window.view.first_shown < 200 - PAGE)
    QApplication.processEvents()
    assert window.view.first_shown == 200 - 2 * PAGE and len(window.view.turns) == 2 * PAGE
