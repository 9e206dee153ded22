"""``basechat serve``: the loaded model as a local API server (``app/server``), OpenAI's API under
``/v1`` and KoboldCpp's under ``/api``, until Ctrl+C."""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys

from app.cli.common import check_numbers, open_engine, sampling_from
from app.errors import InputError

DEFAULT_PORT = 8080  # llama.cpp's server's: clients that know llama-server find Basechat there


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server.app import create_app
    from app.server.hub import Hub

    check_numbers(args)
    key = _api_key(args)
    _check_address(args.host, args.port, key)
    model_id, engine = open_engine(
        argparse.Namespace(**{**vars(args), "api_key_env": None}), keep_states=True
    )
    hub = Hub(engine, model_id, _template(args.template), sampling_from(args), key)
    where = f"http://{_shown_host(args.host)}:{args.port}"
    print(
        f"Serving {model_id} at {where}/v1 (OpenAI) and {where}/api (KoboldCpp); Ctrl+C stops.",
        file=sys.stderr,
    )
    try:
        uvicorn.run(create_app(hub), host=args.host, port=args.port, log_level="warning", access_log=False)
    finally:
        engine.close()
    return 0


def _api_key(args: argparse.Namespace) -> str | None:
    if not args.api_key_env:
        return None
    key = os.environ.get(args.api_key_env)
    if not key:
        raise InputError(f"--api-key-env names {args.api_key_env}, which is not set.")
    return key


def _check_address(host: str, port: int, key: str | None) -> None:
    """Only this computer may connect unless a key is asked; the port must be free (one line, not
    uvicorn's traceback)."""
    if not 0 < port < 65536:
        raise InputError("--port must be between 1 and 65535.")
    if not _is_loopback(host) and not key:
        raise InputError(
            f"Serving on {host} lets other computers in: give an API key with --api-key-env NAME."
        )
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InputError(f"Cannot serve on {host}:{port}: {exc.strerror or exc}.") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _template(name: str | None) -> str:
    from app.scaffold import DEFAULT_TEMPLATE, available_templates

    if name is None:
        return DEFAULT_TEMPLATE
    if name not in available_templates():
        raise InputError(f"No template '{name}'; 'basechat templates list' shows them.")
    return name
