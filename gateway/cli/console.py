"""`brukarvakt console`: the compliance console, a web application on console.listen."""

from __future__ import annotations

import argparse
import ssl

import uvicorn

from gateway import supervise
from gateway.cli.common import config_of
from gateway.console import users
from gateway.console.app import build_app, build_console, tls_files
from gateway.errors import UserError
from gateway.logs import log


def run(args: argparse.Namespace) -> int:
    config = config_of(args)
    path = config.console.users_file
    if not users.read(path):
        raise UserError(
            f"no console users in {path}: add one first with "
            "`brukarvakt console-user add NAME --role compliance`"
        )
    tls = tls_files(config)
    if tls is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(*tls)
        except (OSError, ssl.SSLError) as e:
            raise UserError(f"tls.cert/tls.key cannot be used for the console: {e}") from None
    listen = config.console.listen
    sock = supervise.bind_tcp(listen.host, listen.port, "console.listen")
    console = build_console(config)
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(console),
            # Requests are logged by the console itself (gateway.console.app.Guard): no client data.
            access_log=False,
            # The client is the connection's own address: uvicorn would otherwise believe a
            # X-Forwarded-For header from 127.0.0.1, where every local client connects from, and
            # a guesser could name a new address with each try (the sign-in throttle counts by
            # address) and write any text as its address into the audit chain.
            proxy_headers=False,
            log_level="warning",
            server_header=False,
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
    )
    host, port = sock.getsockname()[:2]
    log("console_listening", host=host, port=port, tls=tls is not None)
    server.run(sockets=[sock])
    return 0
