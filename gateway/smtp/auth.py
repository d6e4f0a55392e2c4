"""SMTP AUTH PLAIN and LOGIN against the users file, argon2 off the event loop, failures audited."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable

from aiosmtpd.smtp import SMTP, AuthResult

from gateway.logs import domain, log
from gateway.users import Users

INVALID = "535 5.7.8 Authentication credentials invalid"

# Told of every failed login: the user name as typed (never the password).
OnFailure = Callable[[str], Awaitable[None]]


async def plain(server: SMTP, args: list[str], users: Users, on_failure: OnFailure) -> AuthResult:
    blob = await _initial_response(server, args, "")
    if blob is None:
        return AuthResult(success=False)  # already answered
    parts = blob.split(b"\x00")
    if len(parts) != 3:
        await server.push("501 5.5.2 Can't split auth value")
        return AuthResult(success=False)
    authzid, login, password = parts
    if authzid and authzid.strip().lower() != login.strip().lower():
        # RFC 4616: acting as someone else. Nobody may, here.
        await on_failure(_user(login))
        return AuthResult(success=False, handled=False, message=INVALID)
    return await _check(login, password, users, on_failure)


async def login(server: SMTP, args: list[str], users: Users, on_failure: OnFailure) -> AuthResult:
    name = await _initial_response(server, args, SMTP.AuthLoginUsernameChallenge)
    if name is None:
        return AuthResult(success=False)
    password = await server.challenge_auth(SMTP.AuthLoginPasswordChallenge)
    if not isinstance(password, bytes):
        return AuthResult(success=False)
    return await _check(name, password, users, on_failure)


def _user(login: bytes) -> str:
    return login.decode("utf-8", "replace").strip().lower()


async def _check(login: bytes, password: bytes, users: Users, on_failure: OnFailure) -> AuthResult:
    user = _user(login)
    ok = await asyncio.get_running_loop().run_in_executor(
        None, users.verify, user, password.decode("utf-8", "replace")
    )
    log("auth", result="ok" if ok else "failed", domain=domain(user))
    if not ok:
        await on_failure(user)
        return AuthResult(success=False, handled=False, message=INVALID)
    return AuthResult(success=True, auth_data=user)


async def _initial_response(server: SMTP, args: list[str], challenge: str) -> bytes | None:
    """The credentials given with AUTH, or asked for with a 334 challenge; None when answered already."""
    if len(args) == 1:
        answer = await server.challenge_auth(challenge)
        return answer if isinstance(answer, bytes) else None
    try:
        return base64.b64decode(args[1].encode(), validate=True)
    except (binascii.Error, ValueError):
        await server.push("501 5.5.2 Can't decode base64")
        return None
