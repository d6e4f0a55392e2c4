"""Swedish wording of suggestions and guidance: what was found and what to write instead."""

from __future__ import annotations

import re

from models.findings import Finding, Kind

WHAT: dict[Kind, str] = {
    "personnummer": "personnummer",
    "samordningsnummer": "samordningsnummer",
    "interimsnummer": "interimsnummer",
    "client_name": "brukarens namn",
    "client_phone": "brukarens telefonnummer",
    "client_address": "brukarens adress",
    "person_name": "personnamn",
}
# "i stället för ..." in the definite form.
INSTEAD_OF: dict[Kind, str] = {
    "personnummer": "personnumret",
    "samordningsnummer": "samordningsnumret",
    "interimsnummer": "interimsnumret",
    "client_name": "namnet",
    "client_phone": "telefonnumret",
    "client_address": "adressen",
    "person_name": "namnet",
}
SAFE_WAYS = (
    "Skicka känsliga uppgifter om brukare via Lifecare meddelande, inte med e-post.",
    "Skriv till mottagare utanför Lifecare bara brukarens kundnummer, aldrig namn eller personnummer.",
)


def suggestion(kind: Kind, customer_number: str | None) -> str:
    if customer_number:
        return f"Skriv kundnummer {customer_number} i stället för {INSTEAD_OF[kind]}."
    if kind == "person_name":
        return "Gäller det en brukare? Skriv brukarens kundnummer i stället för namnet."
    return f"Ta bort {INSTEAD_OF[kind]} och skriv brukarens kundnummer i stället."


def describe(finding: Finding) -> str:
    """One line about a finding, without the identifier: kind, masked form, where."""
    where = f"{finding.location.part}, rad {finding.location.line}"
    return f"{WHAT[finding.kind]} ({finding.masked}) i {where}. {finding.suggestion}"


# Where a finding was, as a sender would say it: a location's part (`header:Subject`,
# `body:text/plain`, `attachment:lista.csv`, nested with `/`) -> Swedish. First match wins.
_NESTED = re.compile(r"/(?=header:|body|attachment:|filename|message)")
PLACES: tuple[tuple[str, str], ...] = (
    ("header:Subject", "ämnesraden"),
    ("header:", "rubrikfältet {}"),
    ("body", "meddelandetexten"),
    ("attachment:(", "en bilaga {}"),
    ("attachment:", "bilagan {}"),
    ("filename", "en bilagas filnamn"),
    ("message", "ett bifogat meddelande"),
    ("text", "texten"),
)


def place(part: str) -> str:
    """`attachment:brev.eml/header:Subject` -> `bilagan brev.eml, ämnesraden`."""
    out = []
    for piece in _NESTED.split(part):
        for prefix, words in PLACES:
            if piece.startswith(prefix):
                rest = piece[len(prefix) :].removesuffix(")") if "{}" in words else ""
                out.append(words.format(rest))
                break
        else:
            out.append(piece)
    return ", ".join(out)
