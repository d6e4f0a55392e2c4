"""The compliance console in a real browser: Playwright drives Debian's chromium against `brukarvakt console`.

The console runs as the real command in a subprocess on a free port of 127.0.0.1, over the world
of tests/gateway/console_world.py (decisions made by the real pipeline, held messages, a register of
made-up clients, a recording next hop). Every page the browser saw is scanned with the engine
afterwards: no identity number and no client name in clear, except on the break-the-glass page.
Screenshots of the overview and the quarantine go to a folder the test prints (not committed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from rules.engine import ScanContext, hits
from tests.conftest import TEST_KEY, TODAY
from tests.gateway.console_world import (
    CLIENT_NAME,
    COMPLIANCE,
    PASSWORD,
    PNR,
    PNR_DASHED,
    ConsoleProcess,
    World,
    make_world,
    running_console,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    yield from make_world(tmp_path)


@pytest.fixture()
def console(world: World) -> Iterator[tuple[ConsoleProcess, str]]:
    with running_console(world) as (process, base):
        yield process, base


def follow(page: Page, selector: str) -> None:
    """Click what navigates, and wait until the page it leads to has loaded (the clicks all do)."""
    with page.expect_navigation(wait_until="load"):
        page.click(selector)


def leaks(text: str, world: World) -> list[str]:
    found = [h.masked for h in hits(text, ScanContext(fingerprint_key=TEST_KEY, today=TODAY))]
    return found + [identifier for identifier in world.identifiers() if identifier in text]


def test_compliance_reviews_searches_releases_and_deletes_in_a_browser(
    world: World, console: tuple[ConsoleProcess, str], tmp_path: Path
) -> None:
    process, base = console
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nconsole screenshots: {shots}")
    seen: list[tuple[str, str]] = []  # (what, html) of every page shown, for the scan at the end
    in_clear: list[str] = []

    def saw(page: Page, what: str) -> str:
        html = page.content()
        seen.append((what, html))
        return html

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            # No sign-in, no page: every address leads to the sign-in form.
            for path in ("/", "/quarantine", f"/quarantine/{world.held[0]}", "/search"):
                page.goto(base + path)
                assert page.url == base + "/login"
                assert "Logga in" in saw(page, f"unsigned {path}")

            page.fill("input[name=name]", COMPLIANCE)
            page.fill("input[name=password]", "fel lösenord 99")
            follow(page, "button[type=submit]")
            assert "Fel namn eller lösenord" in saw(page, "wrong password")

            page.fill("input[name=name]", COMPLIANCE)
            page.fill("input[name=password]", PASSWORD)
            follow(page, "form[action='/login'] button[type=submit]")
            assert page.url == base + "/"
            chart = page.locator("#per-day svg rect")
            assert chart.count() >= 3  # a column part for each day and kind with decisions
            assert page.locator("#chain-state.ok").is_visible()
            saw(page, "overview")
            page.screenshot(path=str(shots / "overview.png"), full_page=False)

            # Search by a Skatteverket test number: its two decisions.
            follow(page, "nav a[href='/search']")
            page.fill("input[name=person]", PNR)
            follow(page, "form.search button[type=submit]")
            assert page.locator("tr.result").count() == 2
            assert page.url == base + "/search"  # a POST: the number is in no address
            html = saw(page, "search result")
            assert f"{PNR[2:8]}-****" in html

            # The quarantine: masked list, then one message masked.
            follow(page, "nav a[href='/quarantine']")
            assert page.locator("tr.held").count() == 3
            saw(page, "quarantine list")
            page.screenshot(path=str(shots / "quarantine.png"), full_page=False)
            follow(page, f"a[href='/quarantine/{world.held[0]}']")
            html = saw(page, "held message, masked")
            assert f"{PNR[2:8]}-****" in html and "i morgon" in html

            # Break-the-glass on the second: the number in clear after a typed reason.
            page.goto(f"{base}/quarantine/{world.held[1]}")
            saw(page, "held message 2, masked")
            page.fill("#clear input[name=reason]", "begäran från IVO, ärende 17")
            follow(page, "#clear button[type=submit]")
            in_clear.append(page.content())
            assert PNR in in_clear[-1]

            # Release the first: it reaches the recording next hop, saying who released it.
            page.goto(f"{base}/quarantine/{world.held[0]}")
            page.fill("#release input[name=reason]", "rättad, får skickas")
            before = len(world.sink.received)
            follow(page, "#release button[type=submit]")
            assert page.url == base + "/quarantine"
            assert "släpptes" in saw(page, "after release")
            released = world.sink.received[before:]
            assert len(released) == 1
            assert released[0][2].startswith(b"X-Brukarvakt-Verdict: released;")
            assert f"by={COMPLIANCE}".encode() in released[0][2].split(b"\r\n", 1)[0]

            # Delete the third (the client's name).
            page.goto(f"{base}/quarantine/{world.held[2]}")
            html = saw(page, "held message 3, masked")
            assert "I******* Ö*******" in html
            page.fill("#delete input[name=reason]", "felskickat, raderas")
            follow(page, "#delete button[type=submit]")
            assert "raderades" in saw(page, "after delete")
            assert page.locator("tr.held").count() == 1

            # Sign out: the pages are closed again.
            follow(page, "form.signout button[type=submit]")
            assert page.url == base + "/login"
            page.goto(base + "/")
            assert page.url == base + "/login"
            saw(page, "signed out")
        finally:
            browser.close()

    assert (shots / "overview.png").stat().st_size > 10_000
    assert (shots / "quarantine.png").stat().st_size > 10_000
    for what, html in seen:
        assert leaks(html, world) == [], what
    assert CLIENT_NAME not in "".join(html for _, html in seen)
    assert PNR_DASHED in in_clear[0] or PNR in in_clear[0]
    # The console's own log holds no identifier either.
    process.stop()
    assert leaks("".join(process.lines), world) == []
    audit = [json.loads(line) for line in world.config.audit.path.read_text(encoding="utf-8").splitlines()]
    actions = [line["action"] for line in audit]
    for action in (
        "console-login",
        "console-search",
        "console-view",
        "shown-in-clear",
        "released",
        "deleted",
    ):
        assert action in actions
    assert actions.count("console-logout") == 1
