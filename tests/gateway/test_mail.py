"""A number hidden in any MIME corner is found; machine headers are not read; nothing is dropped."""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import getaddresses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import mail
from models.config import Limits
from rules.engine import ScanContext, scan
from tests.conftest import TEST_KEY, TODAY

PNR = "199001079806"  # Skatteverket test number
SHORT = "900107-9806"
CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
LIMITS = Limits()

HEAD = "From: Anna Ek <anna@kommun.se>\r\nTo: Bo <bo@extern.se>\r\nSubject: Veckoplanering\r\n"


def found_in(raw: bytes) -> list[tuple[str, str]]:
    text = mail.extract(raw, LIMITS)
    return [(f.location.part, f.kind) for f in scan(text.segments, CTX)]


def raw_message(headers: str, body: str) -> bytes:
    return (HEAD + headers + "\r\n" + body).encode("latin-1")


def test_quoted_printable_soft_break_inside_the_number() -> None:
    raw = raw_message(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
        "Hej, brukaren har pnr 900107-98=\r\n06 och beh=C3=B6ver hj=C3=A4lp.\r\n",
    )
    assert found_in(raw) == [("body:text/plain", "personnummer")]


def test_html_split_across_tags_and_written_as_character_references() -> None:
    html = "<p>Brukaren: 9001<b>07</b>&#45;98<span style='x'>&#48;6</span></p><style>.yiv8226486287{}</style>"
    msg = MIMEText(html, "html", "utf-8")
    msg["Subject"] = "Plan"
    assert found_in(msg.as_bytes()) == [("body:text/html", "personnummer")]


def test_html_table_cells_are_not_run_together() -> None:
    html = "<table><tr><td>1990</td><td>0107</td><td>9806</td></tr></table>"
    assert found_in(MIMEText(html, "html", "utf-8").as_bytes()) == []


def test_rfc2047_encoded_subject() -> None:
    encoded = base64.b64encode(f"Angående {SHORT}".encode()).decode()
    raw = (f"From: a@kommun.se\r\nTo: b@extern.se\r\nSubject: =?utf-8?b?{encoded}?=\r\n\r\nHej\r\n").encode()
    assert found_in(raw) == [("header:Subject", "personnummer")]


def test_display_name_in_from_and_cc() -> None:
    raw = (
        f'From: "Brukare {SHORT}" <anna@kommun.se>\r\nTo: b@extern.se\r\n'
        f"Cc: =?iso-8859-1?q?Anh=F6rig_{PNR}?= <c@extern.se>\r\nSubject: Hej\r\n\r\nHej\r\n"
    ).encode()
    assert sorted(found_in(raw)) == [("header:Cc", "personnummer"), ("header:From", "personnummer")]


def test_machine_headers_are_never_read() -> None:
    raw = (
        f"Received: from x by y id {PNR}; Thu, 26 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{PNR}@mail.kommun.se>\r\nX-Queue-Id: {SHORT}\r\n"
        f"DKIM-Signature: v=1; b={PNR}\r\nARC-Seal: i=1; b={PNR}\r\n"
        "From: a@kommun.se\r\nTo: b@extern.se\r\nSubject: Hej\r\n\r\nInget här.\r\n"
    ).encode()
    assert found_in(raw) == []


def test_forwarded_message_inside_a_message() -> None:
    inner = EmailMessage()
    inner["From"] = "c@kommun.se"
    inner["Subject"] = "Original"
    inner.set_content(f"Brukarens nummer: {SHORT}")
    outer = EmailMessage()
    outer["From"] = "a@kommun.se"
    outer["Subject"] = "Fwd: Original"
    outer.set_content("Se nedan.")
    outer.add_attachment(inner)
    assert found_in(outer.as_bytes()) == [("message/body:text/plain", "personnummer")]


def test_doubly_forwarded_message() -> None:
    inner = EmailMessage()
    inner["Subject"] = f"Om {SHORT}"
    inner.set_content("hej")
    middle = EmailMessage()
    middle["Subject"] = "Fwd"
    middle.set_content("se bifogat")
    middle.add_attachment(inner)
    outer = EmailMessage()
    outer["Subject"] = "Fwd: Fwd"
    outer.set_content("se bifogat")
    outer.add_attachment(middle)
    assert found_in(outer.as_bytes()) == [("message/message/header:Subject", "personnummer")]


def test_attachment_file_name_even_rfc2231_encoded() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Lista"
    msg.set_content("Bifogar listan.")
    msg.add_attachment(b"inget", maintype="text", subtype="plain", filename=f"brukare_{PNR}_åtgärd.txt")
    parts = found_in(msg.as_bytes())
    assert ("filename", "personnummer") in parts


def test_csv_attachment_in_cp1252() -> None:
    msg = EmailMessage()
    msg["Subject"] = "Lista"
    msg.set_content("Bifogar listan.")
    csv = f"namn;pnr;insats\r\nÅsa Öberg;{SHORT};städ\r\n".encode("cp1252")
    msg.add_attachment(csv, maintype="text", subtype="csv", filename="lista.csv")
    assert found_in(msg.as_bytes()) == [("attachment:lista.csv", "personnummer")]


def test_octet_stream_with_a_txt_name_is_read_as_text() -> None:
    msg = MIMEMultipart()
    msg.attach(MIMEText("Hej", "plain", "utf-8"))
    part = MIMEApplication(f"pnr {SHORT}".encode(), "octet-stream")
    part.add_header("Content-Disposition", "attachment", filename="anteckning.txt")
    msg.attach(part)
    assert found_in(msg.as_bytes()) == [("attachment:anteckning.txt", "personnummer")]


@pytest.mark.parametrize(
    ("declared", "encoding"),
    [
        ("windows-1252", "cp1252"),
        ("iso-8859-1", "latin-1"),
        ("utf-8", "cp1252"),
        ("x-unknown-charset", "cp1252"),
        (None, "latin-1"),
    ],
)
def test_bodies_in_any_charset_even_a_wrong_or_missing_one(declared: str | None, encoding: str) -> None:
    ctype = f"text/plain; charset={declared}" if declared else "text/plain"
    body = f"Hälsningar från hemtjänsten: brukaren {SHORT} är åter hemma.\r\n"
    raw = (HEAD + f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n").encode() + body.encode(
        encoding
    )
    assert found_in(raw) == [("body:text/plain", "personnummer")]


def test_fullwidth_digits_and_zero_width_characters_in_the_body() -> None:
    body = "Brukaren １９９００１０７\u200b-9806 och 9001\u200c07\u00ad-9806"
    msg = MIMEText(body, "plain", "utf-8")
    assert found_in(msg.as_bytes()) == [("body:text/plain", "personnummer")] * 2


def test_missing_boundary_is_still_read() -> None:
    b64 = base64.b64encode(f"Brukare {SHORT}".encode()).decode()
    raw = raw_message(
        'Content-Type: multipart/mixed; boundary="abc"\r\n',
        "--wrong\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{b64}\r\n--wrong--\r\n",
    )
    assert ("body:text/plain", "personnummer") in found_in(raw)


def test_bad_base64_is_decoded_as_far_as_it_goes() -> None:
    b64 = base64.b64encode(f"Brukare {SHORT} behöver hjälp".encode()).decode()
    raw = raw_message(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n",
        b64[:-3] + "!!*\r\n",
    )
    assert found_in(raw) == [("body:text/plain", "personnummer")]


def test_undeclared_eight_bit_in_headers_and_body() -> None:
    raw = (f"From: Åsa <a@kommun.se>\r\nSubject: Ärende {SHORT}\r\n\r\nBrukaren {PNR} mår bra.\r\n").encode(
        "cp1252"
    )
    assert sorted(found_in(raw)) == [("body:text/plain", "personnummer"), ("header:Subject", "personnummer")]


def test_unsupported_attachment_is_listed_never_skipped() -> None:
    msg = EmailMessage()
    msg.set_content("Se bilaga.")
    msg.add_attachment(b"\x00\x01binary", maintype="application", subtype="x-unknown", filename="data.bin")
    text = mail.extract(msg.as_bytes(), LIMITS)
    assert [(u.name, u.content_type) for u in text.unscanned] == [
        ("attachment:data.bin", "application/x-unknown")
    ]


def test_too_deep_nesting_is_unscanned_not_ignored() -> None:
    msg = MIMEText("innerst", "plain", "utf-8")
    for _ in range(5):
        outer = MIMEMultipart()
        outer.attach(msg)
        msg = outer
    text = mail.extract(msg.as_bytes(), Limits(max_mime_depth=3))
    assert text.unscanned and "nested" in text.unscanned[0].reason


def test_clean_message_with_customer_numbers_phones_and_dates_has_no_finding() -> None:
    body = (
        "Hej!\r\nKund 10234 och kund 20511 behöver nya insatser från 2026-12-01.\r\n"
        "Ring mig på 070-174 06 05 eller 08-465 004 10. Mötet 2026-11-30 kl 14:30.\r\n"
        "Faktura 4711, OCR 9001079806, bankgiro 5050-1055. Org.nr 556036-0793.\r\n"
    )
    assert found_in(MIMEText(body, "plain", "utf-8").as_bytes()) == []


def test_addresses_for_the_policy() -> None:
    raw = b"From: Anna <ANNA@kommun.se>\r\nTo: a@x.se, B <b@y.se>\r\nCc: c@z.se\r\nSubject: Hej\r\n\r\nx"
    text = mail.extract(raw, LIMITS)
    assert text.from_address == "ANNA@kommun.se"
    assert text.recipients == ("a@x.se", "b@y.se", "c@z.se")


@pytest.mark.parametrize(
    ("head", "is_mail"),
    [
        (b"From: a@b.se\nSubject: x\n\nbody", True),
        (b"Received: from x\n\tby y\nFrom: a@b.se\n\nbody", True),
        (b"From sender@x Thu Nov 26 10:00:00 2026\nFrom: a@b.se\n\nbody", True),
        (b"Hej: det h\xc3\xa4r \xc3\xa4r en anteckning\n", False),
        (b"Brukaren 900107-9806\n", False),
        (b"Subject: only a subject line\nand then prose\n", False),
    ],
)
def test_what_counts_as_a_mail_message(head: bytes, is_mail: bool) -> None:
    assert mail.looks_like_mail(head) is is_mail


# ---------------------------------------------------------------- parsing a single-part body whole


def _compat32(raw: bytes) -> email.message.Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def _shape(msg: email.message.Message) -> object:
    payload = msg.get_payload()
    inner = [_shape(m) for m in payload] if isinstance(payload, list) else payload
    return (list(msg.raw_items()), inner, [type(d).__name__ for d in msg.defects])


# Lines a message may be made of, well formed or not, for the property test below.
FRAGMENTS = (
    b"From: a@b.se\r\n",
    b"Subject: tv\xe5\r\n",
    b"Content-Type: text/plain\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"  folded\r\n",
    b"not a header\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b"--b\r\n",
    b"--b--\r\n",
    b"text \xc3\xa5\r\n",
    b"X: y\n",
    b"Content-Type: text/html; charset=utf-8\r\n",
    b"From x@y.se Thu Nov 26 10:00:00 2026\r\n",
    b"To:\r\n",
    b":no name\r\n",
    b"\tfolded with a tab\r\n",
    b"B\xe5d: 8-bit name\r\n",
    b"Cc: c@d.se\n",
)

PARSE_CASES = [
    HEAD.encode() + b"\r\nHej!\r\nRad tv\xc3\xa5 med 8 bitar.\r\n\r\nStycke.\r\n",
    HEAD.encode() + b"Content-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nJVBERi0=\r\n",
    HEAD.encode() + b"Subject: tv\xe5\r\n\r\nkropp utan radslut",
    HEAD.encode() + b"inte en rubrik\r\n\r\nkropp\r\n",  # no blank line before the body
    HEAD.encode() + b"X-Vikt: a\r\n  fortsatt rad\r\n\r\nkropp\r\n",
    b"From: a@b.se\nTo: c@d.se\n\nLF only\r\n\r\nthen CRLF\r\n",
    b"From: a@b.se\nSubject: tv\xe5\n\nHej!\nRad tv\xc3\xa5.\n\nStycke.\n",  # a file on disk: LF only
    b"From: a@b.se\r\nX: y\n\nbody\r\n\r\nmore\r\n",
    b"From: a@b.se\n  folded\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nett\n--b--\n",
    b"From: a@b.se\r\n\r\n",
    b"\r\n\r\nbody without headers\r\n",
    HEAD.encode() + b"Content-Type: message/rfc822\r\n\r\nFrom: x@y.se\r\n\r\ninner\r\n",
    HEAD.encode()
    + b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nAction: failed\r\n",
    HEAD.encode() + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nett\r\n--b--\r\n',
    HEAD.encode() + b"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n",
    HEAD.encode() + b"Content-Type: text/plain\r\nContent-Type: multipart/mixed\r\n\r\ntwo types\r\n",
    HEAD.encode() + b"Content-Type: bogus\r\n\r\nsomething\r\n",
]


@pytest.mark.parametrize("raw", PARSE_CASES)
def test_parse_gives_what_the_compat32_parser_gives(raw: bytes) -> None:
    assert _shape(mail.parse(raw)) == _shape(_compat32(raw))
    assert mail.parse(raw).as_bytes() == _compat32(raw).as_bytes()


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_parse_gives_what_the_compat32_parser_gives_for_any_mix_of_lines(parts: list[bytes]) -> None:
    raw = b"".join(parts)
    assert _shape(mail.parse(raw)) == _shape(_compat32(raw))


# ---------------------------------------------------------------- each header looked up and parsed once

HEADER_CASES = PARSE_CASES + [
    HEAD.encode()
    + b"Content-Type: text/plain; charset=\"ISO-8859-1\"; name*=utf-8''r%C3%A5d.txt\r\n\r\nx\r\n",
    HEAD.encode() + b"Content-Type: application/pdf\r\nContent-Disposition: attachment;\r\n"
    b' filename="=?utf-8?q?Pl=C3=A5n.pdf?="\r\n\r\nx\r\n',
    HEAD.encode() + b"Content-Type: text/plain; charset=tv\xe5\r\n\r\n8-bit parameter\r\n",
    HEAD.encode() + b"CONTENT-TYPE: Text/HTML; Charset=UTF-8\r\ncontent-type: text/plain\r\n\r\nx\r\n",
]


def _answers(msg: email.message.Message) -> object:
    msg.get_content_type()  # asked twice: the second answer may come from memory
    return (
        msg.get_content_type(),
        msg.get_content_charset(),
        msg.get_filename(),
        msg.get_param("name"),
        msg.get_params(),
        msg.get_boundary(),
        str(msg.get("Content-Transfer-Encoding")),
        "content-type" in msg,
        "x-not-there" in msg,
        msg.get("X-Not-There", "missing"),
    )


@pytest.mark.parametrize("raw", HEADER_CASES)
def test_header_answers_are_those_of_the_compat32_message(raw: bytes) -> None:
    msg = mail.parse(raw)
    assert _answers(msg) == _answers(_compat32(raw))
    assert _answers(msg) == _answers(_compat32(raw))  # asked again: the same, not a used-up list


def test_a_changed_header_is_read_afresh() -> None:
    msg = mail.parse(HEAD.encode() + b"Content-Type: text/plain; charset=utf-8\r\n\r\nx\r\n")
    assert (msg.get_content_type(), msg.get_content_charset()) == ("text/plain", "utf-8")
    msg.set_param("charset", "iso-8859-1")
    assert msg.get_content_charset() == "iso-8859-1"
    msg.replace_header("Content-Type", "text/html")
    assert msg.get_content_type() == "text/html"
    del msg["Subject"]
    assert msg.get("Subject") is None and "Subject" not in msg
    msg["Subject"] = "ny"
    msg.add_header("Content-Disposition", "attachment", filename="a.txt")
    assert (msg["Subject"], msg.get_filename()) == ("ny", "a.txt")
    digest_part = mail.parse(b"Subject: utan typ\r\n\r\nx\r\n")
    assert digest_part.get_content_type() == "text/plain"
    digest_part.set_default_type("message/rfc822")  # as a part of multipart/digest has
    assert digest_part.get_content_type() == "message/rfc822"
    multipart = mail.parse(
        HEAD.encode() + b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nett\r\n--b--\r\n'
    )
    assert multipart.get_boundary() == "b"
    multipart.set_boundary("c")
    assert multipart.get_boundary() == "c"


# ---------------------------------------------------------------- address headers

ADDRESS_VALUES = [
    "Anna Lind <anna.lind@kommun.se>",
    "anna@kommun.se",
    "  Anna   Lind \t <a@b.se> ",
    "Åsa Öberg <asa.oberg@x.se>",
    "Anna L. Lind <a@b.se>",
    "O'Neil <o.neil@x.se>",
    "Anna-Karin Ek <ak@x.se>",
    "Anna Lind<a@b.se>",
    "<a@b.se>",
    "a.b+c@d-e.se",
    '"Lind, Anna" <a@b.se>',
    "a@b.se, c@d.se",
    "Anna (hemtjänst) <a@b.se>",
    "grupp: a@b.se;",
    "Anna <a@@b.se>",
    "Anna <a@b.se> x",
    "Anna <a..b@c.se>",
    "Anna_ <a@b.se>",
    "anna@b.se.",
    "",
]


@pytest.mark.parametrize("value", ADDRESS_VALUES)
def test_address_pairs_are_those_of_getaddresses(value: str) -> None:
    assert mail.parse_addresses([value]) == getaddresses([value])


@given(st.text(alphabet="aAåÖ1 .'-_<>@\"(),;:\t\\[]", max_size=30))
def test_address_pairs_are_those_of_getaddresses_for_any_value(value: str) -> None:
    assert mail.parse_addresses([value]) == getaddresses([value])


@pytest.mark.parametrize(
    "encoding", ["", "7bit", "8BIT", "binary", "base64", "base64 ", "Quoted-Printable", "x-uuencode", "bogus"]
)
def test_a_body_kept_as_bytes_decodes_as_the_compat32_payload(encoding: str) -> None:
    cte = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    raw = (HEAD + cte).encode() + b"\r\nSGVqIHR2w6U=\r\nRad tv\xc3\xa5 =C3=A5 med 8 bitar.\r\n"
    kept = mail.parse(raw)
    assert mail._Walker.payload_bytes(kept) == mail._Walker.payload_bytes(_compat32(raw))
    assert kept.get_payload() == _compat32(raw).get_payload()  # and as text, when asked
    assert kept.get_payload(decode=True) == _compat32(raw).get_payload(decode=True)


# ---- a message/* part in a transfer encoding: its body, not a message (tests/gateway/test_forwarded.py)


def test_an_encoded_message_part_is_held_as_its_encoded_body_where_compat32_parses_the_encoding() -> None:
    inner = f"From: c@kommun.se\r\nSubject: Original\r\n\r\nNummer {SHORT}\r\n".encode()
    raw = (
        (
            HEAD + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        ).encode()
        + base64.encodebytes(inner).replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    [ours] = mail.parse(raw).get_payload()
    [theirs] = _compat32(raw).get_payload()
    assert ours.get_content_type() == theirs.get_content_type() == "message/rfc822"
    assert isinstance(theirs.get_payload(), list)  # compat32: a headerless "message" of base64 text
    assert ours.get_payload(decode=True) == inner  # here: the body, decoded to the message it is
    assert found_in(raw) == [("message/body:text/plain", "personnummer")]


def test_a_message_part_without_a_transfer_encoding_is_parsed_as_compat32_parses_it() -> None:
    raw = (
        HEAD.encode()
        + b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nFrom: x@y.se\r\n\r\ninner\r\n"
    )
    assert _shape(mail.parse(raw)) == _shape(_compat32(raw))


def test_a_message_inside_an_attachment_needs_the_mail_walk_and_is_never_skipped_without_it() -> None:
    # The extractors sit below mail parsing: an .eml inside a zip is read through the callback that
    # the walk gives them (Extracted.read_message), never by importing gateway.mail.
    from gateway import attachments
    from gateway.extractors.base import Attachment, Extracted

    eml = f"From: c@kommun.se\r\nSubject: Hej\r\n\r\nNummer {SHORT}\r\n".encode()
    att = Attachment(
        part="attachment:vidare.eml",
        name="vidare.eml",
        content_type="message/rfc822",
        data=eml,
        charset=None,
        depth=1,
    )
    alone = Extracted()
    attachments.extract(att, alone, LIMITS)
    assert alone.segments == [] and [u.name for u in alone.unscanned] == ["attachment:vidare.eml"]
    walked = Extracted(read_message=mail.read_message)
    attachments.extract(att, walked, LIMITS)
    assert walked.unscanned == []
    assert [(f.location.part, f.kind) for f in scan(walked.segments, CTX)] == [
        ("attachment:vidare.eml/body:text/plain", "personnummer")
    ]


def test_a_from_header_nested_past_the_parsers_recursion_is_read_raw_and_names_no_sender() -> None:
    # As in MimeKit's stack-overflow test message: comments thousands deep in From.
    crafted = "(" * 5000 + f"brukare {PNR}" + ")" * 5000 + " <a@kommun.example>"
    raw = f"From: {crafted}\r\nTo: b@example.se\r\nSubject: x\r\n\r\nhej\r\n".encode()
    text = mail.extract(raw, LIMITS)
    assert text.from_address is None  # the policy trusts no sender it could not read
    assert text.unscanned == []
    assert any(PNR in s.text for s in text.segments if s.part == "header:From")
