"""Corners of a message where a number passed unread: HTML the reader sees or the writer's program
keeps, text outside the parts, transfer encodings as mail programs spell them, inline UTF-16 text.

Each message is written as the program it imitates writes it (named at each test); the numbers are
Skatteverket's test numbers.
"""

from __future__ import annotations

import base64
import binascii
import io
import quopri
import zipfile
from email.message import EmailMessage

import pytest

from gateway import mail
from models.config import Limits
from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY, test_personnummer

PNR = test_personnummer(3)
WRITTEN = f"{PNR[:8]}-{PNR[8:]}"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
HEAD = "From: Kim Personal <kim@hemtjanst.example>\r\nTo: kollega@example.se\r\nSubject: Underlag\r\nMIME-Version: 1.0\r\n"


def found(raw: bytes) -> list[tuple[str, str]]:
    text = mail.extract(raw, Limits())
    assert text.unscanned == []
    return [(f.location.part, f.kind) for f in scan(text.segments, CTX)]


def html_mail(page: str) -> bytes:
    return (HEAD + "Content-Type: text/html; charset=utf-8\r\n\r\n" + page).encode("utf-8")


# ---- HTML -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        # HTML5 lets </head> be left out: the head ends where the body's first element starts.
        f"<html><head><meta charset=utf-8><title>Plan</title><p>Brukaren {WRITTEN} behöver hjälp.</p></html>",
        f"<!DOCTYPE html><head><meta charset=utf-8><body><p>Brukaren {WRITTEN} behöver hjälp.</body>",
    ],
    ids=["no end of head, no body tag", "no end of head"],
)
def test_a_body_after_a_head_whose_end_tag_is_left_out_is_read(page: str) -> None:
    assert found(html_mail(page)) == [("body:text/html", "personnummer")]


def test_a_pages_title_is_read_as_a_line_of_its_own() -> None:
    # A browser shows it on the tab; Word fills it in from the document's title.
    page = f"<html><head><title>Plan för {WRITTEN}</title></head><body>Se planen.</body></html>"
    assert found(html_mail(page)) == [("body:text/html", "personnummer")]


def word_web_page(properties: str) -> str:
    """A page as Word's "Spara som webbsida" writes it: the properties in an XML island."""
    return (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta name=Generator '
        'content="Microsoft Word 15"><!--[if gte mso 9]><xml>\r\n <o:DocumentProperties>\r\n'
        "  <o:Author>Kim Personal</o:Author>\r\n  <o:Words>12</o:Words>\r\n  <o:Created>2026-11-26T09:12:00Z"
        f"</o:Created>\r\n </o:DocumentProperties>\r\n{properties}</xml><![endif]--><!--[if gte mso 9]><xml>\r\n"
        " <w:WordDocument>\r\n  <w:Zoom>0</w:Zoom>\r\n  <w:LidThemeOther>SV</w:LidThemeOther>\r\n"
        " </w:WordDocument>\r\n</xml><![endif]--></head><body><p class=MsoNormal>Genomförandeplan för kund "
        "10234.</p></body></html>"
    )


def test_a_custom_property_of_a_word_web_page_is_read() -> None:
    custom = (
        f' <o:CustomDocumentProperties>\r\n  <o:Personnummer dt:dt="string">{WRITTEN}</o:Personnummer>\r\n'
        " </o:CustomDocumentProperties>\r\n"
    )
    assert found(html_mail(word_web_page(custom))) == [("body:text/html", "personnummer")]


def test_a_word_web_page_without_one_has_nothing_to_find() -> None:
    assert found(html_mail(word_web_page(""))) == []


# ---- text outside the parts -------------------------------------------------------------------------


def multipart(preamble: str = "This is a multi-part message in MIME format.", epilogue: str = "") -> bytes:
    return (
        HEAD + 'Content-Type: multipart/mixed; boundary="grans"\r\n\r\n'
        f"{preamble}\r\n--grans\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHej, se nedan.\r\n"
        f"--grans--\r\n{epilogue}"
    ).encode("utf-8")


def test_text_before_the_first_part_is_read() -> None:
    assert found(multipart(preamble=f"Brukaren {WRITTEN}")) == [("body:preamble", "personnummer")]


def test_text_after_the_closing_boundary_is_read() -> None:
    # A signature a list program or a hand-made message writes after the last part.
    epilogue = f"Kim Personal\r\nbrukare {WRITTEN}\r\n"
    assert found(multipart(epilogue=epilogue)) == [("body:epilogue", "personnummer")]


def test_the_usual_preamble_has_nothing_to_find() -> None:
    assert found(multipart()) == []


# ---- transfer encodings as mail programs spell them -------------------------------------------------


def encoded_part(encoding: str, body: bytes) -> bytes:
    return (
        (
            HEAD + f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
        ).encode()
        + body
        + b"\r\n"
    )


LETTER = f"Brukaren med personnummer {WRITTEN} behöver hjälp.".encode()


@pytest.mark.parametrize("encoding", ["base64;", '"base64"', "base64 (kodad)", "Base64 "])
def test_base64_spelt_with_a_semicolon_quotes_or_a_comment_is_decoded(encoding: str) -> None:
    assert found(encoded_part(encoding, base64.encodebytes(LETTER))) == [("body:text/plain", "personnummer")]


@pytest.mark.parametrize("encoding", ["quoted-printable;", "quoted printable"])
def test_quoted_printable_spelt_oddly_is_decoded_and_a_soft_break_in_the_number_joined(encoding: str) -> None:
    at = LETTER.index(WRITTEN.encode()) + 5
    body = quopri.encodestring(LETTER[:at]) + b"=\r\n" + quopri.encodestring(LETTER[at:])
    assert found(encoded_part(encoding, body)) == [("body:text/plain", "personnummer")]


# ---- a text file sent inline ------------------------------------------------------------------------


LIST = f"Lista\r\nAnna {WRITTEN}\r\n"


@pytest.mark.parametrize(
    ("data", "charset"),
    [
        (LIST.encode("utf-16"), None),  # Excel's "Unicode text", Notepad's "Unicode"
        (LIST.encode("utf-16"), "us-ascii"),
        (LIST.encode("utf-16-le"), None),
        (b"\xfe\xff" + LIST.encode("utf-16-be"), "iso-8859-1"),
    ],
    ids=["utf-16, no charset", "utf-16, said ascii", "utf-16 le without a mark", "utf-16 be, said latin-1"],
)
def test_a_utf16_text_file_sent_inline_is_read_as_utf16(data: bytes, charset: str | None) -> None:
    # Apple Mail sends an attachment inline: the part is a body part with a file name.
    params = f"; charset={charset}" if charset else ""
    raw = (
        (
            HEAD
            + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
            f"Hej, listan.\r\n--b\r\nContent-Type: text/plain{params}; name=lista.txt\r\n"
            "Content-Disposition: inline; filename=lista.txt\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.encodebytes(data)
        + b"--b--\r\n"
    )
    assert found(raw) == [("body[2]:text/plain", "personnummer")]


# ---- files inside the text --------------------------------------------------------------------------


def uuencoded(data: bytes, name: str) -> str:
    lines = [f"begin 644 {name}"]
    lines += [binascii.b2a_uu(data[i : i + 45]).decode("ascii").rstrip("\n") for i in range(0, len(data), 45)]
    return "\r\n".join([*lines, "`", "end"]) + "\r\n"


def plain_mail(body: str) -> bytes:
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode("utf-8")


def test_a_file_uuencoded_into_a_plain_text_body_is_read() -> None:
    # As the `uuencode` command and older mail programs attach files; Thunderbird and Outlook show
    # such a block as an attachment.
    body = "Hej, listan nedan.\r\n\r\n" + uuencoded(LIST.encode("utf-8"), "lista.txt")
    assert found(plain_mail(body)) == [("body:text/plain/attachment:lista.txt", "personnummer")]


def test_begin_lines_without_an_end_read_nothing_more_and_cost_one_pass() -> None:
    body = "begin 644 lista.txt\r\n" * 5000 + "Kund 10234\r\n"
    assert found(plain_mail(body)) == []


def zipped(comment: bytes = b"", member_comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = zipfile.ZipInfo("lista.txt")
        info.comment = member_comment
        archive.writestr(info, "Kund 10234")
        archive.comment = comment
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("comment", "member_comment"),
    [(f"Brukare {WRITTEN}".encode(), b""), (b"", f"Brukare {WRITTEN}".encode("cp1252"))],
    ids=["the archive's", "a file's"],
)
def test_a_zip_comment_is_read(comment: bytes, member_comment: bytes) -> None:
    msg = EmailMessage()
    msg["From"] = "kim@hemtjanst.example"
    msg["To"] = "kollega@example.se"
    msg["Subject"] = "Lista"
    msg.set_content("Se bifogat arkiv.")
    msg.add_attachment(
        zipped(comment, member_comment), maintype="application", subtype="zip", filename="lista.zip"
    )
    assert found(msg.as_bytes()) == [("attachment:lista.zip/kommentar", "personnummer")]


def test_a_body_that_says_begin_without_a_uuencoded_file_is_read_as_text() -> None:
    assert found(plain_mail(f"Vi kan begin med brukaren {WRITTEN} i morgon.\r\n")) == [
        ("body:text/plain", "personnummer")
    ]
