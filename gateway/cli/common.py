"""What every command shares: the config it runs with, found the same way for every verb."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from gateway.config import load, locate
from gateway.errors import UserError
from models.config import Config


def config_path(args: argparse.Namespace) -> Path | None:
    """The config file the command runs with (None: the embedded defaults)."""
    return locate(getattr(args, "config", None))


def config_of(args: argparse.Namespace) -> Config:
    return load(config_path(args))


def read_password(who: str, min_length: int) -> str:
    """A new password: asked twice on a terminal, else one line of standard input (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"Lösenord för {who}: ")
        if getpass.getpass("Samma lösenord igen: ") != first:
            raise UserError("the passwords differ; nothing was changed")
        password = first
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < min_length:
        raise UserError(f"the password must be at least {min_length} characters; nothing was changed")
    return password
