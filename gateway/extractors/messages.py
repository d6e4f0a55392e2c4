"""Messages inside messages: .eml files (in archives or badly labelled) and Outlook .msg, recursively."""

from __future__ import annotations

from typing import Any

from gateway.extractors.base import Attachment, EncryptedMessage, Extracted, Recurse, Unreadable
from gateway.text import decode_bytes, html_to_text
from models.config import Limits

# Outlook's fields a person writes or sees, by extract-msg's names, with the header each stands for.
MSG_FIELDS = (
    ("subject", "Subject"),
    ("sender", "From"),
    ("to", "To"),
    ("cc", "Cc"),
    ("bcc", "Bcc"),
    ("location", "Location"),
)
# Message classes whose body is encrypted (S/MIME): nothing of them can be read.
ENCRYPTED_CLASSES = ("ipm.note.smime",)


def eml(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    out.message(att, limits)


def outlook_msg(att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    import extract_msg

    message = extract_msg.openMsg(att.data, strict=False, delayAttachments=False)
    try:
        _msg_contents(message, att, out, limits, recurse)
    finally:
        message.close()


def _msg_contents(message: Any, att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    if att.depth > limits.max_mime_depth:
        raise Unreadable(f"fler än {limits.max_mime_depth} nivåer inuti varandra")
    out.check_time(limits)
    class_type = str(getattr(message, "classType", "") or "").lower()
    if class_type.startswith(ENCRYPTED_CLASSES) and "multipartsigned" not in class_type:
        raise EncryptedMessage()
    for field, header in MSG_FIELDS:
        try:
            value = getattr(message, field, None)
        except Exception as e:  # one broken property: listed as unread, the others still read
            out.unreadable(
                f"{att.part}/header:{header}",
                "application/vnd.ms-outlook",
                f"kan inte läsas ({type(e).__name__})",
            )
            continue
        if value:
            out.add(f"{att.part}/header:{header}", str(value), limits)
    out.add(f"{att.part}/body:text/plain", _body(message), limits)
    for item in getattr(message, "attachments", None) or []:
        _msg_attachment(item, att, out, limits, recurse)


def _body(message: Any) -> str:
    # No _safe here: a body that cannot be read makes the message unscannable, never skipped.
    body = getattr(message, "body", None)
    if body:
        return str(body)
    html = getattr(message, "htmlBody", None)
    if html:
        return html_to_text(decode_bytes(html) if isinstance(html, bytes) else str(html))
    rtf = getattr(message, "rtfBody", None)
    if rtf:
        from striprtf.striprtf import rtf_to_text

        return str(
            rtf_to_text(rtf.decode("latin-1") if isinstance(rtf, bytes) else str(rtf), errors="replace")
        )
    return ""


def _msg_attachment(item: Any, att: Attachment, out: Extracted, limits: Limits, recurse: Recurse) -> None:
    name = str(_safe(item, "longFilename") or _safe(item, "shortFilename") or _safe(item, "name") or "bilaga")
    try:
        data = item.data
    except Exception as e:  # the library's failure on this one attachment
        data = None
        reason = f"kan inte läsas ({type(e).__name__})"
    else:
        reason = "bilagan kan inte läsas"
    if data is None:
        out.unreadable(f"{att.part}/{name}", "application/vnd.ms-outlook", reason)
    elif isinstance(data, bytes):
        ctype = str(_safe(item, "mimetype") or "application/octet-stream")
        recurse(att.member(name, data, ctype), out)
    else:  # an embedded message (a forwarded item): its fields and attachments in turn
        inner = att.member(name if name != "bilaga" else "meddelande.msg", b"", "application/vnd.ms-outlook")
        try:
            _msg_contents(data, inner, out, limits, recurse)
        except Unreadable as e:
            out.unreadable(inner.part, inner.content_type, str(e), encrypted=e.encrypted)


def _safe(obj: Any, attribute: str) -> Any:
    """A name or type extract-msg computes on access; a broken one reads as missing (a fallback
    name or type is used: the content is still read)."""
    try:
        return getattr(obj, attribute, None)
    except Exception:  # a library failure on one property must not hide the others
        return None
