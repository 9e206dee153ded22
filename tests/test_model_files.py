"""Bad model files: each gets a typed error with one human line, never a crash or hang."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest

from app.engine.gguf_header import read_gguf_header
from app.engine.llama import LlamaEngine
from app.errors import ModelFileError, ModelLoadError
from tests.ggufs import write_gguf

pytestmark = pytest.mark.model


def one_line(error: Exception) -> str:
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message
    return message


def test_default_model_header(model_path):
    info = read_gguf_header(model_path)
    assert info.architecture == "gemma3"
    assert info.context_length == 32768
    assert info.quantisation == "Q4_K_M"
    assert 260e6 < info.parameters < 280e6
    assert info.data_end == info.file_size == model_path.stat().st_size
    assert not info.has_chat_template and not info.looks_instruct


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(tmp_path / "nowhere.gguf")
    assert "not found" in one_line(caught.value)


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.gguf"
    empty.touch()
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(empty)
    assert "empty" in one_line(caught.value)


def test_random_bytes(tmp_path):
    noise = tmp_path / "noise.gguf"
    noise.write_bytes(np.random.default_rng(7).bytes(1 << 20))
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(noise)
    assert "not a GGUF" in one_line(caught.value)


@pytest.mark.parametrize("keep", [10, 4096, 3_000_000, 200_000_000])
def test_truncated_copies_of_the_default_model(tmp_path, model_path, keep):
    cut = tmp_path / "cut.gguf"
    with model_path.open("rb") as src:
        cut.write_bytes(src.read(keep))
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(cut)
    assert "truncated" in one_line(caught.value) or "too small" in one_line(caught.value)


def test_unknown_architecture_is_refused_by_llama_cpp_cleanly(tmp_path):
    alien = write_gguf(tmp_path / "alien.gguf", "alienarch", name="Alien", context=128)
    with pytest.raises(ModelLoadError) as caught:
        LlamaEngine(alien)
    assert "'alienarch'" in one_line(caught.value)


def test_model_larger_than_free_memory(tmp_path, model_path):
    # A real GGUF header followed by a sparse hole: the file claims far more memory
    # than this machine has free, without using the disk space.
    huge = tmp_path / "huge.gguf"
    with model_path.open("rb") as src, huge.open("wb") as dst:
        dst.write(src.read())
    os.truncate(huge, 2 * psutil.virtual_memory().total)
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(huge)
    assert "GB of memory" in one_line(caught.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ModelFileError):
        LlamaEngine(tmp_path)


def test_a_zero_alignment_is_a_clear_error_not_a_crash(tmp_path):
    odd = write_gguf(tmp_path / "odd.gguf", metadata={"general.alignment": 0})
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(odd)
    assert "invalid general.alignment (0)" in one_line(caught.value)


def test_a_big_endian_file_is_named_as_such(tmp_path):
    big = write_gguf(tmp_path / "big.gguf", big_endian=True)
    with pytest.raises(ModelFileError) as caught:
        LlamaEngine(big)
    assert "big-endian" in one_line(caught.value)


def test_a_chat_template_is_found_in_the_first_bytes_of_a_file(tmp_path, model_path):
    from app.engine.gguf_header import has_chat_template

    templated = write_gguf(tmp_path / "t.gguf", strings={"tokenizer.chat_template": "{{ messages }}"})
    assert has_chat_template(templated.read_bytes()) is True
    assert has_chat_template(write_gguf(tmp_path / "b.gguf").read_bytes()) is False
    assert has_chat_template(model_path.read_bytes()[:1000]) is None  # cut short: cannot tell
    assert has_chat_template(b"not a gguf file at all") is None
