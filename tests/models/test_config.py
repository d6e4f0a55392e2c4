"""The configuration: the shipped file loads as is; every bad key or value is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load, parse
from gateway.errors import UserError
from models.config import Config
from tests.conftest import REPO


def test_the_shipped_config_file_is_the_embedded_default() -> None:
    shipped = load(REPO / "config.yaml")
    embedded = load(None)
    # paths resolve against different folders; everything else is the same
    assert shipped.model_dump(
        exclude={"outbox", "register", "audit", "quarantine", "privacy"}
    ) == embedded.model_dump(exclude={"outbox", "register", "audit", "quarantine", "privacy"})
    assert shipped.audit.path == REPO / "var" / "audit.jsonl"


def test_the_shipped_config_holds_no_fingerprint_key() -> None:
    assert load(REPO / "config.yaml").privacy.fingerprint_key is None


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    cfg = tmp_path / "etc" / "c.yaml"
    cfg.write_text("audit: {path: logs/audit.jsonl}\nquarantine: {path: /srv/q}\n")
    config = load(cfg)
    assert config.audit.path == tmp_path / "etc" / "logs" / "audit.jsonl"
    assert config.quarantine.path == Path("/srv/q")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"listen": {"port": "smtp"}}, "listen.port = 'smtp'"),
        ({"listen": {"port": 70000}}, "listen.port = 70000"),
        (
            {"policy": {"on_block": "bounce"}},
            "policy.on_block = 'bounce': Input should be 'reject' or 'quarantine'",
        ),
        ({"policy": {"managers": "chef@kommun.se"}}, "policy.managers"),
        ({"polcy": {}}, "unknown key polcy"),
        ({"next_hop": {"port": 25}}, "missing key next_hop.host"),
        ({"next_hop": {"host": "mx", "tls": "maybe"}}, "next_hop.tls = 'maybe'"),
        ({"quarantine": {"retention_days": 0}}, "quarantine.retention_days = 0"),
        ([1, 2], "the top level must be a mapping"),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(raw: object, expected: str) -> None:
    with pytest.raises(UserError) as e:
        parse(raw, "c.yaml")
    assert expected in str(e.value)
    assert str(e.value).startswith("c.yaml: ")


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listen: {host: [\n")
    with pytest.raises(UserError, match=r"not valid YAML at line \d+"):
        load(cfg)


def test_an_empty_file_is_the_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("# nothing\n")
    assert load(cfg).listen == Config().listen


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.language = "en"  # type: ignore[misc]


def test_check_config_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["check-config", "--config", str(REPO / "config.yaml")]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("listen: {port: -1}\n")
    assert main(["check-config", "--config", str(bad)]) == 2
    assert "listen.port = -1" in capsys.readouterr().err


def test_person_name_off_written_without_quotes_means_off(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("policy: {person_name: off}\n")  # YAML 1.1: false
    assert load(cfg).policy.person_name == "off"
