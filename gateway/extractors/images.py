"""Pictures of documents (PNG, JPEG, TIFF, GIF, BMP, WebP, JPEG 2000, netpbm): read by text recognition."""

from __future__ import annotations

import io
import re
import warnings
from typing import TYPE_CHECKING, Any

from gateway import ocr
from gateway.extractors.base import Attachment, Extracted, Recurse, Unreadable
from models.config import Limits

if TYPE_CHECKING:
    from PIL.Image import Image

# Formats whose frames are pages (a fax TIFF has one page per frame); in the others the frames are an
# animation, and the first one is what a mail program shows and what is read.
PAGED_FORMATS = frozenset(("TIFF",))
# JPEG's end-of-image marker: libjpeg finishes a cut-off file at it, greying what is missing.
JPEG_END = b"\xff\xd9"
JPEG_FORMATS = frozenset(("JPEG", "MPO"))  # MPO: a phone camera's JPEG with a second picture inside
# Netpbm's PAM (P7), which Tesseract's Leptonica reads and Pillow does not.
PAM_MAGIC = b"P7"
CUT_OFF = "bilden är trasig eller avkortad, och inget av den kan läsas"
NOTHING_READ = "bilden är trasig eller avkortad, och ingen text kunde läsas i det som kom fram"


def image(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """Every page of a TIFF, the first frame of an animation, each read by text recognition; a picture
    cut off in transfer is read as far as it goes."""
    with warnings.catch_warnings(), _opened(att.data, limits) as picture:
        warnings.simplefilter("ignore")  # Pillow's about a damaged file: the outcome says it
        width, height = picture.size  # from the header: nothing is decoded yet
        if width * height > limits.max_image_pixels:
            raise Unreadable(f"bilden ({width}x{height}) är större än {limits.max_image_pixels} pixlar")
        frames = _frame_count(picture) if picture.format in PAGED_FORMATS else 1
        out.count_pages(frames, limits)
        cache: dict[str, str] = {}
        for number in range(1, frames + 1):
            out.check_time(limits)
            picture.seek(number - 1)
            part = att.part if frames == 1 else f"{att.part}/sida {number}"
            pixels, cut_off = _decoded(picture, att.data)
            text = ocr.recognize(pixels, out, limits, cache)
            if cut_off and not text.strip():
                # Stripes of an interlaced picture, or a cut above the writing: nothing to vouch for.
                out.unreadable(part, att.content_type, NOTHING_READ)
                continue
            out.add(part, text, limits)
        out.add(f"{att.part}/egenskaper", _described(picture), limits)  # after the pixels: see there


# What a person writes about a picture: EXIF's description, artist and copyright, and the title,
# comment, author, keywords and subject Windows' Properties > Details writes (UTF-16); the user
# comment of the Exif block; a JPEG or GIF comment; PNG text chunks; XMP's title, description and
# subject (a photo captioned in a photo program).
EXIF_TEXT_TAGS = (0x010E, 0x013B, 0x8298, 0x9C9B, 0x9C9C, 0x9C9D, 0x9C9E, 0x9C9F)
EXIF_IFD = 0x8769
EXIF_USER_COMMENT = 0x9286
# Pillow's own keys in `info` that hold no text a person wrote.
MACHINE_INFO_KEYS = frozenset(
    ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "jfif", "adobe", "photoshop")
)
XMP_KEYS = ("xmp", "XML:com.adobe.xmp")
_XMP_TEXT = re.compile(r"<dc:(title|description|subject)\b[^>]*>(.*?)</dc:\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _described(picture: Image) -> str:
    """The picture's own text besides its pixels, a line each."""
    lines: list[str] = []
    comment = picture.info.get("comment")  # a JPEG's or GIF's comment
    if isinstance(comment, bytes):
        comment = comment.decode("utf-8", "replace")
    if isinstance(comment, str):
        lines.append(comment)
    try:
        # A PNG's text chunks, whatever their keys (those after the pixels too: asking for them
        # reads the file to its end, which a cut-off file does not have).
        chunks = getattr(picture, "text", None)
    except Exception:
        chunks = (
            {k: v for k, v in picture.info.items() if isinstance(v, str)} if picture.format == "PNG" else None
        )
    if isinstance(chunks, dict):
        lines += [str(value) for value in chunks.values()]
    try:
        exif = picture.getexif()
        tags = [exif.get(tag) for tag in EXIF_TEXT_TAGS]
        tags.append(exif.get_ifd(EXIF_IFD).get(EXIF_USER_COMMENT))
    except Exception:  # a damaged EXIF block: the pixels are still read
        tags = []
    lines += [_exif_text(tag).rstrip("\x00") for tag in tags if tag]
    for key in XMP_KEYS:
        xmp = picture.info.get(key)
        if isinstance(xmp, bytes):
            xmp = xmp.decode("utf-8", "replace")
        if isinstance(xmp, str):
            lines += [_TAG.sub("\n", m.group(2)) for m in _XMP_TEXT.finditer(xmp)]
    return "\n".join(line.strip() for line in lines if line.strip())


def _exif_text(value: object) -> str:
    """An EXIF value as text: Windows' XP tags are UTF-16 LE; a user comment starts with its charset."""
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    if value[:8] == b"UNICODE\x00":
        return value[8:].decode("utf-16-be" if value[8:9] == b"\x00" else "utf-16-le", "replace")
    if value[:8] in (b"ASCII\x00\x00\x00", b"\x00" * 8):
        return value[8:].decode("latin-1")
    if len(value) >= 2 and value[1:2] == b"\x00":
        return value.decode("utf-16-le", "replace")
    return value.decode("utf-8", "replace")


def _opened(data: bytes, limits: Limits) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow warns before its own bomb guard (the size check is ours) and about odd EXIF.
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data.startswith(PAM_MAGIC):
            return _pam(data, limits)
        raise Unreadable(CUT_OFF) from None  # a picture's type or bytes, and none Pillow can open
    except (OSError, EOFError, SyntaxError, ValueError):  # a known header, broken or cut off before the size
        raise Unreadable(CUT_OFF) from None


def _pam(data: bytes, limits: Limits) -> Image:
    """A PAM picture through netpbmfile; its size, read from the header, is checked before decoding."""
    import netpbmfile
    from PIL import Image

    try:
        with netpbmfile.NetpbmFile(io.BytesIO(data)) as pam:
            if pam.width * pam.height > limits.max_image_pixels:
                raise Unreadable(
                    f"bilden ({pam.width}x{pam.height}) är större än {limits.max_image_pixels} pixlar"
                )
            pixels = pam.asarray()
    except (ValueError, OSError):
        raise Unreadable("bilden kan inte läsas") from None
    if pixels.dtype != "uint8":  # 16-bit samples: scaled to 8 bits, as a viewer shows them
        pixels = (pixels.astype("float64") * (255 / max(1, int(pixels.max())))).astype("uint8")
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):  # grey or colour with an alpha channel
        return Image.fromarray(pixels, "LA" if pixels.shape[2] == 2 else "RGBA")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    return Image.fromarray(pixels)


def _frame_count(picture: Image) -> int:
    """The pages; of a file cut off in its page chain, those that can still be found."""
    try:
        return int(getattr(picture, "n_frames", 1))
    except Exception:  # Pillow's OSError, EOFError, TypeError ... on a page cut in two
        pass
    found = 1
    while True:
        try:
            picture.seek(found)
        except Exception:
            break
        found += 1
    picture.seek(0)
    return found


def _decoded(frame: Image, data: bytes) -> tuple[Image, bool]:
    """The frame's pixels, and whether the file was cut off (then they are the part that arrived).

    Pillow's own switch for this (ImageFile.LOAD_TRUNCATED_IMAGES) is one flag for the whole process:
    set, it would hide truncation from every other thread's reading. Instead the decoder's work so far
    is kept (rows of a PNG, GIF, TIFF, BMP, netpbm) or, for JPEG, the file is ended where it stops."""
    from PIL import Image as PILImage
    from PIL import ImageFile

    try:
        frame.load()
        return frame.copy(), False
    except (OSError, EOFError, SyntaxError):
        pass
    partial: Image
    if frame.format in JPEG_FORMATS:
        try:
            partial = PILImage.open(io.BytesIO(data + JPEG_END))
            partial.load()
        except (OSError, EOFError, SyntaxError):
            raise Unreadable(CUT_OFF) from None
    elif isinstance(frame, ImageFile.ImageFile):
        frame.tile = []  # what was decoded stays in the frame's pixels; nothing more is read
        partial = frame.copy()
    else:
        raise Unreadable(CUT_OFF)
    if all(low == high for low, high in _band_extremes(partial)):
        raise Unreadable(CUT_OFF)  # one colour: the cut came before any of the picture
    return partial, True


def _band_extremes(picture: Image) -> list[tuple[float, float]]:
    extrema = picture.getextrema()
    if isinstance(extrema[0], tuple):
        return list(extrema)  # type: ignore[arg-type]
    return [extrema]  # type: ignore[list-item]
