"""`brukarvakt serve` as a process: SIGKILL loses nothing acknowledged, SIGTERM and SIGHUP behave.

Each test starts the real command in a subprocess and waits on its structured log events
(stderr, one JSON object a line), never on a timer.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, TEST_KEY

WAIT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """A `brukarvakt serve` process and its log events."""

    def __init__(self, config: Path, *extra: str) -> None:
        env = {**os.environ, "BRUKARVAKT_FINGERPRINT_KEY": TEST_KEY.decode(), "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config), *extra],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=config.parent,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            self.lines.append(line)
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"event": "unparsed", "line": line})

    def wait_for(self, event: str, count: int = 1) -> dict[str, Any]:
        seen = 0
        while True:
            try:
                record = self.events.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {event!r} event; stderr so far:\n{''.join(self.lines)}") from None
            if record.get("event") == event:
                seen += 1
                if seen == count:
                    return record

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)


def write_config(tmp_path: Path, port: int, **extra: Any) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "auth": {"trusted_upstreams": ["127.0.0.1"]},
        "policy": {"person_name": "off"},
        "outbox": "outbox",
        "audit": {"path": "audit.jsonl"},
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture()
def gateway(tmp_path: Path) -> Iterator[Any]:
    started: list[Gateway] = []

    def start(*extra: str, **config: Any) -> tuple[Gateway, int]:
        port = free_port()
        g = Gateway(write_config(tmp_path, port, **config), *extra)
        started.append(g)
        g.wait_for("listening")
        return g, port

    yield start
    for g in started:
        g.stop()


def mail(n: int) -> bytes:
    return (
        f"From: personal@kommun.example\r\nTo: m@example.se\r\nSubject: nr {n}\r\n"
        f"Message-ID: <acked.{n}@kommun.example>\r\n\r\nMeddelande nummer {n}.\r\n"
    ).encode()


def test_sigkill_mid_data_loses_nothing_that_was_acknowledged(gateway, tmp_path):
    g, port = gateway()
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as smtp:
        for n in range(5):
            assert smtp.sendmail("personal@kommun.example", ["m@example.se"], mail(n)) == {}
    half = smtplib.SMTP("127.0.0.1", port, timeout=WAIT)
    half.ehlo()
    assert half.mail("personal@kommun.example")[0] == 250
    assert half.rcpt("m@example.se")[0] == 250
    assert half.docmd("DATA")[0] == 354
    half.send(mail(99)[:60])
    g.proc.send_signal(signal.SIGKILL)
    g.proc.wait(WAIT)
    half.close()
    stored = [p.read_bytes() for p in (tmp_path / "outbox" / "new").iterdir()]
    for n in range(5):
        assert sum(f"<acked.{n}@kommun.example>".encode() in data for data in stored) == 1
    assert not any(b"<acked.99@" in data for data in stored)
    decisions = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [d["action"] for d in decisions] == ["delivered"] * 5


def _read_reply(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_sigterm_finishes_the_transaction_in_flight_then_stops(gateway, tmp_path):
    g, port = gateway()
    busy = smtplib.SMTP("127.0.0.1", port, timeout=WAIT)
    busy.ehlo()
    busy.mail("personal@kommun.example")
    busy.rcpt("m@example.se")
    assert busy.docmd("DATA")[0] == 354
    busy.send(mail(1)[:50])
    idle = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    assert _read_reply(idle).startswith(b"220")
    idle.sendall(b"EHLO idle.example\r\n")
    ehlo = b""
    while b"250 " not in ehlo:
        ehlo += _read_reply(idle)

    g.proc.send_signal(signal.SIGTERM)
    g.wait_for("stopping")
    # The idle connection is told and closed; nobody new is let in.
    assert _read_reply(idle).startswith(b"421 4.3.2")
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # The transaction in flight is finished: its 250 means it is on disk.
    busy.send(mail(1)[50:] + b".\r\n")
    code, text = busy.getreply()
    assert code == 250, text
    assert g.proc.wait(WAIT) == 0
    stored = [p.read_bytes() for p in (tmp_path / "outbox" / "new").iterdir()]
    assert len(stored) == 1 and b"<acked.1@kommun.example>" in stored[0]


def test_sighup_reloads_the_config_and_keeps_connections(gateway, tmp_path):
    g, port = gateway(limits={"max_recipients": 5})
    kept = smtplib.SMTP("127.0.0.1", port, timeout=WAIT)
    kept.ehlo()
    write_config(tmp_path, port, limits={"max_recipients": 1})
    g.proc.send_signal(signal.SIGHUP)
    g.wait_for("reloaded")
    # The open connection goes on; the next transaction follows the new config.
    assert kept.sendmail("personal@kommun.example", ["m@example.se"], mail(1)) == {}
    kept.mail("personal@kommun.example")
    kept.rcpt("a@example.se")
    assert kept.rcpt("b@example.se")[0] == 452
    kept.rset()
    # A config with a mistake is refused, named in the log, and the gateway goes on as it was.
    (tmp_path / "config.yaml").write_text("limits: {max_recipients: many}\n", encoding="utf-8")
    g.proc.send_signal(signal.SIGHUP)
    failed = g.wait_for("reload_failed")
    assert "limits.max_recipients" in failed["error"]
    assert kept.sendmail("personal@kommun.example", ["m@example.se"], mail(2)) == {}
    kept.quit()
    assert g.proc.poll() is None


def test_several_workers_share_the_port_and_all_stop_on_sigterm(gateway, tmp_path):
    g, port = gateway("--workers", "2")
    g.wait_for("listening", count=1)  # the second worker's line
    for n in range(6):
        with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as smtp:
            assert smtp.sendmail("personal@kommun.example", ["m@example.se"], mail(n)) == {}
    g.proc.send_signal(signal.SIGHUP)
    assert g.wait_for("reloaded", count=2)["pid"] != g.proc.pid  # each worker reloads itself
    g.proc.send_signal(signal.SIGTERM)
    assert g.proc.wait(WAIT) == 0
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 6


def test_workers_stop_when_their_parent_is_killed(gateway, tmp_path):
    import time

    g, port = gateway("--workers", "2")
    g.wait_for("listening", count=1)  # the second worker's line: both are up
    children = Path(f"/proc/{g.proc.pid}/task/{g.proc.pid}/children").read_text().split()
    pids = {int(pid) for pid in children}
    assert len(pids) == 2
    g.proc.kill()
    g.proc.wait(WAIT)
    deadline = time.monotonic() + WAIT
    alive = set(pids)
    while alive and time.monotonic() < deadline:  # bounded wait on the workers' exit
        for pid in list(alive):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                alive.discard(pid)
        if alive:
            time.sleep(0.05)
    assert not alive, f"workers {alive} outlived their parent"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_every_line_on_stderr_is_structured_and_names_no_identifier(gateway, tmp_path):
    from tests.conftest import test_personnummer
    from tests.gateway.test_server import leaks

    pnr = test_personnummer(7)
    g, port = gateway()
    with smtplib.SMTP("127.0.0.1", port, timeout=WAIT) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("personal@kommun.example", ["m@example.se"], f"Subject: {pnr}\r\n\r\npnr {pnr}\r\n")
        assert refused.value.smtp_code == 550
    rude = socket.create_connection(("127.0.0.1", port), timeout=WAIT)  # hangs up mid-command
    rude.recv(512)
    rude.sendall(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nSTARTTLS\r\n\x16\x03\x01garbage")
    rude.close()
    g.proc.send_signal(signal.SIGTERM)
    assert g.proc.wait(WAIT) == 0
    g.wait_for("stopped")
    lines = [line for line in g.lines if line.strip()]
    assert all(isinstance(json.loads(line), dict) for line in lines), lines
    assert leaks("".join(lines)) == []
    assert "personal@kommun.example" not in "".join(lines)
