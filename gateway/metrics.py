"""Prometheus metrics for operations: decisions, scan cost, next-hop trouble and the stores' state; no personal data.

Every label comes from a fixed vocabulary (verdicts, the policy's reason words, finding kinds,
actions): never an address, a file name or a reason's free text. A door's command calls `start`
once before it serves, then `Exporter.watch` with each pipeline it builds.

With `--workers N` the processes are forked from the one that serves the metrics: each worker
writes its counts to files in a folder (prometheus_client's multiprocess mode) and a scrape adds
them up, so the figures are the gateway's, not one worker's picked at random.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway import register_store
from gateway.errors import UserError
from gateway.keys import fingerprint_key
from gateway.logs import log
from gateway.pipeline import Arrival, Outcome, Pipeline
from gateway.quarantine import ID_PATTERN
from models.config import Config

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# The policy's reason words (rules/policy.py and the pipeline); anything else counts as "other".
REASONS = frozenset(
    {"clean", "warning", "identifier", "unscannable", "encrypted", "manager-exception", "not-scanned"}
)
# Why the pipeline refused or deferred a message before the policy spoke (Outcome.refusal).
REFUSALS = frozenset({"max_headers", "sender_mismatch", "scan_timeout", "max_mime_depth"})
NOTICE_POLL_SECONDS = 5.0
SCAN_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIZE_BUCKETS = (1e3, 5e3, 1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7, 2.5e7, 5e7)
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*_(\d+)\.db$")


class GatewayMetrics:
    """The counters and histograms one process updates, message by message."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        self.messages = Counter(
            "brukarvakt_messages",
            "Messages decided, by verdict (none: refused before the policy), reason word and what was done",
            ["verdict", "reason", "action"],
            registry=registry,
        )
        self.findings = Counter(
            "brukarvakt_findings", "Findings in decided messages, by kind", ["kind"], registry=registry
        )
        self.unscanned = Counter(
            "brukarvakt_unscanned_parts",
            "Parts of messages that could not be read (encrypted: yes or no)",
            ["encrypted"],
            registry=registry,
        )
        self.not_decided = Counter(
            "brukarvakt_not_decided",
            "Messages refused or deferred before the policy spoke, by cause (a limit, or error)",
            ["cause"],
            registry=registry,
        )
        self.next_hop_errors = Counter(
            "brukarvakt_next_hop_errors",
            "Hand-ons the next hop deferred (4xx, down, slow) or refused (5xx)",
            ["result"],
            registry=registry,
        )
        self.scan_seconds = Histogram(
            "brukarvakt_scan_seconds", "Time to scan one message", buckets=SCAN_BUCKETS, registry=registry
        )
        self.message_bytes = Histogram(
            "brukarvakt_message_bytes", "Size of messages received", buckets=SIZE_BUCKETS, registry=registry
        )
        self.notices_waiting = Gauge(
            "brukarvakt_notices_waiting",
            "Notices to senders waiting to be tried again (the next hop deferred them)",
            registry=registry,
            multiprocess_mode="livesum",
        )

    def observe(self, arrival: Arrival, outcome: Outcome) -> None:
        verdict = outcome.verdict
        if verdict is None:
            reason = "not-decided" if outcome.refusal else "other"
        else:
            word = verdict.reason.split(":", 1)[0].strip()
            reason = word if word in REASONS else "other"
        self.messages.labels(verdict.verdict if verdict else "none", reason, outcome.action).inc()
        if verdict is not None:
            for finding in verdict.findings:
                self.findings.labels(finding.kind).inc()
            for part in verdict.unscanned:
                self.unscanned.labels("yes" if part.encrypted else "no").inc()
        if outcome.refusal:
            self.not_decided.labels(outcome.refusal if outcome.refusal in REFUSALS else "error").inc()
        if outcome.route and outcome.action in ("deferred", "failed"):
            self.next_hop_errors.labels(outcome.action).inc()
        if outcome.scan_seconds:
            self.scan_seconds.observe(outcome.scan_seconds)
        self.message_bytes.observe(len(arrival.data))


class StoresCollector(Collector):
    """Gauges read from disk at each scrape: the quarantine and the client register."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._register: tuple[tuple[int, int, int] | None, int | None, float | None] = (None, None, None)
        self._lock = threading.Lock()

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        held = self._held_times()
        count = GaugeMetricFamily("brukarvakt_quarantine_messages", "Messages held in the quarantine")
        count.add_metric([], len(held))
        yield count
        oldest = GaugeMetricFamily(
            "brukarvakt_quarantine_oldest_seconds",
            "Age of the oldest held message (0 when none is held); compare with quarantine.retention_days",
        )
        oldest.add_metric([], (now - min(held)).total_seconds() if held else 0.0)
        yield oldest
        clients, created = self._register_state()
        if clients is not None:
            size = GaugeMetricFamily("brukarvakt_register_clients", "Clients in the client register")
            size.add_metric([], clients)
            yield size
        if created is not None:
            age = GaugeMetricFamily(
                "brukarvakt_register_age_seconds", "Time since the client register was last imported"
            )
            age.add_metric([], max(0.0, now.timestamp() - created))
            yield age

    def _held_times(self) -> list[datetime]:
        root = self.config.quarantine.path
        try:
            names = [p.name for p in root.iterdir()]
        except (FileNotFoundError, NotADirectoryError):
            return []
        # The id begins with the time it was held: no sidecar is read for a scrape.
        return [
            datetime.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
            for name in names
            if ID_PATTERN.match(name)
        ]

    def _register_state(self) -> tuple[int | None, float | None]:
        path = self.config.register.path
        try:
            st = path.stat()
            stamp: tuple[int, int, int] | None = (st.st_mtime_ns, st.st_ino, st.st_size)
        except FileNotFoundError:
            return None, None
        with self._lock:
            if stamp != self._register[0]:
                # Read again only when the file changed: a register of 100,000 clients is megabytes.
                try:
                    info = register_store.info(path, fingerprint_key(self.config.privacy))
                except (UserError, OSError) as e:
                    log("metrics_register_unreadable", "warning", error=type(e).__name__)
                    info = None
                created = _timestamp(info.created) if info else None
                self._register = (stamp, info.clients if info else None, created)
            return self._register[1], self._register[2]


def _timestamp(value: str) -> float | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class WorkersCollector(Collector):
    """The workers' counts added up (multiprocess mode), less the gauges of workers that are gone."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.inner = multiprocess.MultiProcessCollector(None, path=str(directory))

    def collect(self) -> Iterable[Metric]:
        for path in self.directory.iterdir():
            match = _LIVE_GAUGE_FILE.match(path.name)
            if match and not _alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)), str(self.directory))
        return self.inner.collect()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def use_multiprocess(directory: Path) -> None:
    """Keep the values of metrics made from now on in files under `directory` (prometheus_client's
    multiprocess mode), for worker processes forked after this.

    prometheus_client reads its environment variable once, when it is imported: it is asked to
    choose again here, with its own function, now that the variable is set.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # a previous run's counts are not this run's
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    values.ValueClass = values.get_value_class()


class Exporter:
    """The metrics a door's processes update, and the HTTP server (in the first process) that serves them."""

    def __init__(self, registry: CollectorRegistry | None, server: Any) -> None:
        # None in multiprocess mode: a worker's metrics go to its files, not to a registry.
        self.registry = registry
        self.server = server
        self.metrics: GatewayMetrics | None = None

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def watch(self, pipeline: Pipeline) -> GatewayMetrics:
        """Count this process's messages (called in each worker, after the fork)."""
        if self.metrics is None:
            self.metrics = GatewayMetrics(self.registry)
        metrics = self.metrics
        pipeline.observers.append(metrics.observe)

        async def notices() -> None:
            # The retries come and go between messages: read every few seconds, not only per message.
            while True:
                metrics.notices_waiting.set(len(pipeline.notices.retries))
                await asyncio.sleep(NOTICE_POLL_SECONDS)

        try:
            task = asyncio.get_running_loop().create_task(notices())
            _polls.add(task)
            task.add_done_callback(_polls.discard)
        except RuntimeError:
            metrics.notices_waiting.set(len(pipeline.notices.retries))  # no loop: a command, not a service
        return metrics

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_polls: set[asyncio.Task[None]] = set()


def start(config: Config, *, workers: int = 1) -> Exporter | None:
    """Serve /metrics on `metrics.listen` (None when it is not set), before any worker is forked."""
    listen = config.metrics.listen
    if listen is None:
        return None
    registry = CollectorRegistry()
    worker_registry: CollectorRegistry | None = registry
    if workers > 1:
        given = os.environ.get(MULTIPROC_ENV)
        directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="brukarvakt-metrics-"))
        if not given:
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        use_multiprocess(directory)
        registry.register(WorkersCollector(directory))
        worker_registry = None
    elif os.environ.pop(MULTIPROC_ENV, None) is not None:
        # One process counts in memory: files would only be written for nobody to read.
        values.ValueClass = values.get_value_class()
    registry.register(StoresCollector(config))
    try:
        server, _ = start_http_server(listen.port, listen.host, registry=registry)
    except OSError as e:
        raise UserError(
            f"cannot listen on {listen.host}:{listen.port} (metrics.listen): {e.strerror}"
        ) from None
    log("metrics_listening", host=listen.host, port=int(server.server_address[1]), workers=workers)
    return Exporter(worker_registry, server)
