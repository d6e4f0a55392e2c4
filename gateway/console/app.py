"""The console's web application: the page families' routes, the session cookie, and a guard around it all."""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import overview, quarantine, search, signin
from gateway.console.sessions import Sessions, Throttle
from gateway.console.state import TEMPLATES, Console
from gateway.console.users import ConsoleUsers
from gateway.logs import log
from gateway.pipeline import Pipeline, Stage
from gateway.quarantine import ID_PATTERN
from models.config import Config

STATIC = Path(__file__).with_name("static")
COOKIE = "brukarvakt_console"
# No script runs, nothing is framed, forms post only here, nothing is fetched from elsewhere.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
# The console's forms are a few short fields (a reason is at most 500 characters); Starlette
# would read 1,000 fields of 1 MB each into memory, for anyone who can reach the sign-in page.
MAX_BODY_BYTES = 64 * 1024
TOO_LARGE_PAGE = b"<!doctype html><meta charset=utf-8><title>F\xc3\xb6r stort</title><p>Formul\xc3\xa4ret \xc3\xa4r f\xc3\xb6r stort."
ERROR_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Fel</title>"
    b"<p>Ett internt fel uppstod. Inget har \xc3\xa4ndrats om inte sidan sa det. F\xc3\xb6rs\xc3\xb6k igen.</p>"
)


class _TooLarge(Exception):
    """A request body past MAX_BODY_BYTES."""


class Guard:
    """Security headers on every answer; a request body of bounded size; a failure logged by its
    type only (its text may quote mail)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        status = 0

        async def secured(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise _TooLarge
            return message

        try:
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > MAX_BODY_BYTES:
                raise _TooLarge
            await self.app(scope, bounded, secured)
        except _TooLarge:
            if status == 0:
                status = 413
                await secured(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"text/html; charset=utf-8"),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": TOO_LARGE_PAGE})
        except Exception as e:
            log("console_error", "error", method=scope["method"], error=type(e).__name__)
            if status == 0:
                status = 500
                await secured(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/html; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": ERROR_PAGE})
        finally:
            log(
                "console_request",
                method=scope["method"],
                path=loggable_path(scope),
                status=status,
                ms=round((time.monotonic() - started) * 1000, 1),
            )


def loggable_path(scope: Scope) -> str:
    """The path as the log may hold it: a route's own words and quarantine ids.

    Searches are POSTs, but anything can be typed into the address bar (a personnummer where an
    id belongs): any other value in a route's place is logged by its name, and a path that no
    route has is not logged.
    """
    if "endpoint" not in scope:
        return "(no route)"
    path = str(scope["path"])
    for name, value in scope.get("path_params", {}).items():
        if not ID_PATTERN.fullmatch(str(value)):
            path = path.replace(str(value), "{" + name + "}")
    return path


def build_console(config: Config, *, pipeline: Pipeline | None = None) -> Console:
    pipeline = pipeline or Pipeline(Stage.build(config, scan=False))
    templates = Jinja2Templates(directory=TEMPLATES)
    return Console(
        config=config,
        pipeline=pipeline,
        users=ConsoleUsers(config.console.users_file),
        templates=templates,
        sessions=Sessions(config.console.idle_timeout_minutes * 60),
        throttle=Throttle(config.console.max_failed_logins, config.console.lockout_seconds),
        tls=tls_files(config) is not None,
    )


def tls_files(config: Config) -> tuple[Path, Path] | None:
    """The gateway's certificate and key, which the console serves HTTPS with when both are set."""
    if config.tls.cert is None or config.tls.key is None:
        return None
    return config.tls.cert, config.tls.key


def build_app(console: Console) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        console.pipeline.close()
        console.chain.close()

    app = Starlette(
        routes=[
            *signin.routes(),
            *overview.routes(),
            *search.routes(),
            *quarantine.routes(),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[
            Middleware(Guard),
            Middleware(
                SessionMiddleware,
                # A new secret each start: the sessions live in this process only (sessions.py).
                secret_key=secrets.token_urlsafe(32),
                session_cookie=COOKIE,
                max_age=None,
                same_site="strict",
                https_only=console.tls,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.console = console
    return app
