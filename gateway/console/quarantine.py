"""The quarantine pages: held messages listed and shown masked, shown in clear after a typed reason, released, deleted.

A held message is shown as the scan reads it (every header a person sees, every body part and
attachment as text) with each finding replaced by its masked form, found the same way the scan
found it. Showing it in clear (break-the-glass) needs a reason, which goes into the audit chain
with the user before the page is made. Release and delete go through the same calls as the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway import mail
from gateway.console.signin import event, requires
from gateway.console.state import Console, console_of, render
from gateway.console.users import ConsoleUser
from gateway.errors import UserError
from gateway.logs import domain
from gateway.quarantine import Held
from gateway.scanner import Scanner
from rules import engine, person_names

MIN_REASON = 5
MAX_REASON = 500


@dataclass(frozen=True)
class Part:
    name: str
    text: str


def age(held_at: datetime, now: datetime) -> str:
    seconds = max(0, int((now - held_at).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {rest // 60} min"


def summary(console: Console, held: Held, now: datetime) -> dict[str, Any]:
    """What the list and the message page show of a held message, all of it masked."""
    verdict = held.verdict
    redact = console.stage.redact
    return {
        "id": held.id,
        "held": held.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        "age": age(held.time, now),
        "sender": redact(held.mail_from) or "<>",
        "domains": sorted({redact(domain(r)) for r in held.rcpt_tos}),
        "reason": str(verdict.get("reason", "")),
        "findings": [
            {
                "kind": f.get("kind"),
                "masked": f.get("masked"),
                "where": (f.get("location") or {}).get("part", ""),
                "customer_number": f.get("customer_number"),
                "suggestion": f.get("suggestion", ""),
            }
            for f in verdict.get("findings", [])
        ],
        "unscanned": verdict.get("unscanned", []),
        "size": held.meta.get("size", 0),
    }


def read_parts(scanner: Scanner, data: bytes, masked: bool) -> tuple[list[Part], list[str]]:
    """The message's texts, each finding masked (or not), and the names of the parts that could not be read.

    Care context is the whole message's, as in the scan, so that a name the scan found in the body
    because the subject is about care is masked here too.
    """
    text = mail.extract(data, scanner.config.limits)
    if not masked:
        return [Part(s.part, s.text) for s in text.segments], [u.name for u in text.unscanned]
    ctx = scanner.context()
    care = person_names.message_care_context(text.segments) if ctx.person_spans is not None else None
    parts = []
    for segment in text.segments:
        here = (
            ctx
            if care is None
            else ctx.with_care_context(person_names.segment_care_context(segment.part, care))
        )
        parts.append(Part(engine.redact(segment.part, here), engine.redact(segment.text, here)))
    return parts, [scanner.redact(u.name) for u in text.unscanned]


def _held(console: Console, item_id: str) -> Held:
    return console.stage.quarantine.get(item_id)


def _reason(form: Any) -> str:
    reason = " ".join(str(form.get("reason", "")).split())
    if len(reason) < MIN_REASON:
        raise UserError(f"Skriv ett skäl (minst {MIN_REASON} tecken).")
    return reason[:MAX_REASON]


def _said(request: Request, error: UserError) -> str:
    """An error's words for a page: they quote the id as given, which may be anything typed."""
    return console_of(request).stage.redact(str(error))


def _not_found(request: Request, error: UserError) -> Response:
    return render(request, "error.html", {"message": _said(request, error)}, 404)


# ---------------------------------------------------------------- pages


@requires("read")
async def held_list(request: Request) -> Response:
    console = console_of(request)
    store = console.stage.quarantine
    now = datetime.now(UTC)

    def listing() -> tuple[list[dict[str, Any]], int]:
        items = [summary(console, held, now) for held in store.items()]
        return items, len(store.ids()) - len(items)

    items, unreadable = await run_in_threadpool(listing)
    return render(
        request,
        "quarantine_list.html",
        {"items": items, "unreadable": unreadable, "retention": console.config.quarantine.retention_days},
    )


@requires("read")
async def held_message(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    item_id = request.path_params["item_id"]
    try:
        held = _held(console, item_id)
        data = await run_in_threadpool(held.message)
    except UserError as e:
        return _not_found(request, e)
    parts, unread = await run_in_threadpool(read_parts, console.stage.redactor, data, True)
    await event(
        console, request, "console-view", actor=user.name, quarantine_id=item_id, detail="masked", result="ok"
    )
    context = {"item": summary(console, held, datetime.now(UTC)), "parts": parts, "unread": unread}
    return render(request, "quarantine_item.html", context)


@requires("clear")
async def in_clear(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    item_id = request.path_params["item_id"]
    form = await request.form()
    try:
        held = _held(console, item_id)
        reason = _reason(form)
        data = await run_in_threadpool(held.message)
    except UserError as e:
        request.session["flash"] = _said(request, e)
        return RedirectResponse(f"/quarantine/{item_id}", status_code=303)
    # Audited before anything is shown: a failure to write stops here (the page is not made).
    await event(
        console, request, "shown-in-clear", actor=user.name, quarantine_id=item_id, note=reason, result="ok"
    )
    parts, unread = await run_in_threadpool(read_parts, console.stage.redactor, data, False)
    context = {
        "item": summary(console, held, datetime.now(UTC)),
        "parts": parts,
        "unread": unread,
        "envelope": {"mail_from": held.mail_from, "rcpt_tos": held.rcpt_tos},
    }
    return render(request, "quarantine_clear.html", context)


@requires("release")
async def release(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    item_id = request.path_params["item_id"]
    form = await request.form()
    try:
        reason = _reason(form)
        delivery = await console.pipeline.release(item_id, actor=user.name, note=reason)
    except UserError as e:
        request.session["flash"] = _said(request, e)
        return RedirectResponse(f"/quarantine/{item_id}", status_code=303)
    reply = console.stage.redact(delivery.reply)
    if delivery.delivered:
        request.session["flash"] = f"{item_id} släpptes: nästa server svarade {reply}"
        return RedirectResponse("/quarantine", status_code=303)
    await event(
        console,
        request,
        "release-failed",
        actor=user.name,
        quarantine_id=item_id,
        note=reason,
        detail=str(delivery.code),
        result="failed",
    )
    request.session["flash"] = f"{item_id} är kvar i karantänen: nästa server svarade {reply}"
    return RedirectResponse(f"/quarantine/{item_id}", status_code=303)


@requires("delete")
async def delete(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    item_id = request.path_params["item_id"]
    form = await request.form()
    try:
        reason = _reason(form)
        await run_in_threadpool(
            console.stage.quarantine.delete, item_id, console.stage.audit, actor=user.name, note=reason
        )
    except UserError as e:
        request.session["flash"] = _said(request, e)
        return RedirectResponse(f"/quarantine/{item_id}", status_code=303)
    request.session["flash"] = f"{item_id} raderades."
    return RedirectResponse("/quarantine", status_code=303)


def routes() -> list[Route]:
    item = "/quarantine/{item_id}"
    return [
        Route("/quarantine", held_list, methods=["GET"], name="quarantine"),
        Route(item, held_message, methods=["GET"], name="held"),
        Route(f"{item}/clear", in_clear, methods=["POST"], name="in_clear"),
        Route(f"{item}/release", release, methods=["POST"], name="release"),
        Route(f"{item}/delete", delete, methods=["POST"], name="delete"),
    ]
