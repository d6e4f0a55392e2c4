"""What every console page shares: the config, the stores (through the pipeline's stage), sessions, templates."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from gateway.console.figures import ChainState, DailyTally
from gateway.console.sessions import Sessions, Throttle
from gateway.console.users import ConsoleUsers
from gateway.pipeline import Pipeline, Stage
from models.audit import AuditEvent, AuditRecord
from models.config import Config

TEMPLATES = Path(__file__).with_name("templates")
# Every page holds or leads to data about held mail: never kept by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store"}


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_ino, st.st_size)


@dataclass
class Console:
    config: Config
    pipeline: Pipeline
    users: ConsoleUsers
    templates: Jinja2Templates
    sessions: Sessions
    throttle: Throttle
    tls: bool
    # Seconds, for the idle timeout and the sign-in throttle (a test moves it on instead of waiting).
    clock: Callable[[], float] = time.monotonic
    tally: DailyTally = field(default_factory=DailyTally)
    chain: ChainState = field(default_factory=ChainState)
    _register: tuple[int, int, int] | None = None
    _reloading: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._register = _file_stamp(self.config.register.path)

    @property
    def stage(self) -> Stage:
        return self.pipeline.stage

    async def refresh(self) -> None:
        """A register imported since (`brukarvakt register import`) is used from the next request on."""
        stamp = _file_stamp(self.config.register.path)
        if stamp == self._register:
            return
        async with self._reloading:
            if stamp == self._register:
                return
            stage = await asyncio.to_thread(Stage.build, self.config, scan=False)
            self.pipeline.reload(stage)
            self._register = stamp

    async def audit(self, record: AuditEvent | AuditRecord) -> None:
        """One line in the audit chain, flushed before this returns; raises when it cannot be written."""
        await self.pipeline.audit_writer.write(self.stage.audit, record)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    console = console_of(request)
    user = getattr(request.state, "user", None)
    page = {
        "user": user,
        "csrf": csrf_token(request),
        "flash": request.session.pop("flash", None),
        **context,
    }
    return console.templates.TemplateResponse(request, template, page, status_code=status, headers=NO_STORE)
