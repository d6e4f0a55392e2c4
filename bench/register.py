"""The client register at scale: import time, the gateway's memory, and the engine's throughput with it.

    python3 -m bench.register                 # 100,000 clients; --help for the options

Generates a synthetic care-system export (first names and surnames drawn from SCB's name
statistics by frequency, with a fixed seed; personnummer from Skatteverket's test numbers, reused
because only 2,250 exist; PTS's phone numbers for fiction; invented street addresses), then:
- imports it with `brukarvakt register import` as a whole process (wall time, peak memory);
- measures the resident memory of a process that builds the gateway's Scanner with and without
  the register, and after scanning the corpus with it (the word memory filled);
- times the rules engine in-process over the same corpus with and without the register,
  interleaved, median of several rounds (the machine may be shared and noisy): the steady state,
  the word memory filled, as a gateway runs after its first messages; and the first round with
  the register apart (its word memory empty);
- times, in the same rounds, what any search of every word costs at the least in Python: cutting
  the texts into words (`str.split`) and making the set of each text's words (hashing every
  word), so that the register's figure can be read against this floor.

The corpus is `bench.corpus`: mail-shaped texts of 1-50 KB made of sentences from SUC 3.0 (Swedish
news, fiction and official prose), with greetings, signatures and staff names drawn from SCB's
name statistics, quoted replies and the numbers mail is full of. Its vocabulary is that of the
sentences (printed below); the staff names come from the same statistics as the register's
clients, so that full names collide with clients' as they would in a large municipality.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TypeVar

from bench import corpus

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "out" / "register"
BENCH_KEY = "brukarvakt-benchmark-key-not-for-production"
KEY_ENV = "BRUKARVAKT_FINGERPRINT_KEY"
CONFIG = """\
policy:
  person_name: "off"
register: {path: var/register.db}
"""
STREET_SUFFIXES = ("vägen", "gatan", "stigen", "gränd", "backen", "allén", "torget", "leden")
STREET_STEMS = (
    "Björk",
    "Tall",
    "Gran",
    "Lönn",
    "Ek",
    "Sjö",
    "Kvarn",
    "Skol",
    "Kyrk",
    "Stations",
    "Park",
    "Äng",
    "Berg",
    "Ljung",
    "Ros",
    "Lind",
    "Häll",
    "Mo",
    "Myr",
    "Nytorgs",
    "Sol",
    "Vide",
)
# PTS's numbers for fiction and tests: 070-1740605..699, 031-3900600..699, 08-46500400..499.
FICTION_PHONES = tuple(
    [f"070-17406{n:02d}" for n in range(5, 100)]
    + [f"031-39006{n:02d}" for n in range(100)]
    + [f"08-465004{n:02d}" for n in range(100)]
)


def _weighted(path: Path, column: str, count: int) -> tuple[list[str], list[int]]:
    with path.open(encoding="utf-8") as f:
        rows = [(int(r["persons" if "persons" in r else "frequency"]), r[column]) for r in csv.DictReader(f)]
    rows.sort(key=lambda r: (-r[0], r[1]))
    rows = [r for r in rows if r[1].replace("-", "").isalpha()][:count]
    return [r[1] for r in rows], [r[0] for r in rows]


def export(clients: int, seed: int, path: Path) -> None:
    """A semicolon-separated export with Swedish headers and a BOM, as Excel on Windows writes it."""
    names = corpus.TEST_DATA / "names"
    women = _weighted(names / "tilltalsnamn-kvinnor.csv", "name", 3000)
    men = _weighted(names / "tilltalsnamn-man.csv", "name", 3000)
    surnames = _weighted(names / "efternamn_old_small.csv", "lastname", 1000)
    numbers = json.loads(
        (corpus.TEST_DATA / "personnummer" / "skatteverket_test_numbers_sample.json").read_text("utf-8")
    )
    pool = numbers["personnummer"] + numbers["samordningsnummer"]
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, delimiter=";")
        out.writerow(["Kundnummer", "Förnamn", "Efternamn", "Personnummer", "Telefon", "Adress", "Enhet"])
        for i in range(clients):
            given = women if rng.random() < 0.6 else men
            first = rng.choices(given[0], given[1], k=2 if rng.random() < 0.3 else 1)
            last = rng.choices(surnames[0], surnames[1])[0]
            pnr = pool[i % len(pool)]
            phone = rng.choice(FICTION_PHONES) if rng.random() < 0.8 else ""
            street = f"{rng.choice(STREET_STEMS)}{rng.choice(STREET_SUFFIXES)} {rng.randint(1, 120)}"
            if rng.random() < 0.2:
                street += f" {rng.choice('ABC')}"
            out.writerow(
                [
                    f"{100000 + i}",
                    " ".join(dict.fromkeys(first)),
                    last,
                    f"{pnr[:8]}-{pnr[8:]}",
                    phone,
                    f"{street}, {rng.randint(100, 999)} {rng.randint(10, 99)} Stad",
                    "Norr",
                ]
            )


def _env() -> dict[str, str]:
    return {**os.environ, KEY_ENV: BENCH_KEY, "PYTHONPATH": str(REPO)}


def import_register(folder: Path, export_path: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, summary line) of `brukarvakt register import` as a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "register",
            "--config",
            str(folder / "config.yaml"),
            "import",
            str(export_path),
        ],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = done.stdout.strip().splitlines()[-1]
    return wall, max(peak, before) / 1024, summary


# Run in a fresh process: the resident memory of a gateway's Scanner, before and after the register.
_MEMORY_PROBE = """
import json, sys
from pathlib import Path

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
from gateway.config import load
from gateway import mail  # what the gateway process imports anyway
from gateway.smtp import server
from models.findings import Segment
config = load(Path(sys.argv[1]))
base = rss()
from gateway.scanner import Scanner
scanner = Scanner(config)
loaded = rss()
texts = json.loads(Path(sys.argv[2]).read_text("utf-8"))
for t in texts:
    scanner.scan_segments([Segment(part="text", text=t)])
print(json.dumps({"before": base, "loaded": loaded, "scanned": rss()}))
"""


def memory(folder: Path, config: Path, texts: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(config), str(texts)],
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


T = TypeVar("T")


@dataclass(frozen=True)
class Seconds:
    wall: float
    cpu: float  # this process's CPU time: what a shared, busy machine distorts least

    @classmethod
    def median(cls, runs: list[Seconds]) -> Seconds:
        return cls(statistics.median(r.wall for r in runs), statistics.median(r.cpu for r in runs))


@dataclass(frozen=True)
class Throughput:
    cold: Seconds  # the first round with the register, its word memory empty
    without: Seconds  # median without the register
    with_register: Seconds  # median, the word memory filled: the steady state
    client_findings: int
    split: Seconds  # median of str.split over the corpus
    word_sets: Seconds  # median of set(str.split) over the corpus


def _timed(work: Callable[[], T]) -> tuple[Seconds, T]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = work()
    return Seconds(time.perf_counter() - wall, time.process_time() - cpu), out


def throughput(docs: list[corpus.Document], folder: Path, repeat: int) -> Throughput:
    os.environ[KEY_ENV] = BENCH_KEY
    from gateway import register_store
    from models.findings import Segment
    from rules import engine

    key = BENCH_KEY.encode()
    index = register_store.load(folder / "var" / "register.db", key)
    assert index is not None
    plain = engine.ScanContext(fingerprint_key=key, today=date.today())
    with_register = engine.ScanContext(
        fingerprint_key=key,
        today=date.today(),
        client_register=index,
        customer_numbers=index.customer_numbers,
        customer_by_fingerprint=index.by_personnummer,
    )
    segments = [[Segment(part="text", text=d.text)] for d in docs]

    def run(ctx: engine.ScanContext) -> tuple[Seconds, list[list[str]]]:
        return _timed(lambda: [[str(f.kind) for f in engine.scan(s, ctx)] for s in segments])

    def floor(make: type[list[str]] | type[set[str]]) -> Seconds:
        return _timed(lambda: [make(d.text.split()) for d in docs])[0]

    run(plain)  # warm: bytecode, regex caches
    cold, kinds = run(with_register)
    times: dict[str, list[Seconds]] = {"without": [], "with": [], "split": [], "sets": []}
    for i in range(repeat):
        print(f"  round {i + 1}/{repeat}", file=sys.stderr, flush=True)
        times["without"].append(run(plain)[0])
        times["with"].append(run(with_register)[0])
        times["split"].append(floor(list))
        times["sets"].append(floor(set))
    client = sum(k.startswith("client_") for doc in kinds for k in doc)
    median = {k: Seconds.median(v) for k, v in times.items()}
    return Throughput(cold, median["without"], median["with"], client, median["split"], median["sets"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.register", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=100_000, help="clients in the register (default 100000)"
    )
    parser.add_argument("--files", type=int, default=1000, help="texts in the corpus (default 1000)")
    parser.add_argument("--seed", type=int, default=corpus.SEED)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds; the median counts (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    folder: Path = args.out
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
    export_path = folder / "kunder.csv"
    started = time.perf_counter()
    export(args.clients, args.seed, export_path)
    docs = corpus.generate(args.files, args.seed)
    texts = folder / "texts.json"
    texts.write_text(json.dumps([d.text for d in docs]), encoding="utf-8")
    megabytes = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    vocabulary = len({w for d in docs for w in d.text.split()})
    print(
        f"export: {args.clients} clients, {export_path.stat().st_size / 1e6:.1f} MB; corpus: "
        f"{corpus.describe(docs)}; {vocabulary} distinct words ({time.perf_counter() - started:.1f} s); "
        "load average "
        f"{os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs",
        flush=True,
    )

    register_file = folder / "var" / "register.db"
    register_file.unlink(missing_ok=True)
    without = memory(folder, folder / "config.yaml", texts)
    wall, peak, summary = import_register(folder, export_path)
    print(f"import: {wall:.1f} s wall, peak {peak:.0f} MB; {summary.split(': ', 1)[1]}")
    print(f"register file: {register_file.stat().st_size / 1e6:.1f} MB")
    loaded = memory(folder, folder / "config.yaml", texts)
    print(
        f"gateway memory (RSS, MB): without register {without['loaded']:.0f}, after scanning "
        f"{without['scanned']:.0f}; with register {loaded['loaded']:.0f} "
        f"(+{loaded['loaded'] - loaded['before']:.0f} for loading it), after scanning the corpus "
        f"{loaded['scanned']:.0f}"
    )
    result = throughput(docs, folder, args.repeat)
    for clock in ("wall", "cpu"):
        base, steady, first = (getattr(t, clock) for t in (result.without, result.with_register, result.cold))
        print(
            f"engine throughput, {clock} time ({megabytes:.1f} MB, median of {args.repeat}): without "
            f"register {megabytes / base:.1f} MB/s, with register (steady state) "
            f"{megabytes / steady:.1f} MB/s ({1 - base / steady:.0%} lower); first "
            f"round with an empty word memory {megabytes / first:.1f} MB/s ({1 - base / first:.0%} lower)"
        )
    ms = 1000 / megabytes
    base, sets = result.without.cpu, result.word_sets.cpu
    print(
        f"per MB, CPU time: engine without register {base * ms:.1f} ms, the register's part "
        f"{(result.with_register.cpu - base) * ms:.1f} ms; floor of any per-word search in "
        f"Python: str.split alone {result.split.cpu * ms:.1f} ms, str.split and the set of its words "
        f"{sets * ms:.1f} ms ({sets / base:.0%} of the engine's time; a 20% loss allows the register "
        f"{base * ms / 4:.1f} ms)"
    )
    print(
        f"client findings in the corpus: {result.client_findings} (its staff and greeting names are "
        "drawn from the same name statistics as the register)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
