"""A small world for the console's tests: a register of made-up clients, decisions made by the real
pipeline, held messages, console users, and a recording next hop.

Numbers are Skatteverket's test numbers; names are the made-up clients of tests/rules/register_clients.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.cli import main
from gateway.config import load
from gateway.console import users
from gateway.pipeline import Arrival, Identity, Pipeline, Stage
from models.config import Config
from tests.conftest import REPO, test_personnummer
from tests.gateway.test_delivery import Sink, free_port, running_sink
from tests.rules.register_clients import ROWS, csv_text, personnummer

STAFF = "personal@kommun.example"
# Not a client of the register: its findings carry no customer number.
PNR = test_personnummer(700)
PNR_DASHED = f"{PNR[2:8]}-{PNR[8:]}"
# A client of the register (Ingegerd Öhrnvall, customer number 20002) and her personnummer.
CLIENT = ROWS[1]
CLIENT_NAME = f"{CLIENT[1]} {CLIENT[2]}"
CLIENT_NUMBER = CLIENT[0]
CLIENT_PNR = personnummer(CLIENT)
PASSWORD = "rätt lösenord 1234"
COMPLIANCE, VIEWER = "anna", "vera"
WAIT = 30.0


def mail(subject: str, body: str, *, message_id: str) -> bytes:
    return (
        f"From: Personal <{STAFF}>\r\nTo: mottagare@example.se\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}@kommun.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        f"{body}\r\n"
    ).encode()


# Rejected during SMTP (policy.on_block: reject) and passed.
REJECTED_AND_PASSED = (
    mail("Schema", "Hej! Mötet flyttas till torsdag.", message_id="pass1"),
    mail("Schema", "Hej! Kundnummer 10234 får besök i morgon.", message_id="pass2"),
    mail("Besök", f"Hej, gäller {CLIENT_PNR[:8]}-{CLIENT_PNR[8:]} i morgon.", message_id="block1"),
)
# Held (policy.on_block: quarantine): the first two hold the same person's number, written two ways.
HELD = (
    mail("Insats", f"Hej, det gäller {PNR_DASHED} i morgon.", message_id="held1"),
    mail(f"Brukare {PNR}", "Se ämnesraden.", message_id="held2"),
    mail("Hemtjänst", f"Hej! {CLIENT_NAME} behöver hjälp med inköpen.", message_id="held3"),
)


@dataclass
class World:
    folder: Path
    config_path: Path
    config: Config
    sink: Sink
    held: list[str] = field(default_factory=list)

    def identifiers(self) -> list[str]:
        """Everything that must never stand in clear on a masked page or in a log."""
        numbers = {
            PNR,
            PNR[2:],
            PNR_DASHED,
            CLIENT_PNR,
            CLIENT_PNR[2:],
            f"{CLIENT_PNR[2:8]}-{CLIENT_PNR[8:]}",
        }
        names = {f"{row[1]} {row[2]}" for row in ROWS} | {CLIENT[2]}
        return sorted(numbers | names)


def write_config(folder: Path, hop_port: int, on_block: str = "quarantine") -> Path:
    path = folder / f"config-{on_block}.yaml"
    path.write_text(
        f"""\
next_hop: {{host: 127.0.0.1, port: {hop_port}, timeout_seconds: 5}}
audit: {{path: audit.jsonl}}
quarantine: {{path: held, retention_days: 30}}
register: {{path: register.db}}
privacy: {{key_file: fingerprint.key}}
outbox: outbox
console: {{users_file: console-users, max_failed_logins: 3, lockout_seconds: 60, idle_timeout_minutes: 15}}
policy: {{person_name: "off", on_block: {on_block}}}
""",
        encoding="utf-8",
    )
    return path


async def _decide(config: Config, messages: tuple[bytes, ...]) -> list[str]:
    pipeline = Pipeline(Stage.build(config))
    held = []
    try:
        for data in messages:
            outcome = await pipeline.process(
                Arrival(data=data, mail_from=STAFF, rcpt_tos=("mottagare@example.se",), identity=Identity())
            )
            if outcome.quarantine_id:
                held.append(outcome.quarantine_id)
        await asyncio.gather(*pipeline.in_flight(), return_exceptions=True)  # the senders' notices
    finally:
        pipeline.close()
    return held


def add_user(config: Config, name: str, role: str) -> None:
    current = users.read(config.console.users_file)
    current[name] = users.ConsoleUser(name, role, users.hash_password(PASSWORD))  # type: ignore[arg-type]
    users.write(config.console.users_file, current)


def make_world(folder: Path) -> Iterator[World]:
    """The world for the length of a `with`-less generator fixture (the sink runs in a thread)."""
    with running_sink() as (sink, port):
        rejecting = write_config(folder, port, "reject")
        config_path = write_config(folder, port, "quarantine")
        export = folder / "kunder.csv"
        export.write_text(csv_text(), encoding="utf-8")
        assert main(["register", "import", str(export), "--config", str(config_path)]) == 0
        config = load(config_path)
        asyncio.run(_decide(load(rejecting), REJECTED_AND_PASSED))
        held = asyncio.run(_decide(config, HELD))
        assert len(held) == len(HELD)
        add_user(config, COMPLIANCE, "compliance")
        add_user(config, VIEWER, "viewer")
        yield World(folder, config_path, config, sink, held)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


class ConsoleProcess:
    """`brukarvakt console` in a subprocess, its JSON log lines read as they come."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("BRUKARVAKT_FINGERPRINT_KEY", None)  # the world's key file, as the world was made with
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "console", "--config", str(config)],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=config.parent,
        )
        self.lines: list[str] = []
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
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

    def wait_for(self, event: str) -> dict[str, Any]:
        while True:
            try:
                record = self.events.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no {event!r} event; stderr:\n{''.join(self.lines)}") from None
            if record.get("event") == event:
                return record

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)


@contextlib.contextmanager
def running_console(world: World) -> Iterator[tuple[ConsoleProcess, str]]:
    """`brukarvakt console` over the world on a free port of 127.0.0.1, and its address."""
    port = free_port()
    text = world.config_path.read_text(encoding="utf-8")
    config = world.folder / "console.yaml"
    config.write_text(text.replace("console: {", f"console: {{listen: {{host: 127.0.0.1, port: {port}}}, "))
    process = ConsoleProcess(config)
    try:
        # The socket is bound before this event: a connection from now on waits in its backlog.
        listening = process.wait_for("console_listening")
        assert listening["port"] == port and listening["tls"] is False
        yield process, f"http://127.0.0.1:{port}"
    finally:
        process.stop()
