"""The audit log: a hash chain that shows edits, removals and reordering, reports, and no identifiers."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import GENESIS, AuditLog, line_hash, verify
from gateway.cli import main
from models.audit import AuditRecord
from models.config import Policy, Secure
from models.findings import Finding, Location, Segment, SenderContext, Unscanned, Verdict
from rules import engine, policy
from rules.engine import ScanContext
from tests.conftest import REPO, TEST_KEY, TODAY, test_personnummer

DAY1 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


def a_finding(kind: str = "personnummer") -> Finding:
    return Finding(
        rule="BV001",
        kind=kind,
        severity="block",  # type: ignore[arg-type]
        location=Location(part="body:text/plain", line=1, column=1),
        masked="450312-****",
        fingerprint="cd" * 32,
        suggestion="Skriv kundnummer.",
        start=0,
        end=13,
    )


def decision(
    n: int,
    *,
    when: datetime = DAY1,
    sender: str = "anna@kommun.example",
    blocked: bool = False,
    manager: bool = False,
) -> AuditRecord:
    if manager:
        verdict = Verdict(
            verdict="pass", reason="manager-exception", manager_exception=True, findings=(a_finding(),)
        )
    elif blocked:
        verdict = Verdict(
            verdict="block",
            reason="identifier: avsändaren är inte chef",
            findings=(a_finding(), a_finding("samordningsnummer")),
        )
    else:
        verdict = Verdict(verdict="pass", reason="clean")
    return AuditRecord.from_decision(
        time=when,
        message_id=f"<{n}@kommun.example>",
        authenticated_as=sender,
        envelope_sender=sender,
        recipients=["bo@example.org"],
        verdict=verdict,
        action="rejected" if blocked else "delivered",
        size=100 + n,
        scan_seconds=0.01,
    )


def write_log(path: Path, count: int) -> list[bytes]:
    log = AuditLog(path)
    for n in range(1, count + 1):
        log.append(decision(n))
    return path.read_bytes().splitlines()


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


# --- the chain -------------------------------------------------------------------------------


def test_each_line_holds_its_number_and_the_hash_of_the_line_before(tmp_path: Path) -> None:
    lines = write_log(tmp_path / "audit.jsonl", 3)
    entries = [json.loads(line) for line in lines]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev"] == GENESIS
    assert entries[1]["prev"] == line_hash(lines[0])
    assert entries[2]["prev"] == line_hash(lines[1])


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    write_log(tmp_path / "audit.jsonl", 5)
    assert verify(tmp_path / "audit.jsonl") == (5, [])


def test_an_edited_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    lines[2] = lines[2].replace(b'"verdict":"pass"', b'"verdict":"warn"')
    rewrite(path, lines)
    _, problems = verify(path)
    assert [(p.line, p.what.split(":")[0]) for p in problems] == [(3, "was edited")]


def test_an_edited_last_line_is_found_through_the_head_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 4)
    lines[3] = lines[3].replace(b'"size":104', b'"size":999')
    rewrite(path, lines)
    _, problems = verify(path)
    assert [p.line for p in problems] == [4]
    assert "edited" in problems[0].what


def test_a_removed_line_is_named_with_the_missing_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    del lines[1]
    rewrite(path, lines)
    _, problems = verify(path)
    assert len(problems) == 1
    assert problems[0].line == 2
    assert "entries #2 were removed" in problems[0].what


def test_reordered_lines_are_named_as_reordered(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    lines[2], lines[3] = lines[3], lines[2]
    rewrite(path, lines)
    _, problems = verify(path)
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "out of order" in problems[0].what and "reordered" in problems[0].what


def test_lines_cut_from_the_end_are_found_as_truncation(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 5)
    rewrite(path, lines[:3])
    _, problems = verify(path)
    assert len(problems) == 1
    assert problems[0].line == 3
    assert "truncated" in problems[0].what and "#4 to #5" in problems[0].what


def test_a_write_cut_off_by_a_crash_is_kept_reported_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 2)
    with path.open("ab") as f:
        f.write(b'{"seq":3,"prev":"' + line_hash(lines[1]).encode() + b'","time":"2026-')
    AuditLog(path).append(decision(4))
    count, problems = verify(path)
    assert count == 4
    assert [(p.line, p.what) for p in problems] == [(3, "is incomplete (a write was cut off)")]
    assert json.loads(path.read_bytes().splitlines()[3])["seq"] == 4


def test_a_missing_log_with_no_head_has_nothing_to_verify(tmp_path: Path) -> None:
    assert verify(tmp_path / "audit.jsonl") == (0, [])


def test_a_deleted_log_is_found_through_the_head_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 2)
    path.unlink()
    _, problems = verify(path)
    assert problems and "missing" in problems[0].what


def test_the_log_and_head_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 1)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "audit.jsonl.head").stat().st_mode & 0o777 == 0o600


def test_threads_appending_at_once_keep_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    threads = [
        threading.Thread(target=lambda t=t: [log.append(decision(t * 100 + i)) for i in range(25)])
        for t in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert verify(path) == (100, [])


def test_processes_appending_at_once_keep_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    script = (
        "import sys\n"
        "from tests.gateway.test_audit import decision\n"
        "from gateway.audit import AuditLog\n"
        "from pathlib import Path\n"
        "log = AuditLog(Path(sys.argv[1]))\n"
        "for i in range(40): log.append(decision(i))\n"
    )
    workers = [subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=REPO) for _ in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    count, problems = verify(path)
    assert (count, problems) == (160, [])
    assert [json.loads(line)["seq"] for line in path.read_bytes().splitlines()] == list(range(1, 161))


# --- the CLI ---------------------------------------------------------------------------------


@pytest.fixture()
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("audit: {path: audit.jsonl}\n", encoding="utf-8")
    return path


def test_audit_verify_says_ok_and_exits_0_for_an_intact_log(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_log(config_file.parent / "audit.jsonl", 3)
    assert main(["audit", "--config", str(config_file), "verify"]) == 0
    assert "ok, 3 entries" in capsys.readouterr().out


def test_audit_verify_names_the_line_and_exits_1(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file.parent / "audit.jsonl"
    lines = write_log(path, 4)
    del lines[2]
    rewrite(path, lines)
    assert main(["audit", "--config", str(config_file), "verify"]) == 1
    assert "line 3: entries #3 were removed before this line" in capsys.readouterr().out


def fill_for_report(path: Path) -> None:
    log = AuditLog(path)
    log.append(decision(1, when=DAY1))
    log.append(decision(2, when=DAY1, blocked=True))
    log.append(decision(3, when=DAY1 + timedelta(days=1), sender="bo@kommun.example", blocked=True))
    log.append(decision(4, when=DAY1 + timedelta(days=2), sender="chef@kommun.example", manager=True))


def test_audit_report_counts_by_verdict_kind_sender_and_day(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_for_report(config_file.parent / "audit.jsonl")
    assert main(["audit", "--config", str(config_file), "report"]) == 0
    out = capsys.readouterr().out
    assert "decisions: 4" in out
    section = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("by "):
            current = line[3:-1]
            section[current] = {}
        elif line.startswith("  ") and current:
            key, _, n = line.strip().rpartition("  ")
            section[current][key.strip()] = int(n)
    assert section["verdict"] == {"block": 2, "pass": 1, "pass (manager-exception)": 1}
    assert section["kind"] == {"personnummer": 3, "samordningsnummer": 2}
    assert section["sender"] == {"anna@kommun.example": 2, "bo@kommun.example": 1, "chef@kommun.example": 1}
    assert section["day"] == {"2026-11-24": 2, "2026-11-25": 1, "2026-11-26": 1}


def test_audit_report_since_and_csv(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill_for_report(config_file.parent / "audit.jsonl")
    assert (
        main(["audit", "--config", str(config_file), "report", "--since", "2026-11-25", "--format", "csv"])
        == 0
    )
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == "dimension,value,count"
    assert "day,2026-11-24,2" not in rows
    assert {
        "day,2026-11-25,1",
        "day,2026-11-26,1",
        "verdict,block,1",
        "sender,bo@kommun.example,1",
        "kind,personnummer,2",
    } <= set(rows)


def test_audit_report_refuses_a_bad_date_in_one_line(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--config", str(config_file), "report", "--since", "igår"]) == 2
    assert (
        capsys.readouterr().err.strip() == "brukarvakt: error: --since 'igår': expected a date as YYYY-MM-DD"
    )


# --- nothing in clear ------------------------------------------------------------------------


def test_a_decision_about_a_message_full_of_test_numbers_leaves_none_in_the_audit_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
    p0, p1, p2, p3 = (test_personnummer(i) for i in (10, 200, 1200, 1900))
    segments = [
        Segment(part="header:Subject", text=f"Angående {p0}"),
        Segment(part="body:text/plain", text=f"Brukare {p1[2:8]}-{p1[8:]} och {p2}."),
        Segment(part=f"attachment:journal_{p3}.pdf", text=f"pnr: {p3}"),
    ]
    findings = list(engine.scan(segments, ctx))
    assert len(findings) == 4
    sender = SenderContext(
        authenticated_as=f"{p0}@kommun.example",
        envelope_sender=f"{p0}@kommun.example",
        recipients=(f"bo@{p1}.example",),
    )
    unread = [
        Unscanned(name=f"attachment:{p2}.zip", content_type="application/zip", reason=f"{p2} is encrypted")
    ]
    verdict = policy.decide(findings, unread, sender, Policy(), Secure())
    verdict = verdict.model_copy(update={"reason": verdict.reason + f" ({p3})"})
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append(
        AuditRecord.from_decision(
            time=DAY1,
            message_id=f"<{p2}.{p1}@kommun.example>",
            authenticated_as=sender.authenticated_as,
            envelope_sender=sender.envelope_sender,
            recipients=list(sender.recipients),
            verdict=verdict,
            action="rejected",
            size=4000,
            scan_seconds=0.2,
        )
    )
    written = path.read_text(encoding="utf-8")
    assert engine.hits(written, ctx) == []
    for number in (p0, p1, p2, p3, p1[2:]):
        assert number not in written
    entry = json.loads(written)
    assert [f["fingerprint"] for f in entry["findings"]] == [f.fingerprint for f in findings]
    assert verify(path) == (1, [])
    config = tmp_path / "config.yaml"
    config.write_text("audit: {path: audit.jsonl}\n", encoding="utf-8")
    for command in (["verify"], ["report"], ["report", "--format", "csv"]):
        assert main(["audit", "--config", str(config), *command]) == 0
    printed = capsys.readouterr()
    assert engine.hits(printed.out + printed.err, ctx) == []
    assert "personnummer" in printed.out  # the report ran over the entry


def test_a_line_that_is_no_longer_json_is_named_as_edited(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 3)
    lines[1] = b"removed by hand"
    rewrite(path, lines)
    _, problems = verify(path)
    assert [(p.line, p.what) for p in problems] == [(2, "is not a valid audit entry (edited)")]


# Deeper than Python's JSON reader goes: it raises RecursionError, not a ValueError.
TOO_DEEP = b"[" * 100_000 + b"]" * 100_000


def test_a_line_nested_too_deep_to_read_is_named_as_edited_by_verify_and_skipped_by_report(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file.parent / "audit.jsonl"
    lines = write_log(path, 3)
    lines[1] = TOO_DEEP
    rewrite(path, lines)
    assert main(["audit", "--config", str(config_file), "verify"]) == 1
    assert main(["audit", "--config", str(config_file), "report"]) == 0
    printed = capsys.readouterr()
    assert "line 2: is not a valid audit entry (edited)" in printed.out
    assert "decisions: 2" in printed.out and printed.err == ""


def test_a_writer_goes_on_after_a_last_line_nested_too_deep_to_read(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 2)
    rewrite(path, [*lines, TOO_DEEP])
    AuditLog(path).append(decision(9))
    entry = json.loads(path.read_bytes().splitlines()[-1])
    assert entry["size"] == 109 and entry["prev"] == line_hash(TOO_DEEP)


def test_an_edited_sequence_number_is_named_as_an_edit_not_a_removal(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    lines = write_log(path, 4)
    lines[2] = lines[2].replace(b'"seq":3', b'"seq":9')
    rewrite(path, lines)
    _, problems = verify(path)
    assert [(p.line, p.what) for p in problems] == [(3, "was edited: it says entry #9, but follows #2")]


def test_a_sender_that_looks_like_a_formula_is_defused_in_csv(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    AuditLog(config_file.parent / "audit.jsonl").append(decision(1, sender="=cmd|'/c calc'!A1@evil.example"))
    assert main(["audit", "--config", str(config_file), "report", "--format", "csv"]) == 0
    assert "sender,'=cmd|'/c calc'!A1@evil.example,1" in capsys.readouterr().out.splitlines()


def test_text_that_is_not_utf8_is_written_and_loses_no_line_of_its_batch(tmp_path: Path) -> None:
    # An envelope address with a byte that is not UTF-8, as Python keeps it (surrogateescape).
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append_many([decision(1), decision(2, sender="anna\udcff@kommun.example"), decision(3)])
    entries = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [e["size"] for e in entries] == [101, 102, 103]
    assert entries[1]["envelope_sender"] == "anna\ufffd@kommun.example"
    assert verify(path) == (3, [])


@pytest.mark.parametrize("start", ["\t", "\r", "\n"])
def test_a_formula_behind_a_tab_or_a_line_break_is_defused_in_csv_too(
    config_file: Path, capsys: pytest.CaptureFixture[str], start: str
) -> None:
    # A spreadsheet skips a leading tab or line break and runs the formula behind it (OWASP).
    AuditLog(config_file.parent / "audit.jsonl").append(decision(1, sender=f"{start}=1+2@evil.example"))
    assert main(["audit", "--config", str(config_file), "report", "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out, newline="")))
    senders = [row[1] for row in rows if row[0] == "sender"]
    assert senders == [f"'{start}=1+2@evil.example"]


def test_a_batch_is_appended_in_order_as_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(decision(1))
    log.append_many([decision(n) for n in range(2, 7)])
    log.append_many([])
    log.append(decision(7))
    entries = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert [e["seq"] for e in entries] == list(range(1, 8))
    assert [e["size"] for e in entries] == [100 + n for n in range(1, 8)]
    assert verify(path) == (7, [])


def test_a_text_seen_again_is_masked_as_before_and_redacted_again_on_a_new_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gateway.audit

    asked: list[str] = []

    def redact(text: str) -> str:
        asked.append(text)
        return text.replace("anna", "MASKED")

    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, redact=redact)
    log.append(decision(1))
    log.append(decision(2))
    # The login and the sender of both decisions are one text: redacted once, remembered.
    assert asked.count("anna@kommun.example") == 1
    assert asked.count("<1@kommun.example>") == 1 and asked.count("<2@kommun.example>") == 1

    class Tomorrow(gateway.audit.date):
        @classmethod
        def today(cls) -> Tomorrow:
            return cls(2099, 1, 1)

    monkeypatch.setattr(gateway.audit, "date", Tomorrow)
    log.append(decision(3))
    assert asked.count("anna@kommun.example") == 2
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert {(entry["authenticated_as"], entry["envelope_sender"]) for entry in lines} == {
        ("MASKED@kommun.example", "MASKED@kommun.example")
    }
    assert verify(path) == (3, [])


def test_two_writers_taking_turns_keep_one_chain(tmp_path: Path) -> None:
    # Each remembers where its own last write ended; the other's lines in between must be read.
    path = tmp_path / "audit.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    for n in range(1, 7):
        (first if n % 3 else second).append(decision(n))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [entry["seq"] for entry in lines] == [1, 2, 3, 4, 5, 6]
    assert verify(path) == (6, [])


def test_a_log_moved_away_is_started_again_by_a_writer_that_wrote_before(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.append(decision(1))
    path.rename(tmp_path / "audit.jsonl.1")
    (tmp_path / "audit.jsonl.head").unlink()
    log.append(decision(2))
    [entry] = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert (entry["seq"], entry["prev"]) == (1, GENESIS)
    assert verify(path) == (1, [])
