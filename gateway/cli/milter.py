"""`brukarvakt milter`: the gateway inside Postfix or Sendmail, as a milter service."""

from __future__ import annotations

import argparse

from gateway import metrics, supervise
from gateway.cli.common import config_path
from gateway.config import load
from gateway.logs import log
from gateway.milter import door, libmilter
from models.config import Config


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    config = load(path)
    settings = config.milter
    if config.policy.on_block == "quarantine" and config.next_hop is None:
        # Notices (and releases) go to next_hop: with none they land in the local Maildir.
        log("notices_to_maildir", "warning", detail="next_hop is null: guidance notices go to the outbox")
    # Opened once here, before any worker is forked: every worker accepts on it.
    sock = libmilter.listen(settings.listen, settings.socket_mode, settings.socket_group)
    workers = max(1, args.workers or 1)
    exporter = metrics.start(config, workers=workers)  # in this process, before any worker is forked

    async def factory(config: Config) -> supervise.Service:
        milter = await door.build(config)
        if exporter is not None:
            exporter.watch(milter.pipeline)
        return milter

    return supervise.run(config, path, factory, sock, workers=workers)
