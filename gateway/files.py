"""Small files written whole: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.errors import UserError


def write_private(path: Path, text: str, what: str) -> None:
    """Write `text` to `path` (mode 0600) under a temporary name, fsync'd, then renamed into place.

    `what` names the file in the one-line error a failure gives ("users file", ...).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise UserError(f"cannot write {what} {path}: {e.strerror}") from None
