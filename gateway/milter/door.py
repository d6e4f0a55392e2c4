"""The milter door: a message as the MTA hands it over, given to the pipeline, and the outcome told back.

The MTA (Postfix, Sendmail) keeps the message and delivers it; the door only decides. Its hand-on
therefore delivers nothing: the pipeline hears 250 and audits "delivered", and the door tells the
MTA to accept and to add the verdict header. A block is refused in the session (550 5.7.1 with
the guidance), a held message is discarded from the MTA (it is in brukarvakt's quarantine), and
anything that went wrong is a temporary failure, never an accepted unscanned message.

libmilter calls the sessions in its own threads (one per MTA connection); the pipeline runs on
the event loop. A session hands the finished message to the loop and waits for the outcome.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import socket
import threading
import time
from typing import Any

from gateway import replies
from gateway.logs import domains, log
from gateway.milter import libmilter
from gateway.milter.libmilter import CONTINUE, Answer, answer_from_reply
from gateway.pipeline import Arrival, Identity, Outcome, Outgoing, Pipeline, Stage
from models.config import Config
from models.delivery import Delivery

# The header that asks the MTA for the secure route (secure.marker): Postfix's
# milter_header_checks turns it into a FILTER to the secrecy-protected relay (deploy/postfix/milter).
ROUTE_HEADER = "X-Brukarvakt-Route"
ROUTE_SECURE = "secure"
HANDED_BACK = Delivery(code=250, message="2.0.0 Ok: accepted for the MTA to deliver", delivered=True)
# Beyond the pipeline's own deadlines (scan timeout plus its backstop): a last resort only.
DECISION_MARGIN_SECONDS = 15.0


async def back_to_the_mta(config: Config, outgoing: Outgoing) -> Delivery:
    """The milter's hand-on: the MTA holds the message and delivers it once the door says accept."""
    return HANDED_BACK


def identity_from(macros: dict[str, str]) -> Identity:
    """Who sent it, from the MTA's own macros: the SASL login, and TLS when a TLS version is named.

    Nothing in the message counts (a Received header written by the client is just text).
    """
    login = macros.get("{auth_authen}", "").strip()
    authenticated = bool(login and macros.get("{auth_type}"))
    return Identity(
        authenticated_as=login.lower() if authenticated else None,
        tls=bool(macros.get("{tls_version}")),
        client_address=macros.get("{client_addr}", ""),
    )


def answer(outcome: Outcome) -> Answer:
    """The pipeline's outcome as the MTA's instruction."""
    if outcome.action == "delivered":
        name, _, value = outcome.header.decode("ascii").partition(":")
        headers = [(name.strip(), value.strip())]
        if outcome.route == ROUTE_SECURE:
            headers.append((ROUTE_HEADER, ROUTE_SECURE))
        return Answer("accept", headers=tuple(headers))
    if outcome.action == "quarantined":
        return Answer("discard")  # held by brukarvakt and the sender told: the MTA drops its copy
    refusal = answer_from_reply("tempfail", outcome.reply)
    if refusal.code.startswith("5") and outcome.action != "deferred":
        return answer_from_reply("reject", outcome.reply)
    if refusal.code.startswith("4"):
        return refusal
    return answer_from_reply("tempfail", replies.plain(replies.TEMPORARY_FAILURE))


class MilterSession:
    """One MTA connection: collects the envelope and the message, then waits for the decision."""

    def __init__(self, door: MilterDoor) -> None:
        self.door = door
        self._reset()

    def _reset(self) -> None:
        self.sender: str | None = None
        self.macros: dict[str, str] = {}
        self.recipients: list[str] = []
        self.parts: list[bytes] = []  # header lines, then the body's chunks
        self.body_started = False
        self.size = 0
        self.too_big = False

    def mail(self, sender: str, macros: dict[str, str]) -> None:
        self._reset()
        self.sender = sender
        self.macros = macros

    def rcpt(self, recipient: str) -> Answer:
        if len(self.recipients) >= self.door.config.limits.max_recipients:
            return answer_from_reply("tempfail", replies.plain(replies.TOO_MANY_RECIPIENTS))
        self.recipients.append(recipient)
        return CONTINUE

    def header(self, name: str, value: bytes) -> None:
        # Postfix separates a folded value's lines with a bare LF; the message is CRLF throughout.
        value = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self._add(name.encode("utf-8", "surrogateescape") + b":" + value + b"\r\n")

    def body(self, chunk: bytes) -> None:
        if not self.body_started:
            self.body_started = True
            self._add(b"\r\n")
        self._add(chunk)

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.door.config.limits.max_message_bytes:
            self.too_big = True
            self.parts.clear()  # what is refused anyway is not kept in memory
        elif not self.too_big:
            self.parts.append(data)

    def end(self) -> Answer:
        try:
            return self._end()
        except Exception as e:  # never accept what was not decided, never a 5xx for our own failure
            log("session_error", "error", error=type(e).__name__)
            return answer_from_reply("tempfail", replies.plain(replies.TEMPORARY_FAILURE))
        finally:
            self._reset()  # the connection may carry another message

    def _end(self) -> Answer:
        if self.door.closing:
            return answer_from_reply("tempfail", replies.plain(replies.SHUTTING_DOWN))
        if self.too_big:
            return answer_from_reply("reject", replies.plain(replies.TOO_BIG))
        if self.sender is None or not self.recipients:
            # A message without MAIL FROM or recipients is an MTA's mistake: it may retry.
            return answer_from_reply("tempfail", replies.plain(replies.TEMPORARY_FAILURE))
        if not self.body_started:
            self._add(b"\r\n")
        arrival = Arrival(
            data=b"".join(self.parts),
            mail_from=self.sender,
            rcpt_tos=tuple(self.recipients),
            identity=identity_from(self.macros),
            connection=self.macros.get("i", ""),
        )
        return answer(self.door.decide(arrival))

    def abort(self) -> None:
        self._reset()

    def close(self) -> None:
        self._reset()


class MilterDoor:
    """The milter as a service (gateway.supervise): libmilter's loop in a thread, the pipeline on the event loop."""

    def __init__(self, pipeline: Pipeline, config: Config) -> None:
        self.pipeline = pipeline
        self.config = config
        self.closing = False
        self.tasks: set[asyncio.Task[Any]] = set()  # messages being decided: a stop waits for them
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()

    def session(self) -> MilterSession:
        return MilterSession(self)

    # ---- life cycle

    async def start(self, sock: socket.socket) -> None:
        """Serve on `sock`, the socket libmilter opened (`libmilter.listen`, before any fork)."""
        self.loop = asyncio.get_running_loop()
        self.sock = sock
        self.thread = threading.Thread(target=self._main, name="libmilter", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            libmilter.run(self.session, self.config.milter.timeout_seconds)
        except Exception as e:
            log("milter_failed", "error", error=type(e).__name__)
        finally:
            self.stopped.set()
            if not self.closing:
                # libmilter stops by itself on a signal its own thread caught first, or on repeated
                # accept() failures: the process stops as on SIGTERM, and its supervisor (systemd,
                # the worker master) starts it again.
                log("milter_stopped", "error", detail="libmilter ended on its own")
                os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let the messages being decided finish; the MTA tempfails the rest."""
        self.closing = True
        await asyncio.to_thread(libmilter.stop, self.sock)
        self.pipeline.notices.stop()
        grace = self.config.limits.scan_timeout_seconds + DECISION_MARGIN_SECONDS if grace is None else grace
        deadline = time.monotonic() + grace
        while self.busy() and time.monotonic() < deadline:
            await asyncio.wait(self.busy(), timeout=max(0.0, deadline - time.monotonic()))
        if self.thread is not None:
            await asyncio.to_thread(self.stopped.wait, libmilter.STOP_SECONDS)
        self.pipeline.close()

    def busy(self) -> set[asyncio.Task[Any]]:
        return self.tasks | self.pipeline.in_flight()

    async def reload(self, config: Config) -> None:
        """SIGHUP: the next messages get the new config; the socket stays (a change needs a restart)."""
        stage = await asyncio.to_thread(Stage.build, config)
        if config.milter != self.config.milter:
            log("reload_listen_ignored", "warning", detail="milter changes need a restart")
        self.pipeline.reload(stage)
        self.config = config

    def describe(self) -> dict[str, Any]:
        hop = self.config.next_hop
        address: Any = self.sock.getsockname() if self.sock is not None else None
        return {
            "milter": self.config.milter.listen,
            "address": address if isinstance(address, str) else f"{address[0]}:{address[1]}",
            "on_block": self.config.policy.on_block,
            "next_hop": f"{hop.host}:{hop.port}" if hop else "maildir",
        }

    # ---- a message

    def decide(self, arrival: Arrival) -> Outcome:
        """The pipeline's outcome for a message, from a libmilter thread (blocks it, not the loop)."""
        assert self.loop is not None
        decision = _Decision(arrival)
        self.loop.call_soon_threadsafe(self._start, decision)
        limits = self.config.limits
        if not decision.done.acquire(timeout=limits.scan_timeout_seconds + DECISION_MARGIN_SECONDS):
            log("decision_timeout", "error", recipient_domains=domains(arrival.rcpt_tos))
            return Outcome(replies.plain(replies.SCAN_TIMEOUT), "deferred", refusal="decision_timeout")
        assert decision.outcome is not None
        return decision.outcome

    def _start(self, decision: _Decision) -> None:
        assert self.loop is not None
        task = self.loop.create_task(self.pipeline.process(decision.arrival))
        self.tasks.add(task)
        task.add_done_callback(functools.partial(self._finished, decision))

    def _finished(self, decision: _Decision, task: asyncio.Task[Outcome]) -> None:
        self.tasks.discard(task)
        if task.cancelled() or task.exception() is not None:  # process() never raises: a stop's cut
            decision.outcome = Outcome(
                replies.plain(replies.TEMPORARY_FAILURE), "deferred", refusal="cancelled"
            )
        else:
            decision.outcome = task.result()
        decision.done.release()


class _Decision:
    """One message on its way to the event loop and back.

    The libmilter thread waits on a plain lock that the loop releases, not on a concurrent
    Future with its condition and callbacks: that hand-over was a sixth of the milter's Python
    time (py-spy, 5 KB messages from 20 sessions).
    """

    __slots__ = ("arrival", "outcome", "done")

    def __init__(self, arrival: Arrival) -> None:
        self.arrival = arrival
        self.outcome: Outcome | None = None
        self.done = threading.Lock()
        self.done.acquire()


async def build(config: Config) -> MilterDoor:
    """The milter door for a config, its scanner warmed up (in a thread: it may take seconds)."""
    stage = await asyncio.to_thread(Stage.build, config)
    return MilterDoor(Pipeline(stage, handoff=back_to_the_mta), config)
