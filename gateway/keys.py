"""The fingerprint key: from the environment, the config, or a random key file made on first use."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.errors import UserError
from models.config import Privacy

MIN_KEY_LENGTH = 16


def _checked(key: str, source: str) -> bytes:
    if len(key) < MIN_KEY_LENGTH:
        raise UserError(f"{source}: the fingerprint key must be at least {MIN_KEY_LENGTH} characters")
    return key.encode("utf-8")


def fingerprint_key(privacy: Privacy) -> bytes:
    from_env = os.environ.get(privacy.fingerprint_key_env, "")
    if from_env:
        return _checked(from_env, f"environment variable {privacy.fingerprint_key_env}")
    if privacy.fingerprint_key is not None:
        return _checked(privacy.fingerprint_key.get_secret_value(), "privacy.fingerprint_key")
    return _key_file(privacy.key_file)


def _key_file(path: Path) -> bytes:
    try:
        return _checked(path.read_text(encoding="ascii").strip(), str(path))
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read fingerprint key file {path}: {e}") from None
    key = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a temporary name, then linked into place: a second process
        # starting at the same moment sees either no key or the complete one.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
        finally:
            tmp.unlink()
    except OSError as e:
        raise UserError(f"cannot create fingerprint key file {path}: {e.strerror}") from None
    return _checked(key, str(path))
