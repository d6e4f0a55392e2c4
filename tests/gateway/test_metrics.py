"""Prometheus metrics: what the pipeline decided, counted by words from a fixed vocabulary, never an address or an identifier."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from gateway import metrics
from gateway.cli import main
from gateway.config import parse
from gateway.pipeline import Arrival, Identity, Pipeline, Stage
from gateway.quarantine import QuarantineStore
from models.config import Config
from models.findings import Verdict
from tests.conftest import test_personnummer
from tests.gateway.test_delivery import Sink, free_port, running_sink
from tests.gateway.test_server_process import Gateway, mail, write_config
from tests.rules.register_clients import ROWS, csv_text

PNR = test_personnummer(700)
STAFF = "personal@kommun.example"


def config_for(folder: Path, hop_port: int, **extra: object) -> Config:
    raw = {
        "next_hop": {"host": "127.0.0.1", "port": hop_port, "timeout_seconds": 5},
        "audit": {"path": str(folder / "audit.jsonl")},
        "quarantine": {"path": str(folder / "held")},
        "register": {"path": str(folder / "register.db")},
        "privacy": {"key_file": str(folder / "fingerprint.key")},
        "policy": {"person_name": "off", "on_block": "quarantine"},
        "metrics": {"listen": {"host": "127.0.0.1", "port": 0}},
        **extra,
    }
    return parse(raw)


def text_mail(body: str, subject: str = "Schema") -> bytes:
    return (
        f"From: {STAFF}\r\nTo: mottagare@example.se\r\nSubject: {subject}\r\n"
        f"Message-ID: <m.{abs(hash(body))}@kommun.example>\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture()
def sink() -> Iterator[tuple[Sink, int]]:
    with running_sink() as running:
        yield running


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (labels in any order)."""
    for line in exposition.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if found == labels:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{exposition}")


async def decide(config: Config, watched: metrics.Exporter, messages: list[bytes]) -> None:
    pipeline = Pipeline(Stage.build(config))
    watched.watch(pipeline)
    try:
        for data in messages:
            await pipeline.process(
                Arrival(data=data, mail_from=STAFF, rcpt_tos=("mottagare@example.se",), identity=Identity())
            )
        await asyncio.gather(*pipeline.in_flight(), return_exceptions=True)
    finally:
        pipeline.close()


def test_decisions_are_counted_by_verdict_reason_action_and_kind(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    registry = CollectorRegistry()
    exporter = metrics.Exporter(registry, server=None)
    config = config_for(tmp_path, sink[1])
    messages = [
        text_mail("Hej! Mötet flyttas till torsdag."),
        text_mail("Hej! Kundnummer 10234 får besök."),
        text_mail(f"Det gäller {PNR[2:8]}-{PNR[8:]}.", subject="Insats"),
    ]
    asyncio.run(decide(config, exporter, messages))
    out = generate_latest(registry).decode()
    assert sample(out, "brukarvakt_messages_total", verdict="pass", reason="clean", action="delivered") == 2
    assert (
        sample(out, "brukarvakt_messages_total", verdict="block", reason="identifier", action="quarantined")
        == 1
    )
    assert sample(out, "brukarvakt_findings_total", kind="personnummer") == 1
    assert sample(out, "brukarvakt_scan_seconds_count") == 3
    assert sample(out, "brukarvakt_message_bytes_count") == 3
    # No address, no identifier, no free text: only the fixed words.
    assert "@" not in out and PNR[2:8] not in out and "example" not in out


def test_a_next_hop_that_is_down_is_counted_as_a_next_hop_error(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    config = config_for(tmp_path, free_port())  # nothing listens there
    asyncio.run(decide(config, metrics.Exporter(registry, server=None), [text_mail("Hej!")]))
    out = generate_latest(registry).decode()
    assert sample(out, "brukarvakt_next_hop_errors_total", result="deferred") == 1
    assert sample(out, "brukarvakt_messages_total", verdict="pass", reason="clean", action="deferred") == 1


def test_a_message_refused_before_the_policy_is_counted_by_its_limit(
    tmp_path: Path, sink: tuple[Sink, int]
) -> None:
    registry = CollectorRegistry()
    config = config_for(tmp_path, sink[1], limits={"max_headers": 10})
    many = "".join(f"X-H{i}: v\r\n" for i in range(20)).encode() + text_mail("Hej!")
    asyncio.run(decide(config, metrics.Exporter(registry, server=None), [many]))
    out = generate_latest(registry).decode()
    assert sample(out, "brukarvakt_not_decided_total", cause="max_headers") == 1
    assert (
        sample(out, "brukarvakt_messages_total", verdict="none", reason="not-decided", action="rejected") == 1
    )


def test_the_stores_are_read_at_each_scrape(tmp_path: Path, sink: tuple[Sink, int], key_env: bytes) -> None:
    config = config_for(tmp_path, sink[1])
    registry = CollectorRegistry()
    registry.register(metrics.StoresCollector(config))
    out = generate_latest(registry).decode()
    assert sample(out, "brukarvakt_quarantine_messages") == 0
    assert "brukarvakt_register_clients" not in out  # no register imported yet: no figure, not a zero
    store = QuarantineStore(config)
    store.store(text_mail("x"), STAFF, ["a@example.se"], Verdict(verdict="block", reason="identifier: test"))
    export = tmp_path / "kunder.csv"
    export.write_text(csv_text(), encoding="utf-8")
    yaml_config = tmp_path / "c.yaml"
    yaml_config.write_text(f"register: {{path: {tmp_path / 'register.db'}}}\n", encoding="utf-8")
    assert main(["register", "import", str(export), "--config", str(yaml_config)]) == 0
    out = generate_latest(registry).decode()
    assert sample(out, "brukarvakt_quarantine_messages") == 1
    assert 0 <= sample(out, "brukarvakt_quarantine_oldest_seconds") < 60
    assert sample(out, "brukarvakt_register_clients") == len(ROWS)
    assert 0 <= sample(out, "brukarvakt_register_age_seconds") < 60


def test_the_oldest_held_message_tells_its_age_from_its_id(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    config = config_for(tmp_path, sink[1])
    old = datetime.now(UTC) - timedelta(days=40)
    (config.quarantine.path / f"{old:%Y%m%dT%H%M%S%fZ}-0a1b2c3d").mkdir(parents=True)
    registry = CollectorRegistry()
    registry.register(metrics.StoresCollector(config))
    age = sample(generate_latest(registry).decode(), "brukarvakt_quarantine_oldest_seconds")
    assert 40 * 86400 - 5 < age < 40 * 86400 + 60


def test_metrics_are_off_unless_metrics_listen_is_set(tmp_path: Path) -> None:
    assert metrics.start(parse({"metrics": {"listen": None}})) is None


def test_metrics_listen_taken_gives_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    config = parse({"metrics": {"listen": {"host": "127.0.0.1", "port": port}}})
    first = metrics.start(config)
    assert first is not None
    try:
        with pytest.raises(Exception, match=r"metrics\.listen"):
            metrics.start(config)
    finally:
        first.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def test_serve_with_two_workers_adds_up_both_workers_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --workers 2`: a scrape counts every message, whichever worker took it."""
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "prometheus"))
    metrics_port, port = free_port(), free_port()
    config = write_config(tmp_path, port, metrics={"listen": {"host": "127.0.0.1", "port": metrics_port}})
    gateway = Gateway(config, "--workers", "2")
    try:
        gateway.wait_for("listening", count=2)
        sent = 0
        pids: set[int] = set()
        # Separate connections until both workers have taken some (bounded): the kernel picks.
        while sent < 200 and (len(pids) < 2 or sent < 10):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                assert smtp.sendmail(STAFF, ["m@example.se"], mail(sent)) == {}
            sent += 1
            pids.add(int(gateway.wait_for("message")["pid"]))
        assert len(pids) == 2, "one worker took every connection"
        out = scrape(metrics_port)
        assert (
            sample(out, "brukarvakt_messages_total", verdict="pass", reason="clean", action="delivered")
            == sent
        )
        assert sample(out, "brukarvakt_message_bytes_count") == sent
        assert "@" not in out
        events = [json.loads(line) for line in gateway.lines if line.startswith("{")]
        assert any(e.get("event") == "metrics_listening" and e.get("workers") == 2 for e in events)
    finally:
        gateway.stop()


def test_one_process_counts_in_memory_even_with_the_multiprocess_folder_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "missing"))
    exporter = metrics.start(parse({"metrics": {"listen": {"host": "127.0.0.1", "port": 0}}}))
    assert exporter is not None
    try:
        counted = metrics.GatewayMetrics(exporter.registry)
        counted.message_bytes.observe(100)
        assert sample(scrape(exporter.port), "brukarvakt_message_bytes_count") == 1
        assert not (tmp_path / "missing").exists()
    finally:
        exporter.close()
