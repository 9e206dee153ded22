"""Test-load a model file in a child process.

Some malformed files make llama.cpp abort the whole process (a GGML_ASSERT),
which no ``try`` can catch. A file the user adds from disk is therefore
opened here first, in a separate process; if that process dies, the app lives.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.errors import ModelLoadError

PROBE_TIMEOUT_S = 120


def probe_in_child(path: Path) -> None:
    """Raise ModelLoadError with one line if llama.cpp cannot load ``path``."""
    try:
        result = subprocess.run(
            [*_probe_command(), str(path)],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise ModelLoadError(
            f"{path.name}: llama.cpp did not finish loading it in {PROBE_TIMEOUT_S} s."
        ) from None
    if result.returncode == 0:
        return
    message = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode < 0 or not message:
        message = f"{path.name}: llama.cpp crashed while loading it (exit {result.returncode})."
    raise ModelLoadError(message)


def _probe_command() -> list[str]:
    """In a packaged app there is no Python to run ``-m`` with: the app probes itself."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--probe-model"]
    return [sys.executable, "-m", "app.models.probe"]


def probe_main(argv: list[str]) -> int:
    from contextlib import closing

    from app.engine.factory import open_backend
    from app.errors import BasechatError

    try:
        with closing(open_backend(Path(argv[0]), n_ctx=256)) as engine:
            engine.tokenize("probe")
    except BasechatError as exc:
        print(exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(probe_main(sys.argv[1:]))
