"""The client register detector: known clients' names, phones and addresses, found by keyed hashes."""

from __future__ import annotations

import re
from functools import cache

import pytest

from models.findings import Segment
from models.register import Client
from rules import engine
from rules.engine import ScanContext
from rules.fingerprint import fingerprint
from rules.hits import Hit
from rules.normalize import normalize
from rules.register import matcher
from rules.register.folding import fold
from rules.register.keys import build, index_key, token_hash
from rules.register.matcher import RegisterIndex
from rules.register.normalise import e164
from tests.conftest import TEST_DATA, TEST_KEY, TODAY
from tests.rules.register_clients import ROWS, personnummer


def clients(rows: tuple[tuple[str, str, str, int, str, str], ...] = ROWS) -> list[Client]:
    return [
        Client(
            customer_number=r[0],
            first_names=r[1],
            last_name=r[2],
            personnummer=personnummer(r),
            phones=(p,) if (p := e164(r[4]) if r[4] else None) else (),
            address=r[5] or None,
        )
        for r in rows
    ]


@cache
def index() -> RegisterIndex:
    return RegisterIndex(build(clients(), TEST_KEY), TEST_KEY)


def found(text: str, idx: RegisterIndex | None = None) -> list[Hit]:
    return list((idx or index()).detect(normalize(text)))


def one(text: str) -> Hit:
    hits = found(text)
    assert len(hits) == 1, f"{text!r}: {hits}"
    return hits[0]


# ---------------------------------------------------------------------------------------------
# The held-out set: every client in every written form, in ordinary Swedish sentences.

NAME_FORMS = (
    # (customer number, sentence, the name as it stands in the sentence)
    ("20001", "Kan någon hjälpa Karl-Erik Ansgar Tjärnlöv med inköpen?", "Karl-Erik Ansgar Tjärnlöv"),
    ("20001", "Karl-Erik Tjärnlöv har fått nytt biståndsbeslut.", "Karl-Erik Tjärnlöv"),
    ("20001", "Karl Erik Tjärnlöv har fått nytt biståndsbeslut.", "Karl Erik Tjärnlöv"),
    ("20001", "Ansgar Tjärnlöv behöver dusch på fredag.", "Ansgar Tjärnlöv"),
    ("20001", "Gäller Tjärnlöv, Karl-Erik inför mötet.", "Tjärnlöv, Karl-Erik"),
    ("20001", "På listan står Tjärnlöv Ansgar överst.", "Tjärnlöv Ansgar"),
    ("20001", "KARL-ERIK TJÄRNLÖV saknar dosett.", "KARL-ERIK TJÄRNLÖV"),
    ("20001", "karl-erik tjarnlov saknar dosett.", "karl-erik tjarnlov"),
    ("20001", "Karl-Erik Tjärnlövs dosett är tom.", "Karl-Erik Tjärnlövs"),
    ("20002", "Ingegerd Öhrnvall vill flytta sin tid.", "Ingegerd Öhrnvall"),
    ("20002", "Ingegerd Ohrnvall vill flytta sin tid.", "Ingegerd Ohrnvall"),
    ("20002", "Vi pratade med Öhrnvall, Ingegerd i går.", "Öhrnvall, Ingegerd"),
    ("20002", "ingegerd öhrnvalls anhöriga har ringt.", "ingegerd öhrnvalls"),
    ("20003", "Lars Myrbäcken har ont i ryggen.", "Lars Myrbäcken"),
    ("20003", "Myrbäcken Lars' rollator är trasig.", "Myrbäcken Lars'"),
    ("20003", "Lars Myrbäckens rollator är trasig.", "Lars Myrbäckens"),
    ("20004", "Eva Sälgström:s larm gick i natt.", "Eva Sälgström:s"),
    ("20004", "Gunborg Sälgström har fått sina mediciner.", "Gunborg Sälgström"),
    ("20004", "Eva Gunborg Sälgström har fått sina mediciner.", "Eva Gunborg Sälgström"),
    ("20004", "Sälgström Eva:s mat står i kylen.", "Sälgström Eva:s"),
    ("20005", "Anna-Lisa Fräsdal-Ringqvist ska till läkaren.", "Anna-Lisa Fräsdal-Ringqvist"),
    ("20005", "Anna Lisa Fräsdal Ringqvist ska till läkaren.", "Anna Lisa Fräsdal Ringqvist"),
    ("20005", "Fräsdal-Ringqvist, Anna-Lisa ska till läkaren.", "Fräsdal-Ringqvist, Anna-Lisa"),
    ("20006", "Hjördis af Klöverhed behöver hjälp med posten.", "Hjördis af Klöverhed"),
    ("20006", "Hjordis af Kloverhed behöver hjälp med posten.", "Hjordis af Kloverhed"),
    ("20007", "Sigvard Berg har fått en ny rullstol.", "Sigvard Berg"),
    ("20007", "Berg, Sigvard har fått en ny rullstol.", "Berg, Sigvard"),
    ("20008", "Ottilia Lind ska ha besök i dag.", "Ottilia Lind"),
    ("20009", "Bertil Eks hund behöver rastas.", "Bertil Eks"),
    ("20010", "MAJVOR STRAND ringde två gånger.", "MAJVOR STRAND"),
    ("20011", "Evert Holm vill byta tid.", "Evert Holm"),
    ("20012", "Per Ivan Gräsvik har flyttat.", "Per Ivan Gräsvik"),
    ("20012", "Ivan Gräsvik har flyttat.", "Ivan Gräsvik"),
    # across a plain-text line break, also in a quoted reply
    ("20002", "Hälsa till Ingegerd\nÖhrnvall från oss.", "Ingegerd\nÖhrnvall"),
    ("20001", "> Hälsa till Karl-Erik\n> Tjärnlöv från oss.", "Karl-Erik\n> Tjärnlöv"),
    # in a file name and an e-mail address
    ("20001", "journal_karl-erik_tjarnlov.pdf", "karl-erik_tjarnlov"),
    ("20002", "ingegerd.ohrnvall@example.com", "ingegerd.ohrnvall"),
)


@pytest.mark.parametrize(("customer", "sentence", "written"), NAME_FORMS)
def test_a_client_name_in_every_written_form_is_found_with_its_customer_number(
    customer: str, sentence: str, written: str
) -> None:
    hit = one(sentence)
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "block", customer)
    assert sentence[hit.start : hit.end] == written


TITLE_FORMS = (
    ("20002", "Fru Öhrnvall har ringt igen.", "Öhrnvall"),
    ("20002", "Vi hälsade på hos fru Ohrnvall.", "Ohrnvall"),
    ("20007", "Brukaren Berg behöver hjälp.", "Berg"),
    ("20008", "Kunden Lind har ändrat sin tid.", "Lind"),
    ("20003", "Herr Myrbäckens nycklar är borta.", "Myrbäckens"),
    ("20011", "Hr. Holm vill ha kaffe.", "Holm"),
    ("20005", "Vårdtagaren Fräsdal-Ringqvist sover.", "Fräsdal-Ringqvist"),
)


@pytest.mark.parametrize(("customer", "sentence", "written"), TITLE_FORMS)
def test_a_surname_alone_after_a_title_or_care_word_is_a_warning_with_the_customer_number(
    customer: str, sentence: str, written: str
) -> None:
    hit = one(sentence)
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "warn", customer)
    assert sentence[hit.start : hit.end] == written


@pytest.mark.parametrize(
    "sentence",
    [
        "Ingegerd ringde i morse.",  # a first name alone
        "Hej Karl-Erik! Hälsningar Ansgar",
        "Öhrnvall ringde i morse.",  # a surname alone, without a title
        "Vi ses hos Tjärnlövs i morgon.",
        "Ingegerd\n\nÖhrnvall",  # a paragraph apart: two things, not one name
        "Ingegerd. Öhrnvall",
        "Anna Tjärnlöv och Karl Öhrnvall",  # other first names with clients' surnames
    ],
)
def test_a_first_name_alone_or_a_surname_without_title_is_no_finding(sentence: str) -> None:
    assert found(sentence) == []


def test_any_one_first_name_of_several_is_enough() -> None:
    assert one("Per Gräsvik har flyttat.").customer_number == "20012"


@pytest.mark.parametrize(
    "sentence",
    [
        "Vägen var full av sten, berg och grus.",
        "sigvard berg",  # the surname in lower case is the word
        "sigvard bergs bil",  # and so is its genitive
        "Sigvard bergs bil",
        "brukaren berg gick vilse",
        "Vi planterade en ek och en lind vid strand och holm.",
        "bertil ek",
        "majvor strand",
        "Evert holm",
        "Ottilia lind",
        "Sigvard Bergström och Ottilia Lindqvist bor i Ekerö.",  # inside other words
        "Strandvägen och Holmbergs väg, Eksjö och Lindesberg.",
        "Fru Bergström och herr Lindgren.",
        "Brukaren bergsklättrade med Holmsund.",
    ],
)
def test_common_word_surnames_do_not_match_in_lower_case_or_inside_other_words(sentence: str) -> None:
    assert found(sentence) == []


STAFF_TEXT = """Hej Ylva!

Jag har bytt pass med Torbjörn Ekdahl-Svensson på torsdag. Kristoffer Almgren tar kvällen.
Kan Jessika Brandtberg och Mirja Holmstedt ta mötet med enhetschefen Gunvor Lindblad?

Med vänliga hälsningar
Henrietta Strömvall
Undersköterska, Hemtjänsten Norr
"""


def test_made_up_staff_names_give_no_client_finding() -> None:
    assert found(STAFF_TEXT) == []


def _klintan_sentences(limit: int = 3000) -> list[str]:
    sentences: list[str] = []
    tokens: list[str] = []
    with (TEST_DATA / "ner" / "klintan_train_first3000.txt").open(encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").rsplit(None, 1)
            if len(parts) == 2:
                tokens.append(parts[0])
            elif tokens:
                sentences.append(" ".join(tokens))
                tokens = []
            if len(sentences) >= limit:
                break
    return sentences


def test_news_text_full_of_other_peoples_names_gives_no_client_finding() -> None:
    sentences = _klintan_sentences()
    assert len(sentences) > 1000
    text = "\n".join(sentences)
    assert "Mats Berg" in text  # a news name with a client's common-word surname
    assert found(text) == []


# ---------------------------------------------------------------------------------------------
# Phones, addresses, personnummer.

PHONE_FORMS = (
    "070-174 06 05",
    "0701740605",
    "070 174 06 05",
    "070-1740605",
    "+46 70 174 06 05",
    "+46 (0)70-174 06 05",
    "+46701740605",
    "0046 70 174 06 05",
    "(070) 174 06 05",
)


@pytest.mark.parametrize("written", PHONE_FORMS)
def test_a_clients_phone_number_in_any_written_form_is_found(written: str) -> None:
    sentence = f"Ring honom på {written} efter lunch."
    hit = one(sentence)
    assert (hit.kind, hit.customer_number, hit.canonical) == ("client_phone", "20001", "+46701740605")
    assert sentence[hit.start : hit.end] == written
    assert "1740605" not in hit.masked


def test_other_phone_numbers_and_a_clients_number_run_into_other_digits_are_no_finding() -> None:
    assert found("Ring 070-174 06 06 eller 08-465 004 13.") == []
    assert found("Ordernummer 9070174060512") == []


def test_the_other_phone_numbers_of_the_register_are_found() -> None:
    assert [h.customer_number for h in found("Tel 08-465 004 12, mobil 070-174 06 77, 031-390 06 33")] == [
        "20002",
        "20005",
        "20003",
    ]


@pytest.mark.parametrize(
    ("sentence", "written", "customer"),
    [
        ("Hon bor på Videvägen 14 B, andra våningen.", "Videvägen 14 B", "20001"),
        ("Adress: videvägen 14b", "videvägen 14b", "20001"),
        ("Nyckeln finns på Videvägen 14.", "Videvägen 14", "20001"),
        ("Besök på Kvarngränd 3 kl 10.", "Kvarngränd 3", "20002"),
        ("Han har flyttat till Per Albin Hanssons väg 41 i vintras.", "Per Albin Hanssons väg 41", "20012"),
        ("LJUNGSTIGEN 7", "LJUNGSTIGEN 7", "20004"),
    ],
)
def test_a_clients_street_address_is_found(sentence: str, written: str, customer: str) -> None:
    hit = one(sentence)
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_address", "block", customer)
    assert sentence[hit.start : hit.end] == written


def test_another_house_on_the_clients_street_is_no_finding() -> None:
    assert found("Videvägen 15 och Kvarngränd 30 och Ljungstigen") == []


def context(idx: RegisterIndex | None = None) -> ScanContext:
    idx = idx or index()
    return ScanContext(
        fingerprint_key=TEST_KEY,
        today=TODAY,
        client_register=idx,
        customer_numbers=idx.customer_numbers,
        customer_by_fingerprint=idx.by_personnummer,
    )


def test_the_register_adds_the_customer_number_to_a_clients_personnummer() -> None:
    pnr = personnummer(ROWS[3])
    text = f"Gäller {pnr[:8]}-{pnr[8:]} och {pnr[2:8]}+{pnr[8:]}, kundnummer 20002."
    findings = list(engine.scan([Segment(part="text", text=text)], context()))
    assert [(f.kind, f.customer_number) for f in findings] == [("personnummer", "20004")] * 2
    assert findings[0].suggestion == "Skriv kundnummer 20004 i stället för personnumret."


def test_every_finding_of_a_known_client_carries_a_swedish_suggestion_naming_the_customer_number() -> None:
    text = "Karl-Erik Tjärnlöv, Videvägen 14 B, tel 070-174 06 05. Fru Öhrnvall har ringt."
    findings = list(engine.scan([Segment(part="text", text=text)], context()))
    assert [(f.kind, f.customer_number) for f in findings] == [
        ("client_name", "20001"),
        ("client_address", "20001"),
        ("client_phone", "20001"),
        ("client_name", "20002"),
    ]
    for f in findings:
        assert f.suggestion.startswith(f"Skriv kundnummer {f.customer_number} i stället för ")


def test_a_name_finding_has_the_fingerprint_of_first_name_and_surname_as_found_and_initials_only() -> None:
    hit = one("Tjärnlöv, Karl-Erik ringde.")
    assert hit.canonical == "karl-erik tjärnlöv"
    assert hit.masked == "K******** T*******"
    finding = next(engine.scan([Segment(part="text", text="Tjärnlöv, Karl-Erik ringde.")], context()))
    assert finding.fingerprint == fingerprint(TEST_KEY, "karl-erik tjärnlöv")
    assert one("Ingegerd Ohrnvalls").canonical == "ingegerd ohrnvall"  # diacritics as found


def test_a_name_two_clients_share_is_still_blocked_but_names_no_customer_number() -> None:
    twins = ROWS[:2] + (("20099", "Ingegerd", "Öhrnvall", 150, "", ""),)
    idx = RegisterIndex(build(clients(twins), TEST_KEY), TEST_KEY)
    hit = one_in(idx, "Ingegerd Öhrnvall har ringt.")
    assert (hit.kind, hit.severity, hit.customer_number) == ("client_name", "block", None)
    finding = next(engine.scan([Segment(part="text", text="Ingegerd Öhrnvall")], context(idx)))
    assert "kundnummer" in finding.suggestion and "200" not in finding.suggestion


def one_in(idx: RegisterIndex, text: str) -> Hit:
    hits = found(text, idx)
    assert len(hits) == 1, hits
    return hits[0]


def test_invisible_characters_inside_a_name_do_not_hide_it_and_the_span_is_the_original() -> None:
    text = "Hej! Ingegerd Öhrn\u200bvall ringde."
    hit = one(text)
    assert text[hit.start : hit.end] == "Ingegerd Öhrn\u200bvall"


def test_the_word_memory_gives_the_same_answers_when_it_is_full_and_started_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    idx = RegisterIndex(build(clients(), TEST_KEY), TEST_KEY)
    monkeypatch.setattr(matcher, "CACHE_LIMIT", 50)
    text = "Ingegerd Öhrnvall och fru Berg. " + " ".join(f"ord{i}" for i in range(200))
    first = [(h.start, h.customer_number) for h in found(text, idx)]
    second = [(h.start, h.customer_number) for h in found(text, idx)]
    assert first == second == [(0, "20002"), (text.index("Berg"), "20007")]
    assert len(idx._cache.nonstarts) < 50  # it was started afresh


def test_the_register_tables_hold_no_name_in_clear() -> None:
    tables = build(clients(), TEST_KEY)
    blob = b"".join(
        (
            tables.phrases.keys.tobytes(),
            tables.phrases.values.tobytes(),
            tables.personnummer.keys.tobytes(),
            tables.personnummer.values.tobytes(),
        )
    )
    for row in ROWS:
        for word in re.findall(r"\w{3,}", f"{row[1]} {row[2]} {row[5]}"):
            for form in {word, word.lower(), fold(word)}:
                assert form.encode("utf-8") not in blob
    assert tables.customer_numbers == tuple(r[0] for r in ROWS)


def test_without_a_register_the_engine_finds_no_client() -> None:
    ctx = ScanContext(fingerprint_key=TEST_KEY, today=TODAY)
    assert list(engine.scan([Segment(part="text", text="Ingegerd Öhrnvall")], ctx)) == []


def test_passing_over_words_that_continue_no_name_never_loses_a_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    news = _klintan_sentences(400)
    planted = [s for _, s, _ in NAME_FORMS + TITLE_FORMS] + [f"Ring {p} nu." for p in PHONE_FORMS]
    text = "\n".join(x for pair in zip(news, planted * 20, strict=False) for x in pair)
    fast = [
        (h.start, h.end, h.kind, h.customer_number)
        for h in found(text, RegisterIndex(build(clients(), TEST_KEY), TEST_KEY))
    ]
    monkeypatch.setattr(RegisterIndex, "_may_continue", lambda *args: True)
    slow = [
        (h.start, h.end, h.kind, h.customer_number)
        for h in found(text, RegisterIndex(build(clients(), TEST_KEY), TEST_KEY))
    ]
    assert fast == slow and len(fast) >= len(planted)


@pytest.mark.parametrize(
    ("sentence", "written"),
    [
        ("(Ingegerd Öhrnvall) har ringt.", "Ingegerd Öhrnvall"),
        ("”Ingegerd Öhrnvall” stod det på lappen.", "Ingegerd Öhrnvall"),
        ("Gäller: Öhrnvall, Ingegerd.", "Öhrnvall, Ingegerd"),
        ("Sist på listan: Ingegerd Öhrnvall!", "Ingegerd Öhrnvall"),
        ("Hr. Holm vill ha kaffe.", "Holm"),
        ("Adress: Kvarngränd 3.", "Kvarngränd 3"),
    ],
)
def test_a_name_between_brackets_quotes_or_punctuation_is_found(sentence: str, written: str) -> None:
    hit = one(sentence)
    assert sentence[hit.start : hit.end] == written


@pytest.mark.parametrize("sentence", ["Ingegerd. Öhrnvall", "Ingegerd) Öhrnvall", "Ingegerd; Öhrnvall"])
def test_a_mark_that_ends_a_sentence_or_clause_keeps_two_names_apart(sentence: str) -> None:
    assert found(sentence) == []


def test_occurrences_passed_over_do_not_shift_the_one_found_after_them() -> None:
    # The same raw word passed over (it continues no name), inside other words, then found.
    text = (
        "Ingegerd kom. Ingegerdsson och Ingegerd. Hej Ingegerd Ingegerd\n"
        "Ingegerd Öhrnvall, och Ingegerd igen, Ingegerd Öhrnvall!"
    )
    spans = [(h.start, h.end) for h in found(text, RegisterIndex(build(clients(), TEST_KEY), TEST_KEY))]
    starts = [m.start() for m in re.finditer("Ingegerd Öhrnvall", text)]
    assert spans == [(s, s + len("Ingegerd Öhrnvall")) for s in starts]


def test_the_word_memory_carried_from_message_to_message_never_loses_a_finding() -> None:
    messages = (
        [s for _, s, _ in NAME_FORMS + TITLE_FORMS]
        + [f"Ring {p} nu." for p in PHONE_FORMS]
        + ["Hon bor på Videvägen 14 B.", "Ingegerd. Hej Ingegerd!", STAFF_TEXT]
        + _klintan_sentences(200)
    )

    def answers(idx: RegisterIndex, text: str) -> list[tuple[int, int, str, str | None]]:
        return [(h.start, h.end, h.kind, h.customer_number) for h in found(text, idx)]

    fresh = [answers(RegisterIndex(build(clients(), TEST_KEY), TEST_KEY), m) for m in messages]
    shared = RegisterIndex(build(clients(), TEST_KEY), TEST_KEY)
    first_round = [answers(shared, m) for m in messages]
    second_round = [answers(shared, m) for m in reversed(messages)][::-1]
    assert first_round == second_round == fresh
    assert sum(map(len, fresh)) >= len(NAME_FORMS) + len(TITLE_FORMS) + len(PHONE_FORMS)
    assert shared._cache.nonstarts and shared._cache.pairs  # the memory was used, not bypassed


def test_findings_on_several_lines_carry_each_its_own_line_and_column() -> None:
    text = "Hej!\nIngegerd Öhrnvall ringde.\n\nFru Öhrnvall och Sigvard Berg,\ntel 070-174 06 05"
    findings = list(engine.scan([Segment(part="text", text=text)], context()))
    assert [(f.location.line, f.location.column) for f in findings] == [(2, 1), (4, 5), (4, 18), (5, 5)]


def test_the_search_hashes_a_word_as_the_register_was_built() -> None:
    idx = RegisterIndex(build(clients(), TEST_KEY), TEST_KEY)
    for word in ("ohrnvall", "tjarnlov", "14", "+46701740605", "ö", "x" * 200):
        assert idx._hash(idx._cache, word) == token_hash(index_key(TEST_KEY), word)


def test_the_remembered_pairs_are_dropped_past_their_limit_and_the_answers_stay_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = "Hej Ingegerd, Ingegerd Öhrnvall och fru Berg. Ingegerd. Per Gräsvik, Ottilia Lind."
    expected = [(h.start, h.customer_number) for h in found(text)]
    monkeypatch.setattr(matcher, "PAIR_LIMIT", 2)
    idx = RegisterIndex(build(clients(), TEST_KEY), TEST_KEY)
    for _ in range(3):
        assert [(h.start, h.customer_number) for h in found(text, idx)] == expected
        assert len(idx._cache.pairs) == 0  # dropped after each message: more than two pairs
    assert len(expected) == 4
