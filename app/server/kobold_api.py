"""The part of KoboldCpp's API that SillyTavern's text-completion mode and Kobold Lite use, with
the request shapes of SillyTavern's own Kobold backend (``src/endpoints/backends/kobold.js``):
status (``/api/v1/info/version``, ``/api/extra/version``, ``/api/v1/model``), ``/api/v1/generate``,
``/api/extra/generate/stream``, ``/api/extra/tokencount``, ``/api/extra/abort`` and
``/api/v1/config/max_context_length``. The prompt is raw text, as Kobold's is: the client built
the transcript."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app import __version__
from app.server.fields import ApiError, sampling, stops
from app.server.hub import Hub, first_then_rest
from app.server.openai_api import finish_reason, hub_of

KOBOLD_API_VERSION = "1.2.5"  # the Kobold United API level these routes answer
# Kobold's names for the sampling fields (SillyTavern sends these).
_NAMES = {"max_length": "max_tokens", "rep_pen": "repeat_penalty", "sampler_seed": "seed"}


async def version(_request: Request) -> Response:
    return JSONResponse({"result": KOBOLD_API_VERSION})


async def extra_version(_request: Request) -> Response:
    return JSONResponse({"result": "KoboldCpp", "version": "1.80", "basechat": __version__})


async def model(request: Request) -> Response:
    return JSONResponse({"result": f"basechat/{hub_of(request).model_id}"})


async def max_context_length(request: Request) -> Response:
    return JSONResponse({"value": hub_of(request).engine.n_ctx})


async def token_count(request: Request) -> Response:
    hub, body = hub_of(request), request.state.body
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError("'prompt' must be text.")
    ids = hub.engine.tokenize(prompt)
    return JSONResponse({"value": len(ids), "ids": ids})


async def abort(request: Request) -> Response:
    return JSONResponse({"success": hub_of(request).abort()})


def _request(hub: Hub, body: dict):
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError("'prompt' must be a non-empty text.")
    params = sampling(body, hub.params, 80, _NAMES)
    tokens = hub.engine.start_tokens() + hub.engine.tokenize(prompt)
    if len(tokens) + params.max_tokens > hub.engine.n_ctx:
        raise ApiError(
            f"The prompt is {len(tokens)} tokens; with max_length it does not fit {hub.engine.n_ctx}."
        )
    stop = stops(body, "stop_sequence")
    return lambda: hub.engine.generate(tokens, params, stop)


async def generate(request: Request) -> Response:
    hub = hub_of(request)
    start = _request(hub, request.state.body)
    completion = await hub.run(lambda: start().run())
    return JSONResponse({"results": [{"text": completion.text, "finish_reason": finish_reason(completion)}]})


async def generate_stream(request: Request) -> Response:
    hub = hub_of(request)
    start = _request(hub, request.state.body)

    items = await first_then_rest(hub.stream(start))

    async def events() -> AsyncIterator[bytes]:
        async for chunk in items:
            yield (
                b"event: message\ndata: "
                + json.dumps({"token": chunk}, ensure_ascii=False).encode()
                + b"\n\n"
            )

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
