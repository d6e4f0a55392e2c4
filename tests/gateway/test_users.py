"""`brukarvakt user add|remove|list` and the users file the gateway checks AUTH against."""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.users import Users, read


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text("auth: {users_file: state/users}\n", encoding="utf-8")
    return path


def _user(config: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["user", "--config", str(config), *argv])


def test_add_reads_the_password_from_stdin_and_stores_only_an_argon2_hash(config, monkeypatch):
    assert _user(config, monkeypatch, "add", "Anna.Chef@Kommun.example", stdin="rätt-lösenord\n") == 0
    path = config.parent / "state" / "users"
    text = path.read_text(encoding="utf-8")
    assert "rätt-lösenord" not in text
    assert read(path)["anna.chef@kommun.example"].startswith("$argon2id$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    users = Users(path)
    assert users.verify("ANNA.chef@kommun.example", "rätt-lösenord")
    assert not users.verify("anna.chef@kommun.example", "fel-lösenord")
    assert not users.verify("okand@kommun.example", "rätt-lösenord")


def test_list_and_remove(config, monkeypatch, capsys):
    _user(config, monkeypatch, "add", "b@kommun.example", stdin="lösenord-b\n")
    _user(config, monkeypatch, "add", "a@kommun.example", stdin="lösenord-a\n")
    capsys.readouterr()
    assert _user(config, monkeypatch, "list") == 0
    assert capsys.readouterr().out.splitlines() == ["a@kommun.example", "b@kommun.example"]
    assert _user(config, monkeypatch, "remove", "a@kommun.example") == 0
    _user(config, monkeypatch, "list")
    assert capsys.readouterr().out.splitlines() == ["b@kommun.example"]


def test_the_server_sees_a_new_user_without_a_reload(config, monkeypatch):
    path = config.parent / "state" / "users"
    users = Users(path)
    assert not users.verify("c@kommun.example", "lösenord-c")
    _user(config, monkeypatch, "add", "c@kommun.example", stdin="lösenord-c\n")
    assert users.verify("c@kommun.example", "lösenord-c")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (("add", "not an address"), "lösenord-x\n", "is not a mail address"),
        (("add", "x@kommun.example"), "kort\n", "at least 8 characters"),
        (("remove", "nobody@kommun.example"), "", "no user nobody@kommun.example"),
    ],
)
def test_mistakes_get_one_clear_line_and_exit_2(config, monkeypatch, capsys, argv, stdin, message):
    assert _user(config, monkeypatch, *argv, stdin=stdin) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_without_a_users_file_in_the_config_it_says_which_key_to_set(tmp_path, monkeypatch, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("{}\n", encoding="utf-8")
    assert _user(config, monkeypatch, "list") == 2
    assert "auth.users_file" in capsys.readouterr().err


def test_a_damaged_users_file_is_named_with_its_line(config, monkeypatch, capsys):
    path = config.parent / "state" / "users"
    path.parent.mkdir()
    path.write_text("# users\nanna@kommun.example:plaintext\n", encoding="utf-8")
    assert _user(config, monkeypatch, "list") == 2
    assert "line 2" in capsys.readouterr().err


def test_changes_made_at_the_same_time_are_all_kept(config):
    import os
    import subprocess

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    addresses = [f"user{n}@kommun.example" for n in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "user", "--config", str(config), "add", address],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for address in addresses
    ]
    for proc in procs:
        proc.communicate(b"ett-langt-losenord\n", timeout=60)
        assert proc.returncode == 0
    assert sorted(read(config.parent / "state" / "users")) == addresses
