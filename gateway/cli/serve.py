"""`brukarvakt serve`: the SMTP gateway as a service."""

from __future__ import annotations

import argparse

from gateway import metrics, supervise
from gateway.cli.common import config_path
from gateway.config import load
from gateway.logs import log
from gateway.smtp import server, upstream
from models.config import Config


def run(args: argparse.Namespace) -> int:
    server.quiet_aiosmtpd()
    path = config_path(args)
    config = load(path)
    scan = not args.no_scan
    if not scan:
        log("no_scan", "warning", detail="--no-scan: mail is relayed WITHOUT scanning; for benchmarks only")
    # Fail early, with one clear line, on what a worker would fail on.
    server.tls_context(config)
    upstream.networks(config.auth.upstreams)
    sock = supervise.bind_tcp(config.listen.host, config.listen.port, "listen.host/listen.port")
    workers = max(1, args.workers or 1)
    exporter = metrics.start(config, workers=workers)  # in this process, before any worker is forked

    async def factory(config: Config) -> supervise.Service:
        gateway = await server.build(config, scan=scan)
        if exporter is not None:
            exporter.watch(gateway.pipeline)
        return gateway

    return supervise.run(config, path, factory, sock, workers=workers)
