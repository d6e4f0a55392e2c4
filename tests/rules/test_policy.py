"""The policy: staff never send a block finding; a manager only authenticated, over TLS, securely."""

from __future__ import annotations

import pytest

from models.config import NextHop, Policy, Secure
from models.findings import Finding, Location, SenderContext, Unscanned
from rules.policy import decide

MANAGER = "chef@kommun.se"
POLICY = Policy(managers=(MANAGER,))
SECURE = Secure(domains=("region.se",), next_hop=NextHop(host="127.0.0.1", port=2525))


def finding(severity: str = "block") -> Finding:
    return Finding(
        rule="id-number",
        kind="personnummer",
        severity=severity,  # type: ignore[arg-type]
        location=Location(part="text", line=1, column=1),
        masked="900107-****",
        fingerprint="ab" * 32,
        suggestion="",
        start=0,
        end=11,
    )


def manager(**changes: object) -> SenderContext:
    base = dict(
        authenticated_as=MANAGER,
        tls=True,
        envelope_sender=MANAGER,
        from_header=MANAGER,
        recipients=("vard@region.se",),
    )
    base.update(changes)
    return SenderContext(**base)  # type: ignore[arg-type]


def test_clean_mail_passes() -> None:
    assert decide([], [], SenderContext(), POLICY, SECURE).verdict == "pass"


def test_staff_can_never_send_a_block_finding_even_on_a_secure_route() -> None:
    staff = manager(
        authenticated_as="anna@kommun.se", envelope_sender="anna@kommun.se", from_header="anna@kommun.se"
    )
    verdict = decide([finding()], [], staff, POLICY, SECURE)
    assert verdict.verdict == "block" and not verdict.manager_exception


def test_a_manager_on_a_secure_channel_may_send_and_it_is_named_as_the_exception() -> None:
    verdict = decide([finding()], [], manager(), POLICY, SECURE)
    assert verdict.verdict == "pass"
    assert verdict.manager_exception and verdict.reason == "manager-exception"


@pytest.mark.parametrize(
    "changes",
    [
        {"authenticated_as": None},
        {"tls": False},
        {"envelope_sender": "other@kommun.se"},
        {"from_header": "other@kommun.se"},
        {"recipients": ("vard@region.se", "someone@gmail.com")},
        {"recipients": ()},
    ],
)
def test_the_manager_exception_needs_every_condition(changes: dict[str, object]) -> None:
    assert decide([finding()], [], manager(**changes), POLICY, SECURE).verdict == "block"


def test_the_secrecy_marker_is_a_secure_route_only_with_a_secure_next_hop() -> None:
    marked = manager(recipients=("someone@gmail.com",), marked_secure=True)
    assert decide([finding()], [], marked, POLICY, SECURE).verdict == "pass"
    no_hop = Secure(domains=("region.se",))
    assert decide([finding()], [], marked, POLICY, no_hop).verdict == "block"


def test_warn_findings_pass_with_a_warning() -> None:
    assert decide([finding("warn")], [], SenderContext(), POLICY, SECURE).verdict == "warn"


def test_unscannable_blocks_by_default_and_warns_when_configured() -> None:
    unread = [
        Unscanned(
            name="attachment:x.bin", content_type="application/octet-stream", reason="format not supported"
        )
    ]
    assert decide([], unread, SenderContext(), POLICY, SECURE).verdict == "block"
    lenient = Policy(managers=(MANAGER,), on_unscannable="warn")
    verdict = decide([], unread, SenderContext(), lenient, SECURE)
    assert verdict.verdict == "warn" and verdict.unscannable


# ---- encrypted mail: policy.on_encrypted, unset as on_unscannable ----------------------------------

ENCRYPTED = Unscanned(
    name="attachment:smime.p7m",
    content_type="application/pkcs7-mime",
    reason="krypterat meddelande",
    encrypted=True,
)
BROKEN = Unscanned(
    name="attachment:lista.zip", content_type="application/zip", reason="inte ett läsbart zip-arkiv"
)
STAFF = SenderContext(authenticated_as="anna@kommun.se", envelope_sender="anna@kommun.se")


@pytest.mark.parametrize(
    ("on_unscannable", "on_encrypted", "expected"),
    [
        ("block", None, "block"),
        ("warn", None, "warn"),
        ("block", "warn", "warn"),
        ("warn", "block", "block"),
    ],
)
def test_encrypted_mail_follows_on_encrypted_and_without_it_on_unscannable(
    on_unscannable: str, on_encrypted: str | None, expected: str
) -> None:
    policy = Policy(managers=(MANAGER,), on_unscannable=on_unscannable, on_encrypted=on_encrypted)  # type: ignore[arg-type]
    verdict = decide([], [ENCRYPTED], STAFF, policy, SECURE)
    assert verdict.verdict == expected and verdict.unscannable
    assert verdict.reason.split(":")[0] == "encrypted"


def test_letting_encrypted_mail_pass_does_not_let_an_unreadable_part_pass() -> None:
    policy = Policy(managers=(MANAGER,), on_encrypted="warn")
    assert decide([], [ENCRYPTED], STAFF, policy, SECURE).verdict == "warn"
    verdict = decide([], [ENCRYPTED, BROKEN], STAFF, policy, SECURE)
    assert verdict.verdict == "block" and verdict.reason.startswith("unscannable:")


def test_letting_encrypted_mail_pass_does_not_let_an_identifier_pass() -> None:
    policy = Policy(managers=(MANAGER,), on_encrypted="warn")
    verdict = decide([finding()], [ENCRYPTED], STAFF, policy, SECURE)
    assert verdict.verdict == "block" and verdict.reason.startswith("identifier:")


def test_a_manager_may_send_encrypted_mail_on_a_secure_route_and_staff_may_not() -> None:
    verdict = decide([], [ENCRYPTED], manager(), POLICY, SECURE)
    assert verdict.verdict == "pass" and verdict.manager_exception
    assert decide([], [ENCRYPTED], manager(tls=False), POLICY, SECURE).verdict == "block"
    assert decide([], [ENCRYPTED], STAFF, POLICY, SECURE).verdict == "block"


def test_on_encrypted_accepts_block_warn_or_nothing() -> None:
    assert Policy().on_encrypted is None
    with pytest.raises(ValueError, match="on_encrypted"):
        Policy(on_encrypted="pass")  # type: ignore[arg-type]
