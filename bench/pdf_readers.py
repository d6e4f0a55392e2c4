"""Which PDF reader reads damaged files: pypdf, pdfminer.six and pypdfium2 on the same damaged PDFs.

    python3 -m bench.pdf_readers            # from the repository root; pdfminer.six: pip install '.[bench]'

The measurement behind gateway/extractors/pdf.py's choice of its second reader. Files: 10-page
plans by reportlab (compressed and not), a test number on page 1, damaged as files get damaged:
the tail cut off at several points, a wrong stream length, junk before the header. Printed per
file and reader: whether the number was found, and milliseconds per file (median of the runs).
The "+trailer" columns retry a refused file with a trailer naming its catalog; the last column is
the gateway's own path for a file pypdf refuses.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import re
import statistics
import time
import warnings
from collections.abc import Callable

from bench.corpus import TEST_DATA
from gateway.extractors import pdf

# A Skatteverket test number, typed into page 1 of every file.
NUMBER = next(
    p
    for p in json.loads(
        (TEST_DATA / "personnummer" / "skatteverket_test_numbers_sample.json").read_text("utf-8")
    )["personnummer"]
    if p.startswith("194")
)
TYPED = f"{NUMBER[:8]}-{NUMBER[8:]}"


def plan(compressed: bool) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, pageCompression=int(compressed))
    for number in range(10):
        if number == 0:
            page.drawString(50, 30, f"Personnummer {TYPED}")
        for line in range(40):
            page.drawString(
                50, 800 - line * 19, f"Kund {line}: morgonbesök, hjälp med dusch, kundnummer 10234."
            )
        page.showPage()
    page.save()
    return buffer.getvalue()


def damaged_files() -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    for compressed in (False, True):
        kind = "packad" if compressed else "opackad"
        whole = plan(compressed)
        files.append((f"{kind} hel", whole))
        for share in (0.5, 0.75, 0.9, 0.99):
            files.append((f"{kind} avkortad {share:.0%}", whole[: int(len(whole) * share)]))
        files.append((f"{kind} utan xref", whole[: whole.rindex(b"\nxref") + 1]))
        wrong = re.sub(rb"/Length (\d+)", lambda m: b"/Length %d" % (int(m.group(1)) + 37), whole)
        files.append((f"{kind} fel /Length", wrong))
        files.append((f"{kind} skräp först", b"\x00\x01JUNK" * 50 + b"\r\n" + whole))
    return files


def with_pypdf(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data), strict=False).pages)


def with_pdfminer(data: bytes) -> str:
    from pdfminer.high_level import extract_text

    return str(extract_text(io.BytesIO(data)))


def with_pdfium(data: bytes) -> str:
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        texts = []
        for index in range(len(document)):
            page = document[index]
            textpage = page.get_textpage()
            texts.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return "\n".join(texts)
    finally:
        document.close()


def with_trailer(read: Callable[[bytes], str]) -> Callable[[bytes], str]:
    """The reader, and on its failure the reader again with a trailer naming the catalog."""

    def reading(data: bytes) -> str:
        try:
            return read(data)
        except ImportError:
            raise
        except Exception:
            return read(data + pdf._catalog_trailer(data))

    return reading


READERS: list[tuple[str, Callable[[bytes], str]]] = [
    ("pypdf", with_pypdf),
    ("pdfminer.six", with_pdfminer),
    ("pypdfium2", with_pdfium),
    ("pdfminer.six+trailer", with_trailer(with_pdfminer)),
    ("pypdfium2+trailer", with_trailer(with_pdfium)),
]


def measure(read: Callable[[bytes], str], data: bytes, runs: int) -> str:
    try:
        text = read(data)
    except ImportError:
        return "not installed"
    except Exception as e:
        return f"fails ({type(e).__name__})"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        read(data)
        times.append(time.perf_counter() - started)
    return f"{'found' if TYPED in text else 'MISSED'} {statistics.median(times) * 1000:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per file and reader (median shown)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the readers' complaints about the damage
    warnings.simplefilter("ignore")
    print(f"{'file':<24}" + "".join(f"{name:>24}" for name, _ in READERS))
    for name, data in damaged_files():
        print(f"{name:<24}" + "".join(f"{measure(read, data, args.runs):>24}" for _, read in READERS))


if __name__ == "__main__":
    main()
