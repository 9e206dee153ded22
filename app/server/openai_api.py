"""OpenAI's API, for a base model: ``/v1/models``, ``/v1/completions`` (raw text, with
``logprobs``, ``n`` and ``echo``), ``/v1/chat/completions`` (through the transcript scaffold), and
llama.cpp server's ``/tokenize`` and ``/detokenize``."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from functools import partial

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.chat import ChatSession
from app.engine.base import Completion, SamplingParams
from app.scaffold import Message, Template, available_templates, load_template
from app.server.fields import (
    MAX_LOGPROBS,
    MAX_N,
    MAX_TOKENS_LIMIT,
    ApiError,
    count,
    flag,
    prompt_tokens,
    sampling,
    stops,
    whole,
)
from app.server.hub import Hub, first_then_rest

TEMPLATE_PREFIX = "basechat/"


def hub_of(request: Request) -> Hub:
    return request.app.state.hub


async def models(request: Request) -> Response:
    """The loaded model, then each installed template as a chat "model" (``basechat/NAME``)."""
    hub = hub_of(request)
    names = [hub.model_id] + [TEMPLATE_PREFIX + name for name in available_templates()]
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "basechat"} for name in names]
    return JSONResponse({"object": "list", "data": data})


# -- raw completion ------------------------------------------------------------------------------


async def completions(request: Request) -> Response:
    hub, body = hub_of(request), request.state.body
    prompt, text = prompt_tokens(body, hub.engine.tokenize, hub.engine.start_tokens())
    n, logprobs = count(body, "n", 1, MAX_N, 1), count(body, "logprobs", 0, MAX_LOGPROBS, 0)
    params = replace(sampling(body, hub.params, 16), n_probs=logprobs)
    echo, stop = flag(body, "echo"), stops(body)
    if len(prompt) + params.max_tokens > hub.engine.n_ctx:
        raise ApiError(
            f"The prompt is {len(prompt)} tokens; with max_tokens it does not fit {hub.engine.n_ctx}."
        )
    if n > 1 and params.temperature <= 0:
        raise ApiError("With temperature 0 every one of n completions is the same; raise the temperature.")
    head = await hub.run(lambda: _echoed(hub, prompt, text, logprobs)) if echo else None
    if params.max_tokens == 0:
        completions_ = [_empty(len(prompt))] * n
        return JSONResponse(_completion_body(hub, body, completions_, head, len(prompt)))
    start = _generation(hub, prompt, params, stop, n)
    if flag(body, "stream"):
        begin, kept = _keeping(start)
        items = await first_then_rest(hub.stream(begin))
        return _sse(_completion_events(hub, items, kept, head, n))
    finished = await hub.run(lambda: _finished(start))
    return JSONResponse(_completion_body(hub, body, finished, head, len(prompt)))


def _generation(hub: Hub, prompt: list[int], params: SamplingParams, stop: list[str], n: int) -> Callable:
    if n == 1:
        return lambda: hub.engine.generate(prompt, params, stop)
    return lambda: hub.engine.generate_many(prompt, params, stop, n)


def _finished(start: Callable) -> list:
    """What ``start()`` gives when run to its end, as a list (one reply or completion, or several)."""
    finished = start().run()
    return finished if isinstance(finished, list) else [finished]


def _echoed(hub: Hub, prompt: list[int], text: str | None, logprobs: int) -> dict:
    """The prompt given back: its text and, with ``logprobs``, each token's own log-probability
    under the model (the first has none), as lm-evaluation-harness reads them."""
    scores = hub.engine.score(prompt, logprobs) if logprobs else []
    pieces = [hub.engine.detokenize([t]) for t in prompt]
    shown = text if text is not None else hub.engine.detokenize(prompt)
    if not logprobs:
        return {"text": shown, "logprobs": None}
    tops = [None] + [{hub.engine.detokenize([t]): lp for t, lp in s.top} for s in scores]
    return {"text": shown, "logprobs": {
        "tokens": pieces, "token_logprobs": [None] + [s.logprob for s in scores], "top_logprobs": tops,
        "text_offset": _offsets(pieces, 0)}}  # fmt: skip


def _offsets(pieces: list[str], start: int) -> list[int]:
    offsets, at = [], start
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return offsets


def _token_logprobs(completion: Completion, start: int) -> dict:
    """OpenAI's legacy ``logprobs`` for generated tokens, from the candidates the sampler saw."""
    chosen = [p.chosen for p in completion.probs]
    pieces = [c.text for c in chosen]
    return {"tokens": pieces, "token_logprobs": [_log(c.prob) for c in chosen],
            "top_logprobs": [{c.text: _log(c.prob) for c in p.top} for p in completion.probs],
            "text_offset": _offsets(pieces, start)}  # fmt: skip


def _log(probability: float) -> float:
    return math.log(probability) if probability > 0 else -9999.0


def _completion_body(
    hub: Hub, body: dict, finished: list[Completion], head: dict | None, n_prompt: int
) -> dict:
    choices = [_choice(index, c, head, body) for index, c in enumerate(finished)]
    return {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
            "model": hub.model_id, "choices": choices, "usage": _usage(n_prompt, finished)}  # fmt: skip


def _choice(index: int, completion: Completion, head: dict | None, body: dict) -> dict:
    text = (head["text"] if head else "") + completion.text
    logprobs = None
    if body.get("logprobs"):
        offset = len(head["text"]) if head else 0
        own = _token_logprobs(completion, offset)
        logprobs = _joined(head["logprobs"], own) if head and head["logprobs"] else own
    return {"index": index, "text": text, "logprobs": logprobs, "finish_reason": finish_reason(completion)}


def _joined(first: dict, second: dict) -> dict:
    return {key: first[key] + second[key] for key in first}


def finish_reason(completion: Completion) -> str:
    return "length" if completion.finish_reason == "length" else "stop"


def _usage(n_prompt: int, finished: list[Completion]) -> dict:
    generated = sum(len(c.tokens) for c in finished)
    return {"prompt_tokens": n_prompt, "completion_tokens": generated, "total_tokens": n_prompt + generated}


def _empty(n_prompt: int) -> Completion:
    from app.engine.base import Usage

    return Completion("", (), "length", Usage(n_prompt, 0, 0, 0.0, 0.0, 0.0, 0.0))


async def _completion_events(
    hub: Hub, items: AsyncIterator, kept: list, head: dict | None, n: int
) -> AsyncIterator[dict]:
    base = {"id": f"cmpl-{uuid.uuid4().hex[:24]}", "object": "text_completion", "created": int(time.time()),
            "model": hub.model_id}  # fmt: skip
    if head:
        for index in range(n):
            yield base | {
                "choices": [{"index": index, "text": head["text"], "logprobs": None, "finish_reason": None}]
            }
    async for item in items:
        index, chunk = item if n > 1 else (0, item)
        yield base | {"choices": [{"index": index, "text": chunk, "logprobs": None, "finish_reason": None}]}
    finished = kept[0].results if n > 1 else [kept[0].result]
    for index, c in enumerate(finished):
        yield base | {
            "choices": [{"index": index, "text": "", "logprobs": None, "finish_reason": finish_reason(c)}]
        }


def _keeping(start: Callable) -> tuple[Callable, list]:
    """``start``, and a list that holds what it started: read once the stream has ended."""
    kept: list = []

    def begin():
        kept.append(start())
        return kept[0]

    return begin, kept


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        async for event in events:
            yield b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(lines(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


# -- chat through the scaffold ---------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    hub, body = hub_of(request), request.state.body
    template = _template(body.get("model"), hub.template)
    history, question, template = _conversation(body.get("messages"), template)
    n = count(body, "n", 1, MAX_N, 1)
    top = count(body, "top_logprobs", 0, MAX_LOGPROBS, 0) or (1 if flag(body, "logprobs") else 0)
    limit = whole(body, "max_completion_tokens", 1, MAX_TOKENS_LIMIT)
    asked = sampling(body | ({"max_tokens": limit} if limit else {}), hub.params, hub.params.max_tokens)
    # Like the window: a short answer drawn several times, the likeliest kept (not with n or logprobs).
    params = replace(asked, n_probs=top, best_of=hub.params.best_of if n == 1 and not top else 1)
    if n > 1 and params.temperature <= 0:
        raise ApiError("With temperature 0 every one of n replies is the same; raise the temperature.")
    session = ChatSession(hub.engine, template, params, history)
    start = (lambda: session.send(question)) if n == 1 else (lambda: session.send_many(question, n))
    name = body.get("model") if isinstance(body.get("model"), str) else hub.model_id
    keep = partial(_keep_chat, hub, template, params, history, question)
    if flag(body, "stream"):
        begin, kept = _keeping(start)
        items = await first_then_rest(hub.stream(begin))
        return _sse(_chat_events(name, items, kept, n, keep))
    replies = await hub.run(lambda: _finished(start))
    keep(replies)
    return JSONResponse(_chat_body(name, replies, top))


def _keep_chat(hub: Hub, template: Template, params: SamplingParams, history: list[Message], question: str,
               replies: list) -> None:  # fmt: skip
    """With --keep-chats, the turn goes into the history (the first reply, when there are several)."""
    if hub.keeper is not None and replies and replies[0].text:
        hub.keeper.keep(template, params, history, question, replies[0])


def _template(model: object, default: str) -> Template:
    """``basechat/NAME`` names an installed template; anything else (the model's own id, another
    client's model name) gets the server's. A name is looked up, never used as a path."""
    if isinstance(model, str) and model.startswith(TEMPLATE_PREFIX):
        name = model[len(TEMPLATE_PREFIX) :]
        if name not in available_templates():
            raise ApiError(f"No template '{name[:60]}' is installed; GET /v1/models lists them.", 404,
                           "model_not_found")  # fmt: skip
        return load_template(name)
    return load_template(default)


def _conversation(messages: object, template: Template) -> tuple[list[Message], str, Template]:
    """(history, the newest user message, the template): system messages become the preamble."""
    if not isinstance(messages, list) or not messages:
        raise ApiError("'messages' must be a non-empty list.")
    turns = [_message(m) for m in messages]
    system = "\n\n".join(text for role, text in turns if role in ("system", "developer"))
    said = [Message(role, text) for role, text in turns if role in ("user", "assistant") and text]  # type: ignore[arg-type]
    if not said or said[-1].role != "user":
        raise ApiError("The last message must be the user's.")
    return said[:-1], said[-1].text, replace(template, preamble=system) if system else template


def _message(message: object) -> tuple[str, str]:
    if not isinstance(message, dict) or message.get("role") not in (
        "system",
        "developer",
        "user",
        "assistant",
    ):
        raise ApiError("Each message needs a role: system, user or assistant.")
    content = message.get("content")
    if isinstance(content, list):  # parts: only text is read
        content = "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    if content is None:
        content = ""
    if not isinstance(content, str):
        raise ApiError("A message's 'content' must be text.")
    return message["role"], content


def _chat_body(name: str, replies: list, top: int) -> dict:
    choices = [{"index": i, "message": {"role": "assistant", "content": r.text},
                "logprobs": _chat_logprobs(r.completion) if top else None,
                "finish_reason": finish_reason(r.completion)} for i, r in enumerate(replies)]  # fmt: skip
    prompt = replies[0].completion.usage.prompt_tokens if replies else 0
    usage = _usage(prompt, [r.completion for r in replies])
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion",
            "created": int(time.time()), "model": name, "choices": choices, "usage": usage}  # fmt: skip


def _chat_logprobs(completion: Completion) -> dict:
    """Chat's ``logprobs``: each reply token with the candidates the sampler saw."""
    return {"content": [_chat_token(p.chosen) | {"top_logprobs": [_chat_token(c) for c in p.top]}
                        for p in completion.probs]}  # fmt: skip


def _chat_token(choice) -> dict:
    return {"token": choice.text, "logprob": _log(choice.prob), "bytes": list(choice.text.encode())}


async def _chat_events(
    name: str, items: AsyncIterator, kept: list, n: int, keep: Callable[[list], None]
) -> AsyncIterator[dict]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": name}  # fmt: skip
    for index in range(n):
        yield base | {
            "choices": [
                {"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ]
        }
    started = [False] * n
    async for item in items:
        index, chunk = item if n > 1 else (0, item)
        chunk = chunk if started[index] else chunk.lstrip()
        started[index] = started[index] or bool(chunk)
        if chunk:
            yield base | {"choices": [{"index": index, "delta": {"content": chunk}, "finish_reason": None}]}
    replies = kept[0].replies if n > 1 else [kept[0].reply]
    keep(replies)
    for index, reply in enumerate(replies):
        ended = finish_reason(reply.completion)
        yield base | {"choices": [{"index": index, "delta": {}, "finish_reason": ended}]}


# -- tokens ----------------------------------------------------------------------------------


async def tokenize(request: Request) -> Response:
    hub, body = hub_of(request), request.state.body
    content = body.get("content")
    if not isinstance(content, str):
        raise ApiError("'content' must be text.")
    start = hub.engine.start_tokens() if flag(body, "add_special") else []
    return JSONResponse({"tokens": start + hub.engine.tokenize(content)})


async def detokenize(request: Request) -> Response:
    hub, body = hub_of(request), request.state.body
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(type(t) is int and 0 <= t < 2**31 for t in tokens):
        raise ApiError("'tokens' must be a list of token ids.")
    return JSONResponse({"content": hub.engine.detokenize(tokens)})
