"""Loading config.yaml into the validated model, with errors that name the key and the value."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.errors import UserError
from models.config import Config

# Where a command looks for its config when --config is not given, in order; then the defaults.
CONFIG_ENV = "BRUKARVAKT_CONFIG"
SEARCH_PATHS = (Path("config.yaml"), Path("/etc/brukarvakt/config.yaml"))

# Keys holding paths that are resolved against the config file's folder.
_PATH_KEYS = (
    ("tls", "cert"),
    ("tls", "key"),
    ("auth", "users_file"),
    ("outbox",),
    ("next_hop", "ca_file"),
    ("secure", "next_hop", "ca_file"),
    ("register", "path"),
    ("privacy", "key_file"),
    ("audit", "path"),
    ("quarantine", "path"),
    ("console", "users_file"),
)


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    value = error.get("input")
    shown = "" if isinstance(value, dict) else f" = {value!r}"
    if error["type"] == "extra_forbidden":
        return f"unknown key {key}{shown}: remove it or check its spelling"
    if error["type"] == "missing":
        return f"missing key {key}"
    return f"{key}{shown}: {error['msg']}"


def parse(raw: Any, source: str = "config") -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{source}: the top level must be a mapping of keys, not {type(raw).__name__}")
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(_describe(err) for err in e.errors(include_url=False))  # type: ignore[arg-type]
        raise UserError(f"{source}: {problems}") from None


def _resolve(config: Config, base: Path) -> Config:
    def resolved(section: Any, keys: tuple[str, ...]) -> Any:
        if section is None:  # an optional section left out (next_hop: null)
            return section
        name = keys[0]
        if len(keys) == 1:
            value = getattr(section, name)
            if isinstance(value, Path) and not value.is_absolute():
                return section.model_copy(update={name: base / value})
            return section
        return section.model_copy(update={name: resolved(getattr(section, name), keys[1:])})

    for keys in _PATH_KEYS:
        config = resolved(config, keys)
    return config


def load(path: Path | None) -> Config:
    """The config at `path`, or the embedded defaults with relative paths from the current folder.

    Relative paths in a config file are relative to the file's own folder, so that the gateway
    finds its state wherever it is started from.
    """
    if path is None:
        return _resolve(Config(), Path.cwd())
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"config {path} is not UTF-8 text") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"config {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    return _resolve(parse(raw, str(path)), path.resolve().parent)


def locate(explicit: Path | None) -> Path | None:
    """The config file a command uses: --config, else $BRUKARVAKT_CONFIG, else the first of
    ./config.yaml and /etc/brukarvakt/config.yaml that exists, else None (the embedded defaults).

    A file named explicitly (option or variable) must exist: a typo must not fall back silently
    to another config.
    """
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV, "").strip()
    if from_env:
        path = Path(from_env)
        if not path.exists():
            raise UserError(f"{CONFIG_ENV}={from_env}: no such file")
        return path
    return next((path for path in SEARCH_PATHS if path.is_file()), None)
