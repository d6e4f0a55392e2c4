"""The overview's figures from the audit log: decisions per day and their reasons, and the chain's state.

The figures of the last days are kept per day and brought up to date from where the last reading
stopped: the log only grows, so a page view reads the lines written since the one before, not
the month again. A log replaced (a new file) or cut is read again from the first day shown.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from gateway.audit import Problem, head_path, verify
from gateway.console.auditread import Position, identity, is_decision, offset_of, read_from, when

DAYS = 30
TOP = 10
CATEGORIES = ("pass", "warn", "block", "quarantine", "unscannable", "not decided")
UNREAD = ("unscannable", "encrypted")
# How long a page waits for `audit verify` before showing the last finished check.
VERIFY_WAIT_SECONDS = 3.0


def reason_key(reason: str) -> str:
    """The policy's word for a reason (`identifier`, `unscannable`, ...), without its explanation."""
    return reason.split(":", 1)[0].strip()


def category(entry: dict[str, object]) -> str:
    """The decision as the overview counts it: what was done first, then why, then the verdict."""
    reason = reason_key(str(entry.get("reason", "")))
    if entry.get("action") == "quarantined":
        return "quarantine"
    if reason == "not-decided":
        return "not decided"  # refused or deferred by a limit or an error before the policy spoke
    if reason in UNREAD:
        return "unscannable"
    verdict = str(entry.get("verdict", ""))
    return verdict if verdict in CATEGORIES else "not decided"


def rules_of(entry: dict[str, object]) -> set[str]:
    """`rule: kind` of each finding, once per decision."""
    findings = entry.get("findings")
    return {
        f"{f.get('rule')}: {f.get('kind')}"
        for f in (findings if isinstance(findings, list) else ())
        if isinstance(f, dict)
    }


@dataclass
class Day:
    categories: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    unscannable: Counter[str] = field(default_factory=Counter)
    blocked_senders: Counter[str] = field(default_factory=Counter)

    def add(self, entry: dict[str, object]) -> None:
        kind = category(entry)
        self.categories[kind] += 1
        self.reasons[str(entry.get("reason", ""))[:120]] += 1
        self.rules.update(rules_of(entry))
        unscanned = entry.get("unscanned")
        if kind == "unscannable" or unscanned:
            why = reason_key(str(entry.get("reason", "")))
            for content_type in unscanned if isinstance(unscanned, list) else ():
                self.unscannable[f"{content_type} ({why})"] += 1
        if kind in ("block", "quarantine"):
            # Senders are staff: their addresses are not client data (masked on writing all the same).
            self.blocked_senders[str(entry.get("envelope_sender") or "<>")] += 1


@dataclass(frozen=True)
class Overview:
    days: list[str]
    series: dict[str, list[int]]
    totals: dict[str, int]
    reasons: list[tuple[str, int]]
    rules: list[tuple[str, int]]
    unscannable: list[tuple[str, int]]
    blocked_senders: list[tuple[str, int]]


class DailyTally:
    """Per-day counts of the decisions of the last DAYS days."""

    def __init__(self) -> None:
        self.days: dict[date, Day] = {}
        self.position: Position | None = None
        self._lock = threading.Lock()

    def update(self, path: Path, today: date) -> Overview:
        with self._lock:
            first = today - timedelta(days=DAYS - 1)
            file = identity(path)
            if file is None:
                self.days, self.position = {}, None
                return self._overview(first)
            position = self.position
            if position is None or position.file != file or path.stat().st_size < position.offset:
                self.days = {}
                offset = offset_of(path, datetime.combine(first, time(), UTC))
            else:
                offset = position.offset
            for end, entry in read_from(path, offset):
                offset = end
                moment = when(entry)
                if moment is None or not is_decision(entry):
                    continue
                day = moment.date()
                if first <= day <= today:
                    self.days.setdefault(day, Day()).add(entry)
            self.position = Position(file, offset)
            for day in [d for d in self.days if d < first]:
                del self.days[day]
            return self._overview(first)

    def _overview(self, first: date) -> Overview:
        days = [first + timedelta(days=i) for i in range(DAYS)]
        empty = Day()
        per_day = [self.days.get(d, empty) for d in days]
        series = {c: [d.categories[c] for d in per_day] for c in CATEGORIES}
        total = Day()
        for d in per_day:
            total.reasons.update(d.reasons)
            total.rules.update(d.rules)
            total.unscannable.update(d.unscannable)
            total.blocked_senders.update(d.blocked_senders)
        return Overview(
            days=[d.isoformat() for d in days],
            series=series,
            totals={c: sum(v) for c, v in series.items()},
            reasons=total.reasons.most_common(TOP),
            rules=total.rules.most_common(TOP),
            unscannable=total.unscannable.most_common(TOP),
            blocked_senders=total.blocked_senders.most_common(TOP),
        )


# ---------------------------------------------------------------- the chain


@dataclass(frozen=True)
class ChainReport:
    entries: int
    problems: tuple[Problem, ...]
    checked: datetime
    running: bool = False  # a newer check is under way (the log changed since this one)

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def broken_at(self) -> int | None:
        return self.problems[0].line if self.problems else None


def _stamp(path: Path) -> tuple[object, ...]:
    def of(p: Path) -> tuple[int, int, int] | None:
        try:
            st = p.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    return (of(path), of(head_path(path)))


class ChainState:
    """`audit verify`, run again when the log changed, in a thread: a log of years takes a while."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verify")
        self._lock = threading.Lock()
        self._last: tuple[tuple[object, ...], ChainReport] | None = None
        self._running: tuple[tuple[object, ...], Future[ChainReport]] | None = None

    def report(self, path: Path) -> ChainReport | None:
        """The state of the chain as of the last finished check (None: none has finished yet)."""
        stamp = _stamp(path)
        with self._lock:
            if self._last is not None and self._last[0] == stamp:
                return self._last[1]
            if self._running is None or self._running[0] != stamp:
                self._running = (stamp, self._pool.submit(self._verify, path, stamp))
            future = self._running[1]
        try:
            return future.result(timeout=VERIFY_WAIT_SECONDS)
        except FutureTimeout:
            with self._lock:
                last = self._last[1] if self._last else None
            return ChainReport(last.entries, last.problems, last.checked, running=True) if last else None

    def _verify(self, path: Path, stamp: tuple[object, ...]) -> ChainReport:
        entries, problems = verify(path)
        report = ChainReport(entries, tuple(problems), datetime.now(UTC))
        with self._lock:
            self._last = (stamp, report)
        return report

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
