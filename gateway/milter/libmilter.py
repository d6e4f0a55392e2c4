"""pymilter (Sendmail's libmilter) glue: its callbacks turned into calls on a door's session, and answers back.

libmilter runs one thread per MTA connection and calls the callbacks below in it; each connection
gets its own `Session` from the door. Everything that knows pymilter's names, return codes and the
milter protocol's options lives here; the door sees plain Python (addresses, macros, bytes) and
answers with an `Answer`.

One milter per process: libmilter keeps its listening socket and its callbacks in process-global
state. The socket is opened once (`listen`) before any worker is forked, so that every worker
accepts on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import re
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import milter

from gateway import replies
from gateway.errors import UserError
from gateway.logs import log

NAME = "brukarvakt"
# The only things the door does to a message: add its verdict header (at the top), and ask the
# MTA for the macros it needs at MAIL FROM, not the default set at every stage.
ACTIONS = milter.ADDHDRS | milter.SETSYMLIST
# What the MTA need not send (connect, HELO, DATA, end of headers, unknown commands) and what it
# need not wait for an answer to (MAIL FROM, each header, each body chunk): the answer to those is
# always "go on", the decision comes at the end of the message. Header values keep their leading
# space, so that the message is scanned as it was written.
PROTOCOL = (
    milter.P_NOCONNECT
    | milter.P_NOHELO
    | milter.P_NODATA
    | milter.P_NOEOH
    | milter.P_NOUNKNOWN
    | milter.P_NR_MAIL
    | milter.P_NR_HDR
    | milter.P_NR_BODY
    | milter.P_HDR_LEADSPC
)
# Who sent it and how: the SASL login and its mechanism, the TLS version (none: no TLS), the client
# address (logs only) and the MTA's queue id (logs only). Postfix and Sendmail send these with
# MAIL FROM when asked (protocol version 6, SMFIF_SETSYMLIST).
MACROS = ("{auth_authen}", "{auth_type}", "{tls_version}", "{client_addr}", "i")
# libmilter's stop waits for its listener's poll, which looks at the socket every 5 seconds.
STOP_SECONDS = 6.0
MAX_REPLY_LINES = 32  # libmilter's limit for a multi-line reply (smfi_setmlreply)

Kind = Literal["continue", "accept", "reject", "tempfail", "discard"]


@dataclass(frozen=True)
class Answer:
    """What the door tells the MTA: go on, or a decision, with a reply and headers to add."""

    kind: Kind = "continue"
    code: str = ""  # 4xx or 5xx, with `status` and `lines`, for reject and tempfail
    status: str = ""
    lines: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # inserted at the top


CONTINUE = Answer()
_REPLY_LINE = re.compile(r"^([45]\d\d)[ -](?:([245]\.\d{1,3}\.\d{1,3}) )?(.*)$")


def answer_from_reply(kind: Kind, reply: str) -> Answer:
    """An SMTP reply as the pipeline writes it ("550-5.7.1 a\\r\\n550 5.7.1 b") as code, status and lines."""
    code, status, lines = "", "", []
    for line in reply.split("\r\n"):
        match = _REPLY_LINE.match(line)
        if match is None:
            continue
        code = code or match.group(1)
        status = status or (match.group(2) or "")
        lines.append(match.group(3))
    if not code:  # not a refusal the MTA could pass on as it is: a plain temporary failure
        return Answer("tempfail")
    return Answer(kind, code, status, tuple(lines[:MAX_REPLY_LINES]))


class Session(Protocol):
    """One MTA connection, as the door handles it (called in that connection's libmilter thread)."""

    def mail(self, sender: str, macros: dict[str, str]) -> None: ...

    def rcpt(self, recipient: str) -> Answer: ...

    def header(self, name: str, value: bytes) -> None: ...

    def body(self, chunk: bytes) -> None: ...

    def end(self) -> Answer: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


SessionFactory = Callable[[], Session]


# ---------------------------------------------------------------- the callbacks


class _Connection:
    """libmilter's private data for one connection: the door's session and what was negotiated."""

    __slots__ = ("session", "protocol", "failed")

    def __init__(self, session: Session, protocol: int) -> None:
        self.session = session
        self.protocol = protocol
        # An error in a step the MTA awaits no answer to: told at the end of the message (an
        # answer now would be read as the answer to the MTA's next command).
        self.failed = False

    def fail(self, error: Exception) -> None:
        log("session_error", "error", error=type(error).__name__)
        self.failed = True
        self.session.abort()


_factory: SessionFactory | None = None


def _connection(ctx: milter.milterContext) -> _Connection:
    conn = ctx.getpriv()
    if conn is None:  # an MTA that does not negotiate (protocol version 2): every step answered
        assert _factory is not None
        conn = _Connection(_factory(), 0)
        ctx.setpriv(conn)
    return conn  # type: ignore[no-any-return]


def _negotiate(ctx: milter.milterContext, opts: list[int]) -> int:
    actions, protocol = opts[0], opts[1]
    assert _factory is not None
    ctx.setpriv(_Connection(_factory(), protocol & PROTOCOL))
    opts[0] = actions & ACTIONS
    opts[1] = protocol & PROTOCOL
    opts[2] = opts[3] = 0
    if actions & milter.SETSYMLIST:
        ctx.setsymlist(milter.M_ENVFROM, " ".join(MACROS))
    return milter.CONTINUE  # type: ignore[no-any-return]


def _no_reply(conn: _Connection, flag: int) -> int:
    return milter.NOREPLY if conn.protocol & flag else milter.CONTINUE  # type: ignore[no-any-return]


def _envfrom(ctx: milter.milterContext, sender: bytes, *params: bytes) -> int:
    conn = _connection(ctx)
    conn.failed = False  # a new transaction
    try:
        macros = {name: value for name in MACROS if (value := ctx.getsymval(name))}
        conn.session.mail(_address(sender), macros)
    except Exception as e:
        conn.fail(e)
    return _no_reply(conn, milter.P_NR_MAIL)


def _envrcpt(ctx: milter.milterContext, recipient: bytes, *params: bytes) -> int:
    conn = _connection(ctx)
    return _apply(ctx, conn, conn.session.rcpt(_address(recipient)))


def _header(ctx: milter.milterContext, name: str, value: bytes) -> int:
    conn = _connection(ctx)
    if not conn.failed:
        try:
            conn.session.header(name, value if conn.protocol & milter.P_HDR_LEADSPC else b" " + value)
        except Exception as e:
            conn.fail(e)
    return _no_reply(conn, milter.P_NR_HDR)


def _body(ctx: milter.milterContext, chunk: bytes) -> int:
    conn = _connection(ctx)
    if not conn.failed:
        try:
            conn.session.body(chunk)
        except Exception as e:
            conn.fail(e)
    return _no_reply(conn, milter.P_NR_BODY)


def _eom(ctx: milter.milterContext) -> int:
    conn = _connection(ctx)
    if conn.failed:
        conn.failed = False
        return _apply(ctx, conn, answer_from_reply("tempfail", replies.plain(replies.TEMPORARY_FAILURE)))
    return _apply(ctx, conn, conn.session.end())


def _abort(ctx: milter.milterContext) -> int:
    conn = ctx.getpriv()
    if conn is not None:
        conn.session.abort()
    return milter.CONTINUE  # type: ignore[no-any-return]


def _close(ctx: milter.milterContext) -> int:
    conn = ctx.getpriv()
    if conn is not None:
        ctx.setpriv(None)
        conn.session.close()
    return milter.CONTINUE  # type: ignore[no-any-return]


_CODES = {
    "continue": milter.CONTINUE,
    "accept": milter.ACCEPT,
    "reject": milter.REJECT,
    "tempfail": milter.TEMPFAIL,
    "discard": milter.DISCARD,
}


def _apply(ctx: milter.milterContext, conn: _Connection, answer: Answer) -> int:
    # With leading spaces negotiated the MTA writes a value as given, "Name:" and all.
    space = " " if conn.protocol & milter.P_HDR_LEADSPC else ""
    for name, value in answer.headers:
        ctx.addheader(name, space + value, 0)  # index 0: SMFIR_INSHEADER, at the top
    if answer.code:
        # libmilter formats the text with printf: a lone % would make it drop the whole reply.
        lines = [line.replace("%", "%%") for line in answer.lines] or [""]
        ctx.setreply(answer.code, answer.status or None, *lines)
    return _CODES[answer.kind]


def _address(raw: bytes) -> str:
    """An envelope address as the MTA gives it ("<a@b>", "<>"), without the brackets.

    A byte that is not UTF-8 becomes U+FFFD: kept as a lone surrogate it could be written
    neither into the held message's sidecar (a 451 for ever) nor into an audit line. The MTA
    keeps the envelope as it was; this text is for the decision, the audit and the notice.
    """
    return raw.decode("utf-8", "replace").strip().removeprefix("<").removesuffix(">")


# ---------------------------------------------------------------- the socket and the main loop


def libmilter_address(spec: str) -> str:
    """Postfix's notation (inet:HOST:PORT, unix:/PATH) in libmilter's (inet:PORT@HOST, unix:/PATH)."""
    kind, _, rest = spec.partition(":")
    if kind in ("inet", "inet6") and "@" not in rest:
        host, _, port = rest.rpartition(":")
        return f"{kind}:{port}@{host.strip('[]') or '127.0.0.1'}"
    return spec


def listen(spec: str, socket_mode: str, socket_group: str | None) -> socket.socket:
    """Open the milter's socket and register the callbacks; a refusal names the config key.

    A unix socket's stale file (a socket left by a killed milter) is removed first; a file that is
    not a socket is never removed. The socket is made with `socket_mode`, and given `socket_group`
    when set (the MTA's group). Returns a second handle on the same socket, for its address.
    """
    address = libmilter_address(spec)
    path = _unix_path(spec)
    if path is not None:
        _check_socket_path(path)
    else:
        _check_port(address)
    milter.set_flags(ACTIONS)
    milter.set_exception_policy(milter.TEMPFAIL)  # an error in a callback never accepts the message
    milter.set_envfrom_callback(_envfrom)
    milter.set_envrcpt_callback(_envrcpt)
    milter.set_header_callback(_header)
    milter.set_body_callback(_body)
    milter.set_eom_callback(_eom)
    milter.set_abort_callback(_abort)
    milter.set_close_callback(_close)
    for unused in (
        milter.set_connect_callback,
        milter.set_helo_callback,
        milter.set_eoh_callback,
    ):
        unused(None)
    milter.setconn(address)
    milter.register(NAME, negotiate=_negotiate, data=None, unknown=None)
    umask = os.umask(0o777 & ~int(socket_mode, 8))
    try:
        milter.opensocket(True)
    except milter.error:
        raise UserError(f"cannot listen on {spec} (milter.listen)") from None
    finally:
        os.umask(umask)
    sock = _listening(str(path) if path is not None else int(address.rpartition(":")[2].partition("@")[0]))
    if path is not None and socket_group:
        try:
            os.chown(path, -1, grp.getgrnam(socket_group).gr_gid)
        except (KeyError, OSError) as e:
            raise UserError(
                f"cannot give {path} to group {socket_group} (milter.socket_group): {e}"
            ) from None
    return sock


def _unix_path(spec: str) -> Path | None:
    kind, _, rest = spec.partition(":")
    return Path(rest) if kind in ("unix", "local") else None


def _check_socket_path(path: Path) -> None:
    if not path.parent.is_dir():
        raise UserError(f"cannot listen on {path} (milter.listen): folder {path.parent} does not exist")
    if path.exists() and not stat.S_ISSOCK(path.stat().st_mode):
        raise UserError(f"cannot listen on {path} (milter.listen): it exists and is not a socket")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot listen on {path} (milter.listen): folder {path.parent} is not writable")


def _check_port(address: str) -> None:
    """Bind and let go once, for the system's own words (libmilter only writes to syslog)."""
    kind, _, rest = address.partition(":")
    port, _, host = rest.partition("@")
    family = socket.AF_INET6 if kind == "inet6" else socket.AF_INET
    try:
        with socket.socket(family) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port)))
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) else str(e)
        raise UserError(f"cannot listen on {host}:{port} (milter.listen): {reason}") from None


def _listening(expected: str | int) -> socket.socket:
    """The socket libmilter just opened (libmilter keeps its descriptor to itself).

    Found among the process's descriptors as the listening socket on `expected` (a unix socket's
    path, or a port). Made non-blocking: with several workers on one socket, the ones that
    lose the race for a connection go back to waiting (and see a stop) instead of sitting in accept().
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        with contextlib.suppress(OSError):
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=os.dup(fd))
            name = sock.getsockname()
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) and (
                name == expected if isinstance(name, str) else name[1] == expected
            ):
                fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
                if sock.family != socket.AF_UNIX:
                    # Accepted connections inherit it (Linux): an answer in two writes (the header,
                    # then accept) must not wait for the MTA's delayed ACK (measured: 100 -> 62 ms a
                    # message for one session through Postfix).
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return sock
            sock.close()
    raise UserError(f"libmilter opened no listening socket on {expected} (milter.listen)")


def run(factory: SessionFactory, timeout_seconds: int) -> None:
    """libmilter's main loop on the socket `listen` opened, until `stop()`.

    Blocks the calling thread (run it in its own); `factory` makes each connection's session.
    """
    global _factory
    _factory = factory
    milter.settimeout(timeout_seconds)
    try:
        milter.main()
    except milter.error as e:
        log("milter_main_failed", "error", error=str(e))
        raise


def stop(listening: socket.socket | None = None) -> None:
    """Ask libmilter to stop accepting, and wait until it has (blocks: call it in a thread).

    libmilter's stop waits for its listener's poll (5 s) to end; connections to `listening` end
    the poll at once (libmilter closes them as MTAs that left before saying anything).
    """
    done = threading.Event()

    def ask() -> None:
        milter.stop()
        done.set()

    threading.Thread(target=ask, name="libmilter-stop", daemon=True).start()
    deadline = time.monotonic() + STOP_SECONDS
    while not done.wait(0.05) and time.monotonic() < deadline:
        if listening is not None:
            with contextlib.suppress(OSError), socket.socket(listening.family, socket.SOCK_STREAM) as wake:
                wake.settimeout(1.0)
                wake.connect(listening.getsockname())
