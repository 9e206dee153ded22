"""The server's routes and what every request passes first: the API key, a bounded JSON body, and
errors in OpenAI's shape (one clear message, never a traceback)."""

from __future__ import annotations

import hmac
import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.errors import BasechatError, ContextOverflow, EngineBusy
from app.server import kobold_api, openai_api
from app.server.fields import MAX_BODY_BYTES, ApiError, parse_body
from app.server.hub import Hub

log = logging.getLogger(__name__)


class Checked(BaseHTTPMiddleware):
    """The API key (when one is set), and a POST body read once, bounded and parsed."""

    async def dispatch(self, request: Request, call_next) -> Response:
        hub: Hub = request.app.state.hub
        try:
            _check_key(request, hub.api_key)
            if request.method == "POST":
                request.state.body = parse_body(await _bounded(request))
        except ApiError as error:
            return JSONResponse(error.body(), status_code=error.status)
        return await call_next(request)


def _check_key(request: Request, key: str | None) -> None:
    if not key:
        return
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    given = given or request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(
            "This server needs its API key (Authorization: Bearer KEY).", 401, "authentication_error"
        )


async def _bounded(request: Request) -> bytes:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise ApiError(f"The request body is over {MAX_BODY_BYTES // 1024**2} MB.", 413)
    return raw


async def _refused(_request: Request, error: Exception) -> Response:
    assert isinstance(error, ApiError)
    return JSONResponse(error.body(), status_code=error.status)


async def _failed(_request: Request, error: Exception) -> Response:
    """Basechat's own errors are the client's to read (a prompt too long, a busy engine)."""
    status = 429 if isinstance(error, EngineBusy) else 400
    kind = "context_length_exceeded" if isinstance(error, ContextOverflow) else "invalid_request_error"
    return JSONResponse(ApiError(str(error), status, kind).body(), status_code=status)


async def _crashed(_request: Request, error: Exception) -> Response:
    log.exception("server request failed")
    message = f"The server failed: {type(error).__name__} (details in Basechat's log)."
    return JSONResponse(ApiError(message, 500, "server_error").body(), status_code=500)


ROUTES = [
    Route("/v1/models", openai_api.models),
    Route("/v1/completions", openai_api.completions, methods=["POST"]),
    Route("/v1/chat/completions", openai_api.chat_completions, methods=["POST"]),
    Route("/tokenize", openai_api.tokenize, methods=["POST"]),
    Route("/detokenize", openai_api.detokenize, methods=["POST"]),
    Route("/api/v1/info/version", kobold_api.version),
    Route("/api/extra/version", kobold_api.extra_version),
    Route("/api/v1/model", kobold_api.model),
    Route("/api/v1/config/max_context_length", kobold_api.max_context_length),
    Route("/api/v1/generate", kobold_api.generate, methods=["POST"]),
    Route("/api/extra/generate/stream", kobold_api.generate_stream, methods=["POST"]),
    Route("/api/extra/tokencount", kobold_api.token_count, methods=["POST"]),
    Route("/api/extra/abort", kobold_api.abort, methods=["POST"]),
]


def create_app(hub: Hub) -> Starlette:
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Checked)],
        exception_handlers={ApiError: _refused, BasechatError: _failed, Exception: _crashed},
    )
    app.state.hub = hub
    return app
