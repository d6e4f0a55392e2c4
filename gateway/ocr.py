"""Text recognition (Tesseract, Swedish) for scanned pages and photographed documents, within time limits."""

from __future__ import annotations

import hashlib
import os
import re
import time
from typing import TYPE_CHECKING

from gateway.extractors.base import Extracted, Unreadable
from models.config import Limits

if TYPE_CHECKING:
    from PIL.Image import Image

LANGUAGE = "swe"
# Smaller than this on either side: a bullet or a line, nothing a person could read a number in.
MIN_SIDE_PIXELS = 16
# Very small pictures (a cropped phone photo of one line) are enlarged to this height; larger ones are
# left alone: resampling a clean scan makes Tesseract misread digits (91380 for 9180).
MIN_OCR_HEIGHT = 300
MAX_UPSCALE = 3
# Larger scans (600 dpi) are reduced to A4 at 300 dpi: as readable, and Tesseract takes a quarter.
MAX_OCR_SIDE = 3508
# Tesseract's OpenMP threads fight each other on a busy machine: one thread per page read was 7x
# faster than the default here (4 s against 28 s for an A4 page, 2 cores under load).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
# Digit groups that recognition split with a space (1945 0312-1234), a dash or plus allowed once.
_SPLIT_RUN = re.compile(r"(?<![\d-])\d+(?: \d+)*(?:[-+]\d+(?: \d+)*)?(?![\d-])")


def recognize(image: Image, out: Extracted, limits: Limits, cache: dict[str, str] | None = None) -> str:
    """The text Tesseract reads in the image; raises Unreadable when it cannot within the limits."""
    import pytesseract

    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise Unreadable(f"bilden ({width}x{height}) är större än {limits.max_image_pixels} pixlar")
    if min(width, height) < MIN_SIDE_PIXELS:
        return ""
    image = _prepared(image)
    key = hashlib.sha1(image.tobytes()).hexdigest() if cache is not None else ""
    if cache is not None and key in cache:
        return cache[key]  # the same logo on every page is read once
    budget = min(limits.ocr_budget_seconds - out.ocr_seconds, out.seconds_left(limits))
    if budget <= 0:
        raise Unreadable(f"textigenkänningen behöver mer än {limits.ocr_budget_seconds:g} s")
    timeout = min(limits.ocr_timeout_seconds, budget)
    started = time.monotonic()
    try:
        text = pytesseract.image_to_string(image, lang=LANGUAGE, timeout=timeout)
    except pytesseract.TesseractNotFoundError:
        raise Unreadable("textigenkänning (tesseract) saknas på servern") from None
    except RuntimeError as e:  # pytesseract's word for its timeout
        if "timeout" in str(e).lower():
            raise Unreadable(f"textigenkänningen tog längre än {timeout:g} s") from None
        raise
    except pytesseract.TesseractError as e:
        raise Unreadable(f"textigenkänningen misslyckades (status {e.status})") from None
    finally:
        out.ocr_seconds += time.monotonic() - started
    text = with_joined_digits(text)
    if cache is not None:
        cache[key] = text
    return text


def with_joined_digits(text: str) -> str:
    """Recognition reads a typed 19450312-1234 now and then as 1945 0312-1234: a run of digit
    groups that joined would have a personnummer's length (12 digits, or 10 not starting with 0,
    which a Swedish phone number does) is added, joined, on a line after its own."""
    lines: list[str] = []
    for line in text.splitlines():
        lines.append(line)
        joined = [
            run.replace(" ", "")
            for run in (m.group(0) for m in _SPLIT_RUN.finditer(line))
            if " " in run and _identity_length(run.replace(" ", ""))
        ]
        if joined:
            lines.append(" ".join(joined))
    return "\n".join(lines)


def _identity_length(run: str) -> bool:
    digits = run.replace("-", "").replace("+", "")
    return len(digits) == 12 or (len(digits) == 10 and not digits.startswith("0"))


# Modes with more than 8 bits a sample (16-bit PNG, TIFF and PGM; float TIFF): converting them to grey
# clips every value above 255 to white, so they are scaled to their own range first.
WIDE_MODES = frozenset(("I", "I;16", "I;16L", "I;16B", "I;16N", "F"))


def _prepared(image: Image) -> Image:
    """Grey on white, and small scans enlarged: Tesseract misreads digits a few pixels high."""
    from PIL import Image as PILImage

    if image.mode in WIDE_MODES:
        image = image.convert("I") if image.mode.startswith("I;16") else image
        low, high = image.getextrema()
        image = image.point(lambda v: (v - low) * (255 / ((high - low) or 1))).convert("L")  # type: ignore[operator]
    if image.mode not in ("L", "1") or "transparency" in image.info:
        # A transparent background (a GIF's, a PNG's) is white, as a mail program shows it; left to
        # pytesseract, it is saved with the picture and Tesseract reads it as black.
        if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
            image = image.convert("RGBA")
            background = PILImage.new("RGBA", image.size, "white")
            image = PILImage.alpha_composite(background, image)
        image = image.convert("L")
    if max(image.size) > MAX_OCR_SIDE:
        image = image.copy()
        image.thumbnail((MAX_OCR_SIDE, MAX_OCR_SIDE), PILImage.Resampling.LANCZOS)
    if image.height < MIN_OCR_HEIGHT:
        factor = min(MAX_UPSCALE, MIN_OCR_HEIGHT / image.height)
        if factor > 1.2:
            image = image.resize(
                (round(image.width * factor), round(image.height * factor)), PILImage.Resampling.LANCZOS
            )
    if image.format or image.info:
        # pytesseract saves the picture in its own format (and refuses some, e.g. a camera's MPO) with
        # its info: a plain copy goes to Tesseract as PNG.
        image = image.copy()
        image.info = {}
    return image
