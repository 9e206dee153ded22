"""Code blocks in replies, coloured by Pygments.

Qt's Markdown reader marks every line of a fenced block with the fence and its language; this
highlighter colours those lines only, with Pygments' lexer for the language (plain text when it
names none Pygments knows) and a light or dark Pygments style chosen from the palette. Lines are
lexed one at a time: a string or comment spanning lines may be coloured as code, which a chat
reply can live with, and it keeps the cost per line, not per block.
"""

from __future__ import annotations

from functools import lru_cache

from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.lexers.special import TextLexer
from pygments.style import StyleMeta
from pygments.styles import get_style_by_name
from pygments.util import ClassNotFound
from PySide6.QtGui import QColor, QFont, QSyntaxHighlighter, QTextCharFormat, QTextDocument, QTextFormat

LIGHT_STYLE, DARK_STYLE = "default", "native"


@lru_cache(maxsize=64)
def lexer_for(language: str) -> Lexer:
    """The lexer Pygments has for a fence's language name; plain text for an unknown one."""
    try:
        return get_lexer_by_name(language.strip().lower() or "text", stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


@lru_cache(maxsize=4)
def _formats(style_name: str) -> dict:
    """Pygments' token types as Qt character formats, for one style."""
    style: StyleMeta = get_style_by_name(style_name)
    formats = {}
    for token, spec in style:
        fmt = QTextCharFormat()
        if spec["color"]:
            fmt.setForeground(QColor(f"#{spec['color']}"))
        if spec["bold"]:
            fmt.setFontWeight(QFont.Weight.Bold)
        if spec["italic"]:
            fmt.setFontItalic(True)
        formats[token] = fmt
    return formats


class CodeHighlighter(QSyntaxHighlighter):
    """Colours the fenced code lines of one reply's document."""

    def __init__(self, document: QTextDocument, dark: bool) -> None:
        self.style_name = DARK_STYLE if dark else LIGHT_STYLE
        super().__init__(document)

    def set_dark(self, dark: bool) -> None:
        """The palette switched: colour the code again in the style that suits it."""
        style_name = DARK_STYLE if dark else LIGHT_STYLE
        if style_name != self.style_name:
            self.style_name = style_name
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        block = self.currentBlock().blockFormat()
        if not text or not block.hasProperty(QTextFormat.Property.BlockCodeFence):
            return
        formats, offset = _formats(self.style_name), 0
        language = str(block.property(QTextFormat.Property.BlockCodeLanguage) or "")
        for token, value in lexer_for(language).get_tokens(text):
            while token not in formats and token.parent is not None:
                token = token.parent
            if token in formats and formats[token].foreground().style() != 0:
                self.setFormat(offset, len(value), formats[token])
            offset += len(value)
