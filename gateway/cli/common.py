"""What every command shares: the config it runs with, found the same way for every verb."""

from __future__ import annotations

import argparse
from pathlib import Path

from gateway.config import load, locate
from models.config import Config


def config_path(args: argparse.Namespace) -> Path | None:
    """The config file the command runs with (None: the embedded defaults)."""
    return locate(getattr(args, "config", None))


def config_of(args: argparse.Namespace) -> Config:
    return load(config_path(args))
