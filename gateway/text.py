"""Bytes to text: declared charsets with fallbacks, and HTML to the text a reader sees."""

from __future__ import annotations

import codecs
import html
import re
from html.parser import HTMLParser

FALLBACKS = ("utf-8", "cp1252")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    try:
        return codecs.lookup(charset.strip().strip('"').lower()).name
    except (LookupError, ValueError):
        return None  # unknown or misspelt charset: the fallbacks decide


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode with the declared charset if it fits, else UTF-8, else cp1252; never fails."""
    if data.isascii():
        return data.decode("ascii")
    declared = _codec(charset)
    tried = (declared, *FALLBACKS) if declared and declared not in ("ascii",) else FALLBACKS
    for name in tried:
        try:
            return data.decode(name)
        except UnicodeDecodeError:
            continue
    # cp1252 leaves five bytes undefined: latin-1 maps every byte, so nothing is lost.
    return data.decode("latin-1")


# Elements that end a line when rendered: a number split across them is two numbers.
BLOCK_ELEMENTS = frozenset(
    (
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
        "option",
        "caption",
        "title",
    )
)
# Elements whose content no reader sees. Not <head>: its end tag may be left out (HTML5 ends it at
# the first element of the body), and then the whole body read as hidden; what it holds besides
# these is a document's <title>, which a browser shows on its tab and Word fills in from the
# document's title, and is read.
HIDDEN_ELEMENTS = frozenset(("script", "style", "template"))
# Attribute values a reader can see (tool tips, image texts, link texts of forms).
VISIBLE_ATTRIBUTES = frozenset(("alt", "title", "value", "placeholder", "aria-label"))


XML_ISLAND = "<xml>"
_ISLAND_TEXT = re.compile(r">([^<>]*[^<>\s][^<>]*)<")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_ELEMENTS:
            self.hidden += 1
        elif tag in BLOCK_ELEMENTS:
            self.chunks.append("\n")
        for name, value in attrs:
            if value and name in VISIBLE_ATTRIBUTES:
                self.chunks.append(f"\n{value}\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in HIDDEN_ELEMENTS:
            self.hidden -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in HIDDEN_ELEMENTS:
            self.hidden = max(0, self.hidden - 1)
        elif tag in BLOCK_ELEMENTS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chunks.append(data)

    def handle_comment(self, data: str) -> None:
        # Word's web pages keep the document's properties, its custom ones too, in an XML island
        # inside a conditional comment (<!--[if gte mso 9]><xml><o:DocumentProperties>...): their
        # text is read, a value a line. Other comments are the writer's notes to no one.
        if XML_ISLAND in data:
            self.chunks.append("\n" + "\n".join(html.unescape(t) for t in _ISLAND_TEXT.findall(data)) + "\n")


def html_to_text(html: str) -> str:
    """Inline tags vanish (4503<b>12</b> reads 450312), block tags end the line."""
    parser = _TextCollector()
    parser.feed(html)
    parser.close()
    return "".join(parser.chunks)
