"""Milter benchmark: Postfix's smtp-source through a private Postfix to smtp-sink, with and without brukarvakt's milter.

    python3 -m bench.milter                   # 5 KB and 100 KB, 20 sessions, median of 5 runs
    python3 -m bench.milter --workers 2       # the milter with two processes
    python3 -m bench.milter --repeat 1 --sizes 5000   # a quick look

Every run starts its own Postfix (own config, queue and ports under a temporary folder) that
relays to one discarding `smtp-sink`; the runs alternate between three modes:

- postfix: no milter (the baseline);
- milter: `smtpd_milters = inet:127.0.0.1:PORT` with `brukarvakt milter` on the default config
  (the Swedish name model on messages with care context);
- milter names-off: the same with `policy.person_name: off` (numbers, phones, the register).

Throughput is what smtp-source sees: `smtp-source -s SESSIONS -m N` (one connection per
message), messages/s = N / its wall time, i.e. how fast Postfix accepts mail into its queue while
it also delivers to the sink. smtp-source stops at the first reply that is not a success, so a
finished run means every message was accepted (with the milter: scanned and passed). "x postfix"
is the ratio to the baseline's median in the same run; "CPU ms/msg" is the milter's own CPU time
per message (all its processes). The message is the relay benchmark's clean Swedish care text.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.relay import (
    KEY,
    RECIPIENT,
    SENDER,
    RunFailed,
    free_port,
    message_file,
    sink_command,
    smtp_source,
    tree_cpu,
    wait_for_greeting,
)

REPO = Path(__file__).resolve().parents[1]
MASTER_EXAMPLE = REPO / "deploy" / "postfix" / "milter" / "master.cf.example"
START_TIMEOUT = 60.0
# The milter lines of deploy/postfix/milter/main.cf.example; the rest is a bare relay to the sink.
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
myhostname = mail.hemtjanst.example
mydomain = hemtjanst.example
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink}
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
milter_protocol = 6
milter_default_action = tempfail
milter_content_timeout = 120s
smtpd_milters = {milters}
"""


@dataclass(frozen=True)
class Mode:
    label: str
    milter: bool
    person_name: str | None  # policy.person_name for the milter; None: the default config


MODES = {
    "postfix": Mode("postfix", False, None),
    "milter": Mode("milter", True, None),
    "milter names-off": Mode("milter names-off", True, "off"),
}


class Postfix:
    """A private Postfix relaying 127.0.0.1:port to the sink, with or without the milter."""

    def __init__(self, folder: Path, sink_port: int, milter: str | None) -> None:
        self.root = folder
        self.port = free_port()
        for sub in ("etc", "queue", "data"):
            (folder / sub).mkdir(parents=True)
        shutil.chown(folder / "data", "postfix")
        folder.chmod(0o755)
        (folder / "etc" / "main.cf").write_text(
            MAIN_CF.format(root=folder, sink=sink_port, milters=milter or "")
        )
        services = MASTER_EXAMPLE.read_text().split("\npickup", 1)[1]
        (folder / "etc" / "master.cf").write_text(
            f"127.0.0.1:{self.port} inet n - n - - smtpd\npickup{services}", encoding="utf-8"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Postfix:
        self.process = subprocess.Popen(
            ["postfix", "-c", str(self.root / "etc"), "start-fg"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_greeting(
            self.port, lambda: self.process is not None and self.process.poll() is None, "Postfix"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["postfix", "-c", str(self.root / "etc"), "stop"], capture_output=True, timeout=60)
        if self.process is not None:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                subprocess.run(["postfix", "-c", str(self.root / "etc"), "abort"], capture_output=True)
                self.process.kill()
                self.process.wait()


class Milter:
    """`brukarvakt milter` with its own state folder; ready once it logged "listening"."""

    def __init__(self, folder: Path, mode: Mode, workers: int, unix: bool) -> None:
        folder.mkdir(parents=True)
        folder.chmod(0o755)
        # Postfix's smtpd_milters and brukarvakt's milter.listen name the same socket.
        self.listen = f"unix:{folder / 'milter.sock'}" if unix else f"inet:127.0.0.1:{free_port()}"
        self.config = folder / "brukarvakt.yaml"
        policy = f'policy: {{staff: [{{address: "{SENDER}", name: "Anna Lind"}}]'
        policy += f', person_name: "{mode.person_name}"}}' if mode.person_name else "}"
        self.config.write_text(
            f'milter: {{listen: "{self.listen}", socket_mode: "666"}}\n{policy}\n'
            f'register: {{path: "{folder / "no-register.db"}"}}\n',
            encoding="utf-8",
        )
        self.log = folder / "milter.log"
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Milter:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "milter", "--config", str(self.config)]
                + ["--workers", str(self.workers)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=KEY),
                cwd=REPO,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while self.log.read_text().count('"event": "listening"') < self.workers:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"milter.py: brukarvakt milter did not start: {self.log.read_text()[-500:]}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def passed(self) -> int:
        return self.log.read_text().count('"action": "delivered"')


@dataclass
class Result:
    size: int
    mode: str
    messages: int
    seconds: float
    postfix_cpu_ms: float  # Postfix's processes (smtpd, cleanup, qmgr, smtp ...) per message
    milter_cpu_ms: float | None  # brukarvakt milter's processes per message

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def measure(
    folder: Path, sink_port: int, size: int, mode: Mode, run: int, args: argparse.Namespace
) -> Result:
    message = message_file(folder, size)
    count = args.messages_5k if size <= 10_000 else args.messages_100k
    state = folder / f"{size}-{mode.label.replace(' ', '-')}-{run}"
    milter = Milter(state / "milter", mode, args.workers, args.socket == "unix") if mode.milter else None
    with (
        milter or contextlib.nullcontext(),
        Postfix(state / "postfix", sink_port, milter and milter.listen) as postfix,
    ):
        assert postfix.process is not None
        processes = [postfix.process.pid] + ([milter.process.pid] if milter and milter.process else [])
        smtp_source(postfix.port, min(args.sessions, args.warmup), args.warmup, message)
        before = [tree_cpu(pid) for pid in processes]
        seconds = smtp_source(postfix.port, args.sessions, count, message)
        cpu = [(tree_cpu(pid) - b) * 1000 / count for pid, b in zip(processes, before, strict=True)]
        if milter is not None and milter.passed() < args.warmup + count:
            raise RunFailed(f"the milter passed {milter.passed()} of {args.warmup + count} messages")
        return Result(size, mode.label, count, seconds, cpu[0], cpu[1] if milter else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages-5k", type=int, default=3000, help="messages of 5 KB per run")
    parser.add_argument("--messages-100k", type=int, default=600, help="messages of 100 KB per run")
    parser.add_argument("--warmup", type=int, default=40, help="messages sent before each measured run")
    parser.add_argument(
        "--workers", type=int, default=1, help="milter processes (brukarvakt milter --workers)"
    )
    parser.add_argument(
        "--socket", choices=("inet", "unix"), default="inet", help="how Postfix reaches the milter"
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each mode, alternating")
    parser.add_argument("--sizes", default="5000,100000", help="message sizes in bytes, comma separated")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma separated, of {', '.join(MODES)}")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",")]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown mode {', '.join(unknown)}: choose from {', '.join(MODES)}")
    if os.geteuid() != 0:
        raise SystemExit("milter.py: a private Postfix needs root")
    if missing := [t for t in ("postfix", "smtp-source", "smtp-sink") if shutil.which(t) is None]:
        raise SystemExit(f"milter.py: {', '.join(missing)} missing: run `bash scripts/install-system-deps`")
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())

    medians: list[Result] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="brukarvakt-milter-bench-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        sink_port = free_port()
        sink = subprocess.Popen(sink_command(sink_port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_greeting(sink_port, lambda: sink.poll() is None, "smtp-sink")
            for size in (int(s) for s in args.sizes.split(",")):
                runs: dict[str, list[Result]] = {m: [] for m in modes}
                for run in range(args.repeat):
                    for label in modes:
                        try:
                            result = measure(folder, sink_port, size, MODES[label], run, args)
                        except (RunFailed, subprocess.TimeoutExpired) as e:
                            failures.append(f"{size // 1000} KB {label}, run {run + 1}: {e}")
                            print(f"  {failures[-1]}", file=sys.stderr)
                            continue
                        runs[label].append(result)
                        print(f"  {size // 1000} KB {label}: {result.rate:.0f} msg/s", file=sys.stderr)
                for label in modes:
                    if runs[label]:
                        ordered = sorted(runs[label], key=lambda r: r.rate)
                        medians.append(ordered[len(ordered) // 2])
        finally:
            sink.terminate()
            sink.wait(timeout=10)

    print(
        f"\nsmtp-source -s {args.sessions} -> Postfix -> smtp-sink, with and without brukarvakt milter"
        f" --workers {args.workers} on {args.socket} ({os.cpu_count()} cpus, load average before: {load}); median of {args.repeat}\n"
    )
    header = (
        f"{'size':>6}  {'mode':<18} {'msgs':>6} {'msg/s':>8} {'x postfix':>10}"
        f" {'Postfix CPU ms/msg':>19} {'milter CPU ms/msg':>18}"
    )
    print(header)
    print("-" * len(header))
    base = {r.size: r for r in medians if r.mode == "postfix"}
    for r in medians:
        ratio = f"{r.rate / base[r.size].rate:.2f}" if r.size in base and r.mode != "postfix" else ""
        cpu = f"{r.milter_cpu_ms:.2f}" if r.milter_cpu_ms is not None else ""
        print(
            f"{r.size // 1000:>3} KB  {r.mode:<18} {r.messages:>6} {r.rate:>8.0f} {ratio:>10}"
            f" {r.postfix_cpu_ms:>19.2f} {cpu:>18}"
        )
    for failure in failures:
        print(f"FAILED {failure}")
    print(f"\nthe message: {SENDER} -> {RECIPIENT}, clean Swedish care text (bench/relay.py)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
