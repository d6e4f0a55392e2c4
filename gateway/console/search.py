"""The audit search page: by date range, sender, decision, rule and person; results as a table or CSV.

Searches are POSTs: the person's identifier never stands in a URL (nor in a browser's history, a
proxy's log or a Referer), and the page answering shows only its masked form. The query kept for
the export holds fingerprints and filters, not the term.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, get_args

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.audit import csv_cell
from gateway.console.auditread import between, is_record
from gateway.console.figures import CATEGORIES, category
from gateway.console.person import PersonQuery, person_query
from gateway.console.signin import event, requires
from gateway.console.state import NO_STORE, console_of, render
from gateway.console.users import ConsoleUser
from gateway.errors import UserError
from models.findings import Kind
from rules.engine import ScanContext

KINDS: tuple[str, ...] = get_args(Kind)
CSV_COLUMNS = (
    "time",
    "seq",
    "action",
    "decision",
    "verdict",
    "reason",
    "envelope_sender",
    "authenticated_as",
    "recipient_domains",
    "kinds",
    "rules",
    "customer_numbers",
    "fingerprints",
    "quarantine_id",
    "actor",
    "note",
)


@dataclass(frozen=True)
class Search:
    first: date | None
    last: date | None
    sender: str
    decision: str
    kind: str
    person: PersonQuery | None

    def criteria(self) -> list[str]:
        """What was searched by, for the audit line: names of criteria, no values."""
        named = [
            ("date", self.first or self.last),
            ("sender", self.sender),
            ("decision", self.decision),
            ("rule", self.kind),
        ]
        out = [name for name, value in named if value]
        if self.person is not None:
            out.append(f"person ({self.person.kind})")
        return out

    def wants(self, entry: dict[str, object]) -> bool:
        if not is_record(entry):
            return False
        if self.decision and category(entry) != self.decision:
            return False
        if self.sender:
            who = f"{entry.get('envelope_sender') or ''} {entry.get('authenticated_as') or ''}".casefold()
            if self.sender not in who:
                return False
        if self.kind:
            findings = entry.get("findings")
            kinds = (
                {f.get("kind") for f in findings if isinstance(f, dict)}
                if isinstance(findings, list)
                else set()
            )
            if self.kind not in kinds:
                return False
        return self.person is None or self.person.matches(entry)


def _day(value: str, what: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UserError(f"{what}: skriv datumet som ÅÅÅÅ-MM-DD.") from None


def parse(form: FormData, ctx: ScanContext, today: date) -> Search:
    first = _day(str(form.get("from", "")), "Från")
    last = _day(str(form.get("to", "")), "Till")
    if first and last and first > last:
        raise UserError("Från-datumet ligger efter till-datumet.")
    decision = str(form.get("decision", ""))
    if decision and decision not in CATEGORIES:
        raise UserError("Okänt beslut.")
    kind = str(form.get("rule", ""))
    if kind and kind not in KINDS:
        raise UserError("Okänd regel.")
    term = str(form.get("person", ""))
    person = person_query(term, ctx, today) if term.strip() else None
    return Search(first, last, str(form.get("sender", "")).strip().casefold(), decision, kind, person)


def _findings(entry: dict[str, object]) -> list[dict[str, Any]]:
    findings = entry.get("findings")
    return [f for f in findings if isinstance(f, dict)] if isinstance(findings, list) else []


def row(moment: datetime, entry: dict[str, object]) -> dict[str, str]:
    """One audit line as the table and the CSV show it; every text in it was masked on writing."""
    findings = _findings(entry)
    domains = entry.get("recipient_domains")
    return {
        "time": moment.strftime("%Y-%m-%d %H:%M:%S"),
        "seq": str(entry.get("seq", "")),
        "action": str(entry.get("action", "")),
        "decision": category(entry),
        "verdict": str(entry.get("verdict", "")),
        "reason": str(entry.get("reason", "")),
        "envelope_sender": str(entry.get("envelope_sender") or "<>"),
        "authenticated_as": str(entry.get("authenticated_as") or ""),
        "recipient_domains": " ".join(str(d) for d in domains) if isinstance(domains, list) else "",
        "kinds": " ".join(sorted({str(f.get("kind")) for f in findings})),
        "rules": " ".join(sorted({str(f.get("rule")) for f in findings})),
        "customer_numbers": " ".join(
            sorted({str(f["customer_number"]) for f in findings if f.get("customer_number")})
        ),
        "fingerprints": " ".join(sorted({str(f.get("fingerprint")) for f in findings})),
        "quarantine_id": str(entry.get("quarantine_id") or ""),
        "actor": str(entry.get("actor") or ""),
        "note": str(entry.get("note") or ""),
    }


def results(path: Path, search: Search, limit: int) -> tuple[list[dict[str, str]], int]:
    """The first `limit` matching lines, and how many match in all (the log read once, a line at a time)."""
    shown: list[dict[str, str]] = []
    count = 0
    for moment, entry in between(path, search.first, search.last):
        if search.wants(entry):
            count += 1
            if len(shown) < limit:
                shown.append(row(moment, entry))
    return shown, count


def _csv(path: Path, search: Search) -> Iterator[str]:
    buffer = io.StringIO()
    # CRLF (RFC 4180): a cell with a lone CR or LF is then quoted; with "\n" a bare CR was
    # written as is, and a spreadsheet began a new row there, with whatever followed as a formula.
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for moment, entry in between(path, search.first, search.last):
        if search.wants(entry):
            values = row(moment, entry)
            writer.writerow([csv_cell(values[c]) for c in CSV_COLUMNS])
            if buffer.tell() > 64 * 1024:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _form_values(form: FormData, redact: Callable[[str], str]) -> dict[str, str]:
    """The filters to show again in the form, masked (an identifier typed as a sender too); never
    the person's term."""
    return {k: redact(str(form.get(k, ""))) for k in ("from", "to", "sender", "decision", "rule")}


def _page(request: Request, status: int = 200, **context: Any) -> Response:
    base: dict[str, Any] = {"categories": CATEGORIES, "kinds": KINDS, "values": {}, "rows": None}
    return render(request, "search.html", {**base, **context}, status)


@requires("search")
async def search_page(request: Request) -> Response:
    return _page(request)


@requires("search")
async def search(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    form = await request.form()
    today = datetime.now(UTC).date()
    try:
        spec = parse(form, console.stage.redactor.context(today), today)
    except UserError as e:
        return _page(request, 400, error=str(e), values=_form_values(form, console.stage.redact))
    rows, count = await run_in_threadpool(
        results, console.config.audit.path, spec, console.config.console.max_results
    )
    # Written before the answer: results not audited are not shown (a failure raises).
    await event(
        console,
        request,
        "console-search",
        actor=user.name,
        detail=f"by {', '.join(spec.criteria()) or 'nothing'}; {count} found",
        result="ok",
    )
    request.state.session.last_search = spec
    return _page(
        request,
        rows=rows,
        count=count,
        person=spec.person.described if spec.person else None,
        values=_form_values(form, console.stage.redact),
    )


@requires("search")
async def export(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    spec = request.state.session.last_search
    if not isinstance(spec, Search):
        return _page(request, 400, error="Sök först; sedan kan resultatet exporteras.")
    await event(
        console,
        request,
        "console-export",
        actor=user.name,
        detail=f"csv, by {', '.join(spec.criteria()) or 'nothing'}",
        result="ok",
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv(console.config.audit.path, spec),
        media_type="text/csv; charset=utf-8",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="brukarvakt-audit-{stamp}.csv"'},
    )


def routes() -> list[Route]:
    return [
        Route("/search", search_page, methods=["GET"], name="search_page"),
        Route("/search", search, methods=["POST"], name="search"),
        Route("/search/export", export, methods=["POST"], name="export"),
    ]
