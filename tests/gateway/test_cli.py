"""One CLI convention: `--config` before or after any verb, then $BRUKARVAKT_CONFIG, ./config.yaml, /etc."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config as config_module
from gateway.cli import build_parser, main


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _positionals(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholders for what a command requires: its positionals and its required options."""
    words: list[str] = []
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            continue
        value = str(next(iter(a.choices))) if a.choices else "x"
        if not a.option_strings:
            words.append(value)
        elif a.required:
            words = [a.option_strings[0], value, *words]
    return words


def every_command() -> Iterator[tuple[list[str], list[str]]]:
    """(verb words, positional placeholders) of every command and sub-command the parser knows."""
    for verb, parser in _verbs(build_parser()).items():
        actions = _verbs(parser)
        if not actions:
            yield [verb], _positionals(parser)
        for action, sub in actions.items():
            yield [verb, action], _positionals(sub)


COMMANDS = list(every_command())


def test_the_walk_finds_every_command_users_know():
    names = {" ".join(words) for words, _ in COMMANDS}
    assert {"lint", "serve", "check-config", "register import", "user add", "audit verify"} <= names
    assert {"quarantine list", "quarantine release", "quarantine purge"} <= names


@pytest.mark.parametrize(("words", "positionals"), COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_config_is_taken_before_the_verb_after_it_and_after_the_sub_verb(words, positionals):
    parser = build_parser()
    places = [
        ["--config", "a.yaml", *words, *positionals],
        [words[0], "--config", "a.yaml", *words[1:], *positionals],
        [*words, "--config", "a.yaml", *positionals],
        [*words, *positionals, "--config", "a.yaml"],
    ]
    for argv in places:
        assert parser.parse_args(argv).config == Path("a.yaml"), argv


def test_without_config_the_option_is_absent_and_discovery_decides():
    assert not hasattr(build_parser().parse_args(["audit", "verify"]), "config")


@pytest.fixture()
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BRUKARVAKT_CONFIG", raising=False)
    monkeypatch.setattr(
        config_module, "SEARCH_PATHS", (Path("config.yaml"), tmp_path / "etc" / "config.yaml")
    )
    return tmp_path


def _config(path: Path, audit: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"audit: {{path: {audit}}}\n", encoding="utf-8")
    return path


def _audit_path_used(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["audit", *argv, "verify"] if argv else ["audit", "verify"]) == 0
    return capsys.readouterr().out.split(":", 1)[0]


def test_a_config_is_found_in_the_order_option_variable_here_etc(folder, monkeypatch, capsys):
    etc = _config(folder / "etc" / "config.yaml", "etc.jsonl")
    assert _audit_path_used(capsys) == str(etc.parent / "etc.jsonl")
    here = _config(folder / "config.yaml", "here.jsonl")
    assert _audit_path_used(capsys) == str(here.parent / "here.jsonl")
    env = _config(folder / "env" / "b.yaml", "env.jsonl")
    monkeypatch.setenv("BRUKARVAKT_CONFIG", str(env))
    assert _audit_path_used(capsys) == str(env.parent / "env.jsonl")
    option = _config(folder / "opt" / "c.yaml", "option.jsonl")
    assert _audit_path_used(capsys, "--config", str(option)) == str(option.parent / "option.jsonl")


def test_with_nothing_found_the_embedded_defaults_apply(folder, capsys):
    assert _audit_path_used(capsys) == str(folder / "var" / "audit.jsonl")


def test_a_config_named_in_the_variable_that_does_not_exist_is_an_error_not_a_fallback(
    folder, monkeypatch, capsys
):
    _config(folder / "config.yaml", "here.jsonl")
    monkeypatch.setenv("BRUKARVAKT_CONFIG", str(folder / "saknas.yaml"))
    assert main(["audit", "verify"]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"brukarvakt: error: BRUKARVAKT_CONFIG={folder / 'saknas.yaml'}: no such file"
    )


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("brukarvakt ")
