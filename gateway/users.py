"""The users store: the gateway's own SMTP AUTH users, argon2 password hashes in a file.

The file is one user per line, `address:argon2-hash`, like a Dovecot passwd-file, so that an
administrator can read which users exist; lines starting with # are comments. It is written
whole under a temporary name, fsync'd and renamed into place (mode 0600): a reader sees the old
file or the new one, never half of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import UserError
from gateway.files import write_private

_ADDRESS = re.compile(r"[^\s:@]+@[^\s:@]+")
MIN_PASSWORD_LENGTH = 8


def _hasher() -> PasswordHasher:
    return PasswordHasher()


def check_address(address: str) -> str:
    address = address.strip().lower()
    if not _ADDRESS.fullmatch(address):
        raise UserError(f"{address!r} is not a mail address (local@domain, no spaces or colons)")
    return address


def read(path: Path) -> dict[str, str]:
    """Address -> hash; an absent file has no users."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read users file {path}: {e}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        address, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith("$argon2"):
            raise UserError(f"users file {path}, line {number}: expected address:argon2-hash")
        users[address.lower()] = hashed
    return users


def write(path: Path, users: Mapping[str, str]) -> None:
    lines = ["# brukarvakt SMTP AUTH users: address:argon2 hash. Edit with `brukarvakt user`.\n"]
    lines += [f"{address}:{hashed}\n" for address, hashed in sorted(users.items())]
    write_private(path, "".join(lines), "users file")


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


class Users:
    """The users file as the server sees it: re-read when it changes, so `user add` needs no reload."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, str] = {}
        self._hasher = _hasher()

    def _current(self) -> dict[str, str]:
        if self.path is None:
            return {}
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._users = read(self.path) if stamp else {}
            self._stamp = stamp
        return self._users

    def verify(self, address: str, password: str) -> bool:
        """Whether the password is the user's; constant work for unknown users too."""
        hashed = self._current().get(address.strip().lower())
        try:
            if hashed is None:
                # Spend the same time as for a known user, so that timing does not tell who exists.
                self._hasher.verify(_dummy_hash(self._hasher), password + "\x00")
                return False
            return bool(self._hasher.verify(hashed, password))
        except (VerificationError, InvalidHashError):
            return False


_DUMMY: dict[int, str] = {}


def _dummy_hash(hasher: PasswordHasher) -> str:
    key = id(hasher)
    if key not in _DUMMY:
        _DUMMY[key] = hasher.hash("brukarvakt-no-such-user")
    return _DUMMY[key]


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One `brukarvakt user` change at a time: two at once would each write back what they read."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise UserError(f"cannot lock users file {path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
