"""Made-up clients for the register tests: invented names, Skatteverket's test numbers, PTS fiction phones.

Five clients carry surnames that are also ordinary words (Berg, Lind, Ek, Strand, Holm) to test
that those words do not match in lower case or inside other words.
"""

from __future__ import annotations

from tests.conftest import skatteverket

# customer number, first names, last name, index of the test personnummer, phone, address
ROWS: tuple[tuple[str, str, str, int, str, str], ...] = (
    ("20001", "Karl-Erik Ansgar", "Tjärnlöv", 101, "070-174 06 05", "Videvägen 14 B, 123 45 Sköndal"),
    ("20002", "Ingegerd", "Öhrnvall", 102, "08-465 004 12", "Kvarngränd 3"),
    ("20003", "Lars", "Myrbäcken", 103, "031-390 06 33", ""),
    ("20004", "Eva Gunborg", "Sälgström", 104, "", "Ljungstigen 7"),
    ("20005", "Anna-Lisa", "Fräsdal-Ringqvist", 105, "+46 70 174 06 77", ""),
    ("20006", "Hjördis", "af Klöverhed", 106, "", ""),
    ("20007", "Sigvard", "Berg", 107, "", ""),
    ("20008", "Ottilia", "Lind", 108, "", ""),
    ("20009", "Bertil", "Ek", 109, "", ""),
    ("20010", "Majvor", "Strand", 110, "", ""),
    ("20011", "Evert", "Holm", 111, "", ""),
    ("20012", "Per Ivan", "Gräsvik", 112, "0701740699", "Per Albin Hanssons väg 41"),
)


def personnummer(row: tuple[str, str, str, int, str, str]) -> str:
    return skatteverket()["personnummer"][row[3]]


def csv_text(delimiter: str = ",", swedish: bool = False, extra_column: bool = False) -> str:
    header = (
        ["kundnummer", "förnamn", "efternamn", "personnummer", "telefon", "adress"]
        if swedish
        else ["customer_number", "first_name", "last_name", "personal_number", "phone", "address"]
    )
    if extra_column:
        header.insert(2, "enhet")
    lines = [delimiter.join(header)]
    for row in ROWS:
        pnr = personnummer(row)
        values = [row[0], row[1], row[2], f"{pnr[:8]}-{pnr[8:]}", row[4], row[5]]
        if extra_column:
            values.insert(2, "Hemtjänst Norr")
        lines.append(delimiter.join(f'"{v}"' if delimiter in v else v for v in values))
    return "\n".join(lines) + "\n"


def secret_forms() -> list[str]:
    """Every way a client's identifiers could show up in an output that must not hold them."""
    import re

    from rules.register.folding import COMMON_WORD_NAMES, fold
    from rules.register.normalise import e164

    forms: set[str] = set()
    for row in ROWS:
        for word in re.findall(r"[^\W\d_]{2,}", f"{row[1]} {row[2]}"):
            forms |= {word, word.upper(), fold(word).capitalize()}
            if fold(word) not in COMMON_WORD_NAMES:  # in lower case `berg` is a word, not a name
                forms |= {word.lower(), fold(word)}
        street = row[5].split(",")[0]
        if street:
            forms |= {street, street.lower(), fold(street)}
        pnr = personnummer(row)
        forms |= {pnr, pnr[2:], f"{pnr[:8]}-{pnr[8:]}", f"{pnr[2:8]}-{pnr[8:]}", f"{pnr[2:8]}+{pnr[8:]}"}
        if row[4]:
            number = e164(row[4])
            assert number is not None
            forms |= {row[4], number, "0" + number[3:], number[3:]}
    forms -= {"af", "AF", "Af"}  # a particle, not a name on its own
    return sorted(forms)


def leaked(output: str) -> list[str]:
    """The secret forms that stand in `output` as whole words or numbers."""
    import re

    return [f for f in secret_forms() if re.search(rf"(?<![\w+]){re.escape(f)}(?!\w)", output)]
