"""Where the server may listen: this computer only unless an API key is asked, and a port that is
free (one clear line instead of uvicorn's traceback). Shared by ``basechat serve`` and the window."""

from __future__ import annotations

import ipaddress
import socket

from app.errors import InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080  # llama.cpp's server's: clients that know llama-server find Basechat there


def check_address(host: str, port: int, key: str | None) -> None:
    if not 0 < port < 65536:
        raise InputError("The port must be between 1 and 65535.")
    if not is_loopback(host) and not key:
        raise InputError(
            f"Serving on {host} lets other computers in: give an API key with --api-key-env NAME."
        )
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise InputError(f"Cannot serve on {host}:{port}: {exc.strerror or exc}.") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """The address a client is given (an IPv6 host in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"
