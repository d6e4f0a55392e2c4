"""The quarantine store: held messages, each stored durably with a JSON sidecar.

Each held message is a folder `<quarantine.path>/<id>/` with `message.eml` (the bytes as
received) and `meta.json` (envelope, verdict with masked findings, time, size, SHA-256). The
folder is written whole under a temporary name, every file fsynced, then renamed into place:
an item is either complete or absent, never half there. Files are mode 0600, folders 0700.
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from gateway.audit import AuditLog
from gateway.delivery import fsync_dir
from gateway.errors import UserError
from models.audit import Action, AuditFinding, AuditRecord
from models.config import Config
from models.findings import Location, Verdict
from rules.engine import redact_numbers

MESSAGE = "message.eml"
META = "meta.json"
TMP_PREFIX = ".tmp-"
TRASH_PREFIX = ".del-"
# UTC time to the microsecond (ids sort in the order held), then a random part.
ID_PATTERN = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{8}$")
# A partial item left by a crash during store or delete is cleared by purge after this long.
STALE_PARTIAL = timedelta(days=1)


def _default_redact(text: str) -> str:
    return redact_numbers(text, date.today())


def _write_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@dataclass(frozen=True)
class Held:
    """A held message as its sidecar describes it."""

    id: str
    path: Path
    meta: dict[str, Any]

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.meta["time"])

    @property
    def mail_from(self) -> str:
        return str(self.meta["envelope"]["mail_from"])

    @property
    def rcpt_tos(self) -> list[str]:
        return [str(r) for r in self.meta["envelope"]["rcpt_tos"]]

    @property
    def verdict(self) -> dict[str, Any]:
        return dict(self.meta["verdict"])

    @property
    def secure_route(self) -> bool:
        return bool(self.verdict.get("secure_route"))

    def message(self) -> bytes:
        return (self.path / MESSAGE).read_bytes()

    def verified_message(self) -> bytes:
        """The held bytes, refused when they no longer match the checksum taken when held."""
        data = self.message()
        if hashlib.sha256(data).hexdigest() != self.meta.get("sha256"):
            raise UserError(f"the message of {self.id} does not match its sidecar's checksum; not released")
        return data

    def release_header(self, actor: str) -> bytes:
        """The one header the gateway adds to mail it hands on, saying who released this one."""
        kinds = list(dict.fromkeys(str(f["kind"]) for f in self.verdict.get("findings", [])))
        parts = ["released", f"id={self.id}"] + ([f"kinds={','.join(kinds)}"] if kinds else [])
        by = re.sub(r"[^\w.@+-]", "_", actor.encode("ascii", "replace").decode("ascii"))
        parts.append(f"by={by}")
        return ("X-Brukarvakt-Verdict: " + "; ".join(parts) + "\r\n").encode("ascii")


class QuarantineStore:
    def __init__(self, config: Config, redact: Callable[[str], str] | None = None) -> None:
        self.config = config
        self.root = config.quarantine.path
        self.redact = redact or _default_redact

    # --- storing -------------------------------------------------------------------------------

    def store(self, data: bytes, mail_from: str, rcpt_tos: list[str], verdict: Verdict) -> str:
        """Hold the message; returns its id once message and sidecar are on disk (fsync)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        now = datetime.now(UTC)
        item_id = f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}"
        tmp = self.root / f"{TMP_PREFIX}{item_id}"
        tmp.mkdir(mode=0o700)
        try:
            _write_file(tmp / MESSAGE, data)
            meta = {
                "id": item_id,
                "time": now.isoformat(),
                "envelope": {"mail_from": mail_from, "rcpt_tos": list(rcpt_tos)},
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "verdict": self._verdict(verdict),
            }
            _write_file(tmp / META, json.dumps(meta, ensure_ascii=False, indent=2).encode("utf-8") + b"\n")
            fsync_dir(tmp)
            os.rename(tmp, self.root / item_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(self.root)
        return item_id

    def _verdict(self, verdict: Verdict) -> dict[str, Any]:
        """The verdict with public finding fields only, every free text masked once more."""
        r = self.redact
        findings = []
        for f in verdict.findings:
            public = f.public()
            public["location"] = {**f.location.model_dump(), "part": r(f.location.part)}
            public["suggestion"] = r(f.suggestion)
            findings.append(public)
        return {
            "verdict": verdict.verdict,
            "reason": r(verdict.reason),
            "manager_exception": verdict.manager_exception,
            "unscannable": verdict.unscannable,
            "secure_route": verdict.secure_route,
            "findings": findings,
            "unscanned": [
                {"name": r(u.name), "content_type": r(u.content_type), "reason": r(u.reason)}
                for u in verdict.unscanned
            ],
        }

    # --- reading -------------------------------------------------------------------------------

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if ID_PATTERN.match(p.name) and p.is_dir())

    def get(self, item_id: str) -> Held:
        if not ID_PATTERN.match(item_id):
            raise UserError(f"{item_id!r} is not a quarantine id (see `brukarvakt quarantine list`)")
        path = self.root / item_id
        if not path.is_dir():
            raise UserError(f"no held message with id {item_id} in {self.root}")
        try:
            meta = json.loads((path / META).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise UserError(
                f"the sidecar of {item_id} cannot be read: {getattr(e, 'strerror', None) or e}"
            ) from None
        return Held(item_id, path, meta)

    def items(self) -> Iterator[Held]:
        for item_id in self.ids():
            try:
                yield self.get(item_id)
            except UserError:
                continue  # listed by `list` as unreadable; never silently removed

    # --- changing ------------------------------------------------------------------------------

    def remove(self, item_id: str) -> None:
        """Delete a held message: renamed away first, so a crash never leaves half an item listed."""
        path = self.root / item_id
        trash = self.root / f"{TRASH_PREFIX}{item_id}"
        os.rename(path, trash)
        fsync_dir(self.root)
        shutil.rmtree(trash)

    @contextlib.contextmanager
    def claimed(self, item_id: str) -> Iterator[Held]:
        """The item, locked against a second release, delete or purge running at the same time."""
        self.get(item_id)  # a clear error for an unknown id
        try:
            fd = os.open(self.root / item_id, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise UserError(f"no held message with id {item_id} in {self.root}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"{item_id} is being released or deleted by another command; try again"
                ) from None
            yield self.get(item_id)  # read again under the lock: it may be gone by now
        finally:
            os.close(fd)

    def delete(self, item_id: str, audit: AuditLog, *, actor: str, note: str | None = None) -> None:
        """Delete a held message, audited with who did it and why, before it is gone."""
        with self.claimed(item_id) as held:
            audit.append(self.audit_record(held, "deleted", actor=actor, note=note))
            self.remove(item_id)

    def purge(self, audit: AuditLog, *, actor: str, now: datetime | None = None) -> list[str]:
        """Delete what is older than `quarantine.retention_days`; returns the ids removed."""
        now = now or datetime.now(UTC)
        cutoff = now - timedelta(days=self.config.quarantine.retention_days)
        log = audit
        removed = []
        for item_id in self.ids():
            try:
                held = self.get(item_id)
                when = held.time
            except (UserError, KeyError, ValueError):
                held = None
                when = datetime.fromtimestamp((self.root / item_id).stat().st_mtime, UTC)
            if when >= cutoff:
                continue
            try:
                with self.claimed(item_id) if held is not None else contextlib.nullcontext(held) as claimed:
                    if claimed is not None:
                        log.append(self.audit_record(claimed, "purged", actor=actor))
                    self.remove(item_id)
            except UserError:
                continue  # being released or deleted right now, or gone already
            removed.append(item_id)
        self._clear_partials(now)
        return removed

    def _clear_partials(self, now: datetime) -> None:
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.name.startswith((TMP_PREFIX, TRASH_PREFIX)):
                age = now - datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if age > STALE_PARTIAL or path.name.startswith(TRASH_PREFIX):
                    shutil.rmtree(path, ignore_errors=True)

    def audit_record(
        self,
        held: Held,
        action: Action,
        data: bytes | None = None,
        *,
        actor: str,
        note: str | None = None,
    ) -> AuditRecord:
        verdict = held.verdict
        try:
            message_id = _message_id(data if data is not None else held.message())
        except OSError:
            message_id = None
        return AuditRecord(
            time=datetime.now(UTC),
            message_id=message_id,
            authenticated_as=None,
            envelope_sender=held.mail_from,
            recipient_domains=tuple(sorted({r.rpartition("@")[2].lower() for r in held.rcpt_tos})),
            verdict=verdict.get("verdict", "block"),
            reason=f"{verdict.get('reason', '')}; {action} from quarantine",
            manager_exception=bool(verdict.get("manager_exception")),
            action=action,
            findings=tuple(
                AuditFinding(
                    rule=f["rule"],
                    kind=f["kind"],
                    severity=f["severity"],
                    location=Location.model_validate(f["location"]),
                    fingerprint=f["fingerprint"],
                    customer_number=f.get("customer_number"),
                )
                for f in verdict.get("findings", [])
            ),
            unscanned=tuple(u.get("content_type", "") for u in verdict.get("unscanned", [])),
            size=int(held.meta.get("size", 0)),
            scan_seconds=0.0,
            quarantine_id=held.id,
            actor=actor,
            note=note,
        )


def _message_id(data: bytes) -> str | None:
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)
    value = str(headers.get("Message-ID", "")).strip()
    return value or None
