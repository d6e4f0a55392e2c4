"""Fixtures for the end-to-end tests: a private Postfix with the example config, the gateway, a sink.

The chain under test is the one deploy/postfix/*/ describes:

    staff client --587 STARTTLS+AUTH--> Postfix --> brukarvakt serve --> Postfix (return listener)
                 --> relayhost = the sink in this process (records what is delivered)

Postfix and the gateway are real processes; every port is a free one on 127.0.0.1, every file
is under a temporary folder, and both are stopped even when a test fails.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.e2e.postfix import MANAGER, SECURE_DOMAIN, STAFF, Gateway, Postfix, Sink, free_port
from tests.gateway.milter_mta import MilterProcess


@dataclass
class Chain:
    postfix: Postfix
    gateway: Gateway | MilterProcess
    sink: Sink


def gateway_config(folder: Path, port: int, next_hop_port: int) -> Path:
    """The gateway's config for a chain behind Postfix: identity from Postfix's Received header.

    Everything else is the default policy, the Swedish name model included.
    """
    path = folder / "brukarvakt.yaml"
    path.write_text(
        f"""\
listen: {{host: 127.0.0.1, port: {port}}}
auth:
  trusted_upstreams: ["127.0.0.1"]
next_hop: {{host: 127.0.0.1, port: {next_hop_port}, tls: none, timeout_seconds: 30}}
secure:
  domains: ["{SECURE_DOMAIN}"]
policy:
  managers: ["{MANAGER}"]
  staff:
    - {{address: "{STAFF}", name: "Anna Lind"}}
    - {{address: "{MANAGER}", name: "Karin Berg"}}
  on_block: reject
""",
        encoding="utf-8",
    )
    return path


def _chain(mode: str) -> Iterator[Chain]:
    sink = Sink()
    sink.start()
    postfix = Postfix(mode, sink.port, free_port(), (STAFF, MANAGER))
    env = dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=TEST_KEY.decode())
    gateway = Gateway(
        gateway_config(postfix.root, postfix.gateway_port, postfix.return_port), postfix.gateway_port, env
    )
    try:
        postfix.start()
        gateway.start()
        yield Chain(postfix, gateway, sink)
    finally:
        gateway.stop()
        postfix.stop()
        sink.stop()
        postfix.remove()


@pytest.fixture(scope="module")
def before_queue() -> Iterator[Chain]:
    yield from _chain("before-queue")


@pytest.fixture(scope="module")
def after_queue() -> Iterator[Chain]:
    yield from _chain("after-queue")


def milter_config(folder: Path, port: int, return_port: int, on_block: str = "reject") -> Path:
    """brukarvakt milter behind Postfix (deploy/postfix/milter): identity from Postfix's macros.

    next_hop is Postfix's return listener, where notices and released messages go in unscanned.
    """
    path = folder / "brukarvakt-milter.yaml"
    path.write_text(
        f"""\
milter: {{listen: "inet:127.0.0.1:{port}"}}
next_hop: {{host: 127.0.0.1, port: {return_port}, tls: none, timeout_seconds: 30}}
secure:
  domains: ["{SECURE_DOMAIN}"]
  next_hop: {{host: 127.0.0.1, port: {return_port}, tls: none}}
policy:
  managers: ["{MANAGER}"]
  staff:
    - {{address: "{STAFF}", name: "Anna Lind"}}
    - {{address: "{MANAGER}", name: "Karin Berg"}}
  on_block: {on_block}
audit: {{path: {folder}/milter-audit.jsonl}}
quarantine: {{path: {folder}/milter-quarantine}}
""",
        encoding="utf-8",
    )
    return path


def _milter_chain(on_block: str) -> Iterator[Chain]:
    sink = Sink()
    sink.start()
    postfix = Postfix("milter", sink.port, free_port(), (STAFF, MANAGER))
    env = dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=TEST_KEY.decode())
    config = milter_config(postfix.root, postfix.gateway_port, postfix.return_port, on_block)
    process = MilterProcess(config, env)
    try:
        process.start()
        postfix.start()
        yield Chain(postfix, process, sink)
    finally:
        process.stop()
        postfix.stop()
        sink.stop()
        postfix.remove()


@pytest.fixture(scope="module")
def milter() -> Iterator[Chain]:
    """staff client --587--> Postfix (smtpd_milters: brukarvakt milter) --> queue --> the sink."""
    yield from _milter_chain("reject")


@pytest.fixture(scope="module")
def milter_quarantine() -> Iterator[Chain]:
    """The same with policy.on_block: quarantine: notices and releases go back through Postfix."""
    yield from _milter_chain("quarantine")


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing end-to-end test shows what Postfix and the gateway logged."""
    report: pytest.TestReport = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name in ("before_queue", "after_queue", "milter", "milter_quarantine"):
            chain = funcargs.get(name)
            if isinstance(chain, Chain):
                report.sections.append((f"{name}: Postfix log", _tail(chain.postfix.log())))
                report.sections.append((f"{name}: gateway output", _tail(chain.gateway.log())))
    return report
