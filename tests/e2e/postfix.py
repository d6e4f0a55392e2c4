"""A private Postfix instance built from deploy/postfix/*/*.example, and the processes around it."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "postfix"
DOMAIN = "hemtjanst.example"
SECURE_DOMAIN = "sakra.example"
STAFF = f"anna.lind@{DOMAIN}"
MANAGER = f"chef@{DOMAIN}"
PASSWORD = "Hemligt-losen-for-test-1"
# Values a throw-away instance must change in the example main.cf; everything else is the
# example as shipped. {root} is the instance's folder, {sink} the final destination's port.
INSTANCE_OVERRIDES = {
    "queue_directory": "{root}/queue",
    "data_directory": "{root}/data",
    "maillog_file": "/dev/stdout",
    "inet_interfaces": "127.0.0.1",
    "relayhost": "[127.0.0.1]:{sink}",
    "smtpd_tls_cert_file": "{root}/tls/cert.pem",
    "smtpd_tls_key_file": "{root}/tls/key.pem",
    # Debian's Postfix reads $config_directory/sasl/smtpd.conf whatever this says; upstream reads
    # this path. Both are the same folder here.
    "cyrus_sasl_config_path": "{root}/etc/sasl",
    # The final destination is a plain test sink on loopback.
    "smtp_tls_security_level": "none",
}
# Per mode: what the milter example needs moved ({gateway} is the milter's port). Its header
# checks file goes into the instance's etc, its secure relay becomes the sink.
MODE_OVERRIDES = {
    "milter": {
        "smtpd_milters": "inet:127.0.0.1:{gateway}",
        "milter_header_checks": "regexp:{root}/etc/brukarvakt_milter_header_checks",
    },
}
SECURE_RELAY = "[sakra-relay.hemtjanst.example]:25"
REQUIRED_TOOLS = ("postfix", "postconf", "postqueue", "saslpasswd2", "openssl")
START_TIMEOUT = 30.0


def require_tools() -> None:
    """Fail (never skip) with what to install when the Debian packages are missing."""
    if os.geteuid() != 0:
        raise RuntimeError("end-to-end tests start a private Postfix, which needs root (as in CI)")
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(
            f"end-to-end tests need {', '.join(missing)}: run `bash scripts/install-system-deps` as root"
            " (Debian packages postfix, sasl2-bin, openssl)"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool], what: str) -> None:
    """Wait until something accepts connections on 127.0.0.1:port, or fail with `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before it listened on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def wait_for_greeting(port: int, timeout: float, alive: Callable[[], bool], what: str) -> None:
    """Wait until an SMTP server on 127.0.0.1:port greets with 220: listening is not yet serving."""
    deadline = time.monotonic() + timeout
    last = "nothing"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before it greeted on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                last = s.recv(512).decode("ascii", "replace").strip() or "a closed connection"
                if last.startswith("220"):
                    return
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not greet with 220 on port {port} within {timeout:.0f} s (got {last})")


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Received:
    """One message as the final destination got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Sink:
    """The final destination: an SMTP server in the test process that records what it gets."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._changed:
            sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
            self.messages.append(Received(sender, tuple(envelope.rcpt_tos), content))
            self._changed.notify_all()
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def wait_for(self, predicate: Callable[[Received], bool], timeout: float, what: str) -> Received:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message {what} reached the destination within {timeout:.0f} s")
                self._changed.wait(left)

    def holding(self, marker: str) -> list[Received]:
        with self._changed:
            return [m for m in self.messages if marker in m.text]


@dataclass
class Postfix:
    """A private Postfix: own config, queue and data folders, own ports, logs in `log_path`."""

    mode: str  # "before-queue", "after-queue" or "milter": a folder of deploy/postfix
    sink_port: int
    gateway_port: int
    users: tuple[str, ...]
    root: Path = field(init=False)
    submission_port: int = field(init=False)
    return_port: int = field(init=False)
    mx_port: int = field(init=False)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        require_tools()
        self.root = Path(tempfile.mkdtemp(prefix=f"brukarvakt-postfix-{self.mode}-"))
        # Postfix's daemons run as the user postfix and must reach the queue, TLS and SASL files.
        self.root.chmod(0o755)
        self.submission_port, self.return_port, self.mx_port = free_port(), free_port(), free_port()

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def log_path(self) -> Path:
        return self.root / "maillog"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _run(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def master_cf(self) -> str:
        """The example master.cf with its listeners moved to this instance's free ports."""
        names = {
            "smtp": f"127.0.0.1:{self.mx_port}",
            "submission": f"127.0.0.1:{self.submission_port}",
            "127.0.0.1:10026": f"127.0.0.1:{self.return_port}",
        }
        lines = []
        for line in (DEPLOY / self.mode / "master.cf.example").read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[1] == "inet" and fields[0] in names:
                line = line.replace(fields[0], names[fields[0]], 1)
            if not line.lstrip().startswith("#"):
                line = line.replace("127.0.0.1]:10025", f"127.0.0.1]:{self.gateway_port}")
                line = line.replace("=127.0.0.1:10025", f"=127.0.0.1:{self.gateway_port}")
                if ":10025" in line or ":10026" in line:
                    raise RuntimeError(f"{self.mode}/master.cf.example: a port the tests do not move: {line}")
            lines.append(line)
        return "\n".join(lines) + "\n"

    def configure(self) -> None:
        postfix_user = pwd.getpwnam("postfix")
        for sub in ("etc", "etc/sasl", "queue", "data", "tls"):
            (self.root / sub).mkdir()
        os.chown(self.root / "data", postfix_user.pw_uid, postfix_user.pw_gid)
        shutil.copy(DEPLOY / self.mode / "main.cf.example", self.etc / "main.cf")
        (self.etc / "master.cf").write_text(self.master_cf())
        overrides = {**INSTANCE_OVERRIDES, **MODE_OVERRIDES.get(self.mode, {})}
        settings = {
            k: v.format(root=self.root, sink=self.sink_port, gateway=self.gateway_port)
            for k, v in overrides.items()
        }
        checks = DEPLOY / self.mode / "brukarvakt_milter_header_checks"
        if checks.exists():
            text = checks.read_text().replace(SECURE_RELAY, f"[127.0.0.1]:{self.sink_port}")
            (self.etc / checks.name).write_text(text)
        self._run("postconf", "-c", str(self.etc), "-e", *(f"{k}={v}" for k, v in settings.items()))
        self._run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mail.hemtjanst.example",
            "-keyout",
            str(self.root / "tls" / "key.pem"),
            "-out",
            str(self.root / "tls" / "cert.pem"),
        )
        sasldb = self.etc / "sasl" / "sasldb2"
        (self.etc / "sasl" / "smtpd.conf").write_text(
            f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\nsasldb_path: {sasldb}\n"
        )
        for address in self.users:
            user, _, realm = address.partition("@")
            self._run("saslpasswd2", "-p", "-c", "-f", str(sasldb), "-u", realm, user, stdin=PASSWORD)
        # Read by smtpd as the user postfix; owned by root, as `postfix check` wants.
        os.chown(sasldb, 0, postfix_user.pw_gid)
        sasldb.chmod(0o640)
        problems = subprocess.run(["postfix", "-c", str(self.etc), "check"], capture_output=True, text=True)
        if problems.returncode != 0:
            raise RuntimeError(f"postfix check refused the {self.mode} example: {problems.stderr.strip()}")

    def start(self) -> None:
        self.configure()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["postfix", "-c", str(self.etc), "start-fg"], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            for port in (self.submission_port, self.return_port):
                wait_for_port(port, START_TIMEOUT, self.alive, f"Postfix ({self.mode})")
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{e}; its log:\n{self.log()}") from None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.alive():
            subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=30)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                subprocess.run(["postfix", "-c", str(self.etc), "abort"], capture_output=True, timeout=30)
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def queue(self) -> list[dict[str, Any]]:
        """The messages in Postfix's queue (`postqueue -j`)."""
        out = self._run("postqueue", "-c", str(self.etc), "-j")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self) -> None:
        self._run("postqueue", "-c", str(self.etc), "-f")

    def sendmail(self, sender: str, recipients: list[str], msg: EmailMessage) -> None:
        """A program on this host submitting with Postfix's sendmail command (pickup, no SMTP)."""
        done = subprocess.run(
            ["sendmail", "-C", str(self.etc), "-i", "-f", sender, "--", *recipients],
            input=msg.as_bytes(),
            capture_output=True,
            timeout=30,
        )
        if done.returncode != 0:
            raise RuntimeError(f"sendmail failed ({done.returncode}): {done.stderr.decode(errors='replace')}")


class Gateway:
    """`brukarvakt serve --config FILE` as its own process, stoppable and restartable."""

    def __init__(self, config_path: Path, port: int, env: dict[str, str]) -> None:
        self.config_path = config_path
        self.port = port
        self.env = env
        self.log_path = config_path.with_suffix(".log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "serve", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=REPO,
            )
        try:
            wait_for_greeting(self.port, START_TIMEOUT, self.alive, "brukarvakt serve")
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{e}; its output:\n{self.log()}") from None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


DELIVERY_TIMEOUT = 20.0


def marker() -> str:
    """A tag that finds one test's message among everything the sink received."""
    return f"e2e-{secrets.token_hex(4)}"


def message(sender: str, to: str, subject: str, body: str) -> EmailMessage:
    """A plain-text message as a mail program writes it: UTF-8 body sent as 8-bit (8BITMIME)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body, cte="8bit")
    return msg


def staff_message_with_personnummer(personnummer: str, tag: str) -> EmailMessage:
    """What a staff member must not send: a care note naming the client by personnummer."""
    return message(
        STAFF,
        "sjukskoterska@vardcentral.example",
        f"Medicinlista {tag}",
        f"Hej!\n\nBrukaren med personnummer {written_forms(personnummer)[2]} behöver ny dosett på torsdag.\n"
        "Kan du ringa mig efter lunch?\n\nHälsningar\nAnna",
    )


def submit(postfix: Postfix, login: str, msg: EmailMessage) -> None:
    """A staff member's mail program: submission port, STARTTLS, AUTH, one message."""
    context = ssl.create_default_context()
    # The test instance's certificate is self-signed.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", postfix.submission_port, timeout=60) as client:
        client.starttls(context=context)
        client.login(login, PASSWORD)
        client.send_message(msg)


def recent_personnummer(numbers: list[str]) -> str:
    """A Skatteverket test number of someone born 1940-2005: the forms staff actually write."""
    return next(n for n in numbers if "1940" <= n[:4] <= "2005")


def written_forms(personnummer: str) -> tuple[str, ...]:
    """Every way the number could show up in clear: 12 and 10 digits, with and without a dash."""
    twelve, ten = personnummer, personnummer[2:]
    return twelve, ten, f"{twelve[:8]}-{twelve[8:]}", f"{ten[:6]}-{ten[6:]}"
