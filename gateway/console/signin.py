"""Sign-in: console sessions, roles, CSRF tokens, throttled failures and the idle timeout.

The session cookie is signed (Starlette's SessionMiddleware, itsdangerous) and holds a random
session id and the CSRF token only; who is signed in is kept in this process (sessions.py).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.console.state import Console, console_of, render
from gateway.console.users import MAX_NAME, ConsoleUser
from gateway.logs import log
from models.audit import AuditEvent

Endpoint = Callable[[Request], Awaitable[Response]]


# ---------------------------------------------------------------- CSRF


async def csrf_ok(request: Request) -> bool:
    form = await request.form()
    sent = form.get("csrf")
    expected = request.session.get("csrf")
    return isinstance(sent, str) and isinstance(expected, str) and hmac.compare_digest(sent, expected)


# ---------------------------------------------------------------- who is signed in


async def event(console: Console, request: Request, action: str, **fields: object) -> None:
    """A console event in the audit chain; raises when it cannot be written (the action is not done)."""
    record = AuditEvent(
        time=datetime.now(UTC),
        action=action,  # type: ignore[arg-type]
        client_address=request.client.host if request.client else None,
        **fields,  # type: ignore[arg-type]
    )
    await console.audit(record)


async def signed_in(request: Request) -> ConsoleUser | None:
    console = console_of(request)
    sid = request.session.get("sid")
    session, expired = console.sessions.get(sid if isinstance(sid, str) else None, console.clock())
    if session is None:
        return None
    if expired:
        request.session.pop("sid", None)
        request.session["flash"] = (
            f"Du loggades ut efter {console.config.console.idle_timeout_minutes} minuter utan aktivitet."
        )
        await event(console, request, "console-logout", actor=session.user, detail="idle", result="ok")
        return None
    user = console.users.get(session.user)
    if user is None:  # removed from the users file since
        console.sessions.end(sid if isinstance(sid, str) else None)
        request.session.pop("sid", None)
        return None
    request.state.session = session
    return user


def requires(permission: str) -> Callable[[Endpoint], Endpoint]:
    """A page for signed-in users whose role has `permission`; a POST also needs the CSRF token."""

    def wrap(endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            user = await signed_in(request)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            request.state.user = user
            await console_of(request).refresh()
            if not user.may(permission):
                return render(request, "error.html", {"message": "Din roll får inte göra detta."}, 403)
            if request.method == "POST" and not await csrf_ok(request):
                return render(
                    request, "error.html", {"message": "Formuläret är för gammalt: ladda om sidan."}, 403
                )
            return await endpoint(request)

        guarded.__name__ = endpoint.__name__
        guarded.__doc__ = endpoint.__doc__
        return guarded

    return wrap


# ---------------------------------------------------------------- the pages


async def login_page(request: Request) -> Response:
    if await signed_in(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", {})


async def login(request: Request) -> Response:
    console = console_of(request)
    if not await csrf_ok(request):
        return render(request, "login.html", {"error": "Formuläret är för gammalt: försök igen."}, 403)
    form = await request.form()
    name = str(form.get("name", "")).strip().lower()
    password = str(form.get("password", ""))
    client = request.client.host if request.client else ""
    keys = [("name", name), ("address", client)]
    now = console.clock()
    # The name as typed goes into the audit, but not a megabyte of it: no user has a longer one,
    # and a part of it could be part of an identifier that masking no longer recognises.
    typed = name if len(name) <= MAX_NAME else f"({len(name)} characters)"
    wait = console.throttle.wait(keys, now)
    if wait > 0:
        if console.throttle.first_refusal(keys, now):
            await event(console, request, "console-login", login=typed, detail="throttled")
        else:
            log("console_login_throttled", "warning")
        message = f"För många misslyckade inloggningar. Försök igen om {int(wait) + 1} sekunder."
        return render(request, "login.html", {"error": message}, 429)
    user = await run_in_threadpool(console.users.verify, name, password) if name and password else None
    if user is None:
        console.throttle.failed(keys, now)
        await event(console, request, "console-login", login=typed, detail="wrong name or password")
        return render(request, "login.html", {"error": "Fel namn eller lösenord."}, 401)
    console.throttle.succeeded(keys)
    # A new session and a new token at sign-in: a token or id seen before it is worth nothing after.
    request.session.clear()
    request.session["sid"] = console.sessions.start(user.name, now)
    request.session["csrf"] = secrets.token_urlsafe(32)
    await event(console, request, "console-login", login=name, actor=user.name, detail=user.role, result="ok")
    return RedirectResponse("/", status_code=303)


@requires("read")
async def logout(request: Request) -> Response:
    console = console_of(request)
    user: ConsoleUser = request.state.user
    sid = request.session.get("sid")
    console.sessions.end(sid if isinstance(sid, str) else None)
    request.session.clear()
    await event(console, request, "console-logout", actor=user.name, result="ok")
    return RedirectResponse("/login", status_code=303)


def routes() -> list[Route]:
    return [
        Route("/login", login_page, methods=["GET"], name="login_page"),
        Route("/login", login, methods=["POST"], name="login"),
        Route("/logout", logout, methods=["POST"], name="logout"),
    ]
