"""Relay benchmark: Postfix's smtp-source through `brukarvakt serve` to smtp-sink, scanning vs not.

    python3 bench/relay.py                     # 5 KB and 100 KB, 20 sessions, every mode
    python3 bench/relay.py --workers 2         # the gateway with two processes (both cores)
    python3 bench/relay.py --register 100000   # with a client register of 100,000 made-up clients

For each message size the gateway runs in each mode in the same run (below), each time as its
own process with a fresh state folder and with its next hop a discarding `smtp-sink`:

- throughput: `smtp-source -s SESSIONS -m N -F message` (one connection per message, as
  smtp-source does by default); messages/s = N / wall time of smtp-source. smtp-source stops
  at the first reply that is not a success, so a finished run means every message was relayed
  (the gateway answers 250 only after the next hop did).
- latency: smtp-source gives no per-message times, so a second phase sends M messages with an
  aiosmtplib client over the same number of concurrent sessions, one connection per message,
  and times each from connect to the reply to the end of DATA (p50, p99).
- CPU: the gateway's CPU time (user + system, all its processes) per message in the throughput
  phase. The machine is shared with other work: msg/s moves with their load, CPU ms per message
  hardly does, so the ratio of CPU per message is the steadier measure of what scanning costs.
- memory: peak resident set size of the gateway's process tree (all workers), sampled from
  /proc every 20 ms during both phases.

Three modes: passthrough (`--no-scan`), scan (identity numbers, phone numbers, and the client
register when `--register` made one; `policy.person_name: off`) and scan+names (the default config: also the Swedish name
model on messages with care context). Passthrough does all the rest a scanned clean message
costs: the lockstep hand-on, the verdict header and the fsync'd audit line (reason
"not-scanned"), so that the ratio to it is the cost of scanning and deciding alone. The modes alternate `--repeat` times; the run with the
median msg/s is shown, with the largest peak memory of the runs.

The message is realistic Swedish home-care text (headers and a plain-text body of the given
size) with customer numbers and no identifier: the engine scans all of it and lets it pass.
Everything runs on 127.0.0.1 and is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SENDER = "anna.lind@hemtjanst.example"
RECIPIENT = "samordnare@vardcentral.example"
PHASE_TIMEOUT = 600.0
KEY = "relay-benchmark-key-not-for-production"
START_TIMEOUT = 60.0

# Clean, realistic text: what staff write when they do it right (customer numbers, no names,
# no identity numbers). Numbers here are customer numbers, times and dates.
SENTENCES = (
    "Kundnummer 10234 behöver hjälp med inköp på torsdag förmiddag, listan ligger på köksbordet.",
    "Insatsen dusch för kundnummer 10871 flyttas till onsdag klockan 14.00 efter önskemål.",
    "Nyckeln till kundnummer 11502 finns i nyckelskåpet på kontoret, kod enligt rutinen.",
    "Vi har sett att dosetten för kundnummer 10234 inte var tömd i morse, sjuksköterskan är informerad.",
    "Kvällspasset i område norr behöver en extra person den 12 december mellan 16 och 21.",
    "Larmet hos kundnummer 12040 har bytts ut och testats, allt fungerar som det ska.",
    "Matleveransen till kundnummer 10871 kommer i fortsättningen på tisdagar och fredagar.",
    "Kom ihåg att signera utförda insatser i appen innan passet avslutas.",
    "Omvårdnadsplanen för kundnummer 11502 ska följas upp vid nästa teamträff.",
    "Bilen med registreringsskylten på tavlan är bokad för hembesöken i morgon.",
    "Den nya rutinen för läkemedelsöverlämning gäller från och med måndag vecka 50.",
    "Kundnummer 12040 vill gärna ha besöket lite senare på lördagar, gärna efter klockan tio.",
)


def message_file(folder: Path, size: int) -> Path:
    """A message of about `size` bytes: headers plus Swedish text wrapped at 72 characters."""
    head = (
        f"From: Anna Lind <{SENDER}>\n"
        f"To: Samordnare <{RECIPIENT}>\n"
        "Subject: Planering av insatser vecka 49\n"
        "Date: Thu, 26 Nov 2026 10:00:00 +0100\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        "\n"
        "Hej!\n\n"
    )
    lines: list[str] = []
    used = len(head.encode())
    i = 0
    while used < size:
        paragraph = " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(4))
        i += 3
        line = ""
        for word in paragraph.split():
            if len(line) + len(word) + 1 > 72:
                lines.append(line)
                used += len(line.encode()) + 1
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.extend((line, ""))
        used += len(line.encode()) + 2
    path = folder / f"message-{size}.eml"
    path.write_text(head + "\n".join(lines) + "\nHälsningar\nAnna\n", encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_greeting(port: int, alive: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise SystemExit(f"relay.py: {what} exited before it greeted on port {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.settimeout(max(0.1, deadline - time.monotonic()))
                if s.recv(512).startswith(b"220"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"relay.py: {what} did not greet on port {port} within {START_TIMEOUT:.0f} s")


def tree_usage(root: int) -> tuple[int, float]:
    """Resident bytes and CPU seconds (user + system) of a process and all its descendants."""
    children: dict[int, list[int]] = {}
    usage: dict[int, tuple[int, float]] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            statm = Path(entry.path, "statm").read_text()
        except OSError:
            continue
        # after "pid (comm)": state ppid ...; utime and stime are fields 14 and 15 (man 5 proc)
        fields = stat.rsplit(")", 1)[1].split()
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        usage[pid] = (int(statm.split()[1]) * page, (int(fields[11]) + int(fields[12])) / tick)
    rss, cpu, todo = 0, 0.0, [root]
    while todo:
        pid = todo.pop()
        r, c = usage.get(pid, (0, 0.0))
        rss, cpu = rss + r, cpu + c
        todo.extend(children.get(pid, ()))
    return rss, cpu


def tree_rss(root: int) -> int:
    return tree_usage(root)[0]


def tree_cpu(root: int) -> float:
    return tree_usage(root)[1]


class PeakMemory:
    """Samples the process tree's RSS in a thread until stopped; `peak` is the largest sum seen."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(0.02)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Gateway:
    def __init__(
        self, state: Path, sink_port: int, mode: Mode, workers: int, register: Path | None = None
    ) -> None:
        self.port = free_port()
        state.mkdir(parents=True)
        self.config = state / "brukarvakt.yaml"
        # Trusted upstream: smtp-source stands in for Postfix in front, which is how the gateway
        # is deployed; identity is then nobody's (staff rules), and clean mail passes.
        self.config.write_text(
            f"listen: {{host: 127.0.0.1, port: {self.port}}}\n"
            'auth: {trusted_upstreams: ["127.0.0.1"]}\n'
            f"next_hop: {{host: 127.0.0.1, port: {sink_port}, tls: none, timeout_seconds: 30}}\n"
            # The staff directory, as deployed: the signature's name is a colleague's, not a finding.
            + f'policy: {{staff: [{{address: "{SENDER}", name: "Anna Lind"}}]'
            + (f', person_name: "{mode.person_name}"' if mode.person_name else "")
            + "}\n"
            # No register file where the config points: no known clients (the default's own case).
            + f"register: {{path: {json.dumps(str(register or state / 'no-register.db'))}}}\n",
            encoding="utf-8",
        )
        self.args = [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--config",
            str(self.config),
            "--workers",
            str(workers),
        ] + ([] if mode.scan else ["--no-scan"])
        self.log = state / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gateway:
        env = dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=KEY)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO
            )
        wait_for_greeting(
            self.port, lambda: self.process is not None and self.process.poll() is None, "brukarvakt serve"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class RunFailed(Exception):
    """A measured run that could not finish (a refusal or a time-out): reported, not fatal."""


def smtp_source(port: int, sessions: int, count: int, message: Path) -> float:
    """Seconds smtp-source takes to send `count` messages over `sessions` parallel sessions."""
    args = [
        "smtp-source",
        "-s",
        str(sessions),
        "-m",
        str(count),
        "-F",
        str(message),
        "-M",
        "bench.hemtjanst.example",
        "-f",
        SENDER,
        "-t",
        RECIPIENT,
        f"127.0.0.1:{port}",
    ]
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, timeout=PHASE_TIMEOUT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RunFailed(f"smtp-source failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return elapsed


async def _latencies(port: int, sessions: int, count: int, content: bytes) -> list[float]:
    import aiosmtplib

    times: list[float] = []
    left = count

    async def session() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=60, start_tls=False)
            try:
                await client.connect()
                await client.sendmail(SENDER, [RECIPIENT], content)
                times.append(time.perf_counter() - start)
                await client.quit()
            except aiosmtplib.SMTPException as e:
                raise RunFailed(f"latency client: {e}") from None

    await asyncio.wait_for(asyncio.gather(*(session() for _ in range(sessions))), PHASE_TIMEOUT)
    return times


@dataclass(frozen=True)
class Mode:
    """One way of running the gateway: passthrough, or scanning with a person_name setting."""

    label: str
    scan: bool
    person_name: str | None  # policy.person_name; None: the config's default
    what: str


MODES = {
    "passthrough": Mode(
        "passthrough", False, None, "brukarvakt serve --no-scan (hand-on, verdict header, audit line)"
    ),
    # Identity numbers, phone numbers and the client register (with --register): the rules that block.
    "scan": Mode("scan", True, "off", "scanning, policy.person_name: off"),
    # Plus the Swedish name model on every message with care context (the default config).
    "scan+names": Mode("scan+names", True, "warn", "scanning, policy.person_name: warn (default)"),
}


@dataclass
class Result:
    size: int
    mode: str
    messages: int
    seconds: float
    cpu_ms: float  # the gateway's CPU time per message (all its processes): independent of other load
    p50_ms: float
    p99_ms: float
    peak_rss: int

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def counts(size: int, mode: Mode, args: argparse.Namespace) -> tuple[int, int]:
    """Messages for the throughput and the latency phase (`--names-divisor` fewer with the model)."""
    count = args.messages_5k if size <= 10_000 else args.messages_100k
    latency = args.latency_messages
    if mode.person_name not in (None, "off") and args.names_divisor > 1:
        count = max(args.sessions, count // args.names_divisor)
        latency = max(args.sessions, latency // args.names_divisor)
    return count, latency


def measure(
    folder: Path, sink_port: int, size: int, mode: Mode, run: int, args: argparse.Namespace
) -> Result:
    message = message_file(folder, size)
    count, latency_count = counts(size, mode, args)
    state = folder / f"{size}-{mode.label}-{run}"
    with Gateway(state, sink_port, mode, args.workers, args.register_file) as gateway:
        assert gateway.process is not None
        with PeakMemory(gateway.process.pid) as memory:
            # Warm-up: connections, caches, and the name model loaded in the workers.
            smtp_source(gateway.port, min(args.sessions, args.warmup), args.warmup, message)
            cpu_before = tree_cpu(gateway.process.pid)
            seconds = smtp_source(gateway.port, args.sessions, count, message)
            cpu = tree_cpu(gateway.process.pid) - cpu_before
            content = message.read_bytes().replace(b"\n", b"\r\n")
            times = asyncio.run(_latencies(gateway.port, args.sessions, latency_count, content))
        quantiles = statistics.quantiles(times, n=100, method="inclusive")
        p50, p99 = quantiles[49] * 1000, quantiles[98] * 1000
        return Result(size, mode.label, count, seconds, cpu * 1000 / count, p50, p99, memory.peak)


def median_result(runs: list[Result]) -> Result:
    """The run with the median throughput (the machine is shared: single runs are noisy)."""
    ordered = sorted(runs, key=lambda r: r.rate)
    chosen = ordered[len(ordered) // 2]
    return Result(**{**chosen.__dict__, "peak_rss": max(r.peak_rss for r in runs)})


def import_register(folder: Path, clients: int) -> Path:
    """A register of `clients` made-up clients (bench/register.py's export), imported as an administrator would."""
    sys.path.insert(0, str(REPO))
    from bench.corpus import SEED
    from bench.register import export

    csv_path, register = folder / "kunder.csv", folder / "register.db"
    export(clients, SEED, csv_path)
    config = folder / "register.yaml"
    config.write_text(f"register: {{path: {json.dumps(str(register))}}}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "register", "--config", str(config), "import", str(csv_path)],
        cwd=REPO,
        env=dict(os.environ, BRUKARVAKT_FINGERPRINT_KEY=KEY),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not register.is_file():  # 1: rows rejected, the register incomplete
        raise SystemExit(f"relay.py: the register import failed ({done.returncode}): {done.stderr[-300:]}")
    return register


def sink_command(port: int) -> list[str]:
    # smtp-sink refuses to run as root without a user to switch to.
    user = ["-u", "postfix"] if os.geteuid() == 0 else []
    return ["smtp-sink", *user, f"127.0.0.1:{port}", "1000"]


def name_model_present() -> bool:
    sys.path.insert(0, str(REPO))
    from gateway.ner import MODEL_DIR

    return (MODEL_DIR / "meta.json").is_file()


def print_table(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"\nrelay: smtp-source -s {args.sessions} -> brukarvakt serve --workers {args.workers} -> smtp-sink"
        f" ({os.cpu_count()} cpus, load average before: {args.load_before}); median of {args.repeat}"
        f" runs; {f'a client register of {args.register} clients' if args.register else 'no client register'}\n"
    )
    header = (
        f"{'size':>6} {'mode':<12} {'msgs':>6} {'msg/s':>8} {'x pass':>7} {'CPU ms/msg':>11} {'x pass':>7}"
        f" {'p50 ms':>8} {'p99 ms':>8} {'peak RSS MiB':>13}"
    )
    print(header)
    print("-" * len(header))
    passthrough = {r.size: r for r in results if r.mode == "passthrough"}
    for r in results:
        base = passthrough.get(r.size)
        rate_ratio = f"{r.rate / base.rate:.2f}" if base and r is not base else ""
        cpu_ratio = f"{r.cpu_ms / base.cpu_ms:.2f}" if base and r is not base and base.cpu_ms else ""
        print(
            f"{r.size // 1000:>4} KB {r.mode:<12} {r.messages:>6} {r.rate:>8.1f} {rate_ratio:>7} {r.cpu_ms:>11.2f}"
            f" {cpu_ratio:>7} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.peak_rss / 2**20:>13.0f}"
        )
    print("\nmodes: " + "; ".join(f"{m.label} = {m.what}" for m in MODES.values() if m.label in args.modes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--messages-5k", type=int, default=3000, help="messages of 5 KB per throughput run")
    parser.add_argument(
        "--messages-100k", type=int, default=600, help="messages of 100 KB per throughput run"
    )
    parser.add_argument("--latency-messages", type=int, default=400, help="messages per latency run")
    parser.add_argument("--warmup", type=int, default=40, help="messages sent before each measured run")
    parser.add_argument(
        "--workers", type=int, default=1, help="gateway processes (brukarvakt serve --workers)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of passthrough and scan, alternating")
    parser.add_argument(
        "--modes", default="passthrough,scan,scan+names", help=f"comma separated, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--names-divisor",
        type=int,
        default=1,
        help="scan+names sends this many times fewer messages (for a slow name model)",
    )
    parser.add_argument("--sizes", default="5000,100000", help="message sizes in bytes, comma separated")
    parser.add_argument(
        "--register",
        type=int,
        default=0,
        metavar="CLIENTS",
        help="scan with a client register of this many made-up clients (default: none, as shipped)",
    )
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",")]
    unknown = [m for m in args.modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode {', '.join(unknown)}: choose from {', '.join(MODES)}")
    missing = [tool for tool in ("smtp-source", "smtp-sink") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(
            f"relay.py: {', '.join(missing)} missing: run `bash scripts/install-system-deps` (Postfix)"
        )
    if "scan+names" in args.modes and not name_model_present():
        print(
            "relay.py: the name model is not built (gateway/data/ner_sv): scan+names left out",
            file=sys.stderr,
        )
        args.modes.remove("scan+names")
    args.load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())

    results: list[Result] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="brukarvakt-bench-") as tmp:
        folder = Path(tmp)
        args.register_file = import_register(folder, args.register) if args.register else None
        sink_port = free_port()
        sink = subprocess.Popen(sink_command(sink_port), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_greeting(sink_port, lambda: sink.poll() is None, "smtp-sink")
            for size in (int(s) for s in args.sizes.split(",")):
                runs: dict[str, list[Result]] = {m: [] for m in args.modes}
                for run in range(args.repeat):
                    for label in args.modes:
                        try:
                            result = measure(folder, sink_port, size, MODES[label], run, args)
                        except (RunFailed, TimeoutError, subprocess.TimeoutExpired) as e:
                            failures.append(f"{size // 1000} KB {label}, run {run + 1}: {e or 'timed out'}")
                            print(f"  {failures[-1]}", file=sys.stderr)
                            continue
                        runs[label].append(result)
                        print(f"  {size // 1000} KB {label}: {result.rate:.1f} msg/s", file=sys.stderr)
                results.extend(median_result(runs[label]) for label in args.modes if runs[label])
        finally:
            sink.terminate()
            sink.wait(timeout=10)
    print_table(results, args)
    for failure in failures:
        print(f"FAILED {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
