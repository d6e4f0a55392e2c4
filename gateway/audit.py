"""The compliance audit log: one hash-chained JSON line per decision or security event.

Each line holds `seq` (1, 2, 3, ...) and `prev`, the SHA-256 of the previous line's bytes
(GENESIS for the first). An edited line breaks the next line's `prev`; a removed or reordered
line breaks it too, and `seq` tells which of the three happened. The end of the log is anchored
in a head file beside it (`<log>.head`, also the lock file), so that removing the last lines is
found as well. The chain has no key: it shows accidents and casual edits, not a determined
administrator who rewrites the whole file; ship the lines to a separate log host for that.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from models.audit import AuditEvent, AuditRecord
from rules.engine import redact_numbers

GENESIS = "0" * 64
HEAD_SIZE = 160  # fixed, so the head is rewritten in place in one write
TAIL_BLOCK = 65536
MASK_MEMORY = 4096  # remembered redactions; a unique Message-ID each message, so bounded
# Actions that are a decision about a message, as opposed to what was done with a held one later.
DECISIONS = frozenset(("delivered", "rejected", "quarantined", "deferred", "failed"))


# What the chain holds: decisions about messages and events (refusals, console actions).
AuditLine = AuditRecord | AuditEvent


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _default_redact(text: str) -> str:
    return redact_numbers(text, date.today())


def head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


class AuditLog:
    """Appends decisions; safe for threads of one process and for several processes at once."""

    def __init__(self, path: Path, redact: Callable[[str], str] | None = None) -> None:
        self.path = path
        self.head = head_path(path)
        self.redact = redact or _default_redact
        self._lock = threading.Lock()
        # Senders, domains, reasons and part names come back message after message, and the full
        # redaction (numbers, the register's names, person names) costs more than the rest of a
        # line. Its answer for the same text on the same day is the same (a reload makes a new
        # AuditLog with the new register), so it is remembered: every field is still masked.
        self._masked: dict[str, str] = {}
        self._masked_day = date.today()
        # Where this object's last write left the log: (device, inode, size) and the next line's
        # `prev` and `seq`. The same file at the same size means no other process (worker) wrote
        # since, and the last line need not be read back.
        self._end: tuple[tuple[int, int, int], str, int] | None = None

    def append(self, record: AuditLine) -> None:
        """Write one line, flushed to disk with the head (fdatasync), before returning; OSError on failure."""
        self.append_many([record])

    def append_many(self, records: Sequence[AuditLine]) -> None:
        """Write several lines in order with one flush: a busy gateway's group commit."""
        if not records:
            return
        with self._lock:
            bodies = [r.masked_json(self._mask) for r in records]
            try:
                head_fd = os.open(self.head, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                head_fd = os.open(self.head, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(head_fd, fcntl.LOCK_EX)
                log_fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
                try:
                    end, self._end = self._end, None
                    stat = os.fstat(log_fd)
                    if end is not None and end[0] == (stat.st_dev, stat.st_ino, stat.st_size):
                        _, prev, seq = end
                    else:
                        prev, seq = self._tail(log_fd, stat.st_size, head_fd)
                    lines: list[bytes] = []
                    for i, body in enumerate(bodies):
                        if i:
                            prev, seq = line_hash(lines[-1]), seq + 1
                        entry = {"seq": seq, "prev": prev, **body}
                        lines.append(
                            json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
                        )
                    _write_all(log_fd, b"".join(line + b"\n" for line in lines))
                    os.fdatasync(log_fd)  # data and size; timestamps need not wait
                    written = os.fstat(log_fd)
                finally:
                    os.close(log_fd)
                last = line_hash(lines[-1])
                head = json.dumps({"seq": seq, "hash": last}).encode("ascii")
                os.pwrite(head_fd, head.ljust(HEAD_SIZE - 1) + b"\n", 0)
                os.fdatasync(head_fd)
                self._end = ((written.st_dev, written.st_ino, written.st_size), last, seq + 1)
            finally:
                os.close(head_fd)  # closing releases the lock

    def _mask(self, text: str) -> str:
        """`redact`, remembered per text for the day (called under the lock)."""
        today = date.today()
        if today != self._masked_day or len(self._masked) >= MASK_MEMORY:
            self._masked.clear()
            self._masked_day = today
        masked = self._masked.get(text)
        if masked is None:
            masked = self._masked[text] = self.redact(text)
        return masked

    @staticmethod
    def _tail(fd: int, size: int, head_fd: int) -> tuple[str, int]:
        """`prev` and `seq` for the next line, from the last line of the log."""
        if size == 0:
            return GENESIS, 1
        last = _last_line(fd, size)
        if not last.endswith(b"\n"):
            # A write cut off by a crash or a full disk: the fragment is kept (nothing is dropped
            # from an audit log) and ended, and `audit verify` reports it.
            _write_all(fd, b"\n")
            head = _read_head(head_fd)
            known = head.seq if head else 0
            return line_hash(last), known + 2
        line = last[:-1]
        try:
            seq = int(json.loads(line)["seq"])
        except (ValueError, KeyError, TypeError, RecursionError):
            head = _read_head(head_fd)
            seq = head.seq if head else 0
        return line_hash(line), seq + 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _last_line(fd: int, size: int) -> bytes:
    """The last line, with its newline if it has one."""
    end = size
    chunks: list[bytes] = []
    while end > 0:
        start = max(0, end - TAIL_BLOCK)
        chunk = os.pread(fd, end - start, start)
        # The file's final newline ends the last line; the one before it starts it.
        search_to = len(chunk) - 1 if not chunks and chunk.endswith(b"\n") else len(chunk)
        cut = chunk.rfind(b"\n", 0, search_to)
        if cut >= 0:
            chunks.append(chunk[cut + 1 :])
            break
        chunks.append(chunk)
        end = start
    return b"".join(reversed(chunks))


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


def _read_head(fd: int) -> Head | None:
    raw = os.pread(fd, HEAD_SIZE, 0)
    return _parse_head(raw)


def _parse_head(raw: bytes) -> Head | None:
    try:
        data = json.loads(raw.strip() or b"null")
        return Head(seq=int(data["seq"]), hash=str(data["hash"]))
    except (ValueError, KeyError, TypeError):
        return None


# --- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    line: int
    what: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.what}"


@dataclass(frozen=True)
class _Line:
    number: int
    raw: bytes  # without its newline
    seq: int | None
    prev: str | None
    complete: bool  # ended by a newline


def _lines(path: Path) -> Iterator[_Line]:
    """The log's lines one at a time: a log of years is never read into memory whole."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            complete = raw.endswith(b"\n")
            body = raw[:-1] if complete else raw
            seq: int | None = None
            prev: str | None = None
            try:
                entry = json.loads(body)
                seq, prev = int(entry["seq"]), str(entry["prev"])
            except (ValueError, KeyError, TypeError, RecursionError):  # an edit nested past the reader
                pass
            yield _Line(number, body, seq, prev, complete)


def verify(path: Path) -> tuple[int, list[Problem]]:
    """How many lines the log has, and what is wrong with it (empty: the chain is whole).

    Verification stops at the first broken link: what follows it cannot be judged.
    """
    head_file = head_path(path)
    if not path.exists():
        if head_file.exists() and (_parse_head(head_file.read_bytes()) or Head(0, "")).seq > 0:
            return 0, [Problem(1, "the log is missing, but its head file says it had entries")]
        return 0, []
    problems: list[Problem] = []
    prev_hash, prev_seq = GENESIS, 0
    before_last = GENESIS  # the hash of the line before the last, for a head one entry behind
    count = 0
    lines = _lines(path)
    for line in lines:
        count = line.number
        if line.seq is None or line.prev is None:
            torn = not line.complete or (line.raw.startswith(b"{") and not line.raw.rstrip().endswith(b"}"))
            if not torn:
                problems.append(Problem(line.number, "is not a valid audit entry (edited)"))
                break
            # A crash's fragment: reported, and the chain goes on through it (the next line links to it).
            problems.append(Problem(line.number, "is incomplete (a write was cut off)"))
            before_last, prev_hash, prev_seq = prev_hash, line_hash(line.raw), prev_seq + 1
            continue
        expected = prev_seq + 1
        if line.prev == prev_hash:
            if line.seq != expected:
                problems.append(
                    Problem(line.number, f"was edited: it says entry #{line.seq}, but follows #{prev_seq}")
                )
                break
        elif line.seq == expected:
            what = f"was edited: line {line.number} records a different hash for it"
            problems.append(
                Problem(line.number - 1, what)
                if line.number > 1
                else Problem(1, "was edited (its link to the start of the log is wrong)")
            )
            break
        elif line.seq < expected or any(later.seq == expected for later in lines):
            what = f"is out of order: entry #{line.seq} where #{expected} belongs (lines were reordered)"
            problems.append(Problem(line.number, what))
            break
        else:
            missing = f"#{expected}" if line.seq == expected + 1 else f"#{expected} to #{line.seq - 1}"
            problems.append(Problem(line.number, f"entries {missing} were removed before this line"))
            break
        before_last, prev_hash, prev_seq = prev_hash, line_hash(line.raw), line.seq
    else:
        problems.extend(_check_end(head_file, count, prev_hash, prev_seq, before_last))
    return count, problems


def _check_end(head_file: Path, count: int, last_hash: str, last_seq: int, before_last: str) -> list[Problem]:
    """The head file records the last entry written: fewer or different lines mean a cut or an edit."""
    if not head_file.exists():
        what = "the head file is missing: whether lines were removed from the end cannot be checked"
        return [Problem(count, what)] if count else []
    head = _parse_head(head_file.read_bytes())
    if head is None:
        return [Problem(count, f"the head file {head_file} cannot be read")]
    if head.seq == last_seq and head.hash == last_hash:
        return []
    if head.seq > last_seq:
        missing = f"#{head.seq}" if head.seq == last_seq + 1 else f"#{last_seq + 1} to #{head.seq}"
        return [Problem(count, f"the log was truncated: entries {missing} after this line are missing")]
    if head.seq == last_seq:
        return [Problem(count, "was edited (the last line no longer matches the head file)")]
    # A crash between writing the line and the head leaves the head one entry behind.
    if head.seq == last_seq - 1 and head.hash == before_last:
        return []
    return [
        Problem(count, f"the head file says the log ends at entry #{head.seq}, but it ends at #{last_seq}")
    ]


# --- report ----------------------------------------------------------------------------------


def entries(path: Path) -> Iterator[dict[str, object]]:
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            try:
                entry = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(entry, dict):
                yield entry


DIMENSIONS = ("verdict", "action", "kind", "sender", "day")


def report(path: Path, since: date | None) -> dict[str, Counter[str]]:
    """Counts of decisions by verdict, kind, sender and day; every line (events too) by action."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    counts["decisions"] = Counter()
    for entry in entries(path):
        try:
            day = datetime.fromisoformat(str(entry["time"])).astimezone(UTC).date()
        except (KeyError, ValueError):
            continue
        if since is not None and day < since:
            continue
        action = str(entry.get("action", ""))
        counts["action"][action] += 1
        if action not in DECISIONS:
            continue
        counts["decisions"]["all"] += 1
        verdict = str(entry.get("verdict", ""))
        if entry.get("manager_exception"):
            verdict += " (manager-exception)"
        counts["verdict"][verdict] += 1
        counts["sender"][str(entry.get("envelope_sender") or "<>")] += 1
        counts["day"][day.isoformat()] += 1
        findings = entry.get("findings")
        for finding in findings if isinstance(findings, list) else ():
            if isinstance(finding, dict):
                counts["kind"][str(finding.get("kind"))] += 1
    return counts


def csv_cell(value: str) -> str:
    """A value for a CSV cell that a spreadsheet will not run as a formula.

    A spreadsheet runs a cell that starts with = + - @ as a formula, also behind a leading tab or
    line break (OWASP's list); a sender address is written by whoever sends mail.
    """
    return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r", "\n")) else value


# --- group commit ------------------------------------------------------------------------------


class GroupCommit:
    """Audit lines written by one thread, in order, each caller waiting for its own fsync.

    An fsync'd append costs milliseconds; one at a time it would cap the gateway at a few hundred
    decisions a second. Lines that arrive while a write is under way are handed over together,
    to `append_many` (one fsync for the batch).
    """

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="audit")
        self.pending: list[tuple[AuditLog, AuditLine, asyncio.Future[None]]] = []
        self.draining = False

    async def write(self, audit: AuditLog, record: AuditLine) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((audit, record, future))
        if not self.draining:
            self.draining = True
            asyncio.ensure_future(self._drain())
        await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                # A reload may have switched the log in between: one call per log, order kept.
                while batch:
                    audit = batch[0][0]
                    same = [item for item in batch if item[0] is audit]
                    batch = [item for item in batch if item[0] is not audit]
                    try:
                        errors = await loop.run_in_executor(
                            self.pool, _append_batch, audit, [r for _, r, _ in same]
                        )
                    except Exception as e:
                        errors = [e] * len(same)
                    for (_, _, future), error in zip(same, errors, strict=True):
                        if future.done():
                            continue
                        if error is None:
                            future.set_result(None)
                        else:
                            future.set_exception(error)
        finally:
            self.draining = False

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _append_batch(audit: AuditLog, records: list[AuditLine]) -> list[Exception | None]:
    if len(records) > 1:
        try:
            audit.append_many(records)
            return [None] * len(records)
        except Exception as e:
            return [e] * len(records)
    try:
        audit.append(records[0])
        return [None]
    except Exception as e:
        return [e]
