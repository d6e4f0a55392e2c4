"""An audit record keeps what compliance counts, and drops what would name someone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from models.audit import AuditRecord
from models.findings import Finding, Location, Unscanned, Verdict
from tests.conftest import test_personnummer

WHEN = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def finding(part: str = "body:text/plain") -> Finding:
    return Finding(
        rule="BV001",
        kind="personnummer",
        severity="block",
        location=Location(part=part, line=2, column=5),
        masked="450312-****",
        fingerprint="ab" * 32,
        customer_number="10234",
        suggestion="Skriv kundnummer 10234 i stället för personnumret.",
        start=10,
        end=23,
    )


def record(**changes: object) -> AuditRecord:
    verdict = Verdict(
        verdict="block",
        reason="identifier: avsändaren är inte chef",
        findings=(finding(),),
        unscanned=(Unscanned(name="attachment:x.zip", content_type="application/zip", reason="encrypted"),),
    )
    args: dict[str, object] = dict(
        time=WHEN,
        message_id="<1@kommun.example>",
        authenticated_as="anna@kommun.example",
        envelope_sender="anna@kommun.example",
        recipients=["Bo@Example.org", "cy@example.org", "dag@annan.example"],
        verdict=verdict,
        action="rejected",
        size=1234,
        scan_seconds=0.0123,
    )
    args.update(changes)
    return AuditRecord.from_decision(**args)  # type: ignore[arg-type]


def test_only_the_recipients_domains_are_kept_once_each_in_lower_case() -> None:
    assert record().recipient_domains == ("annan.example", "example.org")


def test_a_finding_keeps_rule_kind_severity_location_fingerprint_and_customer_number_only() -> None:
    kept = record().findings[0].model_dump()
    assert kept == {
        "rule": "BV001",
        "kind": "personnummer",
        "severity": "block",
        "location": {"part": "body:text/plain", "line": 2, "column": 5},
        "fingerprint": "ab" * 32,
        "customer_number": "10234",
    }


def test_unreadable_parts_are_kept_by_content_type_only() -> None:
    assert record().unscanned == ("application/zip",)


def test_the_manager_exception_is_named_as_such() -> None:
    verdict = Verdict(
        verdict="pass", reason="manager-exception", manager_exception=True, findings=(finding(),)
    )
    r = record(verdict=verdict, action="delivered")
    assert (r.verdict, r.reason, r.manager_exception) == ("pass", "manager-exception", True)


def test_time_is_kept_in_utc_and_a_naive_time_is_refused() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=1)))
    assert record(time=local).time == WHEN
    with pytest.raises(ValidationError, match="time zone"):
        record(time=datetime(2026, 11, 26, 9, 30))


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValidationError):
        record(action="forwarded")


def test_masked_passes_every_free_text_field_through_redact_and_leaves_fingerprints() -> None:
    pnr = test_personnummer(0)
    r = record(
        message_id=f"<{pnr}@kommun.example>",
        recipients=[f"x@{pnr}.example"],
        verdict=Verdict(
            verdict="block", reason=f"identifier {pnr}", findings=(finding(f"attachment:{pnr}.pdf"),)
        ),
    )
    masked = r.masked(lambda text: text.replace(pnr, "MASKED"))
    assert pnr not in masked.model_dump_json()
    assert masked.message_id == "<MASKED@kommun.example>"
    assert masked.findings[0].location.part == "attachment:MASKED.pdf"
    assert masked.findings[0].fingerprint == "ab" * 32
    assert masked.findings[0].customer_number == "10234"


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"message_id": None, "authenticated_as": None},
        {"message_id": "", "authenticated_as": "", "envelope_sender": ""},
    ],
)
def test_masked_json_is_the_masked_copy_as_json_with_every_free_text_field_redacted(
    changes: dict[str, object],
) -> None:
    pnr = test_personnummer(1)
    fields: dict[str, object] = {
        "message_id": f"<{pnr}@kommun.example>",
        "authenticated_as": f"{pnr}@kommun.example",
        "envelope_sender": f"{pnr}@kommun.example",
        "recipients": [f"x@{pnr}.example", "bo@example.org"],
        "verdict": Verdict(
            verdict="block",
            reason=f"identifier {pnr}",
            findings=(finding(f"attachment:{pnr}.pdf"), finding()),
        ),
    }
    r = record(**{**fields, **changes})

    def redact(text: str) -> str:
        return text.replace(pnr, "MASKED")

    body = r.masked_json(redact)
    assert body == r.masked(redact).model_dump(mode="json")
    assert pnr not in str(body)


def test_an_unreadable_parts_content_type_is_the_senders_word_and_is_masked_like_other_free_text() -> None:
    pnr = test_personnummer(2)
    unread = Unscanned(name="attachment:(okänd)", content_type=f"application/x-{pnr}", reason="okänd filtyp")
    r = record(
        verdict=Verdict(verdict="block", reason="unscannable: avsändaren är inte chef", unscanned=(unread,))
    )

    def redact(text: str) -> str:
        return text.replace(pnr, "MASKED")

    body = r.masked_json(redact)
    assert body["unscanned"] == ["application/x-MASKED"]
    assert body == r.masked(redact).model_dump(mode="json")
