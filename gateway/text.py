"""Bytes to text: declared charsets with fallbacks, HTML to the text a reader sees, table rows."""

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


# A cell of words only (letters, spaces, hyphens, apostrophes; no digits), short enough to be a name.
_WORDS_ONLY = re.compile(r"[^\W\d_][^\d\r\n]{0,59}")


class WordRun:
    """Cells of one table row that hold words only, next to each other, read together as one line.

    A client list or a schedule (a sheet, a Word table, an Excel range pasted into a mail) keeps
    first name and surname in columns of their own, and neither cell alone names anyone: each cell
    is read on its own (a number is never joined across cells), and a run of two or more such
    cells once more, joined by tabs, located by its range (`Blad1!B7:C7`)."""

    def __init__(self) -> None:
        self.cells: list[tuple[int, str, str]] = []  # column number, coordinate, text

    def cell(self, column: int, coordinate: str, text: str) -> tuple[str, str] | None:
        """Take the row's next cell with text; the run it ends, if any, as (range, text)."""
        words = _WORDS_ONLY.fullmatch(text.strip()) is not None
        ended = None
        if not words or (self.cells and column != self.cells[-1][0] + 1):
            ended = self.end()
        if words:
            self.cells.append((column, coordinate, text.strip()))
        return ended

    def end(self) -> tuple[str, str] | None:
        """End the row: the run it held, if any, as (range, text)."""
        cells, self.cells = self.cells, []
        if len(cells) < 2:
            return None
        return f"{cells[0][1]}:{cells[-1][1]}", "\t".join(text for _, _, text in cells)


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


TABLE_TAGS = frozenset(("table", "tr", "td", "th"))
XML_ISLAND = "<xml>"
_ISLAND_TEXT = re.compile(r">([^<>]*[^<>\s][^<>]*)<")


class _Table:
    """A table being read: the cells of its current row, and where the open cell's text starts."""

    def __init__(self) -> None:
        self.cells: list[str] = []
        self.cell_start: int | None = None


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.hidden = 0
        self.tables: list[_Table] = []  # nested tables, innermost last

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in HIDDEN_ELEMENTS:
            self.hidden += 1
        elif tag in BLOCK_ELEMENTS:
            self.chunks.append("\n")
        if tag in TABLE_TAGS:
            self.table_tag(tag, start=True)
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
        if tag in TABLE_TAGS:
            self.table_tag(tag, start=False)

    def table_tag(self, tag: str, start: bool) -> None:
        """Rows and cells (their end tags may be left out): a row's cells of words only, next to
        each other, are read once more as one line (see WordRun)."""
        if tag == "table" and start:
            self.tables.append(_Table())
            return
        if not self.tables:
            return
        table = self.tables[-1]
        if table.cell_start is not None:  # any of these ends the open cell
            table.cells.append("".join(self.chunks[table.cell_start :]))
            table.cell_start = None
        if tag in ("td", "th"):
            if start:
                table.cell_start = len(self.chunks)
            return
        if tag == "tr" or tag == "table":  # a row starts or ends, or the table ends
            self.end_row(table)
        if tag == "table":
            self.tables.pop()

    def end_row(self, table: _Table) -> None:
        run = WordRun()
        runs = [run.cell(column, str(column), text) for column, text in enumerate(table.cells)]
        runs.append(run.end())
        self.chunks.extend(f"\n{found[1]}\n" for found in runs if found is not None)
        table.cells = []

    def close(self) -> None:
        super().close()
        while self.tables:  # tables the page never closed
            self.table_tag("table", start=False)

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
