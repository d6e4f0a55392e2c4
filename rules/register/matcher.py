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
  So a name written all in lower case counts, common words and all, when its surname holds a
  word that is not a common word ("stig sahlberg", "pär strand-eriksson"), never "bo lind".
  Words are whole tokens, so a name never matches inside another word (`Bergström`, `ekonomi`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from models.findings import Kind, Severity
from rules.fingerprint import mask_name
from rules.hits import Hit
from rules.normalize import NormalizedText
from rules.register.folding import (
    COMMON_WORD_NAMES,
    TITLES,
    TOKEN,
    WRITTEN_ENDINGS,
    Token,
    Tokens,
    eligible,
    fold,
    holds_lower_case_name,
    plain_word,
)
from rules.register.keys import (
    ADDRESS,
    CLIENT_SHIFT,
    COMMA,
    FULL_NAME,
    PHONE,
    PREFIX,
    REVERSED_NAME,
    ROOT,
    ROOT_PHONE,
    TITLE,
    TITLE_SURNAME,
    PersonnummerLookup,
    RegisterTables,
    index_key,
    mix,
)
from rules.register.normalise import WRITTEN_PHONE, phone_candidates

RULE = "client-register"

# What may stand between two words of one name or address: spaces, one line break (with a
# quote prefix), a hyphen or underscore (`Karl-Erik`, `anna_andersson.pdf`), a dot
# (`anna.andersson@`), or nothing (`12B`).
_GAP = re.compile(r"[ \t\u00a0\u202f]*(?:\r?\n[ \t>]*)?|[ \t]*[-\u2010-\u2015_][ \t]*|\.")
# After a title, also an abbreviation's dot: `Hr. Berg`.
_TITLE_GAP = re.compile(r"\.?[ \t\u00a0\u202f]*(?:\r?\n[ \t>]*)?")
_PHONE_HINT = re.compile(r"(?<!\d)[+0]\d")
# A raw word that is one word token and nothing else, and the word a raw word begins with when
# what follows it cannot join it into another token (an apostrophe, `:s`, digits).
_LEADING_WORD = re.compile(r"(?P<word>[^\W\d_]+)(?![\w'’ʼ:])")
_LEADING_DIGITS = re.compile(r"\d+")  # (match, not search: the first token of a raw word)
_LETTER = re.compile(r"[^\W\d_]")
# The raw word after a position (`\s` is what `str.split` splits at).
_FOLLOWING = re.compile(r"\s+(\S+)")

_KIND_OF: dict[int, Kind] = {
    FULL_NAME: "client_name",
    REVERSED_NAME: "client_name",
    TITLE_SURNAME: "client_name",
    ADDRESS: "client_address",
    PHONE: "client_phone",
}
_SEVERITY_OF: dict[int, Severity] = {TITLE_SURNAME: "warn"}
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
# How far before a word in lower case a common word that begins a name with it is looked for.
_LOOK_BACK = 32
# Not yet in `_Cache.seconds` (None there means: only the walk can tell).
_UNSEEN = (-1, -1, False)
_NONE: frozenset[str] = frozenset()


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
    # A common word in lower case and the start after it -> whether a name goes on from one into
    # the other (see `RegisterIndex._lower_case_start`).
    looked_back: dict[tuple[str, str], bool] = field(default_factory=dict)
    hashes: dict[str, int] = field(default_factory=dict)
    # A following word -> its word's hashes (as written, and without a genitive s) and whether it
    # is a common word in lower case, if it is plain enough to judge; else None.
    seconds: dict[str, tuple[int, int, bool] | None] = field(default_factory=dict)
    # A short start -> a search for it as a whole word.
    finders: dict[str, Callable[[str, int], re.Match[str] | None]] = field(default_factory=dict)
    # A start in lower case -> the letters a common word that begins a phrase going on into it may
    # end with, as written (most starts: none).
    endings_before: dict[str, frozenset[str]] = field(default_factory=dict)
    endings_after_word: dict[tuple[int, int], frozenset[str]] = field(default_factory=dict)

    def size(self) -> int:
        return (
            len(self.nonstarts)
            + len(self.heads)
            + len(self.hashes)
            + len(self.seconds)
            + len(self.endings_before)
            + len(self.endings_after_word)
        )


@dataclass(frozen=True, slots=True)
class _Match:
    start: int
    end: int
    value: int
    canonical: str
    masked: str


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
        self._title_head = mix(ROOT, TITLE)
        self._title_prefix = bool(self.tables.phrases.get(self._title_head) & PREFIX)
        # The common words that begin some client's name, with the hash after each (a few hundred
        # at most): what a lower-case name may begin with.
        starts = ((w, mix(ROOT, self._token_hash_of(w))) for w in sorted(COMMON_WORD_NAMES))
        self._common_starts = tuple((w, node) for w, node in starts if self.tables.phrases.get(node) & PREFIX)
        self._common_endings = frozenset().union(*(WRITTEN_ENDINGS[w[-1]] for w, _ in self._common_starts))

    def __len__(self) -> int:
        return len(self.tables.customer_numbers)

    def customer(self, value: int) -> str | None:
        client = value >> CLIENT_SHIFT
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
        word = plain_word(raw)
        if word is not None:  # most words: one fold and one keyed hash, no regular expression
            folded = fold(word)
            if folded in COMMON_WORD_NAMES and word.islower():
                # The word, not the name; a lower-case name it begins (`stig sahlberg`) is found
                # from the word after it (see `_lower_case_start`): the word itself is too frequent.
                return False
            if folded in TITLES:
                return self._title_prefix
            # Not remembered: most new words begin nothing and are never hashed again.
            if get(mix(ROOT, self._token_hash_of(folded))) & PREFIX:
                return True
            # `sahlbergs` in "stig sahlbergs": the genitive a lower-case name ends with is where
            # `_lower_case_start` finds the common word before it.
            return (
                word.islower()
                and len(folded) > 2
                and folded.endswith("s")
                and folded[:-1] not in COMMON_WORD_NAMES
                and bool(get(mix(ROOT, self._token_hash_of(folded[:-1]))) & PREFIX)
            )
        if _PHONE_HINT.search(raw):
            return True
        lower_case_name = None  # `strand-eriksson`: its common word may begin a lower-case name
        for m in TOKEN.finditer(raw):
            word = m["word"]
            if not word:
                continue
            if not eligible(word):
                if lower_case_name is None:
                    lower_case_name = holds_lower_case_name(raw)
                if not lower_case_name:
                    continue
            folded = fold(word)
            if folded in TITLES:
                if self._title_prefix:
                    return True
                continue
            if get(mix(ROOT, self._hash(cache, folded))) & PREFIX:
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
        elif len(cache.pairs) + len(cache.looked_back) > PAIR_LIMIT:
            cache.pairs.clear()  # answers only: asked again when needed
            cache.looked_back.clear()

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
        endings_before = cache.endings_before
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
            if raw.islower() and start > 1:  # it may end a lower-case name that begins with a common word
                endings = endings_before.get(raw)
                if endings is None:
                    endings = endings_before[raw] = self._endings_before(cache, raw)
                # The letter before a plain space rules out most words before it without a call.
                if (
                    endings
                    and ((c := text[start - 2]) in endings or c.isspace() or c == ">")
                    and (before := self._lower_case_start(cache, text, start, raw, endings))
                ):
                    yield before
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

    def _lower_case_start(
        self, cache: _Cache, text: str, start: int, raw: str, endings: frozenset[str]
    ) -> tuple[int, int] | None:
        """The span of a common word in lower case that begins a name going on into `raw`, at `start`.

        A common word in lower case begins no candidate (`på` and `sig` would be read thousands of
        times for nothing), but the name it may begin goes on into a word that does: `sahlberg` in
        "stig sahlberg". Such a word looks back at the word before it, when that word may end with
        one of `endings` (see `_endings_before`). The walk decides whether the two are a name; the
        gap between them is judged there too.
        """
        # The word before, found a letter at a time: cutting and splitting the text costs more.
        lo = max(0, start - _LOOK_BACK)
        end = start - 1  # (`raw` follows a space, as `str.split` cut it)
        while end > lo and (text[end - 1].isspace() or text[end - 1] == ">"):
            end -= 1  # the gap, with a quote prefix after a line break: `stig\n> sahlberg`
        if end <= lo or text[end - 1] not in endings:
            return None
        first = end - 1
        while first > lo and not text[first - 1].isspace():
            first -= 1
        if first == lo and lo > 0 and not text[lo - 1].isspace():
            return None  # the end of a longer word, cut by the look back
        previous = text[first:end]
        pair = (previous, raw)
        goes_on = cache.looked_back.get(pair)
        if goes_on is None:
            word = plain_word(previous)
            goes_on = cache.looked_back[pair] = (
                word is not None
                and word.islower()
                and fold(word) in COMMON_WORD_NAMES
                and self._may_continue(cache, previous, raw)
            )
        return (first, end) if goes_on else None

    def _endings_before(self, cache: _Cache, raw: str) -> frozenset[str]:
        """The last letters, as written, of the common words that begin a phrase going on into `raw`."""
        second = self._second(cache, raw)
        if second is None:  # only the walk can tell
            return self._common_endings
        h, alt, _ = second
        # `de`, `de,` and `(de` go on the same phrases: asked once (a question per common word).
        endings = cache.endings_after_word.get((h, alt))
        if endings is None:
            get = self.tables.phrases.get
            found = [
                w for w, node in self._common_starts if get(mix(node, h)) or (alt and get(mix(node, alt)))
            ]
            endings = frozenset().union(*(WRITTEN_ENDINGS[w[-1]] for w in found)) if found else _NONE
            cache.endings_after_word[(h, alt)] = endings
        return endings

    def _head(self, cache: _Cache, raw: str) -> int | None:
        """The hash after a start that is one plain word (see `_Cache.heads`), NEVER, or None."""
        word = plain_word(raw)
        if word is None:
            return None  # digits, punctuation or several words: let the walk decide
        folded = fold(word)
        title = folded in TITLES
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
        second = self._second(cache, following)
        if second is None:
            return True
        h, alt, common = second
        if common and not (raw.islower() or head == self._title_head):
            return False  # a common word in lower case goes on only a name written in lower case
        get = self.tables.phrases.get
        return bool(get(mix(head, h)) or (alt and get(mix(head, alt))))

    def _second(self, cache: _Cache, following: str) -> tuple[int, int, bool] | None:
        """What `_Cache.seconds` holds for a word that may go on a phrase."""
        second = cache.seconds.get(following, _UNSEEN)
        if second is _UNSEEN:
            m = _LEADING_WORD.match(following)
            if m is None:
                digits = _LEADING_DIGITS.match(following)  # a house number: `Storgatan 12`
                second = (self._hash(cache, digits.group()), 0, False) if digits else None
            else:
                folded = fold(m["word"])
                alt = self._hash(cache, folded[:-1]) if len(folded) > 2 and folded.endswith("s") else 0
                second = (self._hash(cache, folded), alt, not eligible(m["word"]))
            cache.seconds[following] = second
        return second

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
        tokens = Tokens(text, start, min(len(text), end + WINDOW))
        i = 0
        while (t := tokens.get(i)) is not None and t.start < end:
            if t.kind == "word":
                yield from self._walk(text, tokens, i)
            i += 1

    def _token_hash(self, t: Token, cache: _Cache) -> int:
        if t.kind == "comma":
            return COMMA
        if t.kind == "word" and t.folded in TITLES:
            return TITLE
        return self._hash(cache, t.folded)

    def _walk(self, text: str, tokens: Tokens, first: int) -> Iterator[tuple[_Match, int]]:
        get = self.tables.phrases.get
        cache = self._cache
        node = ROOT
        j = first - 1
        prev: Token | None = None
        common = False  # a common word in lower case on the way: see `_lower_case_name`
        while (t := tokens.get(j := j + 1)) is not None:
            if prev is not None:
                gap = _TITLE_GAP if prev.kind == "word" and prev.folded in TITLES else _GAP
                if gap.fullmatch(text, prev.end_genitive, t.start) is None:
                    return
            common = common or not t.eligible
            h = self._token_hash(t, cache)
            if t.kind != "comma" and j > first:
                value = get(mix(node, h))
                genitive = (
                    not value >> 1 & 7
                    and t.kind == "word"
                    and not t.final
                    and len(t.folded) > 2
                    and t.folded.endswith("s")
                )
                if genitive:
                    value = get(mix(node, self._hash(cache, t.folded[:-1])))
                if value >> 1 & 7:
                    span = tokens.span(first, j + 1)
                    # `bergs`, the genitive of a common word, is judged as `berg`.
                    common_here = common or (genitive and not eligible(t.written[:-1]))
                    if not common_here or _lower_case_name(span, value, genitive):
                        yield self._match(text, span, value, genitive), value
            if t.final:
                return
            node = mix(node, h)
            if not get(node) & PREFIX:
                return
            prev = t

    def _match(self, text: str, tokens: list[Token], value: int, genitive: bool) -> _Match:
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
        for m in WRITTEN_PHONE.finditer(text, start, limit):
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


def _lower_case_name(tokens: list[Token], value: int, genitive: bool) -> bool:
    """Whether a phrase with a common word in lower case is a name all the same.

    It is when it is a name written all in lower case whose surname holds a word that is not a
    common word: "stig sahlberg" and "pär strand-eriksson" are people, "bo lind" is a verb and a
    tree, and "Sigvard berg" or "stig Sahlberg" are a word beside a name. An address never is.
    """
    kind = value >> 1 & 7
    split = value >> 4 & 15
    words = [t for t in tokens if t.kind == "word"]
    if kind == TITLE_SURNAME:
        surname = words[1:]  # after the title, which may be written as a sentence begins
        given: list[Token] = []
    elif kind == FULL_NAME:
        given, surname = words[:split], words[split:]
    elif kind == REVERSED_NAME:
        surname, given = words[:split], words[split:]
    else:
        return False
    last = tokens[-1]
    return all(t.written.islower() for t in given + surname) and any(
        eligible(t.written[:-1]) if genitive and t is last else t.eligible for t in surname
    )


def _join(words_: list[str], separators: list[str]) -> str:
    out = ""
    for i, w in enumerate(words_):
        out += w if i == 0 else separators[i - 1] + w
    return out
