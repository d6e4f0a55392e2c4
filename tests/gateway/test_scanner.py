"""The gateway's scanner: one engine context per process and per day, reused for every message."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from gateway.config import parse
from gateway.scanner import Scanner


def _scanner(tmp_path: Path) -> Scanner:
    return Scanner(parse({"policy": {"person_name": "off"}, "register": {"path": str(tmp_path / "none.db")}}))


def test_messages_of_one_day_share_its_context(tmp_path: Path, key_env: bytes) -> None:
    scanner = _scanner(tmp_path)
    today = scanner.base.today
    assert scanner.context(today) is scanner.context() is scanner.base
    tomorrow = today + timedelta(days=1)
    # After midnight: a context for the new day, made once and kept (not one copy a message).
    first = scanner.context(tomorrow)
    assert first.today == tomorrow and scanner.context(tomorrow) is first
    assert scanner.context(date(2030, 1, 1)).today == date(2030, 1, 1)
