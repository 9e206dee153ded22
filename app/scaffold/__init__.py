"""The transcript scaffold: pure Python, no Qt and no llama.cpp.

It turns a conversation into the text a base model continues and decides
where the model's reply ends.
"""

from app.scaffold.fit import Fitted, fit_pieces
from app.scaffold.template import (
    Exchange,
    Template,
    available_templates,
    load_template,
    template_from_dict,
)
from app.scaffold.transcript import (
    Message,
    Piece,
    cut_reply,
    neutralise,
    render_pieces,
    render_prompt,
)

DEFAULT_TEMPLATE = "chat"

__all__ = [
    "DEFAULT_TEMPLATE",
    "Exchange",
    "Fitted",
    "Message",
    "Piece",
    "Template",
    "available_templates",
    "cut_reply",
    "fit_pieces",
    "load_template",
    "neutralise",
    "render_pieces",
    "render_prompt",
    "template_from_dict",
]
