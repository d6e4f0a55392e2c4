"""Structured operational logs: one JSON object a line on stderr, never an address or an identifier."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rules.policy import domain_of


def log(event: str, level: str = "info", **fields: Any) -> None:
    """One JSON line on stderr. Callers pass no addresses and no identifiers: domains, kinds, codes."""
    record = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "event": event,
        "pid": os.getpid(),
        **fields,
    }
    try:
        sys.stderr.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must not stop mail


def domains(addresses: Sequence[str]) -> list[str]:
    """The recipients' domains, which the logs may name where they may not name the addresses."""
    return sorted({domain_of(a) for a in addresses if a})
