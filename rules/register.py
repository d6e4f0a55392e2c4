"""Detector: known clients' names, phone numbers and street addresses, found by keyed hashes only.

The register holds no name: every name, street and phone number of a client is turned into keyed
hashes of its normalised words when the register is built. A text is searched the same way: its
words are normalised and hashed, and a run of words whose combined hash is in the register is a
finding. The hashes of a phrase are built word by word (a trie over hashes), so that the search
stops at the first word that begins no client's name.

Matching rules, and why:
- Case and diacritics are folded (`Öberg` = `oberg` = `OBERG`), a hyphen is a space
  (`Karl-Erik` = `Karl Erik`), and the genitive (`Anderssons`, `Lars'`, `Eva:s`) ends a name.
- A name is a first name and the surname in either order (`Anna Andersson`, `Andersson Anna`,
  `Andersson, Anna`), with the whole first-name field or any one of the client's first names.
  A first name alone is never a finding; a surname alone after a title or care word
  (`fru Andersson`, `brukaren Lind`) is a warning.
- A word that is also an ordinary Swedish word (`berg`, `lind`, `ek`, `per`, `bo`, ...) counts as
  a name only when it is not written all in lower case: "sten, berg och grus" is about rocks,
  "Sten Berg" is a person. Every other name matches in any case, because a full name (two words
  that belong to one client) is rare enough by chance, and staff do write names in lower case.
  Words are whole tokens, so a name never matches inside another word (`Bergström`, `ekonomi`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from models.findings import Kind, Severity
from models.register import Client
from rules.fingerprint import fingerprint, mask_name
from rules.hits import Hit
from rules.normalize import NormalizedText
from rules.words import TITLE_WORDS

RULE = "client-register"

# Names that are also ordinary words: in lower case they are the word, not the name.
_COMMON_WORD_NAMES = """
aker akter alg all alla allvar alm an anar and anda andan ande andel andra andras andre ange anger
annan anse anser anta antal antar april arena arlig armen art artist arton arv ask asp att augusti
av back backa backe bada bage bak bana banan bank bar bara bas bat be benet ber berg bero bett bevis
bil bilar bilda bilen binda binder bitar bjork bjorn bla blad bland blanka blick blom blomma bo bok
bom bonus bor bra brand branden brant bred breda brett bro bron bror bruk bruna bud buss by ca
champagne chans chili dag dal damen damer data december deg degen dela delas delat delta dem dennes
dess det din dina dit dollar dom domen dotter drama drar driva dyra ek eko eld elden eleven elva en
ena enas enda ene eng enkel er era ett etta ettan euro euron fagel falk fall falla falt fan fann far
fara fars fast fat februari fem fester filmer fin fina finna fira firas fisk flicka for forde fors
foto fredag fri fria frid frisk frost fulla fyra gammal gas ge gift gilla gjord glad glada gladje
glas god goda goras gra gran gren gron grund gul gula guld ha hade hall hals halvan hamn hamna han
hand hans har hard hare hat hav havet hed hel hela heller helt hem hemma hennes heta hette hinna
hissen hjalte hjarta hjartat hjort hockey hog hojer hok holm hon hopp hoppa host hud hur husen hyra
i icke ideal illa in inga inne is isen ja jag jagare januari jord jorden ju jul juli juni just kakel
kall kalla kameran kamp kan kanel kanin kap karlek karleken kartan kassar katt kedja kemi kl klara
klipp kniv ko koka kol kompis konst kopp kor kors kort kosta kr kraft kring kris kristna kron kul
kulan kung kungen kvist kyla ladda lade lag lager land lang lax led leda lejon lek ler leta leva
lider liga lika lilja lilla lille lind lita liten liv livet ljusa lo lock lonn lucia lund lura lust
luva lycka lyder maj maka malar malm mamma man manus mar mark marken marker mars massa master mat
maten matta max me med medel media mej melodi men menar mer mera merit metod mig miljon min mina
minne minus missa mod mode mor moral mork morse mot mun namn natt ned ner ni nio nog noga nord norr
novell november nu ny nya nye och oktober olika olja om on op ord orn oron orten ost oster pa par
parker parti passion patient penna per perfekta person piano pil plus pojken polis prast prins
privat punkt rad rada radion raka rally ram ramen ras rask red reda redan redo regi regn ren rena
renar resa resan rik rika rike rikta ring ringa ringer rinna ris riva road rod roll roman ros rosa
rusa rut ruta rymma sa sade sades sag saga saker sal salen samma samman sand sann sant se seger
sekel sen september ser si sida sidor sig silver sin sina sitta sjo sju sk ska skala skara skarp
skatt skog skott skriver skuggan slott smart smed smita sno socker soder sol solen som sommar son
spar spela springer st stal stan stark staten sten stenar stig stilla stjarna stolt stor strand
strid strider strom styrka summan sund sur svan svart svensk syster ta tag tak tal tala talar talat
tar tas te tegel tema til till timme ting tio tisdag titta to tom tomma tomt tomten ton topp tor
torp tre trea tro tron tros trygg tuff tuffa tung tunga tur tusen ty tysk udd ull undra ung unik
unika ur ut ute va vackra vagn val valda valde valdes vall vana vann var vara varan varna ved velat
verka veta vi via vice vid vida vik vika viken vikt vila vilar vilda vilja viljan vill ville vin
vind vindar vinet vinna vinter visa visar vit vita vred
"""
# Folded. Names of SCB's statistics that stand in lower case three times or more in the SUC 3.0
# and klintan news corpora (../shared/data/ner), with a few added by hand (berg, lind, ek, strand,
# holm, ...); less the titles, the particles of surnames (af, von, de), which are written in
# lower case inside a name, and given names whose word is rare in mail (karl, håkan, sanna, ...).
COMMON_WORD_NAMES = frozenset(_COMMON_WORD_NAMES.split())

# Letters that do not decompose into a base letter and a mark.
_SPECIAL_FOLDS = {
    "ø": "o",
    "æ": "ae",
    "œ": "oe",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
    "'": "",
    "’": "",
    "ʼ": "",
}


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {ord(k): v for k, v in _SPECIAL_FOLDS.items()}
    for code in range(0xC0, 0x250):
        ch = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        if base and base != ch and code not in table:
            table[code] = base.casefold()
    return table


_FOLD = _fold_table()


@lru_cache(maxsize=65536)
def fold(word: str) -> str:
    """Case and diacritics folded, apostrophes dropped: `Öberg` -> `oberg`, `O'Neil` -> `oneil`."""
    return word.casefold().translate(_FOLD)


_TITLES = frozenset(fold(w) for w in TITLE_WORDS)

# A word (apostrophes inside it belong to it), optionally with a genitive suffix that cannot be
# read as part of the word (`Eva:s`, `Lars'`); a run of digits; a comma (`Andersson, Anna`).
TOKEN = re.compile(
    r"(?P<word>[^\W\d_]+(?:['’ʼ][^\W\d_]+)*)(?P<gen>:s(?![^\W\d_])|['’ʼ](?![^\W\d_]))?"
    r"|(?P<num>\d+)|(?P<comma>,)"
)
# What may stand between two words of one name or address: spaces, one line break (with a
# quote prefix), a hyphen or underscore (`Karl-Erik`, `anna_andersson.pdf`), a dot
# (`anna.andersson@`), or nothing (`12B`).
_GAP = re.compile(r"[ \t\u00a0\u202f]*(?:\r?\n[ \t>]*)?|[ \t]*[-\u2010-\u2015_][ \t]*|\.")
# After a title, also an abbreviation's dot: `Hr. Berg`.
_TITLE_GAP = re.compile(r"\.?[ \t\u00a0\u202f]*(?:\r?\n[ \t>]*)?")
# A phone number as written: an international or trunk prefix, then digits and the separators
# people group them with.
_PHONE = re.compile(r"(?<![\w+])(?:\+|00|\(0|0)[\d \u00a0\-\u2010-\u2015()/.]{5,24}\d")
_PHONE_HINT = re.compile(r"(?<!\d)[+0]\d")
# A raw word that is one word token and nothing else, and the word a raw word begins with when
# what follows it cannot join it into another token (an apostrophe, `:s`, digits).
_LEADING_WORD = re.compile(r"(?P<word>[^\W\d_]+)(?![\w'’ʼ:])")
_DIGITS = re.compile(r"\d+")
_LEADING_DIGITS = re.compile(r"\d+")  # (match, not search: the first token of a raw word)
_LETTER = re.compile(r"[^\W\d_]")
# The raw word after a position (`\s` is what `str.split` splits at).
_FOLLOWING = re.compile(r"\s+(\S+)")

MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15
# Starting points of the hashed phrases, and the stand-ins for words that are not names.
ROOT = 0x5BD1E9955BD1E995
ROOT_PHONE = 0x27D4EB2F165667C5
TITLE = 0x94D049BB133111EB
COMMA = 0xBF58476D1CE4E5B9

# What a phrase in the register is.
FULL_NAME, REVERSED_NAME, TITLE_SURNAME, ADDRESS, PHONE = 1, 2, 3, 4, 5
_PREFIX = 1  # bit 0: the phrase goes on in some client's name
_CLIENT_SHIFT = 8  # bits 8-31: client number + 1; 0 when the phrase belongs to several clients
_KIND_OF: dict[int, Kind] = {
    FULL_NAME: "client_name",
    REVERSED_NAME: "client_name",
    TITLE_SURNAME: "client_name",
    ADDRESS: "client_address",
    PHONE: "client_phone",
}
_SEVERITY_OF: dict[int, Severity] = {TITLE_SURNAME: "warn"}
_AMBIGUOUS_PNR = 0xFFFFFFFF
# Marks a raw word may begin or end with and still be one plain word: none can join it to
# another word of a name (a hyphen, an apostrophe, a colon before a genitive s can, so they are
# not here).
_LEADS = frozenset('([{"“”«»')
_TAILS = frozenset('.,;:!?)]}"“”«»')
# A start from which no phrase goes on into the next raw word.
NEVER = 0
# Starts this long or shorter are searched for with a regular expression, longer ones with `str.find`.
_SHORT = 3
# Words remembered between messages (all the memory's entries together; ~500 bytes at most
# each) before the memory is started afresh: a mail's vocabulary fits many times over.
CACHE_LIMIT = 400_000
# Pairs of words whose answer is remembered (a pair costs more memory than a word: ~250 bytes).
PAIR_LIMIT = 100_000
# How far after the first word of a candidate a name, address or phone number may reach.
WINDOW = 240


def index_key(fingerprint_key: bytes) -> bytes:
    """The register's own key, derived from the fingerprint key: its hashes are no fingerprints."""
    return hmac.new(fingerprint_key, b"brukarvakt/register-index/v1", hashlib.sha256).digest()


def key_check(fingerprint_key: bytes) -> str:
    """Tells whether a register was built with this key, without revealing the key."""
    return hmac.new(fingerprint_key, b"brukarvakt/register-key-check/v1", hashlib.sha256).hexdigest()[:16]


def mix(node: int, token: int) -> int:
    """The hash of a phrase one word longer; never 0 (0 marks an empty slot)."""
    z = ((node ^ token) * _MIX) & MASK64
    return (z ^ (z >> 31)) or 1


class KeyTable:
    """64-bit keys to 32-bit values in two flat arrays (open addressing): 12 bytes a slot."""

    __slots__ = ("keys", "values", "size")

    def __init__(self, keys: array, values: array) -> None:  # type: ignore[type-arg]
        if len(keys) != len(values) or not keys:
            raise ValueError("key table: keys and values differ in length or are empty")
        self.keys = keys
        self.values = values
        self.size = len(keys)

    @classmethod
    def build(cls, entries: dict[int, int], load: float = 0.6) -> KeyTable:
        size = max(8, int(len(entries) / load) + 1)
        keys = array("Q", bytes(8 * size))
        values = array("I", bytes(4 * size))
        for key, value in entries.items():
            i = key % size
            while keys[i]:
                i = i + 1 if i + 1 < size else 0
            keys[i] = key
            values[i] = value
        return cls(keys, values)

    def get(self, key: int) -> int:
        keys = self.keys
        size = self.size
        i = key % size
        while True:
            k = keys[i]
            if k == key:
                return int(self.values[i])
            if not k:
                return 0
            i = i + 1 if i + 1 < size else 0

    def __len__(self) -> int:
        return sum(1 for k in self.keys if k)


@dataclass(frozen=True)
class RegisterTables:
    """Everything the register file holds: customer numbers and keyed hashes."""

    customer_numbers: tuple[str, ...]
    phrases: KeyTable
    personnummer: KeyTable


# ---------------------------------------------------------------------------------------------
# Turning names, streets and phone numbers into words.


def words(text: str) -> list[str]:
    """The folded words of a name or street, hyphens as spaces."""
    return [fold(m["word"]) for m in TOKEN.finditer(text) if m["word"]]


def e164(phone: str) -> str | None:
    """A phone number from the register in E.164 (`+46701740605`), or None if it is not valid."""
    import phonenumbers

    try:
        parsed = phonenumbers.parse(phone, "SE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


_STREET = re.compile(
    r"^\s*(?P<street>[^\d,]*?[^\W\d_][^\d,]*?)\s*(?P<number>\d+)\s*(?P<letter>[^\W\d_])?(?![^\W\d_])"
)


def street_address(address: str) -> tuple[list[str], str, str] | None:
    """(street words, house number, entrance letter) of `Storgatan 12 B, 123 45 Ort`; None if no number."""
    m = _STREET.match(address)
    if m is None:
        return None
    street = words(m["street"])
    if not street:
        return None
    return street, m["number"], fold(m["letter"] or "")


def phone_candidates(written: str) -> Iterator[tuple[str, int]]:
    """E.164 forms a written phone number may stand for, longest first, with how many characters they use.

    A run such as `070-174 06 05 2 st` holds more digits than the number: every cut at a
    separator is tried, longest first.
    """
    groups = list(_DIGITS.finditer(written))
    international = written.startswith("+") or written.startswith("00")
    for k in range(len(groups), 0, -1):
        digits = "".join(g.group() for g in groups[:k])
        if not 7 <= len(digits) <= 17:
            continue
        end = groups[k - 1].end()
        if international:
            digits = digits[2:] if written.startswith("00") else digits
            yield "+" + digits, end
            if digits.startswith("460"):  # +46 (0)70 ...: the trunk 0 written inside brackets
                yield "+46" + digits[3:], end
        elif digits.startswith("0"):
            yield "+46" + digits[1:], end


# ---------------------------------------------------------------------------------------------
# Building the register's tables.


def _first_name_variants(first_names: str) -> list[list[str]]:
    """The whole first-name field, and each first name alone (`Karl-Erik` keeps both its parts)."""
    variants = [words(first_names)] + [words(name) for name in first_names.split()]
    unique: list[list[str]] = []
    for v in variants:
        if v and v not in unique:
            unique.append(v)
    return unique


@dataclass
class _Builder:
    key: bytes
    entries: dict[int, int] = field(default_factory=dict)
    hashes: dict[str, int] = field(default_factory=dict)

    def token(self, word: str) -> int:
        h = self.hashes.get(word)
        if h is None:
            h = token_hash(self.key, word)
            self.hashes[word] = h
        return h

    def add(self, tokens: list[int], kind: int, split: int, client: int) -> None:
        node = ROOT
        for t in tokens[:-1]:
            node = mix(node, t)
            self.entries[node] = self.entries.get(node, 0) | _PREFIX
        node = mix(node, tokens[-1])
        new = kind << 1 | split << 4 | (client + 1) << _CLIENT_SHIFT
        old = self.entries.get(node, 0)
        if not old >> 1:
            self.entries[node] = old | new
        elif (old >> _CLIENT_SHIFT) != client + 1:
            # Two clients share the phrase: it is still a client's, but not one customer number.
            self.entries[node] = old & ((1 << _CLIENT_SHIFT) - 1)

    def add_phone(self, number: str, client: int) -> None:
        node = mix(ROOT_PHONE, self.token(number))
        old = self.entries.get(node, 0)
        new = PHONE << 1 | (client + 1) << _CLIENT_SHIFT
        self.entries[node] = new if not old or (old >> _CLIENT_SHIFT) == client + 1 else PHONE << 1

    def client(self, c: Client, index: int) -> None:
        surname = [self.token(w) for w in words(c.last_name)]
        if surname:
            for first in _first_name_variants(c.first_names):
                given = [self.token(w) for w in first]
                self.add(given + surname, FULL_NAME, len(given), index)
                self.add(surname + given, REVERSED_NAME, len(surname), index)
                self.add(surname + [COMMA] + given, REVERSED_NAME, len(surname), index)
            self.add([TITLE] + surname, TITLE_SURNAME, 1, index)
        street = street_address(c.address) if c.address else None
        if street:
            names, number, letter = street
            tokens = [self.token(w) for w in names] + [self.token(number)]
            self.add(tokens, ADDRESS, len(names), index)
            if letter:
                self.add(tokens + [self.token(letter)], ADDRESS, len(names), index)
        for phone in c.phones:
            self.add_phone(phone, index)


def token_hash(key: bytes, word: str) -> int:
    digest = hashlib.blake2b(word.encode("utf-8"), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


def personnummer_key(fp: str) -> int:
    """The table key of a personnummer's fingerprint (its first 64 bits)."""
    return int(fp[:16], 16) or 1


def build(clients: Iterable[Client], fingerprint_key: bytes) -> RegisterTables:
    """The register's tables from clients in clear; nothing readable survives into them."""
    builder = _Builder(index_key(fingerprint_key))
    numbers: list[str] = []
    by_pnr: dict[int, int] = {}
    for i, c in enumerate(clients):
        numbers.append(c.customer_number)
        builder.client(c, i)
        k = personnummer_key(fingerprint(fingerprint_key, c.personnummer))
        by_pnr[k] = i + 1 if k not in by_pnr else _AMBIGUOUS_PNR
    return RegisterTables(tuple(numbers), KeyTable.build(builder.entries), KeyTable.build(by_pnr))


# ---------------------------------------------------------------------------------------------
# Searching a text.


@dataclass(slots=True)
class _Token:
    start: int
    end: int  # end of the word itself
    end_genitive: int  # end including a genitive suffix such as `:s` or `'`
    written: str
    folded: str
    kind: str  # word | num | comma
    final: bool  # a genitive suffix ends the name here
    eligible: bool = True  # False for a common word in lower case


@dataclass
class _Cache:
    """What the search has learnt about raw words (as `str.split` gives them), kept between messages.

    `nonstarts`: words that begin nothing. `heads`: the words that begin something, each with
    the hash a phrase has after it when the word is one plain word (`Anna`, `(Anna`, `Anna,`),
    NEVER when no phrase can go on from it into the next word (`Anna.`), or None when only the
    walk can tell (digits, several words). `pairs`: whether a start goes on into the word after it.
    """

    nonstarts: set[str] = field(default_factory=set)
    heads: dict[str, int | None] = field(default_factory=dict)
    pairs: dict[tuple[str, str | None], bool] = field(default_factory=dict)
    hashes: dict[str, int] = field(default_factory=dict)
    # A following word -> its word's hashes (as written, and without a genitive s) if it is plain
    # enough to judge, (0, 0) if it can be no name's part, else None.
    seconds: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    # A short start -> a search for it as a whole word.
    finders: dict[str, Callable[[str, int], re.Match[str] | None]] = field(default_factory=dict)

    def size(self) -> int:
        return len(self.nonstarts) + len(self.heads) + len(self.hashes) + len(self.seconds)


@dataclass(frozen=True, slots=True)
class _Match:
    start: int
    end: int
    value: int
    canonical: str
    masked: str


class PersonnummerLookup:
    """Fingerprint of a personnummer -> customer number, for the engine's `customer_by_fingerprint`."""

    def __init__(self, tables: RegisterTables) -> None:
        self._tables = tables

    def get(self, fp: str, default: str | None = None) -> str | None:
        value = self._tables.personnummer.get(personnummer_key(fp))
        if not value or value == _AMBIGUOUS_PNR:
            return default
        return self._tables.customer_numbers[value - 1]


class RegisterIndex:
    """A loaded register, ready to search texts; shared by every message of a process."""

    def __init__(self, tables: RegisterTables, fingerprint_key: bytes) -> None:
        self.tables = tables
        self.key = index_key(fingerprint_key)
        # Keying BLAKE2b costs a compression of its own: a keyed state is copied per word instead.
        self._keyed = hashlib.blake2b(key=self.key, digest_size=8)
        self.customer_numbers = frozenset(tables.customer_numbers)
        self.by_personnummer = PersonnummerLookup(tables)
        self._cache = _Cache()
        self._title_prefix = bool(self.tables.phrases.get(mix(ROOT, TITLE)) & _PREFIX)

    def __len__(self) -> int:
        return len(self.tables.customer_numbers)

    def customer(self, value: int) -> str | None:
        client = value >> _CLIENT_SHIFT
        return self.tables.customer_numbers[client - 1] if client else None

    def _hash(self, cache: _Cache, word: str) -> int:
        h = cache.hashes.get(word)
        if h is None:
            h = cache.hashes[word] = self._token_hash_of(word)
        return h

    def _token_hash_of(self, word: str) -> int:
        hasher = self._keyed.copy()
        hasher.update(word.encode("utf-8"))
        return int.from_bytes(hasher.digest(), "little") or 1  # as `token_hash`

    def _begins_something(self, cache: _Cache, raw: str) -> bool:
        get = self.tables.phrases.get
        word = _plain_word(raw)
        if word is not None:  # most words: one fold and one keyed hash, no regular expression
            folded = fold(word)
            if folded in COMMON_WORD_NAMES and word.islower():
                return False  # the word, not the name
            if folded in _TITLES:
                return self._title_prefix
            # Not remembered: most new words begin nothing and are never hashed again.
            return bool(get(mix(ROOT, self._token_hash_of(folded))) & _PREFIX)
        if _PHONE_HINT.search(raw):
            return True
        for m in TOKEN.finditer(raw):
            word = m["word"]
            if not word or not _eligible(word):
                continue
            folded = fold(word)
            if folded in _TITLES:
                if self._title_prefix:
                    return True
                continue
            if get(mix(ROOT, self._hash(cache, folded))) & _PREFIX:
                return True
        return False

    def candidates(self, text: str) -> Iterator[tuple[int, int]]:
        """Spans of the raw words (as `str.split` cuts them) that may begin a client's identifier.

        Almost every word of a message has been seen before and begins nothing: set operations
        in C take the message's distinct words less those, and only a new word costs a hash. The
        occurrences of the words left are then found in the text in order, each search going on
        from the one before, so that the text is read once. A plain word that begins names is
        passed over when the word after it continues none of them (most of the time: "Hej
        Anna,"), an answer remembered for the pair.
        """
        cache = self._cache
        nonstarts, heads = cache.nonstarts, cache.heads
        words = text.split()
        # (`-`, not `-=`: the difference goes over the message's words, not over the memory's.)
        left = set(words) - nonstarts
        for raw in left.difference(heads):  # with a dict: a lookup per word of `left`
            if self._begins_something(cache, raw):
                heads[raw] = self._head(cache, raw)
            else:
                nonstarts.add(raw)
                left.discard(raw)
        if left:
            yield from self._occurrences(cache, text, words, left)
        if cache.size() > CACHE_LIMIT:
            self._cache = _Cache()  # a reader holding the old one still sees a consistent cache
        elif len(cache.pairs) > PAIR_LIMIT:
            cache.pairs.clear()  # answers only: asked again when needed

    def _occurrences(
        self, cache: _Cache, text: str, words: list[str], starts: set[str]
    ) -> Iterator[tuple[int, int]]:
        """Spans of the occurrences of `starts` in `words` that may begin something, in order.

        Each occurrence is searched for from the end of the one before (whole words only), so
        that the text is read once; the word after it is read from the text, not counted in
        `words` (a count per word costs more than all the rest).
        """
        heads, pairs = cache.heads, cache.pairs
        length = len(text)
        find = text.find
        following = _FOLLOWING.match
        pos = 0
        finders = cache.finders
        for raw in filter(starts.__contains__, words):
            if len(raw) <= _SHORT:
                # A short word stands inside many others (`de` in `det`): searched in C, whole.
                finder = finders.get(raw)
                if finder is None:
                    word = re.escape(raw)
                    finder = finders[raw] = re.compile(rf"{word}(?<!\S{word})(?!\S)").search
                m = finder(text, pos)
                if m is None:
                    return  # cannot happen: str.split and `\s` agree on what a space is
                start, end = m.span()
            else:
                while (pos := find(raw, pos)) >= 0:
                    end = pos + len(raw)
                    if (pos == 0 or text[pos - 1].isspace()) and (end == length or text[end].isspace()):
                        break
                    pos += 1
                if pos < 0:
                    return  # cannot happen: str.split and str.isspace agree on what a space is
                start = pos
            pos = end
            head = heads.get(raw)
            if head == NEVER:  # `Anna.`: nothing to remember about the word after it
                if not self._may_continue(cache, raw, None):
                    continue
            elif head is not None:
                after = following(text, end)
                pair = (raw, after[1] if after else None)
                goes_on = pairs.get(pair)
                if goes_on is None:
                    goes_on = pairs[pair] = self._may_continue(cache, raw, pair[1])
                if not goes_on:
                    continue
            yield start, end

    def _head(self, cache: _Cache, raw: str) -> int | None:
        """The hash after a start that is one plain word (see `_Cache.heads`), NEVER, or None."""
        word = _plain_word(raw)
        if word is None or not _eligible(word):
            return None  # digits, punctuation or several words: let the walk decide
        folded = fold(word)
        title = folded in _TITLES
        node = mix(ROOT, TITLE if title else self._hash(cache, folded))
        tail = raw[-1]
        if tail.isalpha():
            return node
        if tail == ",":  # `Andersson, Anna`
            return mix(node, COMMA)
        if tail == "." and title:  # `Hr. Holm`
            return node
        return NEVER  # `Anna.`, `Anna)`: no gap between names crosses these

    def _may_continue(self, cache: _Cache, raw: str, following: str | None) -> bool:
        """False only when `raw` is one plain word and no phrase goes on from it into `following`."""
        head = cache.heads.get(raw)
        if head is None:
            head = self._head(cache, raw)
        if head is None:
            return True
        if head == NEVER or following is None:
            return False  # a name has two words at least
        second = cache.seconds.get(following, (-1, -1))
        if second == (-1, -1):
            m = _LEADING_WORD.match(following)
            if m is None:
                digits = _LEADING_DIGITS.match(following)  # a house number: `Storgatan 12`
                second = (self._hash(cache, digits.group()), 0) if digits else None
            elif not _eligible(m["word"]):
                second = (0, 0)
            else:
                folded = fold(m["word"])
                alt = self._hash(cache, folded[:-1]) if len(folded) > 2 and folded.endswith("s") else 0
                second = (self._hash(cache, folded), alt)
            cache.seconds[following] = second
        if second is None:
            return True
        if second == (0, 0):
            return False
        get = self.tables.phrases.get
        return bool(get(mix(head, second[0])) or (second[1] and get(mix(head, second[1]))))

    def search(self, text: str) -> list[tuple[_Match, int]]:
        """Every match in the text, overlaps resolved (leftmost, then longest), as (match, value).

        Leftmost first keeps a list of names apart: in "Tyra Quarnlid, Ebba Quarnlid" the names
        are the two first-last pairs, not "Quarnlid, Ebba".
        """
        matches: dict[tuple[int, int], tuple[_Match, int]] = {}
        for start, end in self.candidates(text):
            for m, value in self._at(text, start, end):
                matches.setdefault((m.start, m.end), (m, value))
        chosen: list[tuple[_Match, int]] = []
        taken: list[tuple[int, int]] = []
        for m, value in sorted(matches.values(), key=lambda mv: (mv[0].start, mv[0].start - mv[0].end)):
            if all(m.end <= s or m.start >= e for s, e in taken):
                chosen.append((m, value))
                taken.append((m.start, m.end))
        return sorted(chosen, key=lambda mv: mv[0].start)

    def _at(self, text: str, start: int, end: int) -> Iterator[tuple[_Match, int]]:
        """Matches that begin in the raw word text[start:end]."""
        if _PHONE_HINT.search(text, start, end):
            yield from self._phones(text, start, end)
            if not _LETTER.search(text, start, end):
                return  # digits and signs only (`06`, `+46`): no word of a name begins here
        tokens = _Tokens(text, start, min(len(text), end + WINDOW))
        i = 0
        while (t := tokens.get(i)) is not None and t.start < end:
            if t.kind == "word":
                yield from self._walk(text, tokens, i)
            i += 1

    def _token_hash(self, t: _Token, cache: _Cache) -> int:
        if t.kind == "comma":
            return COMMA
        if t.kind == "word" and t.folded in _TITLES:
            return TITLE
        return self._hash(cache, t.folded)

    def _walk(self, text: str, tokens: _Tokens, first: int) -> Iterator[tuple[_Match, int]]:
        get = self.tables.phrases.get
        cache = self._cache
        node = ROOT
        j = first - 1
        prev: _Token | None = None
        while (t := tokens.get(j := j + 1)) is not None:
            if prev is not None:
                gap = _TITLE_GAP if prev.kind == "word" and prev.folded in _TITLES else _GAP
                if gap.fullmatch(text, prev.end_genitive, t.start) is None:
                    return
            if not t.eligible:
                return
            h = self._token_hash(t, cache)
            if t.kind != "comma" and j > first:
                value = get(mix(node, h))
                if value >> 1 & 7:
                    yield self._match(text, tokens.span(first, j + 1), value, genitive=False), value
                elif t.kind == "word" and not t.final and len(t.folded) > 2 and t.folded.endswith("s"):
                    value = get(mix(node, self._hash(cache, t.folded[:-1])))
                    if value >> 1 & 7:
                        yield self._match(text, tokens.span(first, j + 1), value, genitive=True), value
            if t.final:
                return
            node = mix(node, h)
            if not get(node) & _PREFIX:
                return
            prev = t

    def _match(self, text: str, tokens: list[_Token], value: int, genitive: bool) -> _Match:
        kind = value >> 1 & 7
        split = value >> 4 & 15
        if kind == TITLE_SURNAME:
            tokens = tokens[1:]
        tokens = [t for t in tokens if t.kind != "comma"]
        written = [t.written for t in tokens]
        if genitive:
            written[-1] = written[-1][:-1].rstrip("'’ʼ")
        # Within one part of a name a written hyphen stays (`Karl-Erik`); anything else is a space.
        joins = [
            "-" if "-" in text[a.end : b.start] else " " for a, b in zip(tokens, tokens[1:], strict=False)
        ]
        start, end = tokens[0].start, tokens[-1].end_genitive
        if kind in (FULL_NAME, REVERSED_NAME):
            lead, trail = _join(written[:split], joins), _join(written[split:], joins[split:])
            first, surname = (lead, trail) if kind == FULL_NAME else (trail, lead)
            name = f"{first} {surname}"
            return _Match(start, end, value, name.casefold(), mask_name(name))
        if kind == TITLE_SURNAME:
            surname = _join(written, joins)
            return _Match(start, end, value, surname.casefold(), mask_name(surname))
        street, number = " ".join(written[:split]), "".join(written[split:])
        return _Match(
            start, end, value, f"{street} {number}".casefold(), f"{mask_name(street)} {'*' * len(number)}"
        )

    def _phones(self, text: str, start: int, end: int) -> Iterator[tuple[_Match, int]]:
        limit = min(len(text), end + 40)
        get = self.tables.phrases.get
        cache = self._cache
        for m in _PHONE.finditer(text, start, limit):
            if m.start() >= end:
                break
            if m.end() == limit and limit < len(text):
                continue  # cut by the window: read again from its own word
            for number, used in phone_candidates(m.group()):
                value = get(mix(ROOT_PHONE, self._hash(cache, number)))
                if value >> 1 & 7 == PHONE:
                    masked = number[:5] + "*" * (len(number) - 5)
                    yield _Match(m.start(), m.start() + used, value, number, masked), value
                    break

    def detect(self, text: NormalizedText) -> Iterator[Hit]:
        for m, value in self.search(text.text):
            kind = value >> 1 & 7
            start, end = text.span_to_original(m.start, m.end)
            yield Hit(
                rule=RULE,
                kind=_KIND_OF[kind],
                severity=_SEVERITY_OF.get(kind, "block"),
                start=start,
                end=end,
                canonical=m.canonical,
                masked=m.masked,
                customer_number=self.customer(value),
            )


def _plain_word(raw: str) -> str | None:
    """The one word a raw word is, between an opening bracket or quote and a closing mark; else None.

    Such a raw word is exactly one word token (`[^\\W\\d_]+` holds every letter), so it can be
    judged without the tokenizer.
    """
    if raw.isalpha():
        return raw
    start = 1 if raw[0] in _LEADS else 0
    end = -1 if raw[-1] in _TAILS else len(raw)
    word = raw[start:end]
    return word if word.isalpha() else None


def _eligible(written: str) -> bool:
    """A common word in lower case is the word, not a name."""
    return not (written.islower() and fold(written) in COMMON_WORD_NAMES)


def _join(words_: list[str], separators: list[str]) -> str:
    out = ""
    for i, w in enumerate(words_):
        out += w if i == 0 else separators[i - 1] + w
    return out


def _token(m: re.Match[str]) -> _Token:
    if m["word"]:
        word = m["word"]
        folded = fold(word)
        eligible = not (word.islower() and folded in COMMON_WORD_NAMES)
        return _Token(m.start(), m.end("word"), m.end(), word, folded, "word", bool(m["gen"]), eligible)
    if m["num"]:
        return _Token(m.start(), m.end(), m.end(), m["num"], m["num"], "num", False)
    return _Token(m.start(), m.end(), m.end(), ",", ",", "comma", False)


class _Tokens:
    """The tokens from a position on, read only as far as a walk goes (most stop after two)."""

    __slots__ = ("_found", "_source")

    def __init__(self, text: str, start: int, limit: int) -> None:
        self._source = TOKEN.finditer(text, start, limit)
        self._found: list[_Token] = []

    def get(self, i: int) -> _Token | None:
        found = self._found
        while len(found) <= i:
            m = next(self._source, None)
            if m is None:
                return None
            found.append(_token(m))
        return found[i]

    def span(self, start: int, end: int) -> list[_Token]:
        return self._found[start:end]
