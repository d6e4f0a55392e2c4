"""The shipped person-name model: found in package data, loaded once per process, only when needed."""

from __future__ import annotations

import codecs
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import ner
from gateway.cli import main
from gateway.errors import UserError
from tests.conftest import REPO, TEST_KEY, test_personnummer
from tests.rules.register_clients import csv_text

# Made-up names.
CLIENT = "Ingvor Kallesund"
STAFF = "Ronja Stålmark"
CARE_NOTE = f"Hej!\nBrukaren {CLIENT} fick sin medicin kl 8.\n"


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter: what it imports and loads is what one gateway or lint process would."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "BRUKARVAKT_FINGERPRINT_KEY": TEST_KEY.decode()}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_model_ships_as_package_data_and_finds_persons() -> None:
    meta = json.loads((ner.MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    assert ner.MODEL_DIR.is_relative_to(REPO / "gateway")
    assert meta["lang"] == "sv" and meta["labels"]["ner"] == [ner.LABEL]
    size = sum(f.stat().st_size for f in ner.MODEL_DIR.rglob("*") if f.is_file())
    assert size < 10_000_000, "a few MB: it travels in the package and in git"
    text = CARE_NOTE
    assert [text[a:b] for a, b in ner.person_spans(text)] == [CLIENT]


def test_the_pipeline_is_loaded_once_per_process_even_when_threads_race(tmp_path: Path) -> None:
    result = run_python(
        f"""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        from gateway import ner
        from gateway.scanner import Scanner
        from models.config import Config
        from models.findings import Segment

        scanner = Scanner(Config())
        scanner.scan_segments([Segment(part="text", text="Vi ses på fredag, Edvin.")])
        print("spacy before care context:", "spacy" in sys.modules)
        with ThreadPoolExecutor(4) as pool:
            first = list(pool.map(lambda _: ner.load(), range(4)))
        found = [scanner.scan_segments([Segment(part="text", text={CARE_NOTE!r})]) for _ in range(3)]
        print("same object:", all(nlp is ner.load() for nlp in first))
        with ThreadPoolExecutor(4) as pool:
            spans = list(pool.map(ner.person_spans, [{CARE_NOTE!r}] * 16))
        print("threads agree:", spans == [ner.person_spans({CARE_NOTE!r})] * 16 and bool(spans[0]))
        print("loads:", ner.loads)
        print("kinds:", sorted({{f.kind for fs in found for f in fs}}))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "spacy before care context: False",
        "same object: True",
        "threads agree: True",
        "loads: 1",
        "kinds: ['person_name']",
    ]


def test_lint_of_text_without_care_context_never_imports_spacy(tmp_path: Path) -> None:
    (tmp_path / "utkast.txt").write_text(f"Hej {CLIENT}! Vi ses på fredag.\npnr {test_personnummer()}\n")
    result = run_python(
        """
        import sys
        from gateway.cli import main
        code = main(["lint", "--format", "json", "utkast.txt"])
        print("exit", code, "spacy", "spacy" in sys.modules)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "exit 1 spacy False"


def test_policy_off_never_loads_the_model_even_for_care_text(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("policy: {person_name: 'off'}\n")
    (tmp_path / "note.txt").write_text(CARE_NOTE)
    result = run_python(
        """
        import sys
        from gateway.cli import main
        code = main(["lint", "--config", "c.yaml", "note.txt"])
        print("exit", code, "spacy", "spacy" in sys.modules)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["exit 0 spacy False"]


class TestLint:
    @pytest.fixture(autouse=True)
    def _key(self, key_env: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)

    def lint_json(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
        code = main(["lint", "--format", "json", *args])
        out = capsys.readouterr().out
        assert CLIENT not in out and "Kallesund" not in out, "the name never appears in clear"
        (file,) = json.loads(out)["files"]
        return code, file

    def test_a_name_in_a_care_note_is_a_warning_that_passes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        note = tmp_path / "note.txt"
        note.write_text(CARE_NOTE)
        code, file = self.lint_json(capsys, str(note))
        assert code == 0 and file["verdict"] == "warn"
        (finding,) = file["findings"]
        assert finding["rule"] == "person-name" and finding["kind"] == "person_name"
        assert finding["severity"] == "warn" and finding["masked"] == "I***** K********"
        assert finding["location"] == {"part": "text", "line": 2, "column": 10}

    def test_block_from_config_blocks(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        (tmp_path / "c.yaml").write_text("policy: {person_name: block}\n")
        note = tmp_path / "note.txt"
        note.write_text(CARE_NOTE)
        code, file = self.lint_json(capsys, "--config", str(tmp_path / "c.yaml"), str(note))
        assert code == 1 and file["verdict"] == "block"

    def test_a_mail_signed_by_staff_has_no_finding_for_the_staff_name(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        message = tmp_path / "m.eml"
        message.write_text(
            f"From: {STAFF} <ronja.stalmark@kommun.example>\nTo: Edvin Lindqvarn <edvin@region.example>\n"
            f"Subject: Ändrad insats\n\nKan du ta kvällspasset på onsdag?\n\nHälsningar\n{STAFF}\nHemtjänsten\n"
        )
        config = tmp_path / "c.yaml"
        config.write_text(
            f"policy:\n  staff:\n    - {{address: ronja.stalmark@kommun.example, name: {STAFF}}}\n"
        )
        code, file = self.lint_json(capsys, "--config", str(config), str(message))
        assert (code, file["verdict"], file["findings"]) == (0, "pass", [])

    def test_a_staff_address_alone_is_enough_to_know_the_name(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        note = tmp_path / "note.txt"
        note.write_text(f"Medicinen är utdelad.\nHälsningar\n{STAFF}\n")
        code, file = self.lint_json(capsys, str(note))
        assert [f["kind"] for f in file["findings"]] == ["person_name"], "unknown without config"
        config = tmp_path / "c.yaml"
        config.write_text("policy: {staff: [ronja.stalmark@kommun.example]}\n")
        code, file = self.lint_json(capsys, "--config", str(config), str(note))
        assert (code, file["verdict"]) == (0, "pass")

    def test_a_registered_client_is_one_client_name_finding_not_also_a_person_name(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / "c.yaml"
        config.write_text("policy: {person_name: warn}\n")
        (tmp_path / "export.csv").write_text(csv_text(), encoding="utf-8")
        assert main(["register", "--config", str(config), "import", str(tmp_path / "export.csv")]) == 0
        text = "Brukaren Ingegerd Öhrnvall fick sin medicin kl 8.\nHälsningar\nHenrietta Strömvall\n"
        spans = [text[a:b] for a, b in ner.person_spans(text)]
        assert spans == ["Ingegerd Öhrnvall", "Henrietta Strömvall"], "the model sees both"
        note = tmp_path / "note.txt"
        note.write_text(text)
        capsys.readouterr()
        code = main(["lint", "--config", str(config), "--format", "json", str(note)])
        findings = json.loads(capsys.readouterr().out)["files"][0]["findings"]
        assert code == 1
        assert [(f["kind"], f["customer_number"], f["location"]["line"]) for f in findings] == [
            ("client_name", "20002", 1),
            ("person_name", None, 3),
        ]


def test_a_missing_model_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ner, "MODEL_DIR", tmp_path / "ner_sv")
    monkeypatch.setattr(ner, "_nlp", None)
    with pytest.raises(UserError, match="name model is missing.*person_name: off"):
        ner.person_spans(CARE_NOTE)


def test_only_the_first_max_chars_of_a_segment_go_through_the_model() -> None:
    filler = "Dosetten är påfylld och allt är lugnt. " * (ner.MAX_CHARS // 39 + 1)
    assert len(filler) > ner.MAX_CHARS
    assert [CARE_NOTE[a:b] for a, b in ner.person_spans(CARE_NOTE + filler)] == [CLIENT]
    assert ner.person_spans(filler + CARE_NOTE) == []


# The model reads only windows around candidate words: care mail without names never reaches it.


def test_sentence_initial_words_that_are_no_names_are_not_read() -> None:
    text = "Insatsen flyttas till onsdag. Nyckeln finns på kontoret.\n\nVi ses i morgon."
    assert ner.candidate_regions(text) == []


def test_a_capitalised_word_inside_a_sentence_is_read_with_its_surroundings() -> None:
    text = "Insatsen flyttas. I morgon kommer Ingvor Kallesund hem från sjukhuset."
    ((start, end),) = ner.candidate_regions(text)
    assert text[start:end].find("Kallesund") >= 0 and start == 0 and end == len(text)


def test_a_known_first_name_first_in_a_sentence_is_read() -> None:
    assert ner.candidate_regions("Insatsen är klar. Annas dotter ringde i går.") != []
    assert ner.candidate_regions("Insatsen är klar. Bilen står på gården.") == []


def test_a_signature_name_after_a_line_break_is_read() -> None:
    assert ner.candidate_regions("Hälsningar\nAnna") != []


def test_staff_names_are_no_reason_to_read_a_sentence() -> None:
    text = "Hälsningar\nAnna Lind"
    assert ner.candidate_regions(text, frozenset({"anna", "lind"})) == []
    assert ner.candidate_regions("Hälsningar\nAnna Kallesund", frozenset({"anna", "lind"})) != []


def _plain_candidate_regions(text: str, ignore: frozenset[str] = frozenset()) -> list[tuple[int, int]]:
    """What candidate_regions is to give, written plainly: every capital tried by the regular expressions.

    The spans are found independently of gateway/ner.py (the comparison is about finding them);
    the windows around them come from the same merge."""
    found = [m.span() for m in ner._INSIDE.finditer(text)]
    known = {
        w
        for w in set(ner._CAPITALISED.findall(text))
        if ner._known(w.casefold().rstrip(":'’"), ner.name_words())
        and not (ignore and ner._known(ner.fold(w.rstrip(":'’")), ignore))
    }
    for word in known:
        found += [m.span() for m in re.finditer(rf"(?<![\w'’:-]){re.escape(word)}(?![\w'’:-])", text)]
    return ner._regions(text, found, ignore)  # the windows around them: one merge for both


# Pieces of text that stress the byte copy: capitals in and outside Latin-1, letters, digits and
# spaces outside it, every sentence end, apostrophes, genitives, line breaks, known names.
TEXT_PIECES = st.sampled_from(
    [
        "Anna",
        "ANNA",
        "Annas",
        "Anna:s",
        "Anna’s",
        "anna",
        "Lind",
        "McAnna",
        "Anna-Karin",
        "OBS",
        "Ingvor",
        "Kallesund",
        "Ma",
        "I",
        "Łukasz",
        "Dušan",
        "Ölund",
        "Çelik",
        "ÅSA",
        "ẞ",
        "Ǆ",
        "\u212aARIN",
        "ſAnna",
        "\u212bSA",
        "x",
        "och",
        "kund",
        "٣",
        "²",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\u2003",
        "\u00a0",
        "\x85",
        ".",
        "!",
        "?",
        ":",
        ";",
        '"',
        "”",
        "»",
        "•",
        "*",
        ">",
        "|",
        "–",
        "—",
        "\\",
        "-",
        "'",
        "’",
        "_",
        ",",
        "(",
        "#",
        "\udcc3",
    ]  # fmt: skip
)


@settings(max_examples=400)
@given(st.lists(TEXT_PIECES, max_size=40), st.booleans())
def test_candidate_regions_are_those_of_the_plain_regular_expressions(pieces: list[str], staff: bool) -> None:
    text = "".join(pieces)
    ignore = frozenset({"anna", "lind"}) if staff else frozenset()
    expected = _plain_candidate_regions(text, ignore)
    assert ner.candidate_regions(text, ignore) == expected
    # The byte copy's way, whatever the share of characters outside Latin-1 (candidate_regions
    # takes the plain way when they are many).
    coded = text.encode("latin-1", "brukarvakt-name-classes")
    assert ner._regions(text, ner._byte_spans(text, coded, ignore), ignore) == expected
    assert ner._regions(text, ner._plain_spans(text, ignore), ignore) == expected


def test_text_mostly_outside_latin1_is_searched_as_fast_as_before() -> None:
    # One call of the error handler per run of such characters would cost ~20 ms per 50 KB.
    text = ("Привет Анна, как дела? Встреча в четверг. Hej Ingvor Kallesund! " * 800)[: ner.MAX_CHARS]
    assert ner.candidate_regions(text) == _plain_candidate_regions(text)
    calls = 0
    real = ner._to_latin1

    def counted(error: UnicodeError) -> tuple[str, int]:
        nonlocal calls
        calls += 1
        return real(error)

    codecs.register_error("brukarvakt-name-classes", counted)
    try:
        ner.candidate_regions(text)
        ner.candidate_regions("Hej Anna – vi ses ”i morgon”. " + "Insatsen flyttas. " * 20)  # the byte copy
    finally:
        codecs.register_error("brukarvakt-name-classes", real)
    assert calls == 3  # the dash and the two quotes of the second text, none for the first


def test_candidate_regions_of_real_mail_are_those_of_the_plain_regular_expressions() -> None:
    mail_text = (
        "Hej Anna!\r\n\r\nBrukaren Ingvor Kallesund (kund 10234) fick sin medicin. OBS: ring "
        "Dušan på 070-1740605 – han vet. ”Anna-Karin” sa att McAnna kommer.\r\n> Hälsningar\r\n> Ronja\r\n"
    )
    for ignore in (frozenset(), frozenset({"anna", "lind"})):
        assert ner.candidate_regions(mail_text, ignore) == _plain_candidate_regions(mail_text, ignore)
        assert ner.candidate_regions(mail_text * 50, ignore) == _plain_candidate_regions(
            mail_text * 50, ignore
        )


def test_spans_are_mapped_back_to_the_original_text() -> None:
    filler = "Insatsen flyttas till onsdag enligt önskemål från anhöriga. " * 20
    text = (
        filler
        + "Brukaren Ingvor Kallesund vill ha besöket senare. "
        + filler
        + "I går ringde Gunnel Torvgren."
    )
    names = [text[s:e] for s, e in ner.person_spans(text)]
    assert "Ingvor Kallesund" in names and "Gunnel Torvgren" in names
