"""Attachment extraction throughput: MB/s of attachment bytes per format, on files made here.

    python3 -m bench.extraction            # from the repository root; --help for the options

Each format gets a file of realistic shape (a care list, a plan of several pages, a scanned page),
made by the same libraries the tests use; `pdf-cut` is the plan cut off before its cross-reference
table (read by the second PDF reader). Timed: `gateway.attachments.extract` alone (the rules
engine is bench/engine.py's subject), the median of several runs. Printed per format: the file's
size, the text extracted, milliseconds per file, MB/s of attachment bytes and MB/s of text taken
out of them (packed formats hold far more text than bytes). Text recognition (PNG, GIF, WebP, PGM)
is one page per file: its MB/s says little (a PNG page is small and slow to read).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from gateway import attachments, mail
from gateway.extractors.base import Attachment, Extracted
from models.config import Limits

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
# Made-up rows: customer numbers and care notes, no identity numbers (only throughput is measured).
NOTE = "Kund {n}: morgonbesök, hjälp med dusch och frukost, läkemedel enligt lista, kundnummer {k}."


def lines(count: int) -> list[str]:
    return [NOTE.format(n=i, k=10_000 + i) for i in range(count)]


def make_txt(scale: int) -> bytes:
    return "\n".join(lines(200 * scale)).encode("utf-8")


def make_csv(scale: int) -> bytes:
    rows = [f"{10_000 + i};Kund {i};{i * 3.5:.1f};{1.2345e5 + i:.4E}" for i in range(500 * scale)]
    return ("kundnummer;namn;timmar;tal\n" + "\n".join(rows)).encode("cp1252")


def make_html(scale: int) -> bytes:
    body = "".join(
        f"<tr><td>{i}</td><td><b>{line}</b></td></tr>" for i, line in enumerate(lines(200 * scale))
    )
    return f"<html><body><table>{body}</table></body></html>".encode()


def make_xml(scale: int) -> bytes:
    from xml.etree import ElementTree

    root = ElementTree.Element("lista")
    for i, line in enumerate(lines(200 * scale)):
        ElementTree.SubElement(root, "kund", kundnummer=str(10_000 + i)).text = line
    return ElementTree.tostring(root, encoding="utf-8")


def make_pdf(scale: int) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4)
    for number, line in enumerate(lines(40 * 10 * scale)):
        page.drawString(50, 800 - (number % 40) * 19, line)
        if number % 40 == 39:
            page.showPage()
    page.save()
    return buffer.getvalue()


def make_docx(scale: int) -> bytes:
    import docx

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "Genomförandeplan"
    for line in lines(200 * scale):
        document.add_paragraph(line)
    table = document.add_table(rows=50, cols=3)
    for r in range(50):
        for c in range(3):
            table.cell(r, c).text = f"{r}:{c}"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def make_xlsx(scale: int) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for i in range(500 * scale):
        sheet.append([10_000 + i, f"Kund {i}", i * 3.5, "morgonbesök"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def make_xls(scale: int) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Blad1")
    for i in range(500 * scale):
        for c, value in enumerate((10_000 + i, f"Kund {i}", i * 3.5, "morgonbesök")):
            sheet.write(i, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def make_odt(scale: int) -> bytes:
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    document = OpenDocumentText()
    for line in lines(200 * scale):
        document.text.addElement(P(text=line))
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def make_ods(scale: int) -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    table = Table(name="Blad1")
    for i in range(500 * scale):
        row = TableRow()
        number = TableCell(valuetype="float", value=10_000 + i)
        number.addElement(P(text=str(10_000 + i)))
        row.addElement(number)
        text = TableCell(valuetype="string")
        text.addElement(P(text=f"Kund {i}, morgonbesök"))
        row.addElement(text)
        table.addElement(row)
    document.spreadsheet.addElement(table)
    buffer = io.BytesIO()
    document.write(buffer)
    return buffer.getvalue()


def make_rtf(scale: int) -> bytes:
    # No library here writes RTF; the body is RTF's plainest form around the same lines.
    body = "\\par\n".join(lines(200 * scale))
    return ("{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Arial;}}\\f0\\fs20 " + body + "}").encode(
        "cp1252"
    )


def make_zip(scale: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(10):
            archive.writestr(f"lista{i}.csv", make_csv(scale))
        archive.writestr("inre.zip", make_zip_inner(scale))
    return buffer.getvalue()


def make_zip_inner(scale: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("plan.txt", make_txt(scale))
    return buffer.getvalue()


def make_eml(scale: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = "kollega@hemtjanst.example"
    msg["Subject"] = "Vidarebefordrat"
    msg.set_content("\n".join(lines(100 * scale)))
    msg.add_attachment(make_csv(scale), maintype="text", subtype="csv", filename="lista.csv")
    return msg.as_bytes()


def make_ics(scale: int) -> bytes:
    events = [
        f"BEGIN:VEVENT\r\nUID:{i}@hemtjanst.example\r\nSUMMARY:Besök {i}\r\nDESCRIPTION:{line}\r\nEND:VEVENT"
        for i, line in enumerate(lines(100 * scale))
    ]
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n" + "\r\n".join(events) + "\r\nEND:VCALENDAR\r\n").encode()


def make_vcf(scale: int) -> bytes:
    cards = [
        f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Kontakt {i}\r\nNOTE:{line}\r\nEND:VCARD"
        for i, line in enumerate(lines(100 * scale))
    ]
    return ("\r\n".join(cards) + "\r\n").encode()


def make_damaged_pdf(scale: int) -> bytes:
    """The plan cut off before its cross-reference table, as in a broken transfer: pypdf refuses
    it, and the second reader (PDFium) reads it."""
    whole = make_pdf(scale)
    return whole[: whole.rindex(b"\nxref") + 1]


def scanned_page(fmt: str, mode: str = "L") -> bytes:
    from PIL import Image, ImageDraw, ImageFont

    page = Image.new("L", (1654, 2339), "white")  # A4 at 200 dpi
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(str(FONT), 28)
    for number, line in enumerate(lines(30)):
        draw.text((80, 100 + number * 60), line, font=font, fill="black")
    buffer = io.BytesIO()
    page.convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def make_png(scale: int) -> bytes:
    return scanned_page("PNG")


def make_gif(scale: int) -> bytes:
    return scanned_page("GIF")


def make_webp(scale: int) -> bytes:
    return scanned_page("WEBP", "RGB")


def make_pgm(scale: int) -> bytes:
    return scanned_page("PPM")  # netpbm: a grey picture is written as PGM (P5)


def make_msg(scale: int) -> bytes:
    return (Path(__file__).resolve().parents[1] / "tests" / "gateway" / "data" / "outer.msg").read_bytes()


# name, maker; the scale makes text formats some 100 kB to 1 MB.
FORMATS: list[tuple[str, Callable[[int], bytes]]] = [
    ("plan.txt", make_txt),
    ("lista.csv", make_csv),
    ("sida.html", make_html),
    ("lista.xml", make_xml),
    ("plan.rtf", make_rtf),
    ("plan.pdf", make_pdf),
    ("trasig.pdf", make_damaged_pdf),
    ("plan.docx", make_docx),
    ("lista.xlsx", make_xlsx),
    ("lista.xls", make_xls),
    ("plan.odt", make_odt),
    ("lista.ods", make_ods),
    ("arkiv.zip", make_zip),
    ("vidare.eml", make_eml),
    ("vidare.msg", make_msg),
    ("kallelse.ics", make_ics),
    ("kontakter.vcf", make_vcf),
    ("skannad.png", make_png),
    ("skannad.gif", make_gif),
    ("skannad.webp", make_webp),
    ("skannad.pgm", make_pgm),
]
# Pictures: read by text recognition, one page each, timed once (it takes seconds).
PICTURES = (".png", ".gif", ".webp", ".pgm")
# Names that are not a format of their own: shown with what they are.
KINDS = {"trasig.pdf": "pdf-cut"}


def time_extract(name: str, data: bytes, runs: int) -> tuple[float, int, int]:
    """Median seconds per file, characters of text extracted, unscanned entries."""
    limits = Limits()
    times: list[float] = []
    chars = unscanned = 0
    for _ in range(runs):
        out = Extracted(read_message=mail.read_message)  # as the walk gives it: .eml files are read
        started = time.perf_counter()
        attachments.extract(
            Attachment(
                part=f"attachment:{name}",
                name=name,
                content_type="application/octet-stream",
                data=data,
                charset=None,
                depth=1,
            ),
            out,
            limits,
        )
        times.append(time.perf_counter() - started)
        chars = sum(len(s.text) for s in out.segments)
        unscanned = len(out.unscanned)
    return statistics.median(times), chars, unscanned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=5, help="size of the generated files (default 5)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per format; the median is shown")
    parser.add_argument("--only", nargs="*", help="formats to run, by file name (e.g. lista.xlsx)")
    args = parser.parse_args()
    print(
        f"{'format':<8} {'bytes':>8} {'text chars':>10} {'ms/file':>9} {'file MB/s':>9} {'text MB/s':>9}  note"
    )
    for name, make in FORMATS:
        if args.only and name not in args.only:
            continue
        data = make(args.scale)
        runs = 1 if name.endswith(PICTURES) else args.runs
        seconds, chars, unscanned = time_extract(name, data, runs)
        note = "text recognition, 1 A4 page at 200 dpi" if name.endswith(PICTURES) else ""
        if unscanned:
            note = f"UNSCANNED: {unscanned}"
        kind = KINDS.get(name, name.rsplit(".", 1)[1])
        file_rate, text_rate = len(data) / seconds / 1e6, chars / seconds / 1e6
        print(
            f"{kind:<8} {len(data):>8} {chars:>10} {seconds * 1000:>9.1f} {file_rate:>9.2f} {text_rate:>9.2f}  {note}"
        )


if __name__ == "__main__":
    main()
