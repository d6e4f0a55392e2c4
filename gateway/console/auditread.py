"""The audit log as the console reads it: a line at a time, from a day on, never the whole file at once.

The log is appended in time order (lines of several workers are seconds apart at most), so the
first line of a day is found by bisecting the file's bytes: a search of the last month in a log
of years reads the month, not the years.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from gateway.audit import DECISIONS

# Lines of one worker may be written a little after those of another that were decided later:
# the bisection aims this far before the wanted time, and each line is then judged by its own.
MARGIN = timedelta(hours=1)
# Below this many bytes the bisection stops and the lines are read.
BISECT_BLOCK = 64 * 1024
# Lines without a readable time skipped in a row before a probe gives up (a torn or edited line).
PROBE_LINES = 16
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def when(entry: dict[str, object]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(entry["time"]))
    except (KeyError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_decision(entry: dict[str, object]) -> bool:
    """A decision about a message, as opposed to what was done with a held one or an event."""
    return entry.get("action") in DECISIONS and "verdict" in entry


def is_record(entry: dict[str, object]) -> bool:
    """A line about a message (a decision, a release, a deletion): it has a verdict and findings."""
    return "verdict" in entry and "findings" in entry


def _parse(raw: bytes) -> dict[str, object] | None:
    """The entry of a line, or None for one that is not an entry (torn, or edited past reading)."""
    try:
        entry = json.loads(raw)
        if not isinstance(entry, dict):
            return None
        if b"\\ud" in raw or b"\\uD" in raw:
            # A lone surrogate written as an escape (no writer does, an edit may): no page and no
            # CSV can hold it, and one made the overview an error page instead of saying that
            # the chain is broken.
            entry = _writable(entry)
    except (ValueError, RecursionError):
        return None
    return entry


def _writable(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_writable(v) for v in value]
    if isinstance(value, dict):
        return {_writable(k): _writable(v) for k, v in value.items()}
    return value


def _probe(f: BinaryIO, pos: int) -> tuple[int, datetime | None]:
    """The start of the first whole line after `pos`, and the first readable time from there on."""
    f.seek(pos)
    if pos:
        f.readline()  # the rest of the line `pos` falls in
    start = f.tell()
    for _ in range(PROBE_LINES):
        raw = f.readline()
        if not raw:
            break
        entry = _parse(raw)
        moment = when(entry) if entry else None
        if moment is not None:
            return start, moment
    return start, None


def offset_of(path: Path, since: datetime) -> int:
    """A line start at or before the first line written at `since` (0 for the start of the log)."""
    target = since - MARGIN
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    lo, hi = 0, size
    with path.open("rb") as f:
        while hi - lo > BISECT_BLOCK:
            mid = (lo + hi) // 2
            start, moment = _probe(f, mid)
            if moment is not None and moment < target and start < hi:
                lo = start
            else:
                hi = mid
    return lo


@dataclass(frozen=True)
class Position:
    """Where a reading of the log stopped: the same file (device, inode) at this offset."""

    file: tuple[int, int]
    offset: int


def read_from(path: Path, offset: int) -> Iterator[tuple[int, dict[str, object]]]:
    """Every readable entry from `offset` on, each with the offset after its line.

    A last line without its newline is being written: it is left for the next reading.
    """
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        position = offset
        for raw in f:
            if not raw.endswith(b"\n"):
                return
            position += len(raw)
            entry = _parse(raw)
            if entry is not None:
                yield position, entry


def identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino)


def between(
    path: Path, first: date | None, last: date | None
) -> Iterator[tuple[datetime, dict[str, object]]]:
    """Entries with a time on the days `first` to `last` (UTC, both included; None: unbounded)."""
    start = datetime.combine(first, time(), UTC) if first else None
    end = datetime.combine(last + timedelta(days=1), time(), UTC) if last else None
    offset = offset_of(path, start) if start else 0
    late = 0
    for _, entry in read_from(path, offset):
        moment = when(entry)
        if moment is None or (start and moment < start):
            continue
        if end and moment >= end:
            # Past the range; a worker's line a little out of order may still follow.
            late += 1
            if moment >= end + MARGIN and late > PROBE_LINES:
                return
            continue
        late = 0
        yield moment, entry
