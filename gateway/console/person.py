"""Search by person: what an officer types becomes keyed fingerprints and customer numbers, in memory only.

The audit log names nobody: a finding keeps its fingerprint (HMAC-SHA256 of the canonical value)
and, where the register knows it, the customer number. A personnummer or samordningsnummer is
made canonical and fingerprinted; a name is fingerprinted as the engine does it (casefold, as
written) and looked up in the register, whose customer numbers then find the decisions where
the same person was written any other way (by number, in another case, without diacritics).
The term itself is never kept: the query holds its masked form only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from gateway.errors import UserError
from rules import personnummer
from rules.engine import ScanContext
from rules.fingerprint import fingerprint, mask_name
from rules.normalize import normalize

_NUMBER_SEPARATORS = re.compile(r"[\s\-+\u2010-\u2015\u2212]")
MAX_TERM = 200


@dataclass(frozen=True)
class PersonQuery:
    kind: str  # personnummer | samordningsnummer | interimsnummer | customer-number | name
    described: str  # masked: what the page and the audit may show of the term
    fingerprints: frozenset[str]
    customer_numbers: frozenset[str]

    def matches(self, entry: dict[str, object]) -> bool:
        findings = entry.get("findings")
        for f in findings if isinstance(findings, list) else ():
            if isinstance(f, dict) and (
                f.get("fingerprint") in self.fingerprints or f.get("customer_number") in self.customer_numbers
            ):
                return True
        return False


def person_query(term: str, ctx: ScanContext, today: date) -> PersonQuery:
    """The query for a personnummer, samordningsnummer, customer number or client name; UserError otherwise."""
    text = " ".join(term.split())
    if not text:
        raise UserError("Skriv ett personnummer, samordningsnummer, kundnummer eller namn.")
    if len(text) > MAX_TERM:
        raise UserError(f"Söktermen är längre än {MAX_TERM} tecken.")
    key = ctx.fingerprint_key
    numbers = personnummer.find(text, today)
    if numbers:
        number = numbers[0]
        fp = fingerprint(key, number.canonical)
        customer = ctx.customer_by_fingerprint.get(fp)
        return PersonQuery(
            number.kind,
            f"{number.kind} {number.masked}",
            frozenset({fp}),
            frozenset({customer} if customer else ()),
        )
    digits = _NUMBER_SEPARATORS.sub("", text)
    if digits.isdigit():
        if len(digits) in (10, 12):
            # Shaped like an identity number but not one: a typo, not a customer number to search for.
            raise UserError(
                "Numret är inget giltigt personnummer eller samordningsnummer (datum eller kontrollsiffra)."
            )
        return PersonQuery("customer-number", f"kundnummer {digits}", frozenset(), frozenset({digits}))
    if any(ch.isdigit() for ch in text):
        raise UserError("Skriv antingen ett nummer eller ett namn, inte båda.")
    fingerprints = {fingerprint(key, text.casefold())}
    customers: set[str] = set()
    if ctx.client_register is not None:
        for hit in ctx.client_register.detect(normalize(text)):
            if hit.kind != "client_name":
                continue
            fingerprints.add(fingerprint(key, hit.canonical))
            if hit.customer_number:
                customers.add(hit.customer_number)
    return PersonQuery("name", f"namn {mask_name(text)}", frozenset(fingerprints), frozenset(customers))
