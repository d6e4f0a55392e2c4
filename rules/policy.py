"""The policy: findings and the sender's context in, a verdict out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from models.config import Policy, Secure
from models.findings import Finding, SenderContext, Unscanned, Verdict, VerdictName


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().strip(">").lower()


def is_secure_route(sender: SenderContext, secure: Secure) -> bool:
    """Every recipient reached over enforced TLS, or marked for the secrecy-protected service."""
    if not sender.recipients:
        return False
    if secure.next_hop is not None and sender.marked_secure:
        return True
    return all(domain_of(r) in secure.domains for r in sender.recipients)


def manager_may_send(sender: SenderContext, policy: Policy, secure: Secure) -> tuple[bool, str]:
    """Whether the manager exception applies, and if not, the first condition that failed."""
    identity = (sender.authenticated_as or "").lower()
    if not identity:
        return False, "avsändaren är inte inloggad"
    if identity not in policy.managers:
        return False, "avsändaren är inte chef"
    if sender.envelope_sender.lower() != identity or (sender.from_header or "").lower() != identity:
        return False, "avsändaradressen är inte den inloggade chefens"
    if not sender.tls:
        return False, "meddelandet kom inte över krypterad förbindelse"
    if not is_secure_route(sender, secure):
        return False, "mottagaren nås inte via sekretesskyddad e-post"
    return True, "chef via sekretesskyddad e-post"


def unscannable_action(part: Unscanned, policy: Policy) -> Literal["block", "warn"]:
    """block or warn: encrypted mail by policy.on_encrypted (unset: as any unread part)."""
    if part.encrypted and policy.on_encrypted is not None:
        return policy.on_encrypted
    return policy.on_unscannable


def _unscannable_reason(parts: tuple[Unscanned, ...]) -> str:
    return "encrypted" if parts and all(u.encrypted for u in parts) else "unscannable"


def decide(
    findings: Iterable[Finding],
    unscanned: Iterable[Unscanned],
    sender: SenderContext,
    policy: Policy,
    secure: Secure,
) -> Verdict:
    found = tuple(findings)
    unread = tuple(unscanned)
    held = tuple(u for u in unread if unscannable_action(u, policy) == "block")

    def verdict(name: VerdictName, reason: str, manager_exception: bool = False) -> Verdict:
        return Verdict(
            verdict=name,
            reason=reason,
            manager_exception=manager_exception,
            unscannable=bool(unread),
            findings=found,
            unscanned=unread,
            secure_route=is_secure_route(sender, secure),
        )

    blocking = any(f.severity == "block" for f in found)
    if blocking or held:
        allowed, why = manager_may_send(sender, policy, secure)
        if allowed:
            return verdict("pass", "manager-exception", manager_exception=True)
        return verdict("block", f"{'identifier' if blocking else _unscannable_reason(held)}: {why}")
    if found or unread:
        return verdict("warn", "warning" if found else _unscannable_reason(unread))
    return verdict("pass", "clean")
