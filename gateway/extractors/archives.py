"""Archives: ZIP (recursively, member names too), tar, and gzip/bzip2/xz streams, within every limit."""

from __future__ import annotations

import io
from pathlib import PurePosixPath

from gateway.extractors import office
from gateway.extractors.base import (
    CHUNK,
    RATIO_FLOOR_BYTES,
    Attachment,
    Extracted,
    Recurse,
    Unreadable,
    open_zip,
    read_member,
)
from gateway.text import decode_bytes
from models.config import Limits

# Members that mark a zip as an Office or OpenDocument file sent under a zip's name or type.
OOXML_MARKERS = (("word/document.xml", "docx"), ("xl/workbook.xml", "xlsx"), ("ppt/presentation.xml", "pptx"))
ODF_MIMETYPES = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
}


def zip_archive(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    zf = open_zip(att, out, limits)
    names = set(zf.namelist())
    document = next((kind for marker, kind in OOXML_MARKERS if marker in names), None)
    if document is None and "mimetype" in names:
        document = ODF_MIMETYPES.get(read_member(zf, zf.getinfo("mimetype"), out, limits).strip())
    if document is not None:
        getattr(office, document)(att, out, limits, recurse)
        return
    out.count_members(len(zf.infolist()), limits)
    # The archive's comment and each file's (7-Zip, WinRAR and `zip -z` write them): text a person wrote.
    out.add(f"{att.part}/kommentar", decode_bytes(zf.comment), limits)
    for info in zf.infolist():
        out.check_time(limits)
        out.add(f"{att.part}/filename", info.filename, limits)  # a file's name can be the identifier
        out.add(f"{att.part}/kommentar", decode_bytes(info.comment), limits)
        if info.is_dir():
            continue
        recurse(att.member(info.filename, read_member(zf, info, out, limits)), out)


def tar_archive(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    import tarfile

    try:
        archive = tarfile.open(fileobj=io.BytesIO(att.data), mode="r:*")  # noqa: SIM115 (closed below)
    except tarfile.TarError:
        raise Unreadable("inte ett läsbart tar-arkiv") from None
    with archive:
        count = total = 0
        for member in archive:  # one header at a time: nothing is unpacked ahead
            out.check_time(limits)
            count += 1
            if count > limits.max_archive_members:
                raise Unreadable(f"fler än {limits.max_archive_members} filer i arkivet")
            out.count_members(1, limits)
            out.add(f"{att.part}/filename", member.name, limits)
            if not member.isfile():
                continue
            total += member.size
            _check_ratio(total, len(att.data), limits)
            out.unpack(member.size, limits)
            stream = archive.extractfile(member)
            data = stream.read(member.size) if stream is not None else b""
            recurse(att.member(member.name, data), out)


# Single-file compression: the suffix each removes from the name.
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".tgz")


def compressed(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    """A gzip, bzip2 or xz stream: unpacked in chunks, never past the limits, then read as what it holds."""
    import bz2
    import gzip
    import lzma

    head = att.data[:6]
    source = io.BytesIO(att.data)
    stream: io.BufferedIOBase  # closed by the with below
    if head.startswith(b"\x1f\x8b"):
        stream = gzip.GzipFile(fileobj=source, mode="rb")  # noqa: SIM115
    elif head.startswith(b"BZh"):
        stream = bz2.BZ2File(source)  # noqa: SIM115
    elif head.startswith(b"\xfd7zXZ"):
        stream = lzma.LZMAFile(source)  # noqa: SIM115
    else:
        raise Unreadable("inte en läsbar gzip-, bzip2- eller xz-fil")
    budget = limits.max_unpacked_bytes - out.unpacked_bytes
    ceiling = max(RATIO_FLOOR_BYTES, int(limits.max_compression_ratio * len(att.data)))
    chunks: list[bytes] = []
    got = 0
    with stream:
        while chunk := stream.read(CHUNK):
            got += len(chunk)
            if got > ceiling:
                raise Unreadable(f"packad mer än {limits.max_compression_ratio:g} gånger (zipbomb?)")
            if got > budget:
                raise Unreadable(f"packar upp till mer än {limits.max_unpacked_bytes} byte")
            chunks.append(chunk)
            out.check_time(limits)
    out.unpack(got, limits)
    name = att.name or "packed"
    inner = PurePosixPath(name).stem if name.lower().endswith(COMPRESSED_SUFFIXES) else name
    if name.lower().endswith(".tgz"):
        inner += ".tar"
    recurse(att.member(inner, b"".join(chunks)), out)


def _check_ratio(unpacked: int, packed: int, limits: Limits) -> None:
    if unpacked > RATIO_FLOOR_BYTES and unpacked > limits.max_compression_ratio * max(packed, 1):
        raise Unreadable(f"packad mer än {limits.max_compression_ratio:g} gånger (zipbomb?)")
