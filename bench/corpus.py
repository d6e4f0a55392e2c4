"""A reproducible corpus of Swedish mail-sized texts with planted identifiers and hard negatives."""

from __future__ import annotations

import csv
import json
import math
import random
import re
import textwrap
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The public data the corpus is made from, kept with the tests (origins in tests/data/README.md).
TEST_DATA = REPO / "tests" / "data"
SEED = 20261126
MIN_BYTES, MAX_BYTES = 1024, 50 * 1024
IDENTIFIER_SHARE = 0.01  # of texts that carry identifiers
WRAP = 72
# Spaces inside a phrase that wrapping must not break (a context word and its number stay on
# one line, as they do when people write them); turned back into spaces after wrapping.
_KEEP = "\x00"


@dataclass(frozen=True)
class Planted:
    """An identifier written into a text: where (characters of the text), what and how."""

    start: int
    end: int
    canonical: str  # Skatteverket's 12-digit form
    form: str


@dataclass(frozen=True)
class Negative:
    """A hard negative written into a text: where and of what kind. No identifier may be found here."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Document:
    name: str
    text: str
    planted: tuple[Planted, ...]
    negatives: tuple[Negative, ...]


# ---------------------------------------------------------------------------------------------
# Source material: real Swedish sentences, name statistics and Skatteverket's test numbers.


def _detokenize(tokens: list[str]) -> str:
    text = " ".join(tokens)
    text = re.sub(r" ([,.!?:;)%])", r"\1", text)
    return re.sub(r"([(]) ", r"\1", text)


# Digits that could join into a long run across spaces or dashes: such sentences would make the
# ground truth depend on the news text, so they are left out.
_DIGIT_RUN = re.compile(r"\d[\d\s\-]{4,}\d")


@dataclass(frozen=True)
class Sources:
    sentences: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    personnummer: tuple[str, ...]
    samordningsnummer: tuple[str, ...]
    # Test numbers whose 10-digit form is also a valid Swedish phone number (0101049807 is
    # 010-104 98 07): next to a phone word they are phone numbers, as DESIGN says.
    phone_shaped: tuple[str, ...]


def _top_names(path: Path, column: str, count: int) -> tuple[str, ...]:
    with path.open(encoding="utf-8") as f:
        rows = [(int(r["persons" if "persons" in r else "frequency"]), r[column]) for r in csv.DictReader(f)]
    rows.sort(key=lambda r: (-r[0], r[1]))
    return tuple(name for _, name in rows[:count] if name.isalpha())


def load_sources(data: Path = TEST_DATA) -> Sources:
    sentences = []
    with (data / "ner" / "suc3_dev_sentences.jsonl").open(encoding="utf-8") as f:
        for line in f:
            text = _detokenize(json.loads(line)["tokens"])
            # A number written next to another (the next sentence's "133 personer") runs into it.
            if 20 <= len(text) <= 400 and not _DIGIT_RUN.search(text) and not text[0].isdigit():
                sentences.append(text)
    names = data / "names"
    first = _top_names(names / "tilltalsnamn-kvinnor.csv", "name", 150) + _top_names(
        names / "tilltalsnamn-man.csv", "name", 150
    )
    last = _top_names(names / "efternamn_old_small.csv", "lastname", 300)
    numbers = json.loads((data / "personnummer" / "skatteverket_test_numbers_sample.json").read_text("utf-8"))
    personnummer, samordningsnummer = tuple(numbers["personnummer"]), tuple(numbers["samordningsnummer"])
    phone_shaped = tuple(n for n in personnummer + samordningsnummer if _swedish_phone(n[2:]))
    return Sources(tuple(sentences), first, last, personnummer, samordningsnummer, phone_shaped)


def _swedish_phone(digits: str) -> bool:
    import phonenumbers

    if not digits.startswith("0"):
        return False
    parsed = phonenumbers.parse(digits, "SE")
    return phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "SE"


# ---------------------------------------------------------------------------------------------
# An independent check of what could pass as an identity number, so that numbers made up for the
# hard negatives are invalid on purpose (a made-up valid number might belong to a real person).


def luhn_valid(ten: str) -> bool:
    total = 0
    for i, ch in enumerate(ten):
        d = int(ch) * (2 - i % 2)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def could_be_identity(ten: str) -> bool:
    """Generous on purpose: any month 00-12 and any day 00-31 or 60-91 with a good check digit."""
    month, day = int(ten[2:4]), int(ten[4:6])
    return month <= 12 and (day <= 31 or 60 <= day <= 91) and luhn_valid(ten)


def _luhn_digit(nine: str) -> str:
    return next(str(d) for d in range(10) if luhn_valid(nine + str(d)))


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _invalid_ten(rng: random.Random, first: str = "123456789") -> str:
    while True:
        ten = rng.choice(first) + _digits(rng, 9)
        if not could_be_identity(ten):
            return ten


# ---------------------------------------------------------------------------------------------
# Hard negatives: what mail is full of and must not be taken for a personnummer.


def _nb(text: str) -> str:
    return text.replace(" ", _KEEP)


def _neg(kind: str, text: str) -> str:
    """Marks a hard negative so that its place is recorded once the text is assembled."""
    return f"\x03{kind}\x1f{_nb(text)}\x04"


def _phone(rng: random.Random) -> tuple[str, str]:
    """A number from PTS's ranges for fiction: (area code without 0, subscriber number)."""
    return rng.choice(
        (
            ("70", f"17406{rng.randint(5, 99):02d}"),
            ("8", f"465004{rng.randint(0, 99):02d}"),
            ("31", f"39006{rng.randint(0, 99):02d}"),
        )
    )


def _grouped(subscriber: str) -> str:
    """070-174 06 05, 08-465 004 12: the last digits in pairs, the rest in a group before."""
    if len(subscriber) == 7:
        return f"{subscriber[:3]} {subscriber[3:5]} {subscriber[5:]}"
    return f"{subscriber[:3]} {subscriber[3:6]} {subscriber[6:]}"


# Written forms of a phone number; each needs a phone word beside it or not (unseparated runs
# are phone numbers only next to a phone word, as DESIGN says).
PHONE_FORMS: tuple[tuple[str, bool, Callable[[str, str], str]], ...] = (
    ("grouped", False, lambda a, s: f"0{a}-{_grouped(s)}"),
    ("dash", False, lambda a, s: f"0{a}-{s}"),
    ("spaced", False, lambda a, s: f"0{a} {_grouped(s)}"),
    ("parenthesis", False, lambda a, s: f"(0{a}) {_grouped(s)}"),
    ("international", False, lambda a, s: f"+46 {a} {_grouped(s)}"),
    ("international-trunk", False, lambda a, s: f"+46 (0){a}-{_grouped(s)}"),
    ("international-run", False, lambda a, s: f"+46{a}{s}"),
    ("0046", False, lambda a, s: f"0046 {a} {_grouped(s)}"),
    ("0046-run", False, lambda a, s: f"0046{a}{s}"),
    ("run", True, lambda a, s: f"0{a}{s}"),
)
PHONE_LEADS = ("Tel", "Telefon", "Mobil", "Mob", "Tfn", "Växel", "Fax", "Ring", "Sms")


def phone_text(rng: random.Random) -> str:
    area, subscriber = _phone(rng)
    _, needs_word, form = rng.choice(PHONE_FORMS)
    number = _neg("phone", form(area, subscriber))
    if needs_word or rng.random() < 0.5:
        lead = rng.choice(PHONE_LEADS)
        return rng.choice((f"{lead}:{_KEEP}{number}", f"{lead}{_KEEP}{number}"))
    return number


def _date(rng: random.Random) -> tuple[int, int, int]:
    return rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)


MONTHS = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)


def _iso(rng: random.Random) -> str:
    y, m, d = _date(rng)
    return _neg("date", f"{y}-{m:02d}-{d:02d}")


def _time(rng: random.Random) -> str:
    return f"{rng.randint(7, 20):02d}:{rng.randint(0, 59):02d}"


def _orgnr(rng: random.Random) -> str:
    # The third digit of an organisationsnummer is at least 2: month 20-99, never a date.
    nine = rng.choice("25789") + _digits(rng, 1) + rng.choice("23456789") + _digits(rng, 6)
    return nine + _luhn_digit(nine)


def _future12(rng: random.Random) -> str:
    """Twelve digits with a date in the 2090s: shaped like a personnummer, but nobody is born yet."""
    nine = f"{rng.randint(90, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{_digits(rng, 3)}"
    return "20" + nine + _luhn_digit(nine)


def _iban(rng: random.Random) -> tuple[str, str]:
    iban = f"SE{rng.randint(10, 99)}{rng.choice(('5000', '6000', '8000', '3000'))}" + _digits(rng, 16)
    return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)), iban


class Negatives:
    """Sentences with hard negatives; the negative itself is marked with its kind."""

    def __init__(self, rng: random.Random, sources: Sources) -> None:
        self.rng = rng
        self.sources = sources
        self.makers: tuple[Callable[[], str], ...] = (
            self.phone,
            self.phone_shaped,
            self.date,
            self.timestamp,
            self.ocr,
            self.ocr_luhn,
            self.bankgiro,
            self.orgnr,
            self.iban,
            self.customer_number,
            self.order_number,
            self.future,
            self.longer_run,
            self.amount,
        )

    def any(self) -> str:
        return self.rng.choice(self.makers)()

    def phone(self) -> str:
        return self.rng.choice(
            (
                "Ring mig på {} om något är oklart.",
                "Du når mig på {} efter klockan tretton.",
                "{}",
                "Vid akuta ärenden, {}.",
                "Sjuksköterskan nås på {} dagtid.",
            )
        ).format(phone_text(self.rng))

    def phone_shaped(self) -> str:
        ten = _neg("phone-shaped-test-number", self.rng.choice(self.sources.phone_shaped)[2:])
        return self.rng.choice(
            (
                f"Ring{_KEEP}{ten} i morgon förmiddag.",
                f"Tel:{_KEEP}{ten} (dagtid).",
                f"Mobil{_KEEP}{ten}, helst efter lunch.",
                f"Sms:a{_KEEP}{ten} när du är framme.",
            )
        )

    def date(self) -> str:
        r = self.rng
        y, m, d = _date(r)
        written = _neg(
            "date",
            r.choice(
                (
                    f"{y}-{m:02d}-{d:02d}",
                    f"{d}/{m}",
                    f"{d}/{m} {y}",
                    f"{d:02d}.{m:02d}.{y}",
                    f"den {d} {MONTHS[m - 1]} {y}",
                    f"{y}{m:02d}{d:02d}",
                    f"{d} {MONTHS[m - 1][:3]}",
                )
            ),
        )
        return r.choice(
            (
                f"Mötet flyttas till {written} kl. {_time(r)}.",
                f"Planen gäller från {written} till {_iso(r)}.",
                f"Datum: {written}",
                f"Vi ses {written}, samma tid som vanligt.",
            )
        )

    def timestamp(self) -> str:
        r = self.rng
        y, m, d = _date(r)
        t = f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}"
        written = _neg(
            "timestamp",
            r.choice(
                (
                    f"{y}-{m:02d}-{d:02d} {t}",
                    f"{y}-{m:02d}-{d:02d}T{t}+01:00",
                    f"{y}{m:02d}{d:02d}T{t.replace(':', '')}Z",
                    f"{d} {MONTHS[m - 1]} {y} {t[:5]}",
                )
            ),
        )
        return r.choice(
            (
                f"Skickat: {written}",
                f"Loggat {written}: synkroniseringen av schemat är klar.",
                f"Larmet registrerades {written} och kvitterades direkt.",
            )
        )

    def ocr(self) -> str:
        r = self.rng
        number = _neg(
            "ocr", r.choice((_invalid_ten(r), _digits(r, 8), "9" + _digits(r, 11), "7" + _digits(r, 15)))
        )
        return r.choice(
            (
                f"Fakturan har OCR-nummer {number} och förfaller {_iso(r)}.",
                f"Ange OCR:{_KEEP}{number} vid betalning.",
                f"Fakturanummer:{_KEEP}{number}",
            )
        )

    def ocr_luhn(self) -> str:
        """OCR numbers carry a Luhn check digit: some read as a personnummer, but the context says not.

        Such numbers are taken from Skatteverket's test numbers, never made up.
        """
        r = self.rng
        ten = _neg("reference-with-context", r.choice(self.sources.personnummer)[2:])
        return r.choice(
            (
                f"Betala med OCR{_KEEP}{ten} senast {_iso(r)}.",
                f"Fakturanr:{_KEEP}{ten}",
                f"Ärendenummer{_KEEP}{ten} gäller reklamationen.",
                f"Kontonummer:{_KEEP}{ten}",
                f"Ordernr{_KEEP}{ten} är levererad.",
            )
        )

    def bankgiro(self) -> str:
        r = self.rng
        bg = _neg("bankgiro", f"{_digits(r, r.choice((3, 4)))}-{_digits(r, 4)}")
        pg = _neg("plusgiro", f"{_digits(r, 6)}-{_digits(r, 1)}")
        return r.choice((f"Betala till bankgiro{_KEEP}{bg} eller plusgiro{_KEEP}{pg}.", f"Bg:{_KEEP}{bg}"))

    def orgnr(self) -> str:
        r = self.rng
        nr = _orgnr(r)
        written = _neg(
            "orgnr", r.choice((f"{nr[:6]}-{nr[6:]}", nr, f"16{nr}", f"SE{nr}01", f"16{nr[:6]}-{nr[6:]}"))
        )
        return r.choice(
            (
                f"Leverantören har org.nr {written} och F-skattsedel.",
                f"Organisationsnummer:{_KEEP}{written}",
                f"Hemtjänstföretaget ({written}) har fått tillstånd från IVO.",
                f"Momsreg.nr {written}",
            )
        )

    def iban(self) -> str:
        r = self.rng
        grouped, run = _iban(r)
        written = _neg("iban", r.choice((grouped, run)))
        return r.choice((f"IBAN:{_KEEP}{written}, BIC: SWEDSESS", f"IBAN {written}"))

    def customer_number(self) -> str:
        r = self.rng
        number = _neg("customer-number", str(r.randint(1000, 99999)))
        return r.choice(
            (
                f"Det gäller kundnummer {number}, som vi pratade om.",
                f"Kund {number} har fått ändrade tider.",
                f"Brukare {number} behöver hjälp med inköp på torsdag.",
            )
        )

    def order_number(self) -> str:
        r = self.rng
        order = _neg(
            "order-number",
            r.choice((f"{r.randint(2019, 2026)}-{_digits(r, 6)}", _digits(r, 9), _invalid_ten(r))),
        )
        return f"Ordernummer {order} skickades {_iso(r)} {_time(r)}."

    def future(self) -> str:
        r = self.rng
        run = _future12(r)
        written = _neg("future-date", r.choice((run, f"{run[:8]}-{run[8:]}")))
        return r.choice(
            (f"Serienummer på trygghetslarmet: {written}", f"Lot {written} av dosetterna ska returneras.")
        )

    def longer_run(self) -> str:
        """A test number inside a longer run of digits or letters: a machine's identifier."""
        r = self.rng
        pn = r.choice(self.sources.personnummer)
        run = _neg(
            "longer-run",
            r.choice(
                (
                    f"{_digits(r, 2)}{pn}",
                    f"{pn}{_digits(r, 3)}",
                    f"yiv{pn[2:]}",
                    f"id{pn}x",
                    f"{r.randint(1, 9)}{pn[2:]}",
                    f"{pn[2:]}{r.randint(0, 9)}",
                )
            ),
        )
        return r.choice((f"Spårningsnummer {run}.", f"Dokument-id: {run}", f'<div id="{run}">'))

    def amount(self) -> str:
        r = self.rng
        return r.choice(
            (
                f"Summa att betala: {_neg('amount', f'{r.randint(1, 99)} {r.randint(100, 999)}')} kr.",
                f"Postadress: Box {r.randint(1, 999)}, {_neg('postcode', f'{r.randint(100, 999)} {r.randint(10, 99)}')}"
                " Stockholm.",
                f"Avgiften för hemtjänst är {_neg('amount', f'{r.randint(100, 2500)},{r.randint(10, 99)}')} kronor.",
            )
        )


# ---------------------------------------------------------------------------------------------
# Identifiers, written the many ways people (and their mail programs) write them.

FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _zero_width(text: str, rng: random.Random) -> str:
    i = rng.randint(1, len(text) - 1)
    j = rng.randint(1, len(text) - 1)
    i, j = sorted((i, j))
    return text[:i] + "\u200b" + text[i:j] + ("\u200c" if j > i else "") + text[j:]


# name -> writer(canonical, rng); every form counts as an identifier under DESIGN.
FORMS: tuple[tuple[str, Callable[[str, random.Random], str]], ...] = (
    ("12-dash", lambda c, r: f"{c[:8]}-{c[8:]}"),
    ("10-dash", lambda c, r: f"{c[2:8]}-{c[8:]}"),
    ("12-run", lambda c, r: c),
    ("10-run", lambda c, r: c[2:]),
    ("10-space", lambda c, r: f"{c[2:8]} {c[8:]}"),
    ("12-nbsp", lambda c, r: f"{c[:8]}\u00a0{c[8:]}"),
    ("10-narrow-nbsp", lambda c, r: f"{c[2:8]}\u202f{c[8:]}"),
    ("10-en-dash-spaced", lambda c, r: f"{c[2:8]} \u2013 {c[8:]}"),
    ("12-non-breaking-hyphen", lambda c, r: f"{c[:8]}\u2011{c[8:]}"),
    ("10-minus-sign", lambda c, r: f"{c[2:8]}\u2212{c[8:]}"),
    ("10-spaced-dash", lambda c, r: f"{c[2:8]} - {c[8:]}"),
    ("10-wrapped", lambda c, r: f"{c[2:8]}-\n{c[8:]}"),
    ("12-wrapped-quoted", lambda c, r: f"{c[:8]}\n> {c[8:]}"),
    ("12-fullwidth", lambda c, r: f"{c[:8]}-{c[8:]}".translate(FULLWIDTH)),
    ("10-arabic-indic", lambda c, r: f"{c[2:8]}-{c[8:]}".translate(ARABIC_INDIC)),
    ("12-zero-width", lambda c, r: _zero_width(c, r)),
    ("10-soft-hyphen", lambda c, r: f"{c[2:8]}\u00ad{c[8:]}"),
    ("12-file-name", lambda c, r: c),
    ("12-after-colon", lambda c, r: c),
)
# Written around the identifier (not part of it): punctuation and underscores are no boundary.
DECORATION = {"12-file-name": ("journal_", ".pdf"), "12-after-colon": ("pnr:", "")}
# The `+` of a person 100 years or older: only for the oldest test numbers.
PLUS_FORM = ("10-plus", lambda c, r: f"{c[2:8]}+{c[8:]}")
OLDEST_BIRTH_YEAR_FOR_PLUS = 1920

# Sentences that carry an identifier: no phone or reference words (DESIGN lets those clear a run),
# each its own paragraph so that no neighbouring sentence lends it such a word.
CARRIERS = (
    "Brukaren {} behöver hjälp med dusch två gånger i veckan.",
    "Gäller {}, som flyttar hem från korttidsboendet på måndag.",
    "Pnr: {}",
    "Kan ni se över insatserna för {} inför mötet?",
    "{} har fått nytt biståndsbeslut om hemtjänst.",
    "Personnummer {} (anhörig har lämnat samtycke).",
    "Bifogar underlaget för {} som vi pratade om.",
    "Hej! Dosetten för {} saknas, kan någon titta på det?",
)


def _identifier(rng: random.Random, sources: Sources, index: int) -> tuple[str, str, str]:
    """(written form, canonical, form name): forms in turn, so that every form gets planted."""
    pool = sources.samordningsnummer if index % 5 == 4 else sources.personnummer
    canonical = rng.choice(pool)
    name, writer = FORMS[index % len(FORMS)]
    if index % 7 == 6:
        old = [c for c in sources.personnummer if int(c[:4]) <= OLDEST_BIRTH_YEAR_FOR_PLUS]
        canonical = rng.choice(old)
        name, writer = PLUS_FORM
    return writer(canonical, rng), canonical, name


def _decorated(identifier: tuple[str, str, str]) -> tuple[str, str, str]:
    before, after = DECORATION.get(identifier[2], ("", ""))
    return before, identifier[0], after


# ---------------------------------------------------------------------------------------------
# Mails.

GREETINGS = ("Hej {}!", "Hej {},", "Hej alla,", "Hejsan {}!", "Till berörda,", "God morgon {}!")
CLOSINGS = ("Med vänliga hälsningar", "Vänliga hälsningar", "Mvh", "Hälsningar", "Tack på förhand!")
ROLES = ("Undersköterska", "Enhetschef", "Samordnare", "Biståndshandläggare", "Sjuksköterska")
AREAS = ("Norr", "Söder", "Centrum", "Västra", "Östermalm", "Älvsjö")


# Mail programs turn " - " into an en dash and straight quotes into curly ones as people type: much
# real mail holds characters beyond Latin-1, which text-processing code may take slower paths for.
TYPOGRAPHIC_SHARE = 0.5
_QUOTED = re.compile(r'" ?([^"\n]*?) ?"')


def typographic(text: str) -> str:
    text = text.replace(" - ", " \u2013 ").replace("...", "\u2026")
    return _QUOTED.sub("\u201d\\1\u201d", text)


class _Writer:
    """One mail: paragraphs with placeholders for identifiers, then assembled with their offsets."""

    def __init__(self, rng: random.Random, sources: Sources, negatives: Negatives) -> None:
        self.rng = rng
        self.sources = sources
        self.negatives = negatives

    def name(self) -> str:
        return f"{self.rng.choice(self.sources.first_names)} {self.rng.choice(self.sources.last_names)}"

    def paragraph(self) -> str:
        r = self.rng
        sentences = [r.choice(self.sources.sentences) for _ in range(r.randint(2, 7))]
        if r.random() < 0.35:
            sentences.insert(r.randint(0, len(sentences)), self.negatives.any())
        text = " ".join(sentences)
        if r.random() < 0.6:  # plain-text mail programs wrap; some writers leave long lines
            text = "\n".join(textwrap.wrap(text, WRAP, break_long_words=False, break_on_hyphens=False))
        return text

    def signature(self) -> str:
        r = self.rng
        lines = [r.choice(CLOSINGS), self.name(), f"{r.choice(ROLES)}, Hemtjänsten {r.choice(AREAS)}"]
        lines += [phone_text(r) for _ in range(r.randint(1, 3))]
        if r.random() < 0.3:
            nr = _orgnr(r)
            lines.append(f"Org.nr{_KEEP}{_neg('orgnr', f'{nr[:6]}-{nr[6:]}')}")
        return "\n".join(lines)

    def quoted(self, paragraphs: list[str]) -> str:
        r = self.rng
        y, m, d = _date(r)
        name = self.name()
        head = r.choice(
            (
                f"Den {d} {MONTHS[m - 1]} {y} kl. {_time(r)} skrev {name} <{name.split()[0].lower()}@kommun.se>:",
                f"---------- Vidarebefordrat meddelande ----------\nFrån: {name}\nDatum: "
                f"{_neg('timestamp', f'{y}-{m:02d}-{d:02d} {_time(r)}')}\nÄmne: SV: Planering vecka {r.randint(1, 52)}",
            )
        )
        body = "\n\n".join(paragraphs)
        return head + "\n" + "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))

    def write(
        self,
        target: int,
        identifiers: list[tuple[str, str, str]],
        sizes: tuple[int, int] = (MIN_BYTES, MAX_BYTES),
    ) -> tuple[str, list[Planted], list[Negative]]:
        r = self.rng
        parts = [r.choice(GREETINGS).format(r.choice(self.sources.first_names))]
        size = len(parts[0])
        budget = max(target - 300, sizes[0])  # the signature and the planted paragraphs come on top
        body: list[str] = []
        while size < budget:
            p = self.paragraph()
            if size + len(p.encode("utf-8")) > sizes[1] - 1500:
                break
            body.append(p)
            size += len(p.encode("utf-8")) + 2
        quoted: list[str] = []
        if len(body) > 3 and r.random() < 0.4:  # the rest is an earlier message quoted below
            cut = r.randint(1, len(body) - 1)
            body, quoted = body[:cut], body[cut:]
        for i in range(len(identifiers)):
            carrier = r.choice(CARRIERS).format(f"\x01{i}\x02")
            where = r.randint(0, len(body) + len(quoted))
            if where <= len(body):
                body.insert(where, carrier)
            else:
                quoted.insert(where - len(body), carrier)
        parts += body
        parts.append(self.signature())
        if quoted:
            parts.append(self.quoted(quoted))
        text = "\n\n".join(parts)
        if r.random() < TYPOGRAPHIC_SHARE:
            text = typographic(text)
        text = text.replace(_KEEP, " ") + "\n"
        return _fill(text, identifiers)


_MARKER = re.compile("\x01(?P<identifier>\\d+)\x02|\x03(?P<kind>[^\x1f]*)\x1f(?P<negative>[^\x04]*)\x04")


def _fill(text: str, identifiers: list[tuple[str, str, str]]) -> tuple[str, list[Planted], list[Negative]]:
    """The text with its markers replaced, and where each identifier and hard negative ended up."""
    out: list[str] = []
    planted: list[Planted] = []
    negatives: list[Negative] = []
    pos = length = 0
    for m in _MARKER.finditer(text):
        out.append(text[pos : m.start()])
        length += m.start() - pos
        pos = m.end()
        if m["kind"] is not None:
            negatives.append(Negative(length, length + len(m["negative"]), m["kind"]))
            out.append(m["negative"])
            length += len(m["negative"])
            continue
        identifier = identifiers[int(m["identifier"])]
        before, written, after = _decorated(identifier)
        planted.append(
            Planted(length + len(before), length + len(before) + len(written), identifier[1], identifier[2])
        )
        out.append(before + written + after)
        length += len(before) + len(written) + len(after)
    out.append(text[pos:])
    return "".join(out), planted, negatives


def generate(
    count: int = 2000,
    seed: int = SEED,
    identifier_share: float = IDENTIFIER_SHARE,
    sources: Sources | None = None,
    sizes: tuple[int, int] = (MIN_BYTES, MAX_BYTES),
) -> list[Document]:
    """`count` mails of `sizes` bytes (1-50 KB); about `identifier_share` of them carry 1-3 identifiers."""
    sources = sources or load_sources()
    rng = random.Random(seed)
    negatives = Negatives(rng, sources)
    carriers = max(1, round(count * identifier_share)) if identifier_share > 0 else 0
    with_ids = set(rng.sample(range(count), carriers))
    documents = []
    planted_so_far = 0
    width = len(str(count))
    for n in range(count):
        target = int(math.exp(rng.uniform(math.log(sizes[0]), math.log(sizes[1]))))
        identifiers = []
        if n in with_ids:
            for _ in range(rng.randint(1, 3)):
                identifiers.append(_identifier(rng, sources, planted_so_far))
                planted_so_far += 1
        writer = _Writer(rng, sources, negatives)
        text, planted, hard = writer.write(target, identifiers, sizes)
        documents.append(Document(f"mail-{n:0{width}d}.txt", text, tuple(planted), tuple(hard)))
    return documents


def write(documents: list[Document], folder: Path) -> Path:
    """The texts as UTF-8 files in `folder`/corpus, the ground truth beside it (not inside)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for old in corpus.iterdir():
        old.unlink()
    for doc in documents:
        (corpus / doc.name).write_bytes(doc.text.encode("utf-8"))
    truth = {
        doc.name: {
            "identifiers": [asdict(p) for p in doc.planted],
            "hard_negatives": [asdict(n) for n in doc.negatives],
        }
        for doc in documents
    }
    (folder / "ground_truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    return corpus


def describe(documents: list[Document]) -> str:
    sizes = [len(d.text.encode("utf-8")) for d in documents]
    kinds = Counter(n.kind for d in documents for n in d.negatives)
    planted = sum(len(d.planted) for d in documents)
    carriers = sum(1 for d in documents if d.planted)
    return (
        f"{len(documents)} texts, {sum(sizes) / 1e6:.1f} MB ({min(sizes)}-{max(sizes)} bytes); "
        f"{planted} identifiers in {carriers} texts; hard negatives: "
        + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    )
