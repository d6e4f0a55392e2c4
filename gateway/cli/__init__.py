"""The `brukarvakt` command: one parser for every verb, and one clear line for every user error."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from gateway.errors import UserError

EXIT_USAGE = 2

# Verb -> module with `run(args) -> int`, imported only when used: `lint` must not pay for the
# SMTP stack at start, `serve` not for the linter. (A table looked up at run time, not an import
# hidden in a function: every command module is an ordinary module with top-level imports.)
COMMANDS = {
    "lint": "gateway.cli.lint",
    "console": "gateway.cli.console",
    "console-user": "gateway.cli.console_user",
    "serve": "gateway.cli.serve",
    "check-config": "gateway.cli.check_config",
    "register": "gateway.cli.register",
    "user": "gateway.cli.user",
    "audit": "gateway.cli.audit",
    "quarantine": "gateway.cli.quarantine",
    "milter": "gateway.cli.milter",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"brukarvakt: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _config_parent() -> _Parser:
    """`--config FILE`, given to the root and to every verb and sub-verb alike.

    No default (SUPPRESS): a verb's parser would otherwise overwrite a `--config` given before
    the verb with its own None. Where it is given last wins.
    """
    parent = _Parser(add_help=False)
    parent.add_argument(
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="configuration file (else $BRUKARVAKT_CONFIG, ./config.yaml, /etc/brukarvakt/config.yaml, "
        "the embedded defaults)",
    )
    return parent


class Verbs:
    """Adds verbs (and sub-verbs) that all take the shared options."""

    def __init__(self, parser: argparse.ArgumentParser, dest: str, parent: _Parser) -> None:
        self.sub = parser.add_subparsers(dest=dest, required=True, parser_class=_Parser, metavar="VERB")
        self.parent = parent

    def add(self, name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = self.sub.add_parser(
            name, help=help, description=help, parents=[self.parent]
        )
        return parser

    def actions(self, parser: argparse.ArgumentParser) -> Verbs:
        return Verbs(parser, "action", self.parent)


def _version() -> str:
    try:
        return version("brukarvakt")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parent = _config_parent()
    parser = _Parser(
        prog="brukarvakt",
        description="Vaktar att personuppgifter om brukare inte lämnar organisationen med e-post.",
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"brukarvakt {_version()}")
    verbs = Verbs(parser, "command", parent)

    lint = verbs.add("lint", "scan files or mail messages for identifiers")
    lint.add_argument("--sender", metavar="ADDR", help="check as if ADDR sent it, authenticated over TLS")
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.add_argument("--fix", action="store_true", help="print plain text with identifiers replaced")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or - for standard input")

    serve = verbs.add("serve", "run the SMTP gateway")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes accepting on the same port, to use more cores (default 1)",
    )
    serve.add_argument(
        "--no-scan",
        action="store_true",
        help="relay WITHOUT scanning: only for measuring the passthrough baseline",
    )

    milter = verbs.add("milter", "run the gateway as a milter for Postfix or Sendmail (milter.listen)")
    milter.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes accepting on the same socket (default 1)",
    )

    verbs.add("check-config", "validate the configuration and say what it means")

    register = verbs.actions(verbs.add("register", "the client register"))
    register.add("import", "build the register from a care-system CSV export").add_argument(
        "file", type=Path, metavar="FILE"
    )
    register.add("info", "how many clients the register holds")

    user = verbs.actions(verbs.add("user", "the gateway's own SMTP AUTH users"))
    user.add("add", "add a user or change a password (read from stdin when not a terminal)").add_argument(
        "address"
    )
    user.add("remove", "remove a user").add_argument("address")
    user.add("list", "list users")

    audit = verbs.actions(verbs.add("audit", "the compliance audit log"))
    audit.add("verify", "check that no line was edited, removed or reordered")
    report = audit.add("report", "count decisions by verdict, kind, sender and day")
    report.add_argument("--since", metavar="DATE", help="only decisions on or after DATE (YYYY-MM-DD)")
    report.add_argument("--format", choices=("text", "csv"), default="text")

    quarantine = verbs.actions(verbs.add("quarantine", "held messages"))
    quarantine.add("list", "list held messages")
    for action, text in (
        ("show", "show a held message's verdict"),
        ("release", "send a held message on"),
        ("delete", "delete a held message"),
    ):
        held = quarantine.add(action, text)
        held.add_argument("id")
        if action in ("release", "delete"):
            held.add_argument("--reason", metavar="TEXT", help="why (written to the audit log)")
    quarantine.add("purge", "delete held messages older than quarantine.retention_days")

    verbs.add("console", "run the compliance console (a web application on console.listen)")
    console_user = verbs.actions(verbs.add("console-user", "who may sign in to the compliance console"))
    add = console_user.add(
        "add", "add a console user or change a password (read from stdin when not a terminal)"
    )
    add.add_argument("name")
    add.add_argument("--role", choices=("compliance", "viewer"), required=True)
    console_user.add("remove", "remove a console user").add_argument("name")
    console_user.add("list", "list console users and their roles")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        module = importlib.import_module(COMMANDS[args.command])
        return int(module.run(args))
    except UserError as e:
        print(f"brukarvakt: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
