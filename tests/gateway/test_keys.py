"""The fingerprint key: environment first, then config, then a private key file made once."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from gateway.errors import UserError
from gateway.keys import fingerprint_key
from models.config import Privacy


def test_the_environment_variable_named_in_config_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_KEY", "k" * 20)
    privacy = Privacy(
        fingerprint_key_env="MY_KEY", fingerprint_key=SecretStr("c" * 20), key_file=tmp_path / "f"
    )
    assert fingerprint_key(privacy) == b"k" * 20
    assert not (tmp_path / "f").exists()


def test_then_the_configured_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRUKARVAKT_FINGERPRINT_KEY", raising=False)
    privacy = Privacy(fingerprint_key=SecretStr("c" * 20), key_file=tmp_path / "f")
    assert fingerprint_key(privacy) == b"c" * 20


def test_a_short_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRUKARVAKT_FINGERPRINT_KEY", "short")
    with pytest.raises(UserError, match="at least 16 characters"):
        fingerprint_key(Privacy())


def test_without_a_key_a_random_private_key_file_is_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRUKARVAKT_FINGERPRINT_KEY", raising=False)
    path = tmp_path / "state" / "fingerprint.key"
    results: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: results.append(fingerprint_key(Privacy(key_file=path))))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results[0]) == 64
    assert os.stat(path).st_mode & 0o777 == 0o600
    other = tmp_path / "other.key"
    assert fingerprint_key(Privacy(key_file=other)) != results[0]


def test_an_unreadable_key_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRUKARVAKT_FINGERPRINT_KEY", raising=False)
    path = tmp_path / "fingerprint.key"
    path.mkdir()
    with pytest.raises(UserError, match="fingerprint key"):
        fingerprint_key(Privacy(key_file=path))
