"""Word lists the detectors read: data, kept in one place."""

from __future__ import annotations

# Next to a valid Swedish phone number, these make a digit run a phone number.
PHONE_WORDS = (
    "tel",
    "telefon",
    "telefonnummer",
    "tfn",
    "mobil",
    "mobilnummer",
    "mob",
    "ring",
    "sms",
    "fax",
    "växel",
    "vxl",
)
# A label right before a number ("Telefoonnummer : 06..."), in the languages mail from abroad is
# written in: with one, a number valid in a neighbouring country's numbering plan is a phone
# number too (a bounce or an order form from the Netherlands quotes a Dutch mobile number).
PHONE_LABELS = (
    *PHONE_WORDS,
    "telefoon",
    "telefoonnummer",
    "tlf",
    "phone",
    "telephone",
    "mobile",
    "mobiel",
    "cell",
    "handy",
    "puhelin",
    "gsm",
)
FOREIGN_PHONE_REGIONS = ("NO", "DK", "FI", "IS", "DE", "NL", "BE", "GB", "IE", "FR", "PL", "EE", "LV", "LT")
# Header fields a machine writes (trace, signatures, ids): their digit runs are timestamps and queue
# ids. Never scanned as headers; a body that quotes them (a bounce, a forwarded header block) holds
# the same machine numbers, so an unseparated 10-digit run in such a quoted field is not counted.
MACHINE_HEADER_PREFIXES = (
    "x-",
    "arc-",
    "dkim-",
    "received",
    "message-id",
    "references",
    "in-reply-to",
    "return-path",
    "authentication-results",
    "content-",
    "mime-version",
    "date",
    "delivered-to",
    "list-",
    "thread-index",
)

# Before an unseparated 10-digit run, these say it is a payment or case reference.
NEGATIVE_CONTEXT_WORDS = (
    "ocr",
    "faktura",
    "fakturanummer",
    "fakturanr",
    "order",
    "ordernummer",
    "ordernr",
    "bankgiro",
    "bg",
    "plusgiro",
    "pg",
    "konto",
    "kontonummer",
    "kontonr",
    "clearing",
    "clearingnummer",
    "orgnr",
    "org.nr",
    "organisationsnummer",
    "ärende",
    "ärendenummer",
    "ärendenr",
    "referens",
    "ref",
    "kundnr",
    "avtal",
    "avtalsnummer",
)
# Labels that say a run is a personal identity number: when one is the context word nearest
# before a run on its line, no reference or phone word near it clears the run ("Kundnr 10234,
# personnummer NNNNNNNNNN"; "Ring brukaren, pnr NNNNNNNNNN" for someone born 2000-2009, whose
# 10-digit form is mostly a valid phone number too). Misspellings are a person's writing too.
IDENTITY_LABELS = (
    "pnr",
    "p-nr",
    "p.nr",
    "persnr",
    "pers.nr",
    "pers-nr",
    "personnr",
    "personnummer",
    "personnumret",
    "personnumer",
    "personummer",
    "samnr",
    "samordningsnr",
    "samordningsnummer",
    "samordningsnumret",
)
# How far before (and after) a run a context word may stand, in characters.
CONTEXT_WINDOW = 40

# A 10-digit run that is one segment of a dotted machine token is an identifier
# (`cdt.managedbuild.tool.gnu.archiver.base.NNNNNNNNNN` in a build file), when at least this many
# of the token's other segments hold letters: one word before the dot (`Pnr.NNNNNNNNNN`) or after
# it (`NNNNNNNNNN.Hon` with the space forgotten) is a person's writing, not a machine's.
MACHINE_TOKEN_LETTER_SEGMENTS = 2
# A segment that labels the number makes a dotted token a person's writing after all
# (`Pers.nr.NNNNNNNNNN`, `p.nr.NNNNNNNNNN`, `pnr.NNNNNNNNNN.txt`).
NUMBER_LABELS = (
    "nr",
    "pnr",
    "persnr",
    "personnr",
    "personnummer",
    "nummer",
    "samnr",
    "samordningsnr",
    "samordningsnummer",
    "idnr",
)

# Words that make a message about care: person names found by NER matter only then.
CARE_WORDS = (
    "brukare",
    "brukaren",
    "brukarens",
    "brukarna",
    "hemtjänst",
    "hemtjänsten",
    "insats",
    "insatsen",
    "insatser",
    "omvårdnad",
    "omvårdnaden",
    "medicin",
    "mediciner",
    "medicinen",
    "läkemedel",
    "läkemedlet",
    "diagnos",
    "diagnosen",
    "vårdtagare",
    "vårdtagaren",
    "omsorgstagare",
    "omsorgstagaren",
    "genomförandeplan",
    "biståndsbeslut",
    "dosett",
    "dosetten",
    "trygghetslarm",
    "hemsjukvård",
    "hemsjukvården",
    "demens",
    "sjuksköterska",
    "avvikelse",
    "avvikelsen",
    "kund",
    "kunden",
    "vårdplan",
    "journal",
)
# Words before a surname that make it about a person: "fru Berg", "brukaren Lind".
TITLE_WORDS = (
    "fru",
    "herr",
    "hr",
    "fröken",
    "brukare",
    "brukaren",
    "kund",
    "kunden",
    "vårdtagare",
    "vårdtagaren",
    "omsorgstagare",
    "omsorgstagaren",
    "änkan",
    "paret",
)

# Headers that carry addresses and their display names: correspondents, read one address a line.
ADDRESS_HEADERS = frozenset(
    (
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "sender",
        "resent-from",
        "resent-to",
        "resent-cc",
        "disposition-notification-to",
    )
)
# Every header a person writes or sees; the rest are machine headers and are never scanned.
PERSON_HEADERS = ADDRESS_HEADERS | {"subject", "comments", "keywords", "thread-topic", "organization"}
