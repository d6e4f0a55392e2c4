"""Running a door as a service: signals (stop, reload), worker processes on one socket, crash replacement.

A service is anything with `start(sock)`, `stop()` and `reload(config)`: the SMTP gateway and the
milter alike. SIGTERM and SIGINT stop it gracefully (transactions in flight finish), SIGHUP reads
the config again and keeps the old one if the new one has a mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from gateway.config import load
from gateway.errors import UserError
from gateway.logs import log
from models.config import Config

PR_SET_PDEATHSIG = 1  # prctl(2)


class Service(Protocol):
    async def start(self, sock: socket.socket) -> None: ...

    async def stop(self, grace: float | None = None) -> None: ...

    async def reload(self, config: Config) -> None: ...

    def describe(self) -> dict[str, Any]: ...


# Builds the service from a config (may take seconds: the register, the name model).
Factory = Callable[[Config], Awaitable[Service]]


def bind_tcp(host: str, port: int, what: str) -> socket.socket:
    """The listening socket, made once before any worker starts; a refusal names the config keys."""
    try:
        return socket.create_server((host, port), backlog=512, reuse_port=False)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port} ({what}): {e.strerror}") from None


async def serve_forever(
    config: Config, config_path: Path | None, factory: Factory, sock: socket.socket
) -> int:
    service = await factory(config)
    await service.start(sock)
    # What start-up made (modules, the register's index, the rules) lives as long as the process:
    # kept out of the cyclic garbage collector, whose full passes would otherwise walk all of it
    # again and again while parsing mail makes short-lived objects.
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_error)
    reloads: set[asyncio.Task[None]] = set()

    def reload() -> None:
        task = asyncio.ensure_future(_reload(service, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload)
    log("listening", **service.describe())
    await stop.wait()
    log("stopping")
    await service.stop()
    log("stopped")
    return 0


async def _reload(service: Service, config_path: Path | None) -> None:
    try:
        config = load(config_path)
        await service.reload(config)
    except UserError as e:
        log("reload_failed", "error", error=str(e))
        return
    except Exception as e:
        log("reload_failed", "error", error=type(e).__name__)
        return
    log("reloaded", config=str(config_path or "embedded defaults"))


def _loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # asyncio's own handler prints a traceback (with the exception's text, which may quote mail)
    # for, e.g., a client that breaks off a TLS handshake: one structured line instead.
    error = context.get("exception")
    log(
        "loop_error",
        "warning",
        message=str(context.get("message", ""))[:200],
        error=type(error).__name__ if error else None,
    )


def run(
    config: Config, config_path: Path | None, factory: Factory, sock: socket.socket, workers: int = 1
) -> int:
    """Serve until stopped: in this process, or in `workers` forked processes sharing `sock`."""

    def worker() -> int:
        return asyncio.run(serve_forever(config, config_path, factory, sock))

    if workers <= 1:
        return worker()
    return _prefork(worker, workers)


def _stop_with_parent(parent: int) -> None:
    """Ask Linux for SIGTERM when the parent dies, so that a killed master leaves no workers.

    A worker then stops as on any SIGTERM: transactions in flight are finished first. Elsewhere
    (no prctl) workers still stop with a living parent's SIGTERM, as before.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _prefork(worker: Callable[[], int], workers: int) -> int:
    """Several processes accepting on one socket, to use every core; signals go to all of them."""
    children: set[int] = set()
    parent = os.getpid()

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _stop_with_parent(parent)
            code = 1
            try:
                code = worker()
            except UserError as e:
                log("worker_failed", "error", error=str(e))
                code = 2
            finally:
                os._exit(code)
        children.add(pid)

    stopping = False

    def forward(sig: int, _frame: Any) -> None:
        nonlocal stopping
        if sig in (signal.SIGTERM, signal.SIGINT):
            stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    for _ in range(workers):
        spawn()
    status = 0
    while children:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        children.discard(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping and exit_code != 2:
            log("worker_died", "error", exit_code=exit_code)
            spawn()  # a crashed worker is replaced; its acknowledged mail was already handed on
        elif exit_code:
            status = exit_code
    return status
