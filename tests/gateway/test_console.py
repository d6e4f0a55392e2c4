"""The compliance console over HTTP: sign-in, roles, CSRF, throttling, every page, break-the-glass, release and delete.

The world (tests/gateway/console_world.py) is made by the real pipeline: decisions in the audit
log, held messages, a register of made-up clients, and a next hop that records what it gets.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from gateway.audit import AuditLog, verify
from gateway.cli import main
from gateway.console.app import build_app, build_console
from gateway.console.state import Console
from models.audit import AuditRecord
from models.config import TLS
from models.findings import Verdict
from rules.engine import ScanContext, hits
from tests.conftest import TEST_KEY, TODAY
from tests.gateway.console_world import (
    CLIENT_NAME,
    CLIENT_NUMBER,
    CLIENT_PNR,
    COMPLIANCE,
    PASSWORD,
    PNR,
    PNR_DASHED,
    STAFF,
    VIEWER,
    World,
    add_user,
    csrf_of,
    make_world,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from make_world(tmp_path_factory.mktemp("console"))


@pytest.fixture()
def console(world: World) -> Console:
    console = build_console(world.config)
    console.clock = Clock()
    return console


@pytest.fixture()
def client(console: Console) -> Iterator[TestClient]:
    with TestClient(build_app(console), follow_redirects=False) as c:
        yield c


def sign_in(client: TestClient, name: str = COMPLIANCE, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"csrf": token, "name": name, "password": password})


def signed_in(client: TestClient, name: str = COMPLIANCE) -> str:
    """Signs in and returns the session's CSRF token."""
    assert sign_in(client, name).status_code == 303
    return csrf_of(client.get("/").text)


def audit_lines(world: World) -> list[dict[str, Any]]:
    text = world.config.audit.path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def no_identifier_in(text: str, world: World) -> None:
    found = [h.masked for h in hits(text, ScanContext(fingerprint_key=TEST_KEY, today=TODAY))]
    assert found == []
    for identifier in world.identifiers():
        assert identifier not in text


def held_ids(world: World) -> list[str]:
    root = world.config.quarantine.path
    return sorted(p.name for p in root.iterdir() if not p.name.startswith("."))


# ---------------------------------------------------------------- sign-in


@pytest.mark.parametrize(
    "path", ["/", "/search", "/quarantine", "/quarantine/20261126T100000000000Z-0a1b2c3d"]
)
def test_no_page_is_shown_without_a_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


@pytest.mark.parametrize("path", ["/search", "/search/export", "/logout"])
def test_no_post_is_acted_on_without_a_sign_in(client: TestClient, world: World, path: str) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post(path, data={"csrf": token, "person": PNR})
    assert response.status_code == 303 and response.headers["location"] == "/login"


def test_a_release_without_a_sign_in_leaves_the_message_held(client: TestClient, world: World) -> None:
    token = csrf_of(client.get("/login").text)
    item = world.held[-1]
    response = client.post(f"/quarantine/{item}/release", data={"csrf": token, "reason": "utan inloggning"})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert item in held_ids(world)


def test_a_wrong_password_is_refused_and_audited_with_the_name_only(client: TestClient, world: World) -> None:
    response = sign_in(client, COMPLIANCE, "fel lösenord 99")
    assert response.status_code == 401
    assert "Fel namn eller lösenord" in response.text
    last = audit_lines(world)[-1]
    assert last["action"] == "console-login" and last["result"] == "refused" and last["login"] == COMPLIANCE
    assert "fel lösenord" not in world.config.audit.path.read_text(encoding="utf-8")


def test_signing_in_sets_a_signed_http_only_strict_cookie_and_audits_it(
    client: TestClient, world: World
) -> None:
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # plain HTTP: a Secure cookie would never be sent back
    last = audit_lines(world)[-1]
    assert (last["action"], last["result"], last["actor"]) == ("console-login", "ok", COMPLIANCE)


def test_with_the_gateways_certificate_the_cookie_is_secure(world: World) -> None:
    config = world.config.model_copy(update={"tls": TLS(cert=Path("cert.pem"), key=Path("key.pem"))})
    console = build_console(config)
    assert console.tls
    with TestClient(build_app(console), base_url="https://testserver", follow_redirects=False) as c:
        cookie = sign_in(c).headers["set-cookie"].lower()
    assert "secure" in cookie and "samesite=strict" in cookie


def test_a_sign_in_without_the_forms_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"name": COMPLIANCE, "password": PASSWORD})
    assert response.status_code == 403
    assert client.get("/").status_code == 303  # not signed in


def test_after_too_many_failures_even_the_right_password_waits(
    client: TestClient, console: Console, world: World
) -> None:
    for _ in range(world.config.console.max_failed_logins):
        assert sign_in(client, COMPLIANCE, "fel lösenord 99").status_code == 401
    response = sign_in(client)
    assert response.status_code == 429
    assert "Försök igen om" in response.text
    assert audit_lines(world)[-1]["detail"] == "throttled"
    assert isinstance(console.clock, Clock)
    console.clock.now += world.config.console.lockout_seconds + 1
    assert sign_in(client).status_code == 303


def test_failures_from_one_address_throttle_every_name_tried_from_it(
    client: TestClient, world: World
) -> None:
    for i in range(world.config.console.max_failed_logins):
        sign_in(client, f"gissning{i}", "fel lösenord 99")
    assert sign_in(client, VIEWER).status_code == 429


def test_a_name_longer_than_any_users_is_not_written_whole_into_the_audit(
    client: TestClient, world: World
) -> None:
    size = world.config.audit.path.stat().st_size
    assert sign_in(client, "gissning-" * 5_000, "fel lösenord 99").status_code == 401
    assert world.config.audit.path.stat().st_size - size < 1000
    last = audit_lines(world)[-1]
    assert (last["action"], last["result"]) == ("console-login", "refused")


def test_tries_while_throttled_are_one_audit_line_per_lockout_not_one_per_try(
    client: TestClient, console: Console, world: World
) -> None:
    def throttled_lines() -> int:
        return sum(1 for line in audit_lines(world) if line.get("detail") == "throttled")

    before = throttled_lines()
    for i in range(world.config.console.max_failed_logins):
        sign_in(client, f"gissning{i}", "fel lösenord 99")
    for i in range(20):
        assert sign_in(client, f"ny-gissning{i}", "fel lösenord 99").status_code == 429
    assert throttled_lines() == before + 1
    assert isinstance(console.clock, Clock)
    console.clock.now += world.config.console.lockout_seconds + 1
    assert sign_in(client, "en-till", "fel lösenord 99").status_code == 401  # locked again, for longer
    assert sign_in(client, "och-en-till", "fel lösenord 99").status_code == 429
    assert throttled_lines() == before + 2


def test_a_form_larger_than_any_the_console_makes_is_refused_unread(client: TestClient, world: World) -> None:
    token = csrf_of(client.get("/login").text)
    lines = len(audit_lines(world))
    # Starlette reads up to 1,000 fields of 1 MB each; no form of the console holds 1 KB.
    big = {"csrf": token, "name": COMPLIANCE, "password": "x" * 200_000}
    assert client.post("/login", data=big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield f"csrf={token}&name={COMPLIANCE}&password=".encode()
        for _ in range(4):
            yield b"x" * 50_000

    form = {"content-type": "application/x-www-form-urlencoded"}
    assert client.post("/login", content=chunks(), headers=form).status_code == 413
    assert len(audit_lines(world)) == lines
    assert sign_in(client).status_code == 303  # an ordinary form still goes through


def test_an_idle_session_ends_and_the_next_request_goes_to_the_sign_in(
    client: TestClient, console: Console, world: World
) -> None:
    signed_in(client)
    assert isinstance(console.clock, Clock)
    console.clock.now += world.config.console.idle_timeout_minutes * 60 + 1
    response = client.get("/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert "utan aktivitet" in client.get("/login").text
    last = audit_lines(world)[-1]
    assert (last["action"], last["detail"], last["actor"]) == ("console-logout", "idle", COMPLIANCE)


def test_signing_out_ends_the_session_even_for_a_copy_of_the_cookie(client: TestClient, world: World) -> None:
    token = signed_in(client)
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf": token}).status_code == 303
    assert audit_lines(world)[-1]["action"] == "console-logout"
    client.cookies.clear()
    client.cookies.update(copied)
    assert client.get("/").status_code == 303


def test_a_removed_user_is_signed_out_at_the_next_request(
    client: TestClient, world: World, tmp_path: Path
) -> None:
    signed_in(client, VIEWER)
    assert main(["console-user", "remove", VIEWER, "--config", str(world.config_path)]) == 0
    try:
        assert client.get("/").status_code == 303
    finally:
        add_user(world.config, VIEWER, "viewer")


def test_every_answer_forbids_scripts_framing_and_caching(client: TestClient) -> None:
    signed_in(client)
    response = client.get("/quarantine")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# ---------------------------------------------------------------- roles and CSRF


def test_a_viewer_reads_the_overview_and_the_quarantine_but_may_not_search(
    client: TestClient, world: World
) -> None:
    signed_in(client, VIEWER)
    assert client.get("/").status_code == 200
    assert client.get("/quarantine").status_code == 200
    page = client.get(f"/quarantine/{world.held[0]}")
    assert page.status_code == 200
    assert 'action="/quarantine/' not in page.text  # no release, delete or clear forms
    assert client.get("/search").status_code == 403


@pytest.mark.parametrize("action", ["release", "delete", "clear"])
def test_a_viewer_can_neither_release_delete_nor_show_in_clear(
    client: TestClient, world: World, action: str
) -> None:
    token = signed_in(client, VIEWER)
    item = world.held[0]
    response = client.post(f"/quarantine/{item}/{action}", data={"csrf": token, "reason": "vill se allt"})
    assert response.status_code == 403
    assert PNR_DASHED not in response.text
    assert item in held_ids(world)


@pytest.mark.parametrize("action", ["release", "delete", "clear"])
def test_a_post_without_the_sessions_token_is_refused(client: TestClient, world: World, action: str) -> None:
    signed_in(client)
    item = world.held[0]
    response = client.post(
        f"/quarantine/{item}/{action}", data={"csrf": "forged", "reason": "från en annan sida"}
    )
    assert response.status_code == 403
    assert item in held_ids(world)
    assert PNR_DASHED not in response.text


def test_the_token_of_a_session_before_signing_in_is_worth_nothing_after(
    client: TestClient, world: World
) -> None:
    before = csrf_of(client.get("/login").text)
    sign_in(client)
    response = client.post("/search", data={"csrf": before, "person": PNR})
    assert response.status_code == 403


# ---------------------------------------------------------------- overview


def test_the_overview_counts_each_kind_of_decision_and_says_the_chain_is_intact(
    client: TestClient, world: World
) -> None:
    signed_in(client)
    page = client.get("/").text

    def total(category: str) -> int:
        found = re.search(rf'data-category="{category}"></span>{category}</td><td class="n">(\d+)<', page)
        assert found, category
        return int(found.group(1))

    assert (total("pass"), total("block"), total("quarantine"), total("unscannable")) == (2, 1, 3, 0)
    assert "<svg" in page and 'id="per-day"' in page
    assert 'class="ok" id="chain-state"' in page
    assert "id-number: personnummer" in page and "client-register: client_name" in page
    assert "personal@kommun.example" in page  # the sender with most blocks (staff, not client data)
    no_identifier_in(page, world)


def test_a_broken_chain_is_shown_in_red_with_its_line(world: World, tmp_path: Path) -> None:
    broken = tmp_path / "audit.jsonl"
    lines = world.config.audit.path.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"verdict":"pass"', '"verdict":"warn"')
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "audit.jsonl.head").write_bytes(
        world.config.audit.path.with_name("audit.jsonl.head").read_bytes()
    )
    config = world.config.model_copy(update={"audit": world.config.audit.model_copy(update={"path": broken})})
    with TestClient(build_app(build_console(config)), follow_redirects=False) as c:
        page = c.get("/").text if sign_in(c).status_code == 303 else ""
    assert 'class="broken" id="chain-state"' in page
    assert "Bruten vid rad 2:" in page


def test_an_edit_no_page_could_hold_still_shows_the_chain_broken_and_the_search_answers(
    world: World, tmp_path: Path
) -> None:
    edited = tmp_path / "audit.jsonl"
    lines = world.config.audit.path.read_text(encoding="utf-8").splitlines()
    entry = json.loads(lines[1])
    entry["reason"] = "\ud800" + str(entry["reason"])  # a lone surrogate: no UTF-8 page can hold it
    lines[1] = json.dumps(entry)
    lines.append("[" * 100_000 + "]" * 100_000)  # nested past what the JSON reader goes
    edited.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "audit.jsonl.head").write_bytes(
        world.config.audit.path.with_name("audit.jsonl.head").read_bytes()
    )
    config = world.config.model_copy(update={"audit": world.config.audit.model_copy(update={"path": edited})})
    with TestClient(build_app(build_console(config)), follow_redirects=False) as c:
        token = signed_in(c)
        overview = c.get("/")
        assert overview.status_code == 200
        assert 'class="broken" id="chain-state"' in overview.text and "Bruten vid rad 2:" in overview.text
        found = search(c, token)
        assert found.status_code == 200 and result_rows(found.text) >= 6
        exported = c.post("/search/export", data={"csrf": token})
        assert exported.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == result_rows(found.text)


# ---------------------------------------------------------------- search


def search(client: TestClient, token: str, **fields: str) -> Any:
    return client.post("/search", data={"csrf": token, **fields})


def result_rows(page: str) -> int:
    return page.count('<tr class="result">')


def test_a_personnummer_finds_both_decisions_written_either_way_without_showing_it(
    client: TestClient, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    token = signed_in(client)
    response = search(client, token, person=PNR)
    assert response.status_code == 200
    assert result_rows(response.text) == 2
    assert f"personnummer {PNR[2:8]}-****" in response.text
    no_identifier_in(response.text, world)
    last = audit_lines(world)[-1]
    assert last["action"] == "console-search" and last["actor"] == COMPLIANCE
    assert "2 found" in last["detail"] and "personnummer" in last["detail"]
    log = world.config.audit.path.read_text(encoding="utf-8") + capsys.readouterr().err
    for form in (PNR, PNR[2:], PNR_DASHED):
        assert form not in log


def test_the_10_digit_form_with_a_dash_finds_the_same_decisions(client: TestClient) -> None:
    token = signed_in(client)
    assert result_rows(search(client, token, person=PNR_DASHED).text) == 2


def test_a_clients_name_finds_the_decisions_about_her_by_name_and_by_number(
    client: TestClient, world: World
) -> None:
    token = signed_in(client)
    page = search(client, token, person=CLIENT_NAME.upper()).text
    # The held message with her name and the rejected one with her personnummer (customer number 20002).
    assert result_rows(page) == 2
    assert CLIENT_NUMBER in page
    no_identifier_in(page, world)


def test_a_customer_number_finds_the_same_decisions_as_the_name(client: TestClient) -> None:
    token = signed_in(client)
    assert result_rows(search(client, token, person=CLIENT_NUMBER).text) == 2


def test_her_personnummer_finds_her_decisions_through_the_register(client: TestClient) -> None:
    token = signed_in(client)
    assert result_rows(search(client, token, person=CLIENT_PNR).text) == 2


def test_a_number_shaped_like_a_personnummer_with_a_wrong_check_digit_is_named_as_such(
    client: TestClient,
) -> None:
    token = signed_in(client)
    wrong = PNR[:-1] + str((int(PNR[-1]) + 1) % 10)
    response = search(client, token, person=wrong)
    assert response.status_code == 400
    assert "inget giltigt personnummer" in response.text
    assert wrong not in response.text


def test_filters_narrow_the_result_by_decision_rule_sender_and_date(client: TestClient, world: World) -> None:
    token = signed_in(client)
    assert result_rows(search(client, token, decision="pass").text) == 2
    assert result_rows(search(client, token, decision="quarantine").text) == 3
    assert result_rows(search(client, token, rule="client_name").text) == 1
    assert result_rows(search(client, token, sender="PERSONAL@kommun").text) >= 6
    assert result_rows(search(client, token, sender="nobody@").text) == 0
    assert result_rows(search(client, token, **{"from": "2001-01-01", "to": "2001-12-31"}).text) == 0
    response = search(client, token, **{"from": "2026-13-01"})
    assert response.status_code == 400 and "ÅÅÅÅ-MM-DD" in response.text


def test_a_result_is_exported_as_csv_from_the_query_kept_not_from_the_term(
    client: TestClient, world: World
) -> None:
    token = signed_in(client)
    search(client, token, person=PNR)
    response = client.post("/search/export", data={"csrf": token})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 2 and all(r["decision"] == "quarantine" for r in rows)
    assert all("personnummer" in r["kinds"] for r in rows)
    no_identifier_in(response.text, world)
    assert audit_lines(world)[-1]["action"] == "console-export"


def test_no_cell_of_an_export_starts_a_formula_not_even_after_a_line_break(
    world: World, tmp_path: Path
) -> None:
    log = tmp_path / "audit.jsonl"
    log.write_bytes(world.config.audit.path.read_bytes())
    log.with_name("audit.jsonl.head").write_bytes(
        world.config.audit.path.with_name("audit.jsonl.head").read_bytes()
    )
    record = AuditRecord.from_decision(
        time=datetime.now(UTC),
        message_id=None,
        authenticated_as=None,
        envelope_sender="\t=1+2@evil.example",
        recipients=["m@example.se"],
        verdict=Verdict(verdict="block", reason="identifier: avsändaren är inte chef"),
        action="released",
        size=10,
        scan_seconds=0.0,
    ).model_copy(update={"actor": "ops", "note": "godkänd\r=1+2"})
    AuditLog(log).append(record)
    config = world.config.model_copy(update={"audit": world.config.audit.model_copy(update={"path": log})})
    with TestClient(build_app(build_console(config)), follow_redirects=False) as c:
        token = signed_in(c)
        assert search(c, token, decision="block").status_code == 200
        exported = c.post("/search/export", data={"csrf": token}).text
    rows = list(csv.reader(io.StringIO(exported, newline="")))
    assert all(len(row) == len(rows[0]) for row in rows)
    assert [row for row in rows if row[rows[0].index("actor")] == "ops"] != []
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n")), cell


def test_an_export_before_any_search_says_so(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/search/export", data={"csrf": token})
    assert response.status_code == 400 and "Sök först" in response.text


# ---------------------------------------------------------------- quarantine


def test_the_quarantine_list_shows_age_sender_domains_reasons_and_masked_findings(
    client: TestClient, world: World
) -> None:
    signed_in(client, VIEWER)
    page = client.get("/quarantine").text
    for item in world.held:
        assert item in page
    assert "example.se" in page and "personnummer" in page and f"{PNR[2:8]}-****" in page
    assert "client_name" in page and "I******* Ö*******" in page
    no_identifier_in(page, world)


def test_a_held_message_is_shown_with_every_finding_masked_and_the_view_audited(
    client: TestClient, world: World
) -> None:
    signed_in(client)
    item = world.held[2]  # the client's name in the body
    page = client.get(f"/quarantine/{item}").text
    assert "behöver hjälp med inköpen" in page and "I******* Ö*******" in page
    no_identifier_in(page, world)
    last = audit_lines(world)[-1]
    assert (last["action"], last["quarantine_id"], last["actor"]) == ("console-view", item, COMPLIANCE)


def test_a_recipient_without_a_domain_or_with_a_number_for_one_is_never_shown_in_clear(
    world: World, tmp_path: Path
) -> None:
    quarantine = world.config.quarantine.model_copy(update={"path": tmp_path / "held"})
    console = build_console(world.config.model_copy(update={"quarantine": quarantine}))
    verdict = Verdict(verdict="block", reason="identifier: avsändaren är inte chef")
    # A number pasted into the recipient field reaches the gateway as an address with no domain.
    item = console.stage.quarantine.store(
        b"Subject: Schema\r\n\r\nHej\r\n", STAFF, [PNR, f"bo@{PNR_DASHED}.example", "m@example.se"], verdict
    )
    with TestClient(build_app(console), follow_redirects=False) as c:
        signed_in(c)
        for path in ("/quarantine", f"/quarantine/{item}"):
            page = c.get(path).text
            assert "example.se" in page
            no_identifier_in(page, world)


def test_an_unknown_held_message_is_a_404(client: TestClient) -> None:
    signed_in(client)
    assert client.get("/quarantine/20010101T000000000000Z-00000000").status_code == 404
    assert client.get("/quarantine/..%2Fconfig").status_code == 404


def test_an_identifier_typed_into_the_address_is_neither_logged_nor_shown(
    client: TestClient, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    token = signed_in(client)
    capsys.readouterr()
    pages = [
        client.get(f"/quarantine/{PNR_DASHED}"),
        client.get(f"/{PNR}"),
        client.post(f"/quarantine/{PNR}/clear", data={"csrf": token, "reason": "letar efter en brukare"}),
    ]
    assert [page.status_code for page in pages] == [404, 404, 303]
    shown = pages[0].text + pages[1].text + client.get(f"/quarantine/{PNR}").text
    logged = capsys.readouterr().err
    assert '"event": "console_request"' in logged and world.held[0] not in logged
    no_identifier_in(shown + logged, world)
    client.get(f"/quarantine/{world.held[0]}")
    assert f'"path": "/quarantine/{world.held[0]}"' in capsys.readouterr().err  # an id is no identifier


def test_show_in_clear_needs_a_typed_reason(client: TestClient, world: World) -> None:
    token = signed_in(client)
    item = world.held[0]
    response = client.post(f"/quarantine/{item}/clear", data={"csrf": token, "reason": " "})
    assert response.status_code == 303 and response.headers["location"] == f"/quarantine/{item}"
    assert "Skriv ett skäl" in client.get(f"/quarantine/{item}").text
    assert not any(line["action"] == "shown-in-clear" for line in audit_lines(world))


def test_show_in_clear_shows_the_identifier_after_auditing_who_and_why(
    client: TestClient, world: World
) -> None:
    token = signed_in(client)
    item = world.held[0]
    reason = f"begäran från IVO om {PNR_DASHED}"
    response = client.post(f"/quarantine/{item}/clear", data={"csrf": token, "reason": reason})
    assert response.status_code == 200
    assert PNR_DASHED in response.text
    assert response.headers["cache-control"] == "no-store"
    event = [line for line in audit_lines(world) if line["action"] == "shown-in-clear"][-1]
    assert (event["actor"], event["quarantine_id"], event["result"]) == (COMPLIANCE, item, "ok")
    assert event["note"].startswith("begäran från IVO om") and PNR_DASHED not in event["note"]


def test_a_release_goes_to_the_next_hop_saying_who_released_it_and_is_audited(
    client: TestClient, world: World
) -> None:
    token = signed_in(client)
    item = world.held[1]
    before = len(world.sink.received)
    response = client.post(f"/quarantine/{item}/release", data={"csrf": token, "reason": "rättad av chefen"})
    assert response.status_code == 303 and response.headers["location"] == "/quarantine"
    assert item not in held_ids(world)
    delivered = world.sink.received[before:]
    assert len(delivered) == 1
    header = delivered[0][2].split(b"\r\n", 1)[0].decode()
    assert header.startswith("X-Brukarvakt-Verdict: released;") and f"id={item}" in header
    assert header.endswith(f"by={COMPLIANCE}")
    line = [x for x in audit_lines(world) if x["action"] == "released"][-1]
    assert (line["actor"], line["note"], line["quarantine_id"]) == (COMPLIANCE, "rättad av chefen", item)
    assert "släpptes" in client.get("/quarantine").text


def test_a_release_the_next_hop_refuses_keeps_the_message_and_says_so(
    client: TestClient, world: World
) -> None:
    token = signed_in(client)
    item = world.held[0]
    world.sink.data_reply = "554 5.7.1 nej tack"
    try:
        response = client.post(f"/quarantine/{item}/release", data={"csrf": token, "reason": "försök släppa"})
    finally:
        world.sink.data_reply = "250 2.0.0 Ok: queued as 4XyZ"
    assert response.status_code == 303 and response.headers["location"] == f"/quarantine/{item}"
    assert item in held_ids(world)
    last = audit_lines(world)[-1]
    assert (last["action"], last["result"], last["detail"]) == ("release-failed", "failed", "554")
    assert "kvar i karantänen" in client.get(f"/quarantine/{item}").text


def test_a_delete_with_a_reason_removes_the_message_and_is_audited(client: TestClient, world: World) -> None:
    token = signed_in(client)
    item = world.held[2]
    response = client.post(
        f"/quarantine/{item}/delete", data={"csrf": token, "reason": "felskickat, raderas"}
    )
    assert response.status_code == 303
    assert item not in held_ids(world)
    line = [x for x in audit_lines(world) if x["action"] == "deleted"][-1]
    assert (line["actor"], line["note"], line["quarantine_id"]) == (COMPLIANCE, "felskickat, raderas", item)


def test_every_console_action_kept_the_audit_chain_whole(world: World) -> None:
    count, problems = verify(world.config.audit.path)
    assert problems == [] and count > 10
    actions = {line["action"] for line in audit_lines(world)}
    assert {"console-login", "console-search", "console-view"} <= actions


# ---------------------------------------------------------------- the commands


def test_console_user_add_list_remove(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("console: {users_file: users}\n", encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("ett långt lösenord\n"))
    assert main(["console-user", "add", "Karin", "--role", "viewer", "--config", str(config)]) == 0
    assert main(["console-user", "list", "--config", str(config)]) == 0
    assert "karin\tviewer" in capsys.readouterr().out
    assert (tmp_path / "users").stat().st_mode & 0o777 == 0o600
    assert main(["console-user", "remove", "karin", "--config", str(config)]) == 0
    assert main(["console-user", "remove", "karin", "--config", str(config)]) == 2
    assert "no console user karin" in capsys.readouterr().err


def test_a_short_password_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("console: {users_file: users}\n", encoding="utf-8")
    monkeypatch.setattr("sys.stdin", io.StringIO("kort\n"))
    assert main(["console-user", "add", "karin", "--role", "compliance", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least 12 characters" in err
    assert not (tmp_path / "users").exists()


def test_the_console_does_not_start_without_a_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("console: {users_file: users, listen: {host: 127.0.0.1, port: 0}}\n", encoding="utf-8")
    assert main(["console", "--config", str(config)]) == 2
    assert "console-user add" in capsys.readouterr().err


def test_the_search_form_asks_the_browser_to_remember_nothing_typed_into_it(client: TestClient) -> None:
    signed_in(client)
    page = client.get("/search").text
    form = re.search(r'<form method="post" action="/search"[^>]*>', page)
    assert form and 'autocomplete="off"' in form.group(0)


def test_an_identifier_typed_as_a_sender_is_shown_again_masked(client: TestClient, world: World) -> None:
    token = signed_in(client)
    page = search(client, token, sender=PNR_DASHED).text
    assert result_rows(page) == 0
    no_identifier_in(page, world)
