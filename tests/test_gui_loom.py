"""The loom in the real window: branch switcher, tree panel, alternatives, token click → branch."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QThread
from PySide6.QtWidgets import QMessageBox, QToolButton

from app.ui.loom import AlternativesBox, TokenView
from tests.helpers import LONG, send, settled

pytestmark = pytest.mark.model


def shown_texts(window) -> list[str]:
    return [t.text for t in window.view.turns]


def test_switching_a_user_message_version_shows_its_whole_branch(qtbot, window):
    send(qtbot, window, "What is the capital of France?")
    send(qtbot, window, "And of Italy?")
    old = shown_texts(window)
    window.replies.apply_edit(0, "What is the capital of Spain?")  # a new version of turn 0: a new branch
    qtbot.waitUntil(lambda: window.replies.streaming is None and len(window.view.turns) == 2, timeout=LONG)
    settled(qtbot, window)
    assert window.view.turns[0].text == "What is the capital of Spain?"
    assert window.view.turns[0].versions == (1, 2)
    window.replies.choose_version(0, 0)  # the switcher ‹ on the first message
    assert shown_texts(window) == old  # the old branch, its later turns included
    window.replies.choose_version(0, 1)
    assert len(window.view.turns) == 2 and window.view.turns[0].text.endswith("Spain?")


def test_the_tree_panel_shows_every_branch_and_navigates(qtbot, window):
    window.loom.dock.show()  # the tree is read only while its panel is shown
    send(qtbot, window, "Name a fruit.")
    send(qtbot, window, "Name a colour.")
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.replies.regenerate(1)
    settled(qtbot, window)
    tree = window.loom.tree
    assert len(tree.items) == 5  # the first reply's old version keeps its later turns
    assert len(window.view.turns) == 2
    old_reply = window.store.alternatives(window.conversation_id, 1)[0]
    deep = next(n for n in window.store.tree(window.conversation_id) if n.text == "Name a colour.")
    tree.items[deep.id].setSelected(True)
    tree.itemClicked.emit(tree.items[deep.id], 0)  # a click on the old branch's message
    assert len(window.view.turns) == 4 and window.view.turns[1].text == old_reply.text
    assert tree.items[deep.id].font(0).bold()


def test_branch_from_here_and_delete_branch_in_the_tree(qtbot, window, monkeypatch):
    send(qtbot, window, "Name a fruit.")
    send(qtbot, window, "Name a colour.")
    first_reply = window.store.get(window.conversation_id).messages[1].id
    window.loom.branch_from_message(first_reply)
    assert len(window.view.turns) == 2
    send(qtbot, window, "Name a city.")
    assert len(window.store.tree(window.conversation_id)) == 6
    assert shown_texts(window)[2] == "Name a city."
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    city = window.store.get(window.conversation_id).messages[2].id
    window.loom.delete_branch(city)
    assert len(window.store.tree(window.conversation_id)) == 4
    assert shown_texts(window)[2] == "Name a colour."


def test_alternatives_stream_together_and_the_pick_is_kept(qtbot, window, monkeypatch):
    threads = set()
    original = AlternativesBox.append
    record = lambda box, *a: (threads.add(QThread.currentThread()), original(box, *a))  # noqa: E731
    monkeypatch.setattr(AlternativesBox, "append", record)
    window.settings.setValue("sampling/temperature", 0.9)
    window.settings.setValue("sampling/seed", 3)
    window.settings.setValue("loom/alternatives", 3)
    send(qtbot, window, "Tell me about the moon.")
    box = window.loom.box
    assert box is not None and len(box.texts) == 3
    assert threads == {window.thread()}  # drawn on the GUI thread, never on the engine's
    written = [t.toPlainText().strip() for t in box.texts]
    assert all(written) and all(b.isEnabled() for b in box.buttons)
    versions = window.store.alternatives(window.conversation_id, 1)
    assert [v.text for v in versions] == written
    assert window.view.turns[1].text == written[0] and window.view.turns[1].versions == (0, 3)
    box.buttons[2].click()
    assert window.loom.box is None
    assert window.view.turns[1].text == written[2]
    assert window.store.get(window.conversation_id).messages[1].text == written[2]


def test_clicking_a_token_candidate_branches_the_reply_there(qtbot, window):
    send(qtbot, window, "What is the capital of France?")
    reply = window.view.turns[1]
    assert reply.has_probs and "Tokens" in [b.text() for b in reply.findChildren(QToolButton)]
    window.loom.toggle_tokens(1)
    view = reply.extra
    assert isinstance(view, TokenView) and view.rows
    first_text = reply.text
    index = 0
    candidate = next(c for c in view.rows[index][3] if c[0] != view.rows[index][0] and c[1].strip())
    menu = view.menu_for(index)
    action = next(a for a in menu.actions() if a.text().startswith(repr(candidate[1])))
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        action.trigger()
    settled(qtbot, window)
    branched = window.view.turns[1]
    assert branched.text.startswith(candidate[1].strip()) and branched.text != first_text
    assert branched.versions == (1, 2)
    stored = window.store.token_probs(window.store.get(window.conversation_id).messages[1].id)
    assert stored[index][0] == candidate[0]


def continue_notebook(qtbot, window, n: int = 1) -> None:
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        window.notebook.continue_text(n)
    qtbot.waitUntil(lambda: window.notebook.request_id == 0, timeout=LONG)


def test_a_notebook_is_continued_from_the_cursor_and_stored_as_a_tree(qtbot, window):
    window.chats.new_notebook()
    page = window.notebook.page
    assert window.pages.currentWidget() is page
    page.editor.setPlainText("Once upon a time, in a small village by the sea,")
    page.editor.moveCursor(page.editor.textCursor().MoveOperation.End)
    continue_notebook(qtbot, window)
    document = page.editor.toPlainText()
    assert document.startswith("Once upon a time, in a small village by the sea,") and len(document) > 60
    stored = window.store.get(window.conversation_id)
    assert stored.kind == "notebook" and [m.role for m in stored.messages] == ["user", "assistant"]
    assert stored.title.startswith("Once upon a time")  # named by its text, like a chat
    assert stored.messages[0].text + stored.messages[1].text == document  # no transcript, no labels
    prefix = "Once upon a time, in a small village by the sea,"
    engine = window.worker.engine
    assert stored.messages[1].prompt_tokens == len(engine.start_tokens() + engine.tokenize(prefix))
    cursor = page.editor.textCursor()
    cursor.setPosition(20)  # continue from the middle: the rest stays on the old branch
    page.editor.setTextCursor(cursor)
    continue_notebook(qtbot, window)
    assert page.editor.toPlainText().startswith(document[:20]) and page.editor.toPlainText() != document
    assert len(window.store.tree(window.conversation_id)) == 4
    window.chats.open(window.conversation_id)  # reopened: the document as it was
    assert page.editor.toPlainText().startswith(document[:20])


def test_notebook_alternatives_and_a_token_branch(qtbot, window):
    window.settings.setValue("sampling/temperature", 0.9)
    window.settings.setValue("sampling/seed", 2)
    window.settings.setValue("loom/alternatives", 3)
    window.chats.new_notebook()
    page = window.notebook.page
    page.editor.setPlainText("The three most important inventions are")
    page.editor.moveCursor(page.editor.textCursor().MoveOperation.End)
    continue_notebook(qtbot, window, n=3)
    assert page.version.text() == "1/3"
    first = page.editor.toPlainText()
    page.ahead.click()
    assert page.version.text() == "2/3" and page.editor.toPlainText() != first
    window.notebook.toggle_tokens()
    view = page.token_view
    assert isinstance(view, TokenView)
    candidate = next(c for c in view.rows[1][3] if c[0] != view.rows[1][0])
    with qtbot.waitSignal(window.worker.reply_done, timeout=LONG):
        view.branch.emit(1, candidate[0])
    qtbot.waitUntil(lambda: window.notebook.request_id == 0, timeout=LONG)
    kept = "The three most important inventions are" + view.rows[0][1] + candidate[1]
    assert page.editor.toPlainText().startswith(kept)
    roots = [n for n in window.store.tree(window.conversation_id) if n.parent_id is None]
    assert len(roots) == 2  # the branch is another version of the continued text
