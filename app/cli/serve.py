"""``basechat serve``: the loaded model as a local API server (``app/server``), OpenAI's API under
``/v1`` and KoboldCpp's under ``/api``, until Ctrl+C."""

from __future__ import annotations

import argparse
import os
import sys

from app.cli.common import check_numbers, open_engine, sampling_from
from app.errors import InputError
from app.server.address import base_url, check_address


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server.app import create_app
    from app.server.hub import Hub

    check_numbers(args)
    key = _api_key(args)
    check_address(args.host, args.port, key)
    model_id, engine = open_engine(
        argparse.Namespace(**{**vars(args), "api_key_env": None}), keep_states=True
    )
    hub = Hub(engine, model_id, _template(args.template), sampling_from(args), key)
    hub.keeper = _keeper(model_id) if args.keep_chats else None
    where = base_url(args.host, args.port)
    print(
        f"Serving {model_id} at {where}/v1 (OpenAI) and {where}/api (KoboldCpp); Ctrl+C stops.",
        file=sys.stderr,
    )
    try:
        uvicorn.run(create_app(hub), host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        engine.close()
    return 0


def _keeper(model_id: str):
    from app.cli.common import open_store
    from app.server.keeping import ChatKeeper
    from app.service import ConversationService

    return ChatKeeper(ConversationService(open_store()), model_id)


def _api_key(args: argparse.Namespace) -> str | None:
    if not args.api_key_env:
        return None
    key = os.environ.get(args.api_key_env)
    if not key:
        raise InputError(f"--api-key-env names {args.api_key_env}, which is not set.")
    return key


def _template(name: str | None) -> str:
    from app.scaffold import DEFAULT_TEMPLATE, available_templates

    if name is None:
        return DEFAULT_TEMPLATE
    if name not in available_templates():
        raise InputError(f"No template '{name}'; 'basechat templates list' shows them.")
    return name
