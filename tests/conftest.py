"""Shared fixtures: Skatteverket's test numbers, a fixed date and a test fingerprint key."""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Public test data copied into the repository (origins and licences in tests/data/README.md).
TEST_DATA = REPO / "tests" / "data"
PERSONNUMMER_DATA = TEST_DATA / "personnummer"
# Rules take today's date as an argument: a fixed one keeps the tests reproducible.
TODAY = date(2026, 11, 26)
TEST_KEY = b"brukarvakt-test-key-not-for-production"


@cache
def skatteverket() -> dict[str, list[str]]:
    path = PERSONNUMMER_DATA / "skatteverket_test_numbers_sample.json"
    if not path.exists():
        raise RuntimeError(f"Skatteverket's test numbers are missing: {path}")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"personnummer": data["personnummer"], "samordningsnummer": data["samordningsnummer"]}


def test_personnummer(index: int = 0) -> str:
    return skatteverket()["personnummer"][index]


test_personnummer.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="session")
def personnummer_list() -> list[str]:
    return skatteverket()["personnummer"]


@pytest.fixture(scope="session")
def samordningsnummer_list() -> list[str]:
    return skatteverket()["samordningsnummer"]


@pytest.fixture()
def key_env(monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The fingerprint key through the environment, as an administrator would set it."""
    monkeypatch.setenv("BRUKARVAKT_FINGERPRINT_KEY", TEST_KEY.decode())
    return TEST_KEY
