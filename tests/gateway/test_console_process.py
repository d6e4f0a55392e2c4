"""The compliance console as the real command (`brukarvakt console`, uvicorn and all) attacked over HTTP.

What only the real server shows: which client address it believes, and what its own log holds.
Numbers are Skatteverket's test numbers.
"""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gateway.console_world import (
    PNR,
    PNR_DASHED,
    ConsoleProcess,
    World,
    csrf_of,
    make_world,
    running_console,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("console-process"))


@pytest.fixture(scope="module")
def console(world: World) -> Iterator[tuple[ConsoleProcess, str]]:
    with running_console(world) as running:
        yield running


class Browser:
    """A client with its own cookies, as a browser would be."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, headers=headers or {}))

    def _open(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return int(response.status), response.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8")


def audit_lines(world: World) -> list[dict[str, Any]]:
    text = world.config.audit.path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def failed_sign_in(base: str, name: str, forwarded_for: str) -> int:
    browser = Browser(base)
    token = csrf_of(browser.get("/login")[1])
    status, _ = browser.post(
        "/login",
        {"csrf": token, "name": name, "password": "fel lösenord 99"},
        headers={
            "X-Forwarded-For": forwarded_for,
            "X-Real-IP": forwarded_for,
            "Forwarded": f"for={forwarded_for}",
        },
    )
    return status


def test_a_client_cannot_pass_as_other_addresses_to_escape_the_throttle_or_to_write_the_audit(
    world: World, console: tuple[ConsoleProcess, str]
) -> None:
    _, base = console
    limit = world.config.console.max_failed_logins
    before = len(audit_lines(world))
    # Each guess under another user name and another address claimed in a proxy's header, one
    # of them an identifier.
    claimed = [PNR_DASHED, *(f"198.51.100.{i}" for i in range(1, limit))]
    statuses = [failed_sign_in(base, f"gissning{i}", address) for i, address in enumerate(claimed)]
    assert statuses == [401] * limit
    assert failed_sign_in(base, "gissning-till", "198.51.100.99") == 429
    # The audit names the connection's own address, never one a client wrote.
    logins = [line for line in audit_lines(world)[before:] if line["action"] == "console-login"]
    assert len(logins) == limit + 1
    assert {line["client_address"] for line in logins} == {"127.0.0.1"}
    written = world.config.audit.path.read_text(encoding="utf-8")
    assert PNR_DASHED not in written and PNR not in written


def test_the_consoles_own_log_holds_no_identifier_typed_into_an_address(
    world: World, console: tuple[ConsoleProcess, str]
) -> None:
    process, base = console

    def requests_logged() -> int:
        return sum('"console_request"' in line for line in process.lines)

    before = requests_logged()
    browser = Browser(base)
    for path in (f"/quarantine/{PNR}", f"/{PNR_DASHED}", f"/search?person={PNR}"):
        browser.get(path)
    while requests_logged() < before + 3:
        process.wait_for("console_request")
    logged = "".join(process.lines)
    assert PNR not in logged and PNR_DASHED not in logged and PNR[2:] not in logged
