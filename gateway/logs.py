"""Structured operational logs: one JSON object a line on stderr, never an address or an identifier."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from rules.engine import redact_numbers
from rules.policy import domain_of

# What a log names for an address without a domain.
NO_DOMAIN = "(none)"


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


def domain(address: str) -> str:
    """An address's domain, which a log may name where it may not name the address.

    An address without "@" has no domain: what was typed there (a personnummer pasted into the
    recipient field, a password typed as the user name) is not written at all. A domain is the
    sender's word too: an identity number in it is masked.
    """
    if "@" not in address:
        return NO_DOMAIN
    found = domain_of(address)
    return redact_numbers(found, date.today()) if any(c.isdigit() for c in found) else found


def domains(addresses: Sequence[str]) -> list[str]:
    """The recipients' domains, each once (see `domain`)."""
    return sorted({domain(a) for a in addresses if a})
