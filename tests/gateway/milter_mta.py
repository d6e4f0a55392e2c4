"""A scripted MTA side of the milter protocol (version 6), speaking to a milter the way Postfix does.

Messages are encoded and decoded by miltertest's codec (a pure-Python implementation of the
protocol); the conversation follows Postfix's milter8 client: option negotiation, the macros the
milter asked for sent before MAIL FROM, then MAIL, RCPT, the headers, the body and end of message,
waiting for a reply only where the milter did not negotiate "no reply".
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from miltertest import codec
from miltertest import constants as C

REPO = Path(__file__).resolve().parents[2]
# Postfix 3.7 offers every action and protocol step of version 6.
MTA_ACTIONS = C.SMFI_V6_ACTS
MTA_PROTOCOL = C.SMFI_V6_PROT
# Which protocol flag spares the MTA the wait for a reply to which command.
NO_REPLY = {
    C.SMFIC_MAIL: C.SMFIP_NR_MAIL,
    C.SMFIC_RCPT: C.SMFIP_NR_RCPT,
    C.SMFIC_HEADER: C.SMFIP_NR_HDR,
    C.SMFIC_BODY: C.SMFIP_NR_BODY,
    C.SMFIC_EOH: C.SMFIP_NR_EOH,
}
_REPLY_PREFIX = re.compile(r"^\d{3}[ -](\d\.\d{1,3}\.\d{1,3} )?")
SKIPPED = {
    C.SMFIC_MAIL: C.SMFIP_NOMAIL,
    C.SMFIC_RCPT: C.SMFIP_NORCPT,
    C.SMFIC_HEADER: C.SMFIP_NOHDRS,
    C.SMFIC_BODY: C.SMFIP_NOBODY,
    C.SMFIC_EOH: C.SMFIP_NOEOH,
}


@dataclass
class Negotiated:
    version: int
    actions: int
    protocol: int
    macros: dict[int, str] = field(default_factory=dict)  # stage -> space-separated names


@dataclass
class Reply:
    """The milter's answer to a command: the disposition and what came with it."""

    command: str  # SMFIR_* code: a, c, d, r, t, y ...
    code: str = ""  # SMFIR_REPLYCODE's SMTP code
    text: str = ""  # SMFIR_REPLYCODE's text (status and lines)
    headers: list[tuple[int, str, str]] = field(default_factory=list)  # (index, name, value)

    @property
    def lines(self) -> list[str]:
        """The reply as SMTP lines, status included: what the MTA shows the client."""
        return [_REPLY_PREFIX.sub("", line) for line in self.text.split("\r\n")]


class ScriptedMTA:
    """One MTA connection to a milter; `send_message` plays a whole SMTP transaction."""

    def __init__(self, address: tuple[str, int] | str, timeout: float = 60.0) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""
        self.negotiated: Negotiated | None = None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(codec.encode_msg(C.SMFIC_QUIT))
        self.sock.close()

    def __enter__(self) -> ScriptedMTA:
        self.negotiate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the wire

    def _packet(self) -> bytes:
        while True:
            if len(self.buffer) >= 4:
                length = struct.unpack("!L", self.buffer[:4])[0]
                if len(self.buffer) >= 4 + length:
                    packet, self.buffer = self.buffer[4 : 4 + length], self.buffer[4 + length :]
                    return packet
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the milter closed the connection")
            self.buffer += data

    def _reply(self) -> tuple[str, dict[str, object]]:
        while True:
            packet = self._packet()
            command, fields, _ = codec.decode_msg(struct.pack("!L", len(packet)) + packet)
            if command != C.SMFIR_PROGRESS:
                return command, fields

    def negotiate(self) -> Negotiated:
        self.sock.sendall(codec.encode_optneg(MTA_ACTIONS, MTA_PROTOCOL))
        packet = self._packet()
        assert packet[:1] == b"O", packet[:1]
        version, actions, protocol = struct.unpack("!LLL", packet[1:13])
        macros: dict[int, str] = {}
        rest = packet[13:]
        while len(rest) >= 4:  # SMFIR_SETSYMLIST lists appended to the reply (stage, names)
            stage = struct.unpack("!L", rest[:4])[0]
            names, _, rest = rest[4:].partition(b"\0")
            macros[stage] = names.decode()
        self.negotiated = Negotiated(version, actions, protocol, macros)
        return self.negotiated

    def _command(self, command: str, **fields: object) -> Reply | None:
        assert self.negotiated is not None
        protocol = self.negotiated.protocol
        if protocol & SKIPPED.get(command, 0):
            return None
        self.sock.sendall(codec.encode_msg(command, **fields))
        if protocol & NO_REPLY.get(command, 0):
            return None
        return self._disposition()

    def _raw_command(self, command: str, payload: bytes) -> Reply | None:
        """A command whose arguments are bytes the codec would not encode (not UTF-8)."""
        assert self.negotiated is not None
        self.sock.sendall(struct.pack("!Lc", len(payload) + 1, command.encode()) + payload)
        if self.negotiated.protocol & NO_REPLY.get(command, 0):
            return None
        return self._disposition()

    def _disposition(self) -> Reply:
        reply = Reply("")
        while True:
            command, fields = self._reply()
            if command in (C.SMFIR_INSHEADER, C.SMFIR_ADDHEADER):
                index = int(fields.get("index", -1))  # type: ignore[call-overload]
                reply.headers.append((index, str(fields["name"]), str(fields["value"])))
                continue
            reply.command = command
            if command == C.SMFIR_REPLYCODE:
                reply.code = str(fields["smtpcode"])
                reply.text = f"{reply.code}{fields['space']}{fields['text']}"
            return reply

    # ---- a transaction

    def send_message(
        self,
        sender: str | bytes,
        recipients: list[str],
        message: bytes,
        macros: dict[str, str] | None = None,
    ) -> Reply:
        """MAIL, RCPT, headers, body, end of message: the first reply that is not "continue".

        A sender given as bytes is sent as they are (an MTA passes on what the client wrote).
        """
        if macros:
            pairs = [x for item in macros.items() for x in item]
            self.sock.sendall(codec.encode_msg(C.SMFIC_MACRO, cmdcode=C.SMFIC_MAIL, nameval=pairs))
        if isinstance(sender, bytes):
            reply = self._raw_command(C.SMFIC_MAIL, b"<" + sender + b">\0")
        else:
            reply = self._command(C.SMFIC_MAIL, args=[f"<{sender}>"])
        if reply is not None and reply.command != C.SMFIR_CONTINUE:
            return reply
        for recipient in recipients:
            reply = self._command(C.SMFIC_RCPT, args=[f"<{recipient}>"])
            if reply is not None and reply.command != C.SMFIR_CONTINUE:
                return reply
        head, _, body = message.replace(b"\r\n", b"\n").partition(b"\n\n")
        for name, value in _headers(head.decode("utf-8")):
            reply = self._command(C.SMFIC_HEADER, name=name, value=value)
            if reply is not None and reply.command != C.SMFIR_CONTINUE:
                return reply
        self._command(C.SMFIC_EOH)
        text = body.replace(b"\n", b"\r\n").decode("utf-8")
        for start in range(0, len(text), C.MILTER_CHUNK_SIZE):
            reply = self._command(C.SMFIC_BODY, buf=text[start : start + C.MILTER_CHUNK_SIZE])
            if reply is not None and reply.command != C.SMFIR_CONTINUE:
                return reply
        self.sock.sendall(codec.encode_msg(C.SMFIC_BODYEOB))
        return self._disposition()

    def refused_recipient(self, sender: str, recipients: list[str]) -> Reply | None:
        """MAIL and RCPTs only: the first recipient the milter does not take, then ABORT."""
        self._command(C.SMFIC_MAIL, args=[f"<{sender}>"])
        try:
            for recipient in recipients:
                reply = self._command(C.SMFIC_RCPT, args=[f"<{recipient}>"])
                if reply is not None and reply.command != C.SMFIR_CONTINUE:
                    return reply
            return None
        finally:
            self.sock.sendall(codec.encode_msg(C.SMFIC_ABORT))


def _headers(head: str) -> list[tuple[str, str]]:
    """Header fields as Postfix sends them with leading spaces kept: folded lines joined by LF."""
    fields: list[tuple[str, str]] = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        else:
            name, _, value = line.partition(":")
            fields.append((name, value))
    return fields


# ---------------------------------------------------------------- the milter as its own process


class MilterProcess:
    """`brukarvakt milter --config FILE` as a process; ready once it logged "listening"."""

    def __init__(self, config_path: Path, env: dict[str, str], workers: int = 1) -> None:
        self.config_path = config_path
        self.env = env
        self.workers = workers
        self.log_path = config_path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "milter", "--config", str(self.config_path)]
                + (["--workers", str(self.workers)] if self.workers > 1 else []),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
            )
        deadline = time.monotonic() + timeout
        while '"event": "listening"' not in self.log()[offset:]:
            if not self.alive():
                raise RuntimeError(
                    f"brukarvakt milter exited ({self.process.returncode}): {self.log()[offset:]}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"brukarvakt milter did not start within {timeout:.0f} s: {self.log()}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def events(self, name: str) -> list[dict[str, object]]:
        out = []
        for line in self.log().splitlines():
            if line.startswith("{") and f'"event": "{name}"' in line:
                out.append(json.loads(line))
        return out
