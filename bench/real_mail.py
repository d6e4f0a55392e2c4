"""What the gateway decides on the corpus of real mail: counts by verdict and reason, and each block.

    python3 -m bench.real_mail                 # from the repository root; --help for the options

The corpus is tests/data/mail/ (origins in tests/data/README.md, "Real mail corpus"): public test
mail of mail libraries and tools, none of it written for this project. Each message goes through
the engine as the gateway sees it: `Scanner.scan_mail`, then `Scanner.decide` with the default
configuration and the sender context the linter gives a message when nobody is vouched for
(`gateway/lint.py`). Printed: the corpus's size, the verdicts, the reasons of blocks and warnings,
and every blocked message with its reasons (part names redacted, findings masked), slowest last.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.config import parse
from gateway.scanner import MailScan, Scanner
from models.findings import SenderContext, Verdict

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "data" / "mail"
KEY_ENV = "BRUKARVAKT_FINGERPRINT_KEY"


def messages(root: Path = CORPUS) -> list[Path]:
    """Every message of the corpus, in a stable order."""
    return sorted(p for p in root.rglob("*.eml") if p.is_file())


def scanner(register: Path) -> Scanner:
    """The default configuration, with no client register (the corpus names no client)."""
    return Scanner(parse({"register": {"path": str(register)}}))


def sender_context(scanner: Scanner, scan: MailScan) -> SenderContext:
    """The linter's context for a message without --sender: nobody is vouched for."""
    found = scan.mail
    return SenderContext(
        authenticated_as=None,
        tls=False,
        envelope_sender=found.from_address or "",
        from_header=(found.from_address or "").lower() or None,
        recipients=found.recipients,
        marked_secure=scanner.marked_secure(found.subject),
    )


def decide(scanner: Scanner, data: bytes) -> Verdict:
    scan = scanner.scan_mail(data)
    return scanner.decide(scan, sender_context(scanner, scan))


def reasons(verdict: Verdict) -> list[str]:
    """Why a message was held or warned about: each unread part and each finding, no identifier."""
    unread = [f"oläst {u.content_type}: {u.reason}" for u in verdict.unscanned]
    found = [f"fynd {f.kind} ({f.severity})" for f in verdict.findings]
    return unread + found


def described(verdict: Verdict) -> list[str]:
    """Each reason with where it was: the part's (redacted) name, the finding's masked form."""
    unread = [f"{u.name} [{u.content_type}]: {u.reason}" for u in verdict.unscanned]
    found = [f"{f.location.part}: {f.kind} {f.masked} ({f.severity})" for f in verdict.findings]
    return unread + found


@dataclass(frozen=True)
class Outcome:
    path: str
    verdict: Verdict | None  # None: the scan raised (`error` names the exception's type)
    seconds: float
    error: str = ""


def run(paths: list[Path], root: Path) -> Iterator[Outcome]:
    with tempfile.TemporaryDirectory() as folder:
        engine = scanner(Path(folder) / "register.db")
        for path in paths:
            data = path.read_bytes()
            name = str(path.relative_to(root))
            start = time.perf_counter()
            try:
                verdict = decide(engine, data)
            except Exception as e:  # reported with the others, not the end of the run
                yield Outcome(name, None, time.perf_counter() - start, type(e).__name__)
                continue
            yield Outcome(name, verdict, time.perf_counter() - start)


def report(outcomes: list[Outcome], paths: list[Path], root: Path) -> str:
    size = sum(p.stat().st_size for p in paths)
    sources = Counter(Path(o.path).parts[0] for o in outcomes)
    verdicts = Counter(o.verdict.verdict if o.verdict else "error" for o in outcomes)
    blocked = [o for o in outcomes if o.verdict and o.verdict.verdict == "block"]
    warned = [o for o in outcomes if o.verdict and o.verdict.verdict == "warn"]
    lines = [
        f"Corpus: {len(paths)} messages, {size / 1e6:.1f} MB, {len(sources)} sources ({root})",
        "  " + ", ".join(f"{name} {n}" for name, n in sorted(sources.items())),
        "Verdicts: " + ", ".join(f"{name} {verdicts[name]}" for name in ("pass", "warn", "block", "error")),
    ]
    for title, group in (("Blocked", blocked), ("Warned", warned)):
        counted = Counter(r for o in group if o.verdict for r in set(reasons(o.verdict)))
        lines.append(f"{title}, messages by reason (a message may have several):")
        lines += [f"  {n:4d}  {reason}" for reason, n in counted.most_common()] or ["     -"]
    lines.append("Blocked messages:")
    for o in blocked:
        lines.append(f"  {o.path}")
        lines += [f"      {d}" for d in described(o.verdict)] if o.verdict else []
    errors = [o for o in outcomes if o.verdict is None]
    if errors:
        lines.append("Scans that raised (the gateway answers these with a temporary failure):")
        lines += [f"  {o.path}: {o.error}" for o in errors]
    total = sum(o.seconds for o in outcomes)
    slowest = max(outcomes, key=lambda o: o.seconds, default=None)
    lines.append(f"Time: {total:.1f} s for {len(outcomes)} messages")
    if slowest is not None:
        lines.append(f"  slowest: {slowest.path} {slowest.seconds:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus", type=Path, default=CORPUS, help="folder of .eml files (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    paths = messages(args.corpus)
    if not paths:
        print(f"no .eml files under {args.corpus}", file=sys.stderr)
        return 2
    # A key of this run only: nothing printed here carries a fingerprint, and no key file is left.
    os.environ.setdefault(KEY_ENV, secrets.token_hex(32))
    outcomes = list(run(paths, args.corpus))
    print(report(outcomes, paths, args.corpus))
    return 0


if __name__ == "__main__":
    sys.exit(main())
