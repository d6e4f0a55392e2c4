"""The register's tables: keys derived from the fingerprint key, keyed hashes of phrases, and their build."""

from __future__ import annotations

import hashlib
import hmac
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from models.register import Client
from rules.fingerprint import fingerprint
from rules.register.folding import words
from rules.register.normalise import street_address

MASK64 = (1 << 64) - 1
_MIX = 0x9E3779B97F4A7C15
# Starting points of the hashed phrases, and the stand-ins for words that are not names.
ROOT = 0x5BD1E9955BD1E995
ROOT_PHONE = 0x27D4EB2F165667C5
TITLE = 0x94D049BB133111EB
COMMA = 0xBF58476D1CE4E5B9

# What a phrase in the register is: bits 1-3 of its value; bits 4-7 hold where its second part
# begins (the surname of `Förnamn Efternamn`, the number of `Storgatan 12`).
FULL_NAME, REVERSED_NAME, TITLE_SURNAME, ADDRESS, PHONE = 1, 2, 3, 4, 5
PREFIX = 1  # bit 0: the phrase goes on in some client's name
CLIENT_SHIFT = 8  # bits 8-31: client number + 1; 0 when the phrase belongs to several clients
AMBIGUOUS_PNR = 0xFFFFFFFF


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


def _first_name_variants(first_names: str) -> list[list[str]]:
    """The whole first-name field, each first name alone, and each part of a hyphenated one alone.

    `Karl-Erik Ansgar` gives `karl erik ansgar`, `karl erik`, `ansgar`, `karl` and `erik`: staff
    call Cecilia-Monica Johansson "Monica Johansson" as often as by her whole name.
    """
    whole = words(first_names)
    variants = [whole] + [words(name) for name in first_names.split()] + [[part] for part in whole]
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
            self.entries[node] = self.entries.get(node, 0) | PREFIX
        node = mix(node, tokens[-1])
        new = kind << 1 | split << 4 | (client + 1) << CLIENT_SHIFT
        old = self.entries.get(node, 0)
        if not old >> 1:
            self.entries[node] = old | new
        elif (old >> CLIENT_SHIFT) != client + 1:
            # Two clients share the phrase: it is still a client's, but not one customer number.
            self.entries[node] = old & ((1 << CLIENT_SHIFT) - 1)

    def add_phone(self, number: str, client: int) -> None:
        node = mix(ROOT_PHONE, self.token(number))
        old = self.entries.get(node, 0)
        new = PHONE << 1 | (client + 1) << CLIENT_SHIFT
        self.entries[node] = new if not old or (old >> CLIENT_SHIFT) == client + 1 else PHONE << 1

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
        by_pnr[k] = i + 1 if k not in by_pnr else AMBIGUOUS_PNR
    return RegisterTables(tuple(numbers), KeyTable.build(builder.entries), KeyTable.build(by_pnr))


class PersonnummerLookup:
    """Fingerprint of a personnummer -> customer number, for the engine's `customer_by_fingerprint`."""

    def __init__(self, tables: RegisterTables) -> None:
        self._tables = tables

    def get(self, fp: str, default: str | None = None) -> str | None:
        value = self._tables.personnummer.get(personnummer_key(fp))
        if not value or value == AMBIGUOUS_PNR:
            return default
        return self._tables.customer_numbers[value - 1]
