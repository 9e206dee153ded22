"""Shared fixtures. Tests use the real default model, real files and real processes.

``BASECHAT_DATA_DIR`` points at a folder inside the checkout so the suite never
touches the user's own Basechat data; the default model is assembled there once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_DATA_DIR = ROOT / ".basechat-test-data"
os.environ["BASECHAT_DATA_DIR"] = str(TEST_DATA_DIR)
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def model_path() -> Path:
    from app.models.default import ensure_default_model

    return ensure_default_model()


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
