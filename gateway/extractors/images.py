"""Pictures of documents (PNG, JPEG, TIFF, GIF, BMP, WebP): read by text recognition."""

from __future__ import annotations

import io

from gateway.extractors.base import Attachment, Extracted, Recurse, Unreadable
from models.config import Limits


def image(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """Every frame (a fax TIFF has one page per frame), each read by text recognition."""
    import warnings

    from PIL import Image, ImageSequence, UnidentifiedImageError

    from gateway import ocr

    try:
        with warnings.catch_warnings():
            # Pillow warns before its own bomb guard; the size check below is ours.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(att.data))
    except UnidentifiedImageError:
        raise Unreadable("bilden kan inte läsas") from None
    with picture:
        width, height = picture.size  # from the header: nothing is decoded yet
        if width * height > limits.max_image_pixels:
            raise Unreadable(f"bilden ({width}x{height}) är större än {limits.max_image_pixels} pixlar")
        frames = getattr(picture, "n_frames", 1)
        out.count_pages(frames, limits)
        cache: dict[str, str] = {}
        for number, frame in enumerate(ImageSequence.Iterator(picture), 1):
            out.check_time(limits)
            part = att.part if frames == 1 else f"{att.part}/sida {number}"
            out.add(part, ocr.recognize(frame.copy(), out, limits, cache), limits)
