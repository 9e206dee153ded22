"""``Basechat --self-test``: prove a build works on this machine, with no network.

Starts Qt offscreen, loads the bundled default model, asks one question through
the scaffold and exits 0 only if the answer mentions Paris.
"""

from __future__ import annotations

QUESTION = "What is the capital of France?"


def self_test() -> int:
    from contextlib import closing

    from app.chat import ChatSession
    from app.engine.base import SamplingParams
    from app.engine.factory import open_backend
    from app.models.default import ensure_default_model
    from app.scaffold import DEFAULT_TEMPLATE, load_template
    from app.ui.probes import offscreen_application

    app = offscreen_application()
    path = ensure_default_model()
    with closing(open_backend(path)) as engine:
        session = ChatSession(engine, load_template(DEFAULT_TEMPLATE), SamplingParams(temperature=0.0))
        reply = session.ask(QUESTION)
    print(f"model: {path}")
    print(f"Q: {QUESTION}")
    print(f"A: {reply.text}")
    ok = "paris" in reply.text.lower()
    print("self-test: " + ("passed" if ok else "FAILED"))
    app.quit()
    return 0 if ok else 1
