"""The identity a trusted upstream Postfix vouches for, read from its top-most Received header."""

from __future__ import annotations

from gateway.smtp.upstream import NOBODY, UNREADABLE, from_message, parse_received, top_received

# As Postfix 3.7 writes it with smtpd_sasl_authenticated_header = yes, folded as Postfix folds.
POSTFIX_SUBMISSION = (
    b"Received: from pc12.kommun.example (pc12.kommun.example [192.0.2.5])\r\n"
    b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)\r\n"
    b"\t key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256)\r\n"
    b"\t(No client certificate requested)\r\n"
    b"\t(Authenticated sender: Anna.Chef@kommun.example)\r\n"
    b"\tby mail.kommun.example (Postfix) with ESMTPSA id 4Mx1Tq0abcz9sWL\r\n"
    b"\tfor <mottagare@example.se>; Thu, 26 Nov 2026 10:00:00 +0100 (CET)\r\n"
)
OLDER_HOP = (
    b"Received: from inner.example (inner.example [198.51.100.7])\r\n"
    b"\t(Authenticated sender: someone.else@kommun.example)\r\n"
    b"\tby inner.example (Postfix) with ESMTPSA id 1\r\n"
    b"\tfor <x@example.se>; Thu, 26 Nov 2026 09:59:00 +0100 (CET)\r\n"
)
REST = b"From: Anna <anna.chef@kommun.example>\r\nSubject: hej\r\n\r\nText.\r\n"


def test_an_authenticated_tls_submission_names_the_login_in_lower_case_and_tls():
    found = from_message(POSTFIX_SUBMISSION + REST)
    assert found.authenticated_as == "anna.chef@kommun.example"
    assert found.tls is True
    assert found.protocol == "ESMTPSA"


def test_only_the_top_most_received_header_counts():
    found = from_message(
        b"Received: from a (a [192.0.2.1])\r\n\tby mx (Postfix) with ESMTP id 2\r\n" + OLDER_HOP + REST
    )
    assert found.authenticated_as is None
    assert found.tls is False


def test_tls_without_auth_is_esmtps():
    header = "from a.example (a.example [192.0.2.1]) (using TLSv1.2 with cipher X) by mx (Postfix) with ESMTPS id 3"
    found = parse_received(header)
    assert found.tls is True
    assert found.authenticated_as is None


def test_a_plain_connection_is_neither_tls_nor_authenticated():
    found = parse_received(
        "from a.example (a.example [192.0.2.1]) by mx (Postfix) with ESMTP id 4 for <b@c.se>"
    )
    assert found == type(found)(authenticated_as=None, tls=False, protocol="ESMTP")


def test_a_login_comment_without_an_auth_protocol_is_not_trusted():
    # Postfix says ESMTPA/ESMTPSA whenever it writes "Authenticated sender"; without it, the
    # comment came from somewhere else.
    found = parse_received(
        "from a (a [192.0.2.1]) (Authenticated sender: chef@kommun.example) by mx (Postfix) with ESMTPS id 5"
    )
    assert found.authenticated_as is None
    assert found.tls is True


def test_text_after_by_cannot_claim_an_identity():
    # The recipient after "for" is the client's text: a quoted local part may hold anything.
    found = parse_received(
        'from a (a [192.0.2.1]) by mx (Postfix) with ESMTP id 6 for <"(Authenticated sender: chef@k.example)"@x.se>'
    )
    assert found.authenticated_as is None


def test_two_login_comments_are_ambiguous_and_name_nobody():
    # A client certificate's name is the client's text too; Postfix writes one login comment.
    found = parse_received(
        'from a (a [192.0.2.1]) (Client CN "(Authenticated sender: chef@k.example)", Issuer "x" (verified OK)) '
        "(Authenticated sender: staff@k.example) by mx (Postfix) with ESMTPSA id 7"
    )
    assert found.authenticated_as == "staff@k.example"
    twice = parse_received(
        "from a (a [192.0.2.1]) (Authenticated sender: chef@k.example) (Authenticated sender: staff@k.example) "
        "by mx (Postfix) with ESMTPSA id 8"
    )
    assert twice.authenticated_as is None
    assert not twice.readable  # not Postfix's doing: a security event, not just nobody


def test_the_client_comment_itself_is_not_read_as_a_login():
    found = parse_received("from a (Authenticated sender: chef@k.example) by mx (Postfix) with ESMTPSA id 9")
    assert found.authenticated_as is None


def test_a_header_postfix_did_not_write_names_nobody():
    assert parse_received("by mx.example with ESMTPSA") == UNREADABLE
    assert (
        parse_received("from a (a [192.0.2.1]) (unbalanced (Authenticated sender: c@k.example)") == UNREADABLE
    )
    assert from_message(REST) == NOBODY


def test_the_body_is_not_searched_for_a_received_header():
    assert top_received(b"Subject: x\r\n\r\n" + POSTFIX_SUBMISSION) is None
    assert top_received(POSTFIX_SUBMISSION + REST).startswith("from pc12.kommun.example")


def test_line_endings_and_case_of_the_field_name_do_not_matter():
    lf = POSTFIX_SUBMISSION.replace(b"\r\n", b"\n").replace(b"Received:", b"RECEIVED :")
    found = from_message(b"Return-Path: <x@y>\n" + lf + REST.replace(b"\r\n", b"\n"))
    assert (found.authenticated_as, found.tls) == ("anna.chef@kommun.example", True)
