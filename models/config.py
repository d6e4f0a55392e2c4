"""The configuration's shape, as read from config.yaml; unknown keys and bad values are refused."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Listen(Section):
    host: str = "127.0.0.1"
    port: int = Field(10025, ge=0, le=65535)


class TLS(Section):
    cert: Path | None = None
    key: Path | None = None


LOOPBACK = ("127.0.0.1", "::1")


class Auth(Section):
    users_file: Path | None = None
    # Peers whose top-most Received header is believed (Postfix in front). None: loopback while
    # the gateway has no users of its own (a fresh install accepts mail from this machine only,
    # and such a client vouches for nobody unless that header names an authenticated sender);
    # nobody once `users_file` is set, since any process on the host could then relay and name
    # any sender in a Received header. An operator who wants loopback trusted lists it.
    trusted_upstreams: tuple[str, ...] | None = None
    # A sender whose MAIL FROM is not the authenticated identity is refused unless this is true.
    allow_sender_mismatch: bool = False

    @property
    def upstreams(self) -> tuple[str, ...]:
        """The trusted upstreams in force: as listed, or the default described above."""
        if self.trusted_upstreams is not None:
            return self.trusted_upstreams
        return LOOPBACK if self.users_file is None else ()


class NextHop(Section):
    host: str
    port: int = Field(25, ge=1, le=65535)
    # none: plain; starttls: STARTTLS when offered, certificate not checked (opportunistic);
    # required: STARTTLS with a verified certificate (system CAs, or ca_file), else 451.
    tls: Literal["none", "starttls", "required"] = "none"
    timeout_seconds: float = Field(60.0, gt=0)
    ca_file: Path | None = None


class Marker(Section):
    subject_tag: str = "[sekretess]"


class Secure(Section):
    domains: tuple[str, ...] = ()
    marker: Marker = Marker()
    next_hop: NextHop | None = None

    @field_validator("domains")
    @classmethod
    def _lower(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower().lstrip("@") for d in v)


class StaffMember(Section):
    address: str | None = None
    name: str | None = None


class Policy(Section):
    managers: tuple[str, ...] = ()
    staff: tuple[StaffMember | str, ...] = ()
    on_block: Literal["reject", "quarantine"] = "reject"
    on_unscannable: Literal["block", "warn"] = "block"
    # Encrypted mail (S/MIME, OpenPGP) cannot be read either; unset, on_unscannable decides it.
    on_encrypted: Literal["block", "warn"] | None = None
    # Severity of a person name found by the NER model in a message with care context.
    person_name: Literal["warn", "block", "off"] = "warn"
    # Send the sender a note when a message passes with warnings.
    notify_on_warn: bool = False

    @field_validator("person_name", mode="before")
    @classmethod
    def _yaml_off(cls, v: object) -> object:
        # YAML 1.1 reads an unquoted `off` as false: that is what the writer meant.
        return "off" if v is False else v

    @field_validator("managers")
    @classmethod
    def _lower(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(a.strip().lower() for a in v)


class Register(Section):
    path: Path = Path("var/register.db")


class Privacy(Section):
    fingerprint_key_env: str = "BRUKARVAKT_FINGERPRINT_KEY"
    fingerprint_key: SecretStr | None = None
    # Created with a random key (mode 0600) on first use when no key is configured.
    key_file: Path = Path("var/fingerprint.key")


class Audit(Section):
    path: Path = Path("var/audit.jsonl")


class Quarantine(Section):
    path: Path = Path("var/quarantine")
    retention_days: int = Field(30, ge=1)


class Limits(Section):
    max_message_bytes: int = Field(25 * 1024 * 1024, ge=1024)
    max_recipients: int = Field(100, ge=1)
    max_line_length: int = Field(10_000, ge=998)
    max_headers: int = Field(1000, ge=10)
    max_mime_depth: int = Field(10, ge=1)
    scan_timeout_seconds: float = Field(30.0, gt=0)
    session_timeout_seconds: float = Field(300.0, gt=0)
    max_extracted_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    max_archive_members: int = Field(1000, ge=1)
    max_compression_ratio: float = Field(100.0, gt=1)
    max_pages: int = Field(200, ge=1)
    ocr_timeout_seconds: float = Field(20.0, gt=0)
    # Text recognition time for all images of one message together (each image: ocr_timeout_seconds;
    # the whole scan: scan_timeout_seconds).
    ocr_budget_seconds: float = Field(25.0, gt=0)
    # An image larger than this (width x height) is not decoded: a decompression bomb or a poster.
    max_image_pixels: int = Field(40_000_000, ge=10_000)
    # Bytes unpacked from archives and compressed documents of one message, all members together.
    max_unpacked_bytes: int = Field(200 * 1024 * 1024, ge=1024)


class ConsoleListen(Section):
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)


class Console(Section):
    """The compliance console (`brukarvakt console`): a web application on its own address."""

    listen: ConsoleListen = ConsoleListen()
    # Console users and their roles (compliance, viewer), argon2 hashes: `brukarvakt console-user`.
    # Apart from auth.users_file: signing in to the console gives no right to send mail, nor the reverse.
    users_file: Path = Path("var/console-users")
    # Signed out after this long without a request.
    idle_timeout_minutes: int = Field(15, ge=1, le=24 * 60)
    # Failed sign-ins (per user name, and per client address) before sign-in waits lockout_seconds,
    # doubling with every further failure.
    max_failed_logins: int = Field(5, ge=1)
    lockout_seconds: int = Field(60, ge=1)
    # Decisions shown on a search page; an export holds them all.
    max_results: int = Field(500, ge=10)


class MetricsListen(Section):
    host: str = "127.0.0.1"
    port: int = Field(9125, ge=0, le=65535)


class Metrics(Section):
    # Where `serve` answers Prometheus scrapes (/metrics); null: no metrics.
    listen: MetricsListen | None = None


class Milter(Section):
    """`brukarvakt milter`: where Postfix (smtpd_milters) or Sendmail (INPUT_MAIL_FILTER) reaches it."""

    # Postfix's own notation: inet:HOST:PORT, or unix:/PATH for a socket file (removed first when
    # stale, created with socket_mode). libmilter's inet:PORT@HOST is accepted too.
    listen: str = "inet:127.0.0.1:8891"
    # Octal permissions of a unix socket: the group lets a Postfix in that group connect.
    socket_mode: str = "660"
    # A group to give a unix socket (the MTA's, e.g. postfix); the milter's user must be a member.
    socket_group: str | None = None
    # How long a connection may wait for the MTA's next command (libmilter's timeout).
    timeout_seconds: int = Field(600, ge=1)

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        kind, _, rest = v.partition(":")
        if kind in ("unix", "local") and rest.startswith("/"):
            return v
        if kind in ("inet", "inet6") and (rest.rpartition(":")[2].isdigit() or "@" in rest):
            return v
        raise ValueError("allowed: inet:HOST:PORT (e.g. inet:127.0.0.1:8891) or unix:/PATH")

    @field_validator("socket_mode", mode="before")
    @classmethod
    def _mode(cls, v: object) -> object:
        # YAML 1.1 reads an unquoted 0660 as the octal number 432, and 660 as the decimal 660:
        # both meant rw-rw----. (A socket mode that would differ between the readings has no
        # write bit, which no MTA could connect through.)
        if isinstance(v, int) and not isinstance(v, bool):
            octal = format(v, "o")
            return octal if len(octal) == 3 else str(v)
        return v

    @field_validator("socket_mode")
    @classmethod
    def _octal(cls, v: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", v):
            raise ValueError("allowed: octal permissions such as 660 or 0600")
        return v.lstrip("0").rjust(3, "0")


# "register" is also the name of ABCMeta.register, a metaclass method that instances never see:
# pydantic's warning about the shadowing does not apply, so it is silenced for this class only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"')

    class Config(Section):
        listen: Listen = Listen()
        tls: TLS = TLS()
        auth: Auth = Auth()
        next_hop: NextHop | None = None
        outbox: Path = Path("var/outbox")
        secure: Secure = Secure()
        policy: Policy = Policy()
        register: Register = Register()
        privacy: Privacy = Privacy()
        audit: Audit = Audit()
        quarantine: Quarantine = Quarantine()
        limits: Limits = Limits()
        console: Console = Console()
        metrics: Metrics = Metrics()
        milter: Milter = Milter()
        language: Literal["sv"] = "sv"
