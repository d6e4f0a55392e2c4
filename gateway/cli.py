"""The `brukarvakt` command: argument parsing, and one clear line for every user error."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import UserError

EXIT_USAGE = 2

# Subcommand -> module with `run(args) -> int`; imported only when used, so that `lint`
# does not pay for the SMTP stack and `serve` does not pay for the linter.
COMMANDS = {
    "lint": "gateway.lint",
    "serve": "gateway.server",
    "check-config": "gateway.checkconfig",
    "register": "gateway.register_cli",
    "user": "gateway.users",
    "audit": "gateway.audit",
    "quarantine": "gateway.quarantine",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        _usage_exit(message)


def _usage_exit(message: str) -> None:
    print(f"brukarvakt: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="configuration file (default: the embedded defaults)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="brukarvakt",
        description="Vaktar att personuppgifter om brukare inte lämnar organisationen med e-post.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    lint = sub.add_parser("lint", help="scan files or mail messages for identifiers")
    _config_option(lint)
    lint.add_argument("--sender", metavar="ADDR", help="check as if ADDR sent it, authenticated over TLS")
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.add_argument("--fix", action="store_true", help="print plain text with identifiers replaced")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="files, folders, or - for standard input")

    serve = sub.add_parser("serve", help="run the SMTP gateway")
    _config_option(serve)
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

    check = sub.add_parser("check-config", help="validate the configuration and say what it means")
    _config_option(check)

    register = sub.add_parser("register", help="the client register")
    _config_option(register)
    register_sub = register.add_subparsers(dest="action", required=True, parser_class=_Parser)
    imp = register_sub.add_parser("import", help="build the register from a care-system CSV export")
    imp.add_argument("file", type=Path, metavar="FILE")
    register_sub.add_parser("info", help="how many clients the register holds")

    user = sub.add_parser("user", help="the gateway's own SMTP AUTH users")
    _config_option(user)
    user_sub = user.add_subparsers(dest="action", required=True, parser_class=_Parser)
    add = user_sub.add_parser(
        "add", help="add a user or change a password (read from stdin when not a terminal)"
    )
    add.add_argument("address")
    remove = user_sub.add_parser("remove", help="remove a user")
    remove.add_argument("address")
    user_sub.add_parser("list", help="list users")

    audit = sub.add_parser("audit", help="the compliance audit log")
    _config_option(audit)
    audit_sub = audit.add_subparsers(dest="action", required=True, parser_class=_Parser)
    audit_sub.add_parser("verify", help="check that no line was edited, removed or reordered")
    report = audit_sub.add_parser("report", help="count decisions by verdict, kind, sender and day")
    report.add_argument("--since", metavar="DATE", help="only decisions on or after DATE (YYYY-MM-DD)")
    report.add_argument("--format", choices=("text", "csv"), default="text")

    quarantine = sub.add_parser("quarantine", help="held messages")
    _config_option(quarantine)
    q_sub = quarantine.add_subparsers(dest="action", required=True, parser_class=_Parser)
    q_sub.add_parser("list", help="list held messages")
    for action, text in (
        ("show", "show a held message's verdict"),
        ("release", "send a held message on"),
        ("delete", "delete a held message"),
    ):
        q = q_sub.add_parser(action, help=text)
        q.add_argument("id")
    q_sub.add_parser("purge", help="delete held messages older than quarantine.retention_days")
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


if __name__ == "__main__":
    sys.exit(main())
