"""The small, safe part of Handlebars that SillyTavern's story strings use.

``{{name}}`` variables, ``{{#if name}}…{{else}}…{{/if}}`` (nested) and ``{{trim}}``.
Nothing else is understood: an unknown ``{{#helper}}`` or ``{{>partial}}`` is left
out and reported, never run. There are no loops and no code, and the input is
read once from left to right, so no input can run anything or fail to end.

Written here rather than taken from a library: the Python Handlebars ports
compile templates to Python code (pybars) or are unmaintained, and this subset
is all a story string needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
MAX_DEPTH = 16


@dataclass
class _Block:
    condition: str | None  # None: the top level
    then: list = field(default_factory=list)
    otherwise: list = field(default_factory=list)
    in_else: bool = False

    def add(self, node) -> None:
        (self.otherwise if self.in_else else self.then).append(node)


@dataclass(frozen=True)
class Rendered:
    text: str
    unsupported: tuple[str, ...]  # tags that were left out


def render(template: str, values: dict[str, str]) -> Rendered:
    """Fill ``template`` from ``values`` (missing names are empty)."""
    unsupported: list[str] = []
    root = _parse(template, unsupported)
    text = _emit(root.then, {k.lower(): v.replace("\x00", "") for k, v in values.items()})
    return Rendered(_apply_trims(text), tuple(dict.fromkeys(unsupported)))


def _parse(template: str, unsupported: list[str]) -> _Block:
    stack = [_Block(None)]
    position = 0
    for match in _TAG.finditer(template):
        stack[-1].add(template[position : match.start()])
        position = match.end()
        _take_tag(match.group(1).strip(), stack, unsupported)
    stack[-1].add(template[position:])
    if len(stack) > 1:
        unsupported.append("{{#if}} without {{/if}}")
    return stack[0]  # a block left open is already in its parent: its text is kept


def _take_tag(tag: str, stack: list[_Block], unsupported: list[str]) -> None:
    lowered = tag.lower()
    if lowered.startswith("#if ") and len(stack) < MAX_DEPTH:
        block = _Block(lowered[4:].strip())
        stack[-1].add(block)
        stack.append(block)
    elif lowered == "else" and len(stack) > 1:
        stack[-1].in_else = True
    elif lowered == "/if" and len(stack) > 1:
        stack.pop()
    elif lowered == "trim":
        stack[-1].add(_TRIM)
    elif re.fullmatch(r"[a-z_][a-z0-9_]*", lowered):
        stack[-1].add(_Var(lowered))
    else:
        unsupported.append("{{" + tag[:40] + "}}")


@dataclass(frozen=True)
class _Var:
    name: str


_TRIM = "\x00trim\x00"


def _emit(nodes: list, values: dict[str, str]) -> str:
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, _Var):
            out.append(values.get(node.name, ""))
        else:
            chosen = node.then if values.get(node.condition or "", "").strip() else node.otherwise
            out.append(_emit(chosen, values))
    return "".join(out)


def _apply_trims(text: str) -> str:
    """``{{trim}}`` removes the blank space and new lines around it."""
    return re.sub(r"\s*" + re.escape(_TRIM) + r"\s*", "", text)
