"""API keys for inference servers: in the platform's keychain, never in settings or logs.

``keyring`` reaches the macOS Keychain, Windows Credential Locker and the
Secret Service on Linux desktops. Where there is none (a bare Linux session),
the key is kept in memory until Basechat quits and the person is told so;
it is never written to QSettings, the database, exports or the log.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
SERVICE = "Basechat"
_session_keys: dict[str, str] = {}


def load_key(url: str) -> str | None:
    if url in _session_keys:
        return _session_keys[url] or None
    try:
        import keyring

        return keyring.get_password(SERVICE, url)
    except Exception as exc:  # no keychain backend, a locked keychain, a broken D-Bus
        log.info("no keychain for the API key: %s", type(exc).__name__)
        return None


def save_key(url: str, key: str) -> str:
    """Keep ``key`` for ``url``; returns a notice when it cannot outlive this session."""
    _session_keys[url] = key
    try:
        import keyring

        if key:
            keyring.set_password(SERVICE, url, key)
        elif keyring.get_password(SERVICE, url) is not None:
            keyring.delete_password(SERVICE, url)
        return ""
    except Exception as exc:
        log.info("no keychain for the API key: %s", type(exc).__name__)
        return "No keychain on this system: the API key is kept until Basechat quits." if key else ""
