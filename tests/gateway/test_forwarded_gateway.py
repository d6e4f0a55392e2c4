"""A forwarded message in base64 is blocked by the running gateway, and the audit says where it was.

The message and its makers are tests/gateway/test_forwarded.py's; the gateway and its next hop
are tests/gateway/test_server.py's helpers (a real gateway on a free port, aiosmtpd as next hop).
"""

from __future__ import annotations

from tests.gateway import test_server
from tests.gateway.test_forwarded import MASKED, PNR, forwarding, original
from tests.gateway.test_server import STAFF, audit_lines, client, leaks, received, send

# test_server's fixtures, offered to this module's test under the same names.
run_gateway = test_server.run_gateway
sink = test_server.sink


async def test_a_forwarded_message_in_base64_is_refused_and_audited_as_a_forwarded_message(
    run_gateway, sink, tmp_path
):
    s, hop = sink
    gateway = await run_gateway(next_hop={"host": "127.0.0.1", "port": hop})
    smtp = await client(gateway.port)
    data = received(STAFF) + forwarding(original().as_bytes(), "base64").replace(b"\n", b"\r\n")
    code, text = await send(smtp, STAFF, ["mottagare@example.se"], data)
    assert (code, text.split()[0]) == (550, "5.7.1")
    assert MASKED in text and "vidarebefordrat.eml" in text
    assert leaks(text) == [] and PNR not in text
    assert s.accepted == []
    [record] = audit_lines(tmp_path)
    assert (record["action"], record["verdict"]) == ("rejected", "block")
    assert [(f["kind"], f["location"]["part"]) for f in record["findings"]] == [
        ("personnummer", "attachment:vidarebefordrat.eml/body:text/plain")
    ]
