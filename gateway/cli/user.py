"""`brukarvakt user add|remove|list`: the gateway's own SMTP AUTH users."""

from __future__ import annotations

import argparse
import sys

from gateway.cli.common import config_of, read_password
from gateway.errors import UserError
from gateway.users import MIN_PASSWORD_LENGTH, check_address, hash_password, locked, read, write


def run(args: argparse.Namespace) -> int:
    config = config_of(args)
    path = config.auth.users_file
    if path is None:
        raise UserError("auth.users_file is not set in the config: set it to where the users file should be")
    if args.action == "list":
        for address in sorted(read(path)):
            print(address)
        return 0
    address = check_address(args.address)
    password = read_password(address, MIN_PASSWORD_LENGTH) if args.action == "add" else ""
    with locked(path):
        users = read(path)
        if args.action == "remove":
            if address not in users:
                raise UserError(f"no user {address} in {path}")
            del users[address]
            write(path, users)
            print(f"removed {address}", file=sys.stderr)
            return 0
        existed = address in users
        users[address] = hash_password(password)
        write(path, users)
    print(f"{'changed password of' if existed else 'added'} {address}", file=sys.stderr)
    return 0
