"""The benchmark: the rules engine and `brukarvakt lint` against Presidio's Swedish recognizer.

    python3 -m bench.engine            # from the repository root; --help for the options

Generates the synthetic corpus (bench/corpus.py) into a folder of files, then in the same run
times, over the same texts: the rules engine in-process; `brukarvakt lint` over the folder as a
whole process (start-up included); Presidio's SePersonnummerRecognizer as a whole process over the
same folder (bench/presidio_runner.py) and in-process. Each timing is the median of several runs
(the machine may be shared and noisy); CPU time (user + system) is shown beside wall time, as it
varies less with other load. Prints MB/s, the ratios, and each side's recall and false positives
against the corpus's ground truth, false positives by the kind of hard negative they hit.

lint runs the identity-number rules, the job Presidio's recognizer does: the person-name rule
(a spaCy model, on by default) is off, and there is no client register. --person-name-files N
times the default as well, over N texts.

--small-files N: N mail-sized texts of 1.5-30 KB instead, where start-up and the cost per file
count for more than the engine's speed; lint's default configuration (names on) is timed over the
same folder as well. --engine-only: the rules engine in-process alone, Presidio neither imported
nor run. --baseline-lint-command: another lint (an older checkout) timed in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench import corpus
from bench.corpus import Document

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "out"
# Mail-sized texts, many of them: the shape of a mailbox export, where per-file cost shows.
SMALL_SIZES = (1536, 30 * 1024)
RUNNER = Path(__file__).resolve().parent / "presidio_runner.py"
# A fixed key: the benchmark must neither read nor create the installation's key file.
BENCH_KEY = "brukarvakt-benchmark-key-not-for-production"
KEY_ENV = "BRUKARVAKT_FINGERPRINT_KEY"
# The job Presidio's recognizer does: identity numbers (phones, references and context included).
# The person-name rule runs a spaCy model at tens of kB/s and has no counterpart on Presidio's side;
# without a register file there are no client names to look for.
BENCH_CONFIG = """\
policy:
  person_name: "off"
register: {path: var/register.db}
"""
# lint as installed: the person-name rule on (warn), still no register.
DEFAULT_CONFIG = "register: {path: var/register.db}\n"

Span = tuple[int, int]


@dataclass
class Accuracy:
    planted: int = 0
    found: int = 0
    false_positives: Counter[str] = field(default_factory=Counter)

    def add(self, doc: Document, spans: Iterable[Span]) -> None:
        """Spans reported in one document: each either hits a planted identifier or is a false positive."""
        hit = set()
        for start, end in spans:
            planted = [i for i, p in enumerate(doc.planted) if start < p.end and p.start < end]
            if planted:
                hit.update(planted)
                continue
            kinds = [n.kind for n in doc.negatives if start < n.end and n.start < end]
            self.false_positives[kinds[0] if kinds else "other text"] += 1
        self.planted += len(doc.planted)
        self.found += len(hit)

    @property
    def recall(self) -> str:
        share = self.found / self.planted if self.planted else 1.0
        return f"{self.found}/{self.planted} ({share:.0%})"

    @property
    def false_positive_total(self) -> int:
        return sum(self.false_positives.values())


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Row:
    name: str
    timing: Timing
    accuracy: Accuracy

    def mb_per_s(self, megabytes: float) -> float:
        return megabytes / statistics.median(self.timing.wall)

    def cpu_mb_per_s(self, megabytes: float) -> float:
        return megabytes / statistics.median(self.timing.cpu)


# ---------------------------------------------------------------------------------------------
# The two sides, in-process.


def engine_in_process(docs: list[Document]) -> Callable[[], list[list[Span]]]:
    from models.findings import Segment
    from rules import engine

    ctx = engine.ScanContext(fingerprint_key=BENCH_KEY.encode(), today=date.today())

    def run() -> list[list[Span]]:
        return [
            [(f.start, f.end) for f in engine.scan([Segment(part="text", text=d.text)], ctx)] for d in docs
        ]

    return run


def presidio_in_process(docs: list[Document]) -> Callable[[], list[list[Span]]]:
    from presidio_analyzer.predefined_recognizers import SePersonnummerRecognizer

    recognizer = SePersonnummerRecognizer()

    def run() -> list[list[Span]]:
        return [
            [
                (r.start, r.end)
                for r in recognizer.analyze(d.text, entities=["SE_PERSONNUMMER"], nlp_artifacts=None)
            ]
            for d in docs
        ]

    return run


def time_in_process(run: Callable[[], list[list[Span]]], timing: Timing) -> list[list[Span]]:
    cpu, wall = time.process_time(), time.perf_counter()
    spans = run()
    timing.wall.append(time.perf_counter() - wall)
    timing.cpu.append(time.process_time() - cpu)
    return spans


# ---------------------------------------------------------------------------------------------
# The two sides as whole processes, start-up included.


def byte_compile() -> None:
    """Bytecode for the project's modules, as `pip install` writes it for any installed package
    (Presidio's included). Without it, a shell with PYTHONDONTWRITEBYTECODE set would have every
    `brukarvakt` process compile the project from source again."""
    import compileall

    for package in ("gateway", "rules", "models"):
        compileall.compile_dir(REPO / package, quiet=1)


def lint_command() -> list[str]:
    """The installed `brukarvakt` script beside this interpreter (not a version manager's shim)."""
    beside = Path(sys.executable).with_name("brukarvakt")
    if beside.exists():
        return [str(beside)]
    installed = shutil.which("brukarvakt")
    return [installed] if installed else [sys.executable, "-m", "gateway.cli"]


def time_process(command: list[str], timing: Timing, cwd: Path) -> bytes:
    env = {**os.environ, KEY_ENV: BENCH_KEY}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    timing.wall.append(time.perf_counter() - wall)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    timing.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode not in (0, 1):
        sys.exit(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr.decode(errors='replace')[-2000:]}"
        )
    return done.stdout


def _offset(line_starts: list[int], line: int, column: int) -> int:
    return line_starts[line - 1] + column - 1


def lint_spans(output: bytes, docs: list[Document], folder: Path) -> list[list[Span]]:
    """Where lint's identity-number findings start, from its JSON output (line and column)."""
    by_path = {Path(f["path"]).name: f["findings"] for f in json.loads(output)["files"]}
    spans = []
    for doc in docs:
        starts = [0] + [i + 1 for i, ch in enumerate(doc.text) if ch == "\n"]
        found = by_path.get(doc.name)
        if found is None:
            sys.exit(f"lint did not report {folder / doc.name}")
        offsets = [
            _offset(starts, f["location"]["line"], f["location"]["column"])
            for f in found
            if f["kind"] != "person_name"
        ]
        spans.append([(o, o + 1) for o in offsets])
    return spans


def person_name_warnings(output: bytes) -> int:
    return sum(1 for f in json.loads(output)["files"] for x in f["findings"] if x["kind"] == "person_name")


def presidio_spans(output: bytes, docs: list[Document]) -> list[list[Span]]:
    found = json.loads(output)
    return [[(s, e) for s, e in found[doc.name]] for doc in docs]


# ---------------------------------------------------------------------------------------------

ENGINE = "rules engine, in-process"
LINT = "brukarvakt lint, whole process"
BASELINE = "brukarvakt lint (baseline), whole process"
PRESIDIO_PROCESS = "Presidio SePersonnummer, whole process"
PRESIDIO_IN_PROCESS = "Presidio SePersonnummer, in-process"
LINT_DEFAULT = "brukarvakt lint, names on (default), whole process"


def _rows(
    docs: list[Document], timings: dict[str, Timing], results: dict[str, list[list[Span]]]
) -> dict[str, Row]:
    rows = {}
    for name, timing in timings.items():
        accuracy = Accuracy()
        for doc, spans in zip(docs, results[name], strict=True):
            accuracy.add(doc, spans)
        rows[name] = Row(name, timing, accuracy)
    return rows


def measure_engine(docs: list[Document], repeat: int) -> dict[str, Row]:
    """The rules engine alone, in-process: no Presidio, no processes."""
    timing = Timing()
    run = engine_in_process(docs)
    results = {ENGINE: run()}  # untimed: lazy imports, compiled patterns
    for i in range(repeat):
        print(f"  round {i + 1}/{repeat}", file=sys.stderr, flush=True)
        time_in_process(run, timing)
    return _rows(docs, {ENGINE: timing}, results)


def measure(
    docs: list[Document], folder: Path, repeat: int, lint_cmd: list[str], baseline_cmd: list[str] | None
) -> dict[str, Row]:
    config = folder.parent / "bench-config.yaml"
    config.write_text(BENCH_CONFIG, encoding="utf-8")
    lint_args = ["lint", "--config", str(config), "--format", "json", str(folder)]
    commands = {LINT: [*lint_cmd, *lint_args]}
    if baseline_cmd:
        commands[BASELINE] = [*baseline_cmd, *lint_args]
    commands[PRESIDIO_PROCESS] = [sys.executable, str(RUNNER), str(folder)]
    in_process = {ENGINE: engine_in_process(docs), PRESIDIO_IN_PROCESS: presidio_in_process(docs)}
    timings = {name: Timing() for name in (ENGINE, *commands, PRESIDIO_IN_PROCESS)}
    # One untimed round: file cache, compiled bytecode, lazy imports.
    results = {name: run() for name, run in in_process.items()}
    for name, command in commands.items():
        output = time_process(command, Timing(), folder.parent)
        results[name] = (
            presidio_spans(output, docs) if name == PRESIDIO_PROCESS else lint_spans(output, docs, folder)
        )
    for i in range(repeat):
        print(f"  round {i + 1}/{repeat}", file=sys.stderr, flush=True)
        # Interleaved, so that every side shares whatever else the machine is doing.
        for name in timings:
            if name in in_process:
                time_in_process(in_process[name], timings[name])
            else:
                time_process(commands[name], timings[name], folder.parent)
    return _rows(docs, timings, results)


def lint_default(docs: list[Document], folder: Path, rounds: int, lint_cmd: list[str]) -> tuple[Row, int]:
    """`brukarvakt lint` as installed by default, person-name rule on, over `folder`; and its
    person-name warnings.

    Every mail here names a home-care unit in its signature, so every one has care context and
    goes through the name rule: the figure says what the default costs, next to the table.
    """
    config = folder.parent / "default-config.yaml"
    config.write_text(DEFAULT_CONFIG, encoding="utf-8")
    timing = Timing()
    command = [*lint_cmd, "lint", "--config", str(config), "--format", "json", str(folder)]
    output = b""
    for i in range(rounds):
        print(f"  names on, round {i + 1}/{rounds}", file=sys.stderr, flush=True)
        output = time_process(command, timing, folder.parent)
    rows = _rows(docs, {LINT_DEFAULT: timing}, {LINT_DEFAULT: lint_spans(output, docs, folder)})
    return rows[LINT_DEFAULT], person_name_warnings(output)


def with_person_names(docs: list[Document], folder: Path, count: int, lint_cmd: list[str]) -> str:
    """lint's default over the first `count` texts, once (the spaCy model reads tens of kB/s)."""
    sample = folder.parent / "person-name-sample"
    sample.mkdir(exist_ok=True)
    for old in sample.iterdir():
        old.unlink()
    for doc in docs[:count]:
        (sample / doc.name).write_bytes(doc.text.encode("utf-8"))
    megabytes = sum(len(d.text.encode("utf-8")) for d in docs[:count]) / 1e6
    row, warnings = lint_default(docs[:count], sample, 1, lint_cmd)
    return (
        f"brukarvakt lint with the person-name rule on (the default), {count} texts, {megabytes:.2f} MB, "
        f"once: {row.mb_per_s(megabytes):.2f} MB/s ({row.cpu_mb_per_s(megabytes):.2f} MB/s CPU), "
        f"{warnings} person-name warnings"
    )


def table(rows: Iterable[Row], megabytes: float) -> str:
    head = ("", "MB/s", "MB/s CPU", "median s", "median CPU s", "recall", "false positives")
    lines = [head]
    for r in rows:
        fp = r.accuracy.false_positives
        detail = ", ".join(f"{k} {v}" for k, v in fp.most_common())
        lines.append(
            (
                r.name,
                f"{r.mb_per_s(megabytes):.2f}",
                f"{r.cpu_mb_per_s(megabytes):.2f}",
                f"{statistics.median(r.timing.wall):.3f}",
                f"{statistics.median(r.timing.cpu):.3f}",
                r.accuracy.recall,
                f"{r.accuracy.false_positive_total}" + (f" ({detail})" if detail else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = []
    for line in lines:
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:-1], widths[1:], strict=True)]
        out.append("  ".join([*cells, line[-1]]))
    return "\n".join(out)


def ratio(label: str, faster: Row, slower: Row) -> str:
    """How many times `faster`'s throughput `slower`'s is: wall time, then CPU time."""
    wall = statistics.median(slower.timing.wall) / statistics.median(faster.timing.wall)
    cpu = statistics.median(slower.timing.cpu) / statistics.median(faster.timing.cpu)
    return f"{label}: {wall:.2f}x (CPU time: {cpu:.2f}x)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000, help="texts in the corpus (default 2000)")
    parser.add_argument(
        "--small-files",
        type=int,
        default=None,
        metavar="N",
        help="N texts of 1.5-30 KB instead (written to OUT/small), and lint's default config timed too",
    )
    parser.add_argument("--seed", type=int, default=corpus.SEED)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds; the median counts (default 5)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the corpus is written")
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="time the rules engine in-process alone (Presidio neither imported nor run)",
    )
    parser.add_argument(
        "--lint-command",
        default=None,
        help="how to start brukarvakt (default: the installed script beside this Python)",
    )
    parser.add_argument(
        "--baseline-lint-command",
        default=None,
        metavar="COMMAND",
        help="another brukarvakt to time in the same rounds, e.g. "
        "'env PYTHONPATH=/tmp/old python3 -c \"import sys;from gateway.cli import main;sys.exit(main())\"'",
    )
    parser.add_argument(
        "--person-name-files",
        type=int,
        default=0,
        metavar="N",
        help="also time lint with the person-name rule on (spaCy) over the first N texts, once",
    )
    parser.add_argument(
        "--default-rounds",
        type=int,
        default=1,
        metavar="N",
        help="with --small-files: times lint's default config (names on, minutes) is run (default 1; 0: not)",
    )
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=None,
        help="exit 1 unless lint is at least this many times Presidio's throughput",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    if args.small_files:
        docs = corpus.generate(args.small_files, args.seed, sizes=SMALL_SIZES)
        folder = corpus.write(docs, args.out / "small")
    else:
        docs = corpus.generate(args.files, args.seed)
        folder = corpus.write(docs, args.out)
    megabytes = sum(len(d.text.encode("utf-8")) for d in docs) / 1e6
    print(f"corpus: {corpus.describe(docs)}")
    print(
        f"written to {folder} in {time.perf_counter() - started:.1f} s; timing {args.repeat} rounds, "
        f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs",
        flush=True,
    )
    if args.engine_only:
        print()
        print(table(measure_engine(docs, args.repeat).values(), megabytes))
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        return 0
    byte_compile()
    lint_cmd = shlex.split(args.lint_command) if args.lint_command else lint_command()
    baseline_cmd = shlex.split(args.baseline_lint_command) if args.baseline_lint_command else None
    print(f"lint: {' '.join(lint_cmd)}; Presidio: {sys.executable} {RUNNER.name}", flush=True)
    rows = measure(docs, folder, args.repeat, lint_cmd, baseline_cmd)
    default: tuple[Row, int] | None = None
    if args.small_files and args.default_rounds > 0:
        default = lint_default(docs, folder, args.default_rounds, lint_cmd)
    print()
    print(table([*rows.values(), *([default[0]] if default else [])], megabytes))
    print()
    print(ratio("lint / Presidio, whole processes", rows[LINT], rows[PRESIDIO_PROCESS]))
    print(ratio("engine / Presidio, in-process", rows[ENGINE], rows[PRESIDIO_IN_PROCESS]))
    if default:
        print(
            ratio("lint names on (default) / Presidio, whole processes", default[0], rows[PRESIDIO_PROCESS])
        )
        print(f"  ({default[1]} person-name warnings; {args.default_rounds} round(s))")
    if baseline_cmd:
        print(ratio("lint / baseline lint, whole processes", rows[LINT], rows[BASELINE]))
    if args.person_name_files:
        print(with_person_names(docs, folder, args.person_name_files, lint_cmd))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    lint_ratio = statistics.median(rows[PRESIDIO_PROCESS].timing.wall) / statistics.median(
        rows[LINT].timing.wall
    )
    if args.min_ratio is not None and lint_ratio < args.min_ratio:
        print(f"lint is below {args.min_ratio}x Presidio's throughput", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
