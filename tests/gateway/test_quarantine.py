"""Held messages: stored whole and durably, listed and shown masked, released in lockstep, purged."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.audit import verify
from gateway.cli import main
from gateway.quarantine import MESSAGE, META, QuarantineStore
from models.config import Config, Policy, Secure
from models.findings import Segment, SenderContext, Unscanned, Verdict
from rules import engine, policy
from rules.engine import ScanContext
from tests.conftest import REPO, TEST_KEY, TODAY, test_personnummer
from tests.gateway.test_delivery import Sink, free_port, running_sink

CTX = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
P_SUBJECT, P_BODY, P_FILE = test_personnummer(20), test_personnummer(700), test_personnummer(1500)
NUMBERS = (P_SUBJECT, P_BODY, P_FILE, P_BODY[2:])
ORIGINAL = (
    f"From: anna@kommun.example\r\nTo: bo@example.org\r\nSubject: Brukare {P_SUBJECT}\r\n"
    f"Message-ID: <q1@kommun.example>\r\n\r\nHej, det gäller {P_BODY[2:8]}-{P_BODY[8:]}.\r\n"
).encode()


def blocked_verdict(secure_route: bool = False) -> Verdict:
    segments = [
        Segment(part="header:Subject", text=f"Brukare {P_SUBJECT}"),
        Segment(part="body:text/plain", text=f"Hej, det gäller {P_BODY[2:8]}-{P_BODY[8:]}."),
        Segment(part=f"attachment:journal_{P_FILE}.txt", text=P_FILE),
    ]
    findings = list(engine.scan(segments, CTX))
    unread = [Unscanned(name=f"attachment:{P_FILE}.zip", content_type="application/zip", reason="encrypted")]
    verdict = policy.decide(
        findings,
        unread,
        SenderContext(envelope_sender="anna@kommun.example", recipients=("bo@example.org",)),
        Policy(),
        Secure(),
    )
    assert verdict.verdict == "block"
    return verdict.model_copy(update={"secure_route": secure_route})


def no_identifiers(text: str) -> None:
    assert engine.hits(text, CTX) == []
    for number in NUMBERS:
        assert number not in text


@pytest.fixture()
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def write_config(folder: Path, port: int, **extra: str) -> Path:
    lines = [
        f"next_hop: {{host: 127.0.0.1, port: {port}, timeout_seconds: 3}}",
        "quarantine: {path: held, retention_days: 30}",
        "audit: {path: audit.jsonl}",
        *extra.values(),
    ]
    path = folder / "config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def store_from(config_file: Path) -> QuarantineStore:
    from gateway.config import load

    return QuarantineStore(load(config_file))


# --- storing ---------------------------------------------------------------------------------


def test_a_held_message_is_a_complete_folder_with_the_bytes_and_a_sidecar(tmp_path: Path) -> None:
    store = QuarantineStore(Config(quarantine={"path": tmp_path / "held"}))
    item_id = store.store(
        ORIGINAL, "anna@kommun.example", ["bo@example.org", "cy@example.org"], blocked_verdict()
    )
    folder = tmp_path / "held" / item_id
    assert (folder / MESSAGE).read_bytes() == ORIGINAL
    meta = json.loads((folder / META).read_text(encoding="utf-8"))
    assert meta["envelope"] == {
        "mail_from": "anna@kommun.example",
        "rcpt_tos": ["bo@example.org", "cy@example.org"],
    }
    assert meta["verdict"]["verdict"] == "block" and meta["size"] == len(ORIGINAL)
    assert {f["kind"] for f in meta["verdict"]["findings"]} == {"personnummer"}
    assert "start" not in meta["verdict"]["findings"][0]
    assert [p.name for p in (tmp_path / "held").iterdir()] == [item_id]  # no temporary left
    assert (folder / MESSAGE).stat().st_mode & 0o777 == 0o600
    assert (folder / META).stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700


def test_the_files_and_folders_are_fsynced_before_store_returns(tmp_path: Path, fsynced: list[str]) -> None:
    root = tmp_path / "held"
    item_id = QuarantineStore(Config(quarantine={"path": root})).store(
        ORIGINAL, "a@kommun.example", ["b@example.org"], blocked_verdict()
    )
    tmp = root / f".tmp-{item_id}"
    assert {str(tmp / MESSAGE), str(tmp / META), str(tmp), str(root)} <= set(fsynced)


def test_the_sidecar_holds_no_identifier_even_from_a_part_name(tmp_path: Path) -> None:
    store = QuarantineStore(Config(quarantine={"path": tmp_path / "held"}))
    item_id = store.store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    no_identifiers((tmp_path / "held" / item_id / META).read_text(encoding="utf-8"))


def test_the_sidecar_holds_no_identifier_from_an_unreadable_parts_content_type_either(tmp_path: Path) -> None:
    unread = Unscanned(name="attachment:(okänd)", content_type=f"application/x-{P_FILE}", reason="okänd")
    verdict = blocked_verdict().model_copy(update={"unscanned": (unread,)})
    store = QuarantineStore(Config(quarantine={"path": tmp_path / "held"}))
    item_id = store.store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], verdict)
    sidecar = (tmp_path / "held" / item_id / META).read_text(encoding="utf-8")
    no_identifiers(sidecar)
    assert json.loads(sidecar)["verdict"]["unscanned"][0]["content_type"].startswith("application/x-")


# --- the CLI ---------------------------------------------------------------------------------


def test_list_shows_each_held_message_without_identifiers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    first = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    second = store_from(config).store(ORIGINAL, "cy@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "list"]) == 0
    out = capsys.readouterr().out
    rows = out.splitlines()
    assert rows[1].startswith(first) and rows[2].startswith(second)
    assert "anna@kommun.example" in rows[1] and "personnummer x3" in rows[1] and "unscanned x1" in rows[1]
    no_identifiers(out)


def test_list_of_an_empty_quarantine_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["quarantine", "--config", str(write_config(tmp_path, free_port())), "list"]) == 0
    assert "no held messages" in capsys.readouterr().out


def test_show_prints_the_masked_verdict_and_never_the_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "show", item_id]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out)
    assert shown["id"] == item_id
    assert [f["masked"] for f in shown["verdict"]["findings"]][0].endswith("-****")
    assert "Hej, det gäller" not in out
    no_identifiers(out)


def test_release_sends_it_on_then_removes_it_and_audits_released(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, port = sink
    config = write_config(tmp_path, port)
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "release", item_id]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"released {item_id}: 250 ")
    no_identifiers(out)
    [(mail_from, rcpt_tos, data)] = handler.received
    assert (mail_from, rcpt_tos) == ("anna@kommun.example", ["bo@example.org"])
    header, rest = data.split(b"\r\n", 1)
    assert header.startswith(b"X-Brukarvakt-Verdict: released; id=" + item_id.encode())
    assert rest == ORIGINAL
    assert not (tmp_path / "held" / item_id).exists()
    entries = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["quarantine_id"]) for e in entries] == [("released", item_id)]
    assert entries[0]["message_id"] == "<q1@kommun.example>"
    assert verify(tmp_path / "audit.jsonl") == (1, [])


def test_release_to_a_next_hop_that_is_down_keeps_the_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "release", item_id]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"not released {item_id}, still held") and "451 4.4.1" in out
    assert (tmp_path / "held" / item_id / MESSAGE).read_bytes() == ORIGINAL
    assert not (tmp_path / "audit.jsonl").exists()


def test_release_refused_with_5xx_keeps_the_message_too(
    tmp_path: Path, sink: tuple[Sink, int], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, port = sink
    handler.data_reply = "554 5.7.1 Not today"
    config = write_config(tmp_path, port)
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "release", item_id]) == 1
    assert "554 5.7.1 Not today" in capsys.readouterr().out
    assert (tmp_path / "held" / item_id).is_dir()


def test_a_message_held_for_the_secure_route_is_released_to_the_secure_next_hop(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    secure = f"secure: {{next_hop: {{host: 127.0.0.1, port: {port}}}}}"
    config = write_config(tmp_path, free_port(), secure=secure)  # the ordinary next hop is down
    item_id = store_from(config).store(
        ORIGINAL, "chef@kommun.example", ["bo@example.org"], blocked_verdict(secure_route=True)
    )
    assert main(["quarantine", "--config", str(config), "release", item_id]) == 0
    assert len(handler.received) == 1


def test_delete_removes_it_and_audits_deleted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, free_port())
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    assert main(["quarantine", "--config", str(config), "delete", item_id]) == 0
    assert capsys.readouterr().out == f"deleted {item_id}\n"
    assert list((tmp_path / "held").iterdir()) == []
    entry = json.loads((tmp_path / "audit.jsonl").read_text())
    assert (entry["action"], entry["quarantine_id"]) == ("deleted", item_id)


def age(folder: Path, item_id: str, days: int) -> None:
    meta_path = folder / "held" / item_id / META
    meta = json.loads(meta_path.read_text())
    meta["time"] = (datetime.now(UTC) - timedelta(days=days)).isoformat()
    meta_path.write_text(json.dumps(meta))


def test_purge_removes_only_what_is_older_than_the_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    store = store_from(config)
    old, young = (
        store.store(ORIGINAL, "a@kommun.example", ["b@example.org"], blocked_verdict()) for _ in range(2)
    )
    age(tmp_path, old, 31)
    age(tmp_path, young, 29)
    assert main(["quarantine", "--config", str(config), "purge"]) == 0
    assert "purged 1 held message(s) older than 30 days" in capsys.readouterr().out
    assert store.ids() == [young]
    entry = json.loads((tmp_path / "audit.jsonl").read_text())
    assert (entry["action"], entry["quarantine_id"]) == ("purged", old)


def test_an_unknown_or_malformed_id_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    assert main(["quarantine", "--config", str(config), "show", "20260101T000000000000Z-00000000"]) == 2
    assert capsys.readouterr().err.startswith(
        "brukarvakt: error: no held message with id 20260101T000000000000Z-00000000"
    )
    assert main(["quarantine", "--config", str(config), "delete", "../../etc"]) == 2
    assert "is not a quarantine id" in capsys.readouterr().err


def test_the_installed_command_lists_and_shows_in_a_separate_process(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    item_id = store_from(config).store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    for action in (["list"], ["show", item_id]):
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "quarantine", "--config", str(config), *action],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert item_id in done.stdout
        no_identifiers(done.stdout + done.stderr)


def test_a_message_being_released_cannot_be_released_or_deleted_twice_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, free_port())
    store = store_from(config)
    item_id = store.store(ORIGINAL, "anna@kommun.example", ["bo@example.org"], blocked_verdict())
    with store.claimed(item_id):
        assert main(["quarantine", "--config", str(config), "release", item_id]) == 2
        assert main(["quarantine", "--config", str(config), "delete", item_id]) == 2
    assert "is being released or deleted by another command" in capsys.readouterr().err
    assert store.ids() == [item_id]
    assert main(["quarantine", "--config", str(config), "delete", item_id]) == 0
