"""The benchmark corpus: reproducible, its ground truth right, and the engine exact on it.

The last tests double as an accuracy test of the rules engine on realistic mail: every planted
identifier, in every written form, is found where it was planted, and none of the thousands of
hard negatives (phone numbers, dates, OCR numbers, organisationsnummer, ...) is.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from bench import corpus
from rules import engine
from tests.conftest import TEST_KEY, TODAY, skatteverket

# Enough identifiers that every written form is planted at least once.
SHARE = 0.3
COUNT = 120


@cache
def sources() -> corpus.Sources:
    return corpus.load_sources()


@cache
def documents() -> tuple[corpus.Document, ...]:
    return tuple(corpus.generate(COUNT, identifier_share=SHARE, sources=sources()))


def scan(text: str) -> list[tuple[int, int]]:
    ctx = engine.ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
    return [(h.start, h.end) for h in engine.hits(text, ctx)]


def test_the_same_seed_gives_the_same_corpus_byte_for_byte() -> None:
    first = corpus.generate(30, seed=7, sources=sources())
    second = corpus.generate(30, seed=7, sources=sources())
    assert first == second


def test_another_seed_gives_another_corpus() -> None:
    assert corpus.generate(5, seed=7, sources=sources()) != corpus.generate(5, seed=8, sources=sources())


def test_every_text_is_mail_sized() -> None:
    sizes = [len(d.text.encode("utf-8")) for d in documents()]
    assert min(sizes) >= corpus.MIN_BYTES
    assert max(sizes) <= corpus.MAX_BYTES
    assert max(sizes) > 10 * min(sizes), "sizes spread from short notes to long threads"


def test_a_smaller_size_range_gives_texts_within_it() -> None:
    small = (1536, 30 * 1024)
    sizes = [len(d.text.encode("utf-8")) for d in corpus.generate(60, sizes=small, sources=sources())]
    assert min(sizes) >= small[0]
    assert max(sizes) <= small[1]


def test_about_one_text_in_a_hundred_carries_identifiers_by_default() -> None:
    docs = corpus.generate(300, sources=sources())
    carriers = sum(1 for d in docs if d.planted)
    assert carriers == 3
    assert all(1 <= len(d.planted) <= 3 for d in docs if d.planted)


def test_planted_identifiers_are_skatteverket_test_numbers_only() -> None:
    allowed = set(skatteverket()["personnummer"]) | set(skatteverket()["samordningsnummer"])
    planted = [p for d in documents() for p in d.planted]
    assert planted
    assert {p.canonical for p in planted} <= allowed


def test_the_ground_truth_points_at_the_identifier_as_written() -> None:
    for doc in documents():
        for p in doc.planted:
            written = doc.text[p.start : p.end]
            digits = "".join(str(int(ch)) for ch in written if ch.isdecimal())
            assert digits in (p.canonical, p.canonical[2:]), (doc.name, p.form, written)
            assert written[0].isdecimal() and written[-1].isdecimal()


def test_every_written_form_is_planted() -> None:
    forms = Counter(p.form for d in documents() for p in d.planted)
    assert set(forms) == {name for name, _ in corpus.FORMS} | {corpus.PLUS_FORM[0]}


def test_the_plus_form_is_used_only_for_people_a_hundred_years_old() -> None:
    plus = [p for d in documents() for p in d.planted if p.form == corpus.PLUS_FORM[0]]
    assert plus and all(int(p.canonical[:4]) <= corpus.OLDEST_BIRTH_YEAR_FOR_PLUS for p in plus)


def test_every_kind_of_hard_negative_is_written() -> None:
    kinds = Counter(n.kind for d in documents() for n in d.negatives)
    expected = {
        "phone",
        "phone-shaped-test-number",
        "date",
        "timestamp",
        "ocr",
        "reference-with-context",
        "bankgiro",
        "plusgiro",
        "orgnr",
        "iban",
        "customer-number",
        "order-number",
        "future-date",
        "longer-run",
        "amount",
        "postcode",
    }
    assert set(kinds) == expected
    assert kinds["phone"] > 100


def test_phone_numbers_come_from_the_ranges_pts_keeps_for_fiction() -> None:
    fiction = re.compile(r"(?:70174060[5-9]|7017406[1-9]\d|846500[45]\d\d|313900[6]\d\d)$")
    phones = [d.text[n.start : n.end] for d in documents() for n in d.negatives if n.kind == "phone"]
    for phone in phones:
        digits = re.sub(r"\D", "", phone.replace("(0)", ""))
        national = digits.removeprefix("0046").removeprefix("46").removeprefix("0")
        assert fiction.match(national), phone


def test_made_up_numbers_are_invalid_as_identity_numbers_on_purpose() -> None:
    # The independent check the generator uses accepts every real test number...
    for number in skatteverket()["personnummer"][:200] + skatteverket()["samordningsnummer"][:50]:
        assert corpus.could_be_identity(number[2:])
    # ...and an organisationsnummer never passes: its month is 20 or more.
    rng = corpus.random.Random(1)
    assert not any(corpus.could_be_identity(corpus._orgnr(rng)) for _ in range(500))


def test_the_written_folder_holds_the_texts_and_the_truth_lies_beside_it(tmp_path: Path) -> None:
    docs = corpus.generate(12, identifier_share=0.5, sources=sources())
    folder = corpus.write(docs, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(d.name for d in docs)
    for doc in docs:
        assert (folder / doc.name).read_bytes().decode("utf-8") == doc.text
    truth = json.loads((tmp_path / "ground_truth.json").read_text(encoding="utf-8"))
    for doc in docs:
        assert [(p["start"], p["end"]) for p in truth[doc.name]["identifiers"]] == [
            (p.start, p.end) for p in doc.planted
        ]


@pytest.mark.parametrize("index", range(COUNT))
def test_the_engine_finds_exactly_the_planted_identifiers(index: int) -> None:
    doc = documents()[index]
    found = scan(doc.text)
    assert found == [(p.start, p.end) for p in doc.planted], [
        (doc.text[max(0, s - 30) : e + 10]) for s, e in found
    ]


def test_no_hard_negative_gives_a_finding() -> None:
    for doc in documents():
        found = scan(doc.text)
        for n in doc.negatives:
            assert not any(s < n.end and n.start < e for s, e in found), (n.kind, doc.text[n.start : n.end])
