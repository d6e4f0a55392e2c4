"""`brukarvakt console-user add|remove|list`: who may sign in to the compliance console, and with which role."""

from __future__ import annotations

import argparse
import sys

from gateway.cli.common import config_of, read_password
from gateway.console.users import (
    MIN_PASSWORD_LENGTH,
    ConsoleUser,
    check_name,
    check_role,
    hash_password,
    read,
    write,
)
from gateway.errors import UserError
from gateway.users import locked


def run(args: argparse.Namespace) -> int:
    path = config_of(args).console.users_file
    if args.action == "list":
        for user in sorted(read(path).values(), key=lambda u: u.name):
            print(f"{user.name}\t{user.role}")
        return 0
    name = check_name(args.name)
    if args.action == "remove":
        with locked(path):
            current = read(path)
            if name not in current:
                raise UserError(f"no console user {name} in {path}")
            del current[name]
            write(path, current)
        print(f"removed {name}; a session of theirs ends at its next request", file=sys.stderr)
        return 0
    role = check_role(args.role)
    password = read_password(name, MIN_PASSWORD_LENGTH)
    with locked(path):
        current = read(path)
        existed = name in current
        current[name] = ConsoleUser(name, role, hash_password(password))
        write(path, current)
    print(f"{'changed' if existed else 'added'} {name} ({role})", file=sys.stderr)
    return 0
