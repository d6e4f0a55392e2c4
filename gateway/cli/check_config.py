"""`brukarvakt check-config`: validate the configuration and say in a few lines what it means."""

from __future__ import annotations

import argparse

from gateway.cli.common import config_path
from gateway.config import load


def run(args: argparse.Namespace) -> int:
    path = config_path(args)
    config = load(path)
    source = path or "embedded defaults"
    hop = config.next_hop
    where = f"{hop.host}:{hop.port} (tls {hop.tls})" if hop else f"local Maildir {config.outbox}"
    tls = "STARTTLS offered" if config.tls.cert and config.tls.key else "no TLS"
    print(f"{source}: ok")
    print(f"  listens on {config.listen.host}:{config.listen.port}, {tls}")
    print(f"  clean mail goes to {where}")
    print(
        f"  managers: {len(config.policy.managers)}, staff: {len(config.policy.staff)}, "
        f"secure domains: {len(config.secure.domains)}"
    )
    policy = config.policy
    encrypted = policy.on_encrypted or f"{policy.on_unscannable} (as unscannable)"
    print(
        f"  blocked mail: {policy.on_block}; unscannable mail: {policy.on_unscannable}; encrypted: {encrypted}"
    )
    upstreams = ", ".join(config.auth.upstreams) or "none"
    print(f"  trusted upstreams: {upstreams}; SMTP AUTH users: {config.auth.users_file or 'none'}")
    print(f"  as a milter (brukarvakt milter): {config.milter.listen}")
    console = config.console
    print(
        f"  compliance console (brukarvakt console): http{'s' if config.tls.cert and config.tls.key else ''}"
        f"://{console.listen.host}:{console.listen.port}, users in {console.users_file}"
    )
    metrics = config.metrics.listen
    print(f"  metrics: {f'http://{metrics.host}:{metrics.port}/metrics' if metrics else 'off'}")
    return 0
