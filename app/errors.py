"""Errors a user may see.

Every failure a person can cause or meet (a bad file, a full context, a busy
engine) is one of these, carrying a one-line message fit to show as it is. The
CLI and the window print ``str(error)`` and never a traceback.
"""


class BasechatError(Exception):
    """Base of all errors whose message is meant for the user."""


class ModelFileError(BasechatError):
    """The model file is missing, empty, not GGUF, truncated or too large for memory."""


class ModelLoadError(BasechatError):
    """llama.cpp refused a file that looked sound (e.g. an unknown architecture)."""


class EngineBusy(BasechatError):
    """A generation is already running on this model."""


class ContextOverflow(BasechatError):
    """A single message does not fit in the model's context window. ``needed``: the tokens
    the prompt would take, where they are known."""

    def __init__(self, message: str, needed: int = 0) -> None:
        super().__init__(message)
        self.needed = needed


class TemplateError(BasechatError):
    """A conversation template file is missing or malformed."""


class InputError(BasechatError):
    """A file or argument given by the user is malformed."""


class RemoteError(BasechatError):
    """An inference server is unreachable, refused the request or failed mid-reply."""


class StoreError(BasechatError):
    """The chat history cannot be opened or written (busy, newer, foreign, not writable)."""
