"""Machine identifiers: a 10-digit run that is one segment of a dotted token such as
`cdt.managedbuild.tool.gnu.archiver.base.NNNNNNNNNN` in a build file is an identifier, not an
identity number; a sentence's full stop, an abbreviation, a decimal number or a separated form is
not such a token."""

from __future__ import annotations

import pytest

from rules import identity_numbers
from rules.normalize import normalize
from tests.conftest import TODAY, skatteverket
from tests.rules.test_personnummer import forms


def born_within_a_century(kind: str) -> list[str]:
    """Skatteverket's test numbers whose 10-digit form, written without `+`, is the same person."""
    return [n for n in skatteverket()[kind] if int(n[:4]) > TODAY.year - 100]


SAMORDNINGSNUMMER = born_within_a_century("samordningsnummer")[0]
PERSONNUMMER = born_within_a_century("personnummer")[0]
NUMBERS = [SAMORDNINGSNUMMER, PERSONNUMMER]


def found(text: str) -> list[str]:
    """Canonical values the detector reports, as the engine runs it."""
    return [h.canonical for h in identity_numbers.detect(normalize(text), TODAY)]


def ten(canonical: str) -> str:
    return canonical[2:]


# Eclipse CDT writes ids as a dotted super-class name and a random number (two, for a tool in a
# file's own settings; a trailing dot for a folder's).
IDENTIFIERS = [
    "a.b.{}",
    "cdt.x.base.{}",
    "{}.tool.base",
    "cdt.tool.{}.base",
    "cdt.managedbuild.tool.gnu.archiver.base.{}",
    '<tool id="x.1" superClass="cdt.managedbuild.tool.gnu.archiver.base.{}"/>',
    'id="cdt.managedbuild.config.gnu.exe.debug.{}."',
    "cdt.managedbuild.tool.gnu.c.compiler.exe.debug.1181233325.{}",
    "org.eclipse.cdt.build.core.prefbase.toolchain.{}",
    "my_project-core.gnu_cross.{}",
    # A file name is a token too: the rule's words decide, and its other segments hold letters.
    "lista.{}.txt",
]


@pytest.mark.parametrize("number", NUMBERS, ids=["samordningsnummer", "personnummer"])
@pytest.mark.parametrize("template", IDENTIFIERS)
def test_an_unseparated_ten_digit_segment_of_a_lettered_dotted_token_is_an_identifier(
    template: str, number: str
) -> None:
    assert found(template.format(ten(number))) == []


def test_the_same_run_alone_is_a_number_so_the_token_alone_clears_it() -> None:
    for number in NUMBERS:
        assert found(f"Se {ten(number)} i bilagan") == [number]


def test_every_test_number_is_cleared_inside_an_eclipse_id_and_found_outside_it() -> None:
    numbers = born_within_a_century("personnummer") + born_within_a_century("samordningsnummer")
    inside = [n for n in numbers if found(f'superClass="cdt.managedbuild.tool.gnu.archiver.base.{ten(n)}"')]
    outside = [n for n in numbers if found(f"nummer {ten(n)}") != [n]]
    assert (inside, outside) == ([], [])


@pytest.mark.parametrize("number", NUMBERS, ids=["samordningsnummer", "personnummer"])
@pytest.mark.parametrize(
    "template",
    [
        "Hans nummer är {}.",
        "Hans nummer är {}. Nästa mening",
        "Hans nummer är {}.\nNästa rad",
        "Hans nummer är {}...",
        "Se ...{}",
        # The other segments must hold letters: decimal numbers and addresses do not.
        "3.{}",
        "10.0.0.{}",
        "192.168.1.{}.5",
        # One word is a person's writing: an abbreviation, or a sentence run on without a space.
        "Pnr.{}",
        "{}.Hon ringer i morgon",
        "v1.2.{}",
        # A label in the token says what the number is.
        "Pers.nr.{}",
        "p.nr.{}",
        "pnr.{}.txt",
        "Samordningsnr.{}.pdf",
        # An address's local part is a person's, and a run joined by `_` or `-` is no whole segment.
        "anna.berg.{}@hemtjanst.example",
        "journal_{}.pdf",
        "journal.brukare_{}.pdf",
        "a.b-{}.c",
    ],
)
def test_a_ten_digit_run_that_is_not_a_lettered_segment_of_a_token_still_counts(
    template: str, number: str
) -> None:
    assert found(template.format(ten(number))) == [number]


SEPARATED_FORMS = [d for d, _ in forms(SAMORDNINGSNUMMER) if d != "10 digits"]


@pytest.mark.parametrize("number", NUMBERS, ids=["samordningsnummer", "personnummer"])
@pytest.mark.parametrize("description", SEPARATED_FORMS)
def test_separated_and_twelve_digit_forms_count_inside_any_token(description: str, number: str) -> None:
    written = dict(forms(number))[description]
    for template in ("cdt.managedbuild.tool.gnu.archiver.base.{}", "{}.tool.base", "a.{}.b"):
        assert found(template.format(written)) == [number], template.format(written)


def test_an_interim_number_counts_inside_a_token_the_rule_is_about_digit_runs() -> None:
    assert found("cdt.tool.base.000101T220") == ["20000101T220"]  # personnummer/meta's interim vector
