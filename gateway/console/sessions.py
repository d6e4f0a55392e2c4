"""Console sessions and sign-in throttling, kept in the console's process.

Who is signed in, and when they were last seen, lives here rather than in the cookie: signing out
or removing a user ends the session at once, and a copied cookie is worth nothing after a restart.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# Throttle entries kept (names and addresses that failed); the oldest are forgotten beyond this.
THROTTLE_MEMORY = 10_000


@dataclass
class Session:
    user: str
    seen: float
    # The last audit search (fingerprints and filters, never the term typed), for its export.
    last_search: Any = None


class Sessions:
    """Signed-in sessions of this process, by random id."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._by_id: dict[str, Session] = {}

    def start(self, user: str, now: float) -> str:
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = Session(user, now)
        return sid

    def get(self, sid: str | None, now: float) -> tuple[Session | None, bool]:
        """The session and whether it just ran out (idle too long); touching it keeps it alive."""
        session = self._by_id.get(sid) if sid else None
        if session is None:
            return None, False
        if now - session.seen > self.idle_seconds:
            self.end(sid)
            return session, True
        session.seen = now
        return session, False

    def end(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)


class Throttle:
    """Failed sign-ins by user name and by client address: after `limit`, a wait that doubles."""

    def __init__(self, limit: int, lockout_seconds: float) -> None:
        self.limit = limit
        self.lockout = lockout_seconds
        self._failures: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()
        # Keys whose present lockout has been told to the audit already.
        self._told: set[tuple[str, str]] = set()

    def wait(self, keys: list[tuple[str, str]], now: float) -> float:
        """Seconds until another try is allowed (0: now)."""
        return max((self._failures.get(k, (0, 0.0))[1] - now for k in keys), default=0.0) if keys else 0.0

    def first_refusal(self, keys: list[tuple[str, str]], now: float) -> bool:
        """Whether a try refused now is the first one since a lockout of these keys began.

        A throttled try costs the client nothing (no password is checked): the audit records
        the first of a lockout, not each of thousands.
        """
        fresh = [k for k in keys if self._failures.get(k, (0, 0.0))[1] > now and k not in self._told]
        self._told.update(fresh)
        return bool(fresh)

    def failed(self, keys: list[tuple[str, str]], now: float) -> None:
        for key in keys:
            count = self._failures.pop(key, (0, 0.0))[0] + 1
            until = now + self.lockout * 2 ** (count - self.limit) if count >= self.limit else 0.0
            self._failures[key] = (count, until)
            self._told.discard(key)
        while len(self._failures) > THROTTLE_MEMORY:
            self._told.discard(self._failures.popitem(last=False)[0])

    def succeeded(self, keys: list[tuple[str, str]]) -> None:
        for key in keys:
            self._failures.pop(key, None)
            self._told.discard(key)
