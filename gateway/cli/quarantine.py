"""`brukarvakt quarantine list|show|release|delete|purge`: held messages, from the command line."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from datetime import UTC
from typing import Any

from gateway.cli.common import config_of
from gateway.errors import UserError
from gateway.pipeline import Pipeline, Stage
from gateway.quarantine import QuarantineStore


def operator() -> str:
    """Who runs the command, for the audit log: the Unix user (a console user names themselves)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _findings_summary(verdict: dict[str, Any]) -> str:
    kinds: dict[str, int] = {}
    for f in verdict.get("findings", []):
        kinds[str(f.get("kind"))] = kinds.get(str(f.get("kind")), 0) + 1
    parts = [f"{k} x{n}" if n > 1 else k for k, n in kinds.items()]
    if verdict.get("unscanned"):
        parts.append(f"unscanned x{len(verdict['unscanned'])}")
    return ", ".join(parts) or str(verdict.get("reason", ""))


def _list(store: QuarantineStore) -> int:
    out = sys.stdout
    ids = store.ids()
    if not ids:
        out.write(f"no held messages in {store.root}\n")
        return 0
    out.write(f"{'ID':<31} {'HELD (UTC)':<16}  {'SENDER':<30} {'RCPT':>4} {'SIZE':>8}  FOUND\n")
    for item_id in ids:
        try:
            held = store.get(item_id)
            when = held.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            out.write(
                f"{item_id:<31} {when:<16}  {store.redact(held.mail_from) or '<>':<30} "
                f"{len(held.rcpt_tos):>4} {held.meta.get('size', 0):>8}  {_findings_summary(held.verdict)}\n"
            )
        except (UserError, KeyError, ValueError):
            out.write(f"{item_id:<31} (sidecar unreadable: see the folder; the message is kept)\n")
    return 0


def _show(store: QuarantineStore, item_id: str) -> int:
    held = store.get(item_id)
    shown = dict(held.meta)
    # The sidecar's texts were masked when stored; masking again costs nothing and covers an
    # address that holds an identifier. The message body is never shown: it holds the identifiers.
    shown["envelope"] = {
        "mail_from": store.redact(held.mail_from),
        "rcpt_tos": [store.redact(r) for r in held.rcpt_tos],
    }
    sys.stdout.write(json.dumps(shown, ensure_ascii=False, indent=2) + "\n")
    return 0


async def _released(stage: Stage, item_id: str, note: str | None) -> int:
    pipeline = Pipeline(stage)
    try:
        result = await pipeline.release(item_id, actor=operator(), note=note)
    finally:
        pipeline.close()
    if result.delivered:
        print(f"released {item_id}: {result.reply}")
        return 0
    print(f"not released {item_id}, still held: next hop answered {result.reply}")
    return 1


def run(args: argparse.Namespace) -> int:
    # The stage's redaction masks the register's names as well as numbers in what is printed.
    stage = Stage.build(config_of(args), scan=False)
    store = stage.quarantine
    try:
        if args.action == "list":
            return _list(store)
        if args.action == "show":
            return _show(store, args.id)
        if args.action == "release":
            return asyncio.run(_released(stage, args.id, args.reason))
        if args.action == "delete":
            store.delete(args.id, stage.audit, actor=operator(), note=args.reason)
            print(f"deleted {args.id}")
            return 0
        removed = store.purge(stage.audit, actor=operator())
        days = stage.config.quarantine.retention_days
        print(f"purged {len(removed)} held message(s) older than {days} days")
        return 0
    except OSError as e:
        where = e.filename or store.root
        raise UserError(f"quarantine {where}: {e.strerror or type(e).__name__}") from None
