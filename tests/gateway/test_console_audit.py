"""The console's reading of the audit log: a day found by bisecting the file, figures kept up to date
from where the last reading stopped, and the search term turned into fingerprints."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from gateway.audit import AuditLog, entries
from gateway.console.auditread import BISECT_BLOCK, between, offset_of, when
from gateway.console.figures import DailyTally, category
from gateway.console.person import person_query
from gateway.errors import UserError
from models.audit import AuditEvent, AuditRecord
from models.findings import Finding, Location, Verdict
from rules.engine import ScanContext
from rules.fingerprint import fingerprint
from tests.conftest import TEST_KEY, TODAY, test_personnummer

START = date(2026, 9, 1)
PNR = test_personnummer(700)


def record(
    moment: datetime, verdict: str = "pass", action: str = "delivered", reason: str = "clean"
) -> AuditRecord:
    return AuditRecord.from_decision(
        time=moment,
        message_id=None,
        authenticated_as=None,
        envelope_sender="personal@kommun.example",
        recipients=["a@example.se"],
        verdict=Verdict(verdict=verdict, reason=reason),  # type: ignore[arg-type]
        action=action,  # type: ignore[arg-type]
        size=100,
        scan_seconds=0.001,
    )


def write_days(path: Path, days: int, per_day: int, first: date = START) -> None:
    log = AuditLog(path, redact=lambda text: text)
    for d in range(days):
        day = first + timedelta(days=d)
        log.append_many(
            [
                record(datetime.combine(day, time(), UTC) + timedelta(minutes=10 * i), *_kind(i))
                for i in range(per_day)
            ]
        )


def _kind(i: int) -> tuple[str, str, str]:
    return (
        ("pass", "delivered", "clean"),
        ("block", "rejected", "identifier: avsändaren är inte inloggad"),
        ("block", "quarantined", "identifier: avsändaren är inte inloggad"),
        ("warn", "delivered", "unscannable"),
    )[i % 4]


@pytest.fixture(scope="module")
def long_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    write_days(path, 90, 40)
    assert path.stat().st_size > 20 * BISECT_BLOCK  # long enough for the bisection to matter
    return path


def test_a_day_is_found_by_bisection_well_into_the_file(long_log: Path) -> None:
    since = datetime.combine(START + timedelta(days=60), time(), UTC)
    offset = offset_of(long_log, since)
    size = long_log.stat().st_size
    assert size * 0.5 < offset < size * 0.8  # neither the start of the file nor past the day
    with long_log.open("rb") as f:
        before = f.read(offset)
    assert before.endswith(b"\n")  # a line's start
    # Every line before the offset is before the day (nothing of it is skipped), and not by much.
    times = [when(json.loads(line)) for line in before.splitlines()]
    assert all(t is not None and t < since for t in times)
    assert since - max(t for t in times if t) < timedelta(days=2)


def test_a_range_read_from_the_bisected_offset_holds_exactly_the_days_lines(long_log: Path) -> None:
    first, last = START + timedelta(days=30), START + timedelta(days=32)
    expected = [e for e in entries(long_log) if first <= when(e).date() <= last]  # type: ignore[union-attr]
    got = [e for _, e in between(long_log, first, last)]
    assert got == expected and len(got) == 3 * 40


def test_an_open_range_and_an_absent_log_are_read_too(long_log: Path, tmp_path: Path) -> None:
    assert sum(1 for _ in between(long_log, None, START)) == 40
    assert list(between(tmp_path / "none.jsonl", None, None)) == []


def test_the_tally_counts_each_category_and_goes_on_from_where_it_stopped(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    today = START + timedelta(days=34)  # the 30 days shown: the 6th to the 35th written
    write_days(path, 35, 8, first=START)
    tally = DailyTally()
    first = tally.update(path, today)
    assert first.totals["pass"] == first.totals["block"] == first.totals["quarantine"] == 2 * 30
    assert first.totals["unscannable"] == 2 * 30  # warn for an unread part counts as unscannable
    assert sum(first.series["pass"]) == 60 and len(first.days) == 30
    assert first.blocked_senders == [("personal@kommun.example", 120)]
    position = tally.position
    write_days(path, 2, 4, first=START + timedelta(days=33))
    AuditLog(path).append(AuditEvent(time=datetime.now(UTC), action="console-login", result="ok"))
    again = tally.update(path, today)
    assert tally.position is not None and position is not None and tally.position.offset > position.offset
    fresh = DailyTally().update(path, today)
    assert again == fresh
    assert again.totals["pass"] == 60 + 2


def test_a_log_replaced_by_another_file_is_counted_afresh(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    today = START + timedelta(days=5)
    write_days(path, 5, 8)
    tally = DailyTally()
    assert tally.update(path, today).totals["pass"] == 10
    os.replace(path, tmp_path / "old.jsonl")
    write_days(path, 1, 4)
    assert tally.update(path, today).totals["pass"] == 1


def test_not_decided_is_its_own_category_never_a_block() -> None:
    entry = record(datetime.now(UTC), "block", "deferred", "not-decided: scan_timeout").model_dump(
        mode="json"
    )
    assert category(entry) == "not decided"


# ---------------------------------------------------------------- the term


CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)


@pytest.mark.parametrize(
    "written", [PNR, f"{PNR[2:8]}-{PNR[8:]}", f"{PNR[:8]}-{PNR[8:]}", f" {PNR[2:8]} {PNR[8:]} "]
)
def test_a_personnummer_written_any_way_gives_its_fingerprint_and_never_the_term(written: str) -> None:
    query = person_query(written, CTX, TODAY)
    assert query.kind == "personnummer"
    assert query.fingerprints == frozenset({fingerprint(TEST_KEY, PNR)})
    assert PNR[8:] not in query.described and query.described == f"personnummer {PNR[2:8]}-****"


def test_a_samordningsnummer_is_its_own_kind(samordningsnummer_list: list[str]) -> None:
    number = samordningsnummer_list[0]
    query = person_query(number, CTX, TODAY)
    assert query.kind == "samordningsnummer"
    assert query.fingerprints == frozenset({fingerprint(TEST_KEY, number)})


def test_a_short_number_is_a_customer_number() -> None:
    query = person_query("10234", CTX, TODAY)
    assert (query.kind, query.customer_numbers, query.fingerprints) == (
        "customer-number",
        frozenset({"10234"}),
        frozenset(),
    )


def test_a_name_without_a_register_is_fingerprinted_as_the_engine_does() -> None:
    query = person_query("  Tyra   Quarnlid ", CTX, TODAY)
    assert query.fingerprints == frozenset({fingerprint(TEST_KEY, "tyra quarnlid")})
    assert query.described == "namn T*** Q*******"


@pytest.mark.parametrize(
    ("term", "says"),
    [
        ("", "Skriv ett personnummer"),
        (PNR[:-1] + str((int(PNR[-1]) + 1) % 10), "inget giltigt personnummer"),
        ("Tyra 10234", "inte båda"),
    ],
)
def test_a_term_that_is_none_of_them_gets_one_clear_line(term: str, says: str) -> None:
    with pytest.raises(UserError, match=says):
        person_query(term, CTX, TODAY)


def test_a_query_matches_a_finding_by_fingerprint_or_customer_number() -> None:
    query = person_query(PNR, CTX, TODAY)
    finding = Finding(
        rule="id-number",
        kind="personnummer",
        severity="block",
        location=Location(part="body", line=1, column=1),
        masked="x",
        fingerprint=fingerprint(TEST_KEY, PNR),
        suggestion="",
        start=0,
        end=12,
    )
    held = AuditRecord.from_decision(
        time=datetime.now(UTC),
        message_id=None,
        authenticated_as=None,
        envelope_sender="a@b",
        recipients=[],
        verdict=Verdict(verdict="block", reason="identifier", findings=(finding,)),
        action="rejected",
        size=1,
        scan_seconds=0,
    ).model_dump(mode="json")
    assert query.matches(held)
    assert not person_query("10234", CTX, TODAY).matches(held)
