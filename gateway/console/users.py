"""The console's users store: names, roles and argon2 password hashes in a file of their own.

One user a line, `name:role:argon2-hash` (lines starting with # are comments), written whole under
a temporary name, fsync'd and renamed into place (mode 0600). It is not `auth.users_file`: a
console user may not send mail through the gateway, and a mail user may not read the audit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import UserError
from gateway.files import write_private
from gateway.users import hash_password

Role = Literal["compliance", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
# What each role may do; the routes ask for a permission, never for a role by name.
PERMISSIONS: dict[str, frozenset[str]] = {
    "compliance": frozenset({"read", "search", "release", "delete", "clear"}),
    "viewer": frozenset({"read"}),
}
MAX_NAME = 64
_NAME = re.compile(rf"[a-z0-9][a-z0-9._@+-]{{0,{MAX_NAME - 1}}}")
MIN_PASSWORD_LENGTH = 12

__all__ = [
    "MAX_NAME",
    "ConsoleUser",
    "ConsoleUsers",
    "hash_password",
    "read",
    "write",
    "check_name",
    "check_role",
]


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    role: Role
    hash: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


def check_name(name: str) -> str:
    name = name.strip().lower()
    if not _NAME.fullmatch(name):
        raise UserError(
            f"{name!r} is not a console user name (letters a-z, digits and . _ @ + -, at most 64, "
            "starting with a letter or digit)"
        )
    return name


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise UserError(f"{role!r} is not a console role: use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def read(path: Path) -> dict[str, ConsoleUser]:
    """Name -> user; an absent file has no users."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read console users file {path}: {e}") from None
    users: dict[str, ConsoleUser] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(":")
        role, _, hashed = rest.partition(":")
        if role not in ROLES or not hashed.startswith("$argon2") or not _NAME.fullmatch(name):
            raise UserError(f"console users file {path}, line {number}: expected name:role:argon2-hash")
        users[name] = ConsoleUser(name, role, hashed)  # type: ignore[arg-type]
    return users


def write(path: Path, users: Mapping[str, ConsoleUser]) -> None:
    lines = ["# brukarvakt console users: name:role:argon2 hash. Edit with `brukarvakt console-user`.\n"]
    lines += [f"{u.name}:{u.role}:{u.hash}\n" for u in sorted(users.values(), key=lambda u: u.name)]
    write_private(path, "".join(lines), "console users file")


class ConsoleUsers:
    """The users file as the console sees it: read again when it changes (a removed user is out at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._users: dict[str, ConsoleUser] = {}
        self._hasher = PasswordHasher()
        # Verified against for an unknown name, so that the time taken does not tell who exists.
        self._dummy = self._hasher.hash("brukarvakt-console-no-such-user")

    def current(self) -> dict[str, ConsoleUser]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._users = read(self.path) if stamp else {}
            self._stamp = stamp
        return self._users

    def get(self, name: str) -> ConsoleUser | None:
        return self.current().get(name)

    def verify(self, name: str, password: str) -> ConsoleUser | None:
        """The user, when the password is theirs; the same work for an unknown name."""
        user = self.current().get(name.strip().lower())
        try:
            if user is None:
                self._hasher.verify(self._dummy, password + "\x00")
                return None
            return user if self._hasher.verify(user.hash, password) else None
        except (VerificationError, InvalidHashError):
            return None
